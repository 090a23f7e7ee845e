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

from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from . import drivers

_READ = ("SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), "
         "current_setting('idle_session_timeout', true), "
         "(SELECT source FROM pg_settings WHERE name = 'statement_timeout'), "
         "current_setting('default_transaction_read_only'), "
         "(SELECT source FROM pg_settings WHERE name = 'default_transaction_read_only'), pg_is_in_recovery()")

# pg_settings.source, as a DBA would say it.
_SOURCES = {
    "user": "the role (ALTER ROLE ... SET)",
    "database": "the database (ALTER DATABASE ... SET)",
    "database user": "the role in this database (ALTER ROLE ... IN DATABASE ... SET)",
    "configuration file": "the server's configuration (postgresql.conf or ALTER SYSTEM)",
    "session": "env.py's connection setup (a SET on the connection)",
    "client": "env.py's connection options (PGOPTIONS or the URL's options)",
    "environment variable": "the server's environment",
    "command line": "the server's command line",
}


@dataclass
class Saved:
    """The settings dbtune changed on one connection, with the values they had."""

    before: dict[str, str] = field(default_factory=dict)
    statement_timeout: str = "0"
    statement_timeout_source: str = "default"
    read_only_source: str | None = None  # where default_transaction_read_only = on comes from, if it is
    standby: bool = False


def setup(raw: Any, *, lock_timeout_ms: int, statement_timeout_ms: int | None) -> Saved:
    """Bound lock waits, keep the idle connection alive, and apply --statement-timeout, if given;
    return what to put back."""
    row = drivers.query_one(raw, _READ)
    assert row is not None
    lock_timeout, statement_timeout, idle_session_timeout, source, read_only, read_only_source, standby = row
    wanted = {"lock_timeout": f"{lock_timeout_ms}ms"}
    if idle_session_timeout is not None:  # PostgreSQL 14+: builds run on other connections while this one idles
        wanted["idle_session_timeout"] = "0"
    if statement_timeout_ms is not None:
        wanted["statement_timeout"] = f"{statement_timeout_ms}ms"
    current = {"lock_timeout": lock_timeout, "statement_timeout": statement_timeout,
               "idle_session_timeout": idle_session_timeout}
    _set(raw, wanted)
    saved = Saved(before={name: str(current[name]) for name in wanted},
                  statement_timeout=str(statement_timeout), statement_timeout_source=str(source),
                  read_only_source=str(read_only_source) if read_only == "on" else None, standby=bool(standby))
    if statement_timeout_ms is not None:
        saved.statement_timeout, saved.statement_timeout_source = wanted["statement_timeout"], "--statement-timeout"
    return saved


def restore(raw: Any, saved: Saved) -> None:
    _set(raw, saved.before)


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
        where = _SOURCES.get(saved.read_only_source, saved.read_only_source)
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
    where = _SOURCES.get(saved.statement_timeout_source, saved.statement_timeout_source)
    return (f"statement_timeout is {saved.statement_timeout} on this connection, set by {where}; raise it for "
            "this run with --statement-timeout SECONDS (0: none), which dbtune applies to the migration's "
            "statements and puts back afterwards")
