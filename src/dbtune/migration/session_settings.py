"""What dbtune sets on the migration's own connection, and puts back before env.py lets it go.

The connection is env.py's, not dbtune's: it may go back to a pool of the
application's (a session pooler without a reset query, an engine's own pool), so
whatever dbtune changed on it is restored to what it was once the revisions
have run.  Settings the role, the database or the server carry (``ALTER ROLE
... SET``, ``ALTER DATABASE ... SET``, postgresql.conf) reach this connection
too; when one of them stops a migration, the error says which and where it
comes from (``pg_settings.source``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from ..core import setting_sources
from . import drivers

# Each setting dbtune may change on the connection: its value now and where it comes from.
_MANAGED = ("lock_timeout", "statement_timeout", "idle_session_timeout")
_READ = sql.SQL("SELECT name, current_setting(name), source FROM pg_settings WHERE name = ANY({}) "
                "UNION ALL SELECT 'default_transaction_read_only', current_setting('default_transaction_read_only'), "
                "(SELECT source FROM pg_settings WHERE name = 'default_transaction_read_only') "
                "UNION ALL SELECT 'in_recovery', pg_is_in_recovery()::text, ''")



@dataclass
class Saved:
    """What the connection carried before dbtune set anything: value and source of each setting."""

    values: dict[str, tuple[str, str]] = field(default_factory=dict)  # name: (value, pg_settings.source)
    statement_timeout_ms: int | None = None  # --statement-timeout, if given

    @property
    def statement_timeout(self) -> str:
        if self.statement_timeout_ms is not None:
            return f"{self.statement_timeout_ms}ms"
        return self.values.get("statement_timeout", ("0", "default"))[0]

    @property
    def statement_timeout_source(self) -> str:
        if self.statement_timeout_ms is not None:
            return "--statement-timeout"
        return self.values.get("statement_timeout", ("0", "default"))[1]

    @property
    def read_only_source(self) -> str | None:
        value, source = self.values.get("default_transaction_read_only", ("off", ""))
        return source if value == "on" else None

    @property
    def standby(self) -> bool:
        return self.values.get("in_recovery", ("false", ""))[0] == "true"


# Where env.py's connection keeps what it carried before dbtune's first bind: the DBAPI
# connection's info lives as long as that connection, across binds, retries and checkouts.
_SAVED_KEY = "dbtune.saved_settings"


def set_for_run(connection: Any, stack: contextlib.ExitStack, *, lock_timeout_ms: int,
                statement_timeout_ms: int | None) -> Saved:
    """The run's settings on env.py's (SQLAlchemy) connection; what it carried is read once and kept."""
    raw = drivers.dbapi(connection)
    info = connection.connection.info
    if _SAVED_KEY not in info:
        info[_SAVED_KEY] = read(raw, statement_timeout_ms=statement_timeout_ms)
        _restore_on_checkin(connection, stack)
    saved: Saved = info[_SAVED_KEY]
    apply(raw, saved, lock_timeout_ms=lock_timeout_ms)
    _commit_unless_in_transaction(connection)
    return saved


def restoring(connection: Any, steps: Iterator[Any]) -> Iterator[Any]:
    """The steps, then env.py's connection as it was: it may go back to a pool of the application's.

    Alembic pulls the steps one at a time and runs each before pulling the next, so the
    code after the last one runs once every revision has run.  After a failed revision
    the transaction is aborted and env.py drops the connection; a pooled one is put back
    by the pool's checkin (see _restore_on_checkin)."""
    yield from steps
    saved = connection.connection.info.pop(_SAVED_KEY, None)
    if saved is not None and not connection.closed:
        restore(drivers.dbapi(connection), saved)
        _commit_unless_in_transaction(connection)


def _restore_on_checkin(connection: Any, stack: contextlib.ExitStack) -> None:
    """Put the connection's settings back when it returns to its pool with them still changed (a
    failed run): after the pool's own rollback, before another checkout.  Best effort: a
    connection that cannot take a statement then is one the pool discards."""
    pool = connection.engine.pool

    def checkin(dbapi_connection: Any, record: Any) -> None:
        saved = record.info.pop(_SAVED_KEY, None)
        if saved is None or dbapi_connection is None:
            return
        with contextlib.suppress(Exception):  # any driver's error: nothing to do but let it go
            restore(dbapi_connection, saved)
            dbapi_connection.commit()

    from sqlalchemy import event  # only a migration run gets here: verbs that run none never import it

    # Once per DBAPI connection (set_for_run calls this only on its first bind), removed with the run.
    event.listen(pool, "checkin", checkin)
    stack.callback(event.remove, pool, "checkin", checkin)


def _commit_unless_in_transaction(connection: Any) -> None:
    if not connection.in_transaction():
        # SQLAlchemy has no transaction open: end the one the driver began for our statements.
        drivers.dbapi(connection).commit()


def read(raw: Any, *, statement_timeout_ms: int | None) -> Saved:
    """The connection's settings before dbtune sets any (read once per connection)."""
    rows = drivers.query_all(raw, _READ.format(sql.Literal(list(_MANAGED))).as_string())
    return Saved(values={str(r[0]): (str(r[1]), str(r[2])) for r in rows}, statement_timeout_ms=statement_timeout_ms)


def apply(raw: Any, saved: Saved, *, lock_timeout_ms: int) -> None:
    """Bound lock waits, keep the idle connection alive, and the run's statement_timeout: on every
    bind, since a rolled-back transaction takes a set_config of its own with it."""
    wanted = {"lock_timeout": f"{lock_timeout_ms}ms", "statement_timeout": saved.statement_timeout}
    if "idle_session_timeout" in saved.values:  # PostgreSQL 14+: builds run elsewhere while this one idles
        wanted["idle_session_timeout"] = "0"
    _set(raw, wanted)


def restore(raw: Any, saved: Saved) -> None:
    """Each setting as it was: its own value where env.py had set it on the connection, else RESET,
    so that it comes from the role, the database or the server again, as it did."""
    own = {name: value for name, (value, source) in saved.values.items()
           if name in _MANAGED and source in ("session", "client")}
    _set(raw, own)
    for name in _MANAGED:
        if name in saved.values and name not in own:
            drivers.query_all(raw, sql.SQL("RESET {}").format(sql.Identifier(name)).as_string())


def _set(raw: Any, values: dict[str, str]) -> None:
    if not values:
        return
    query = sql.SQL("SELECT {}").format(sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, false)").format(sql.Literal(name), sql.Literal(value))
        for name, value in values.items()))
    drivers.query_one(raw, query.as_string())


def read_only_note(saved: Saved | None) -> str | None:
    """Why the migration's connection could not write."""
    if saved is None:
        return None
    if saved.standby:
        return "the server is a hot standby (read-only): run it against the primary"
    if saved.read_only_source is not None:
        where = setting_sources.describe(saved.read_only_source)
        return (f"default_transaction_read_only is on for this connection, set by {where}: connect as a role "
                "meant to migrate, or turn it off for that role")
    return None


def statement_timeout_note(saved: Saved | None) -> str | None:
    """Why a statement was cancelled, when a statement_timeout was in force on the connection."""
    if saved is None or saved.statement_timeout in ("0", "0ms"):
        return None
    if saved.statement_timeout_source == "--statement-timeout":
        return (f"statement_timeout is {saved.statement_timeout} here (--statement-timeout); "
                "raise it, or pass --statement-timeout 0 for none")
    where = setting_sources.describe(saved.statement_timeout_source)
    return (f"statement_timeout is {saved.statement_timeout} on this connection, set by {where}; raise it for "
            "this run with --statement-timeout SECONDS (0: none), which dbtune applies to the migration's "
            "statements and puts back afterwards")
