"""Connections dbtune opens itself, with errors a DBA can read.

Every connection says who it is in ``application_name`` so a DBA watching
pg_stat_activity sees dbtune's sessions for what they are.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from . import pooler
from .conninfo import scrub
from .errors import ConnectionFailed, PoolerRefused
from .settings import Target

APPLICATION = "dbtune"


class Connection(psycopg.Connection[Any]):
    """A connection of dbtune's own: the server's pid for it, and whether a pooler sits between."""

    server_pid = 0
    pooling = pooler.DIRECT

    def close(self) -> None:
        if self.pooling == pooler.SESSION and not self.closed and not self.broken:
            # A session pooler hands this server connection to its next client.  PgBouncer's
            # server_reset_query (DISCARD ALL) is the default, but it can be switched off:
            # leave no setting, advisory lock or prepared statement (psycopg prepares a query
            # it runs often) behind either way.  DISCARD ALL cannot run in a transaction.
            with contextlib.suppress(psycopg.Error):
                if not self.autocommit:
                    self.rollback()
                    self.autocommit = True
                self.execute("DISCARD ALL")
        super().close()


def pid(conn: psycopg.Connection) -> int:
    """The server's pid for one of our connections (a pooler gives the client a pid of its own)."""
    return getattr(conn, "server_pid", 0) or conn.info.backend_pid


def connect(target: Target, *, purpose: str = "", autocommit: bool = True, **options: Any) -> Connection:
    """Open a psycopg connection to ``target``; ConnectionFailed on any failure to log in,
    PoolerRefused (before anything is set) when a transaction-pooling pooler is in between."""
    kwargs = target.connect_kwargs()
    kwargs.setdefault("connect_timeout", 10)
    kwargs["application_name"] = f"{APPLICATION} {purpose}".strip()
    kwargs.update(options)
    try:
        # Autocommit while the pooler is probed: a transaction would pin the server connection.
        conn = Connection.connect(autocommit=True, **kwargs)
    except psycopg.OperationalError as exc:
        # libpq reports login failures without an SQLSTATE, so the text is all there
        # is; it never contains the password, but scrub it anyway.
        raise ConnectionFailed(f"cannot connect to {target.masked}: {describe(exc, target)}") from None
    try:
        try:
            conn.pooling, conn.server_pid = pooler.mode(conn, kwargs)
        except psycopg.Error as exc:
            raise ConnectionFailed(f"cannot connect to {target.masked}: {describe(exc, target)}") from None
        except pooler.PoolBusy as exc:
            raise ConnectionFailed(f"cannot work through {target.masked} now: {exc}; dbtune needs about "
                                   "--jobs + 3 server connections from the pool: try again when the application "
                                   "leaves some free, or connect directly") from None
        if conn.pooling in (pooler.TRANSACTION, pooler.STATEMENT):
            raise PoolerRefused(pooler.refusal(conn.pooling, target.masked), mode=conn.pooling,
                                endpoint=target.masked)
        if conn.info.server_version >= 140000:
            # Our lock session and our connections between builds sit idle on purpose;
            # a server-wide idle_session_timeout (PostgreSQL 14+) must not end them.
            conn.execute("SET idle_session_timeout = 0")
        for name, value in target.session:
            # The migration connection's own settings (its search_path): dbtune's sessions
            # resolve names exactly as the migration does.
            conn.execute("SELECT set_config(%s, %s, false)", [name, value])
        conn.autocommit = autocommit
    except BaseException:
        conn.close()
        raise
    return conn


def describe(exc: BaseException, target: Target | None = None) -> str:
    """One line for a database error of any driver, as psql shows it: the message, then DETAIL,
    HINT and the first line of CONTEXT; the password scrubbed.

    psycopg 3 and psycopg2 carry the server's fields in ``diag``; asyncpg's exception (the
    cause of SQLAlchemy's adapted one) carries them as attributes.
    """
    diag = getattr(exc, "diag", None)
    fields: list[tuple[str, str | None]] = []
    if diag is not None and getattr(diag, "message_primary", None):
        fields = [("", diag.message_primary), ("DETAIL", diag.message_detail), ("HINT", diag.message_hint),
                  ("CONTEXT", diag.context)]
    else:
        native = exc.__cause__ if getattr(exc.__cause__, "sqlstate", None) else exc
        if getattr(native, "sqlstate", None) and getattr(native, "message", None):
            fields = [("", native.message), ("DETAIL", getattr(native, "detail", None)),
                      ("HINT", getattr(native, "hint", None)), ("CONTEXT", getattr(native, "context", None))]
    if not fields:
        fields = [("", str(exc))]
    parts = []
    for label, value in fields:
        if not value:
            continue
        if label == "CONTEXT":
            value = value.strip().splitlines()[0]
        lines = [line.strip() for line in str(value).splitlines()
                 if line.strip() and not line.strip().startswith("Is the server running")]
        text = " ".join(lines).replace("FATAL:", "")
        parts.append(f"{label}: {text}" if label else text)
    line = "; ".join(" ".join(p.split()) for p in parts)
    return target.scrub(line) if target is not None else scrub(line)


def sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of a psycopg, psycopg2 or asyncpg error (SQLAlchemy's wrapper unwrapped)."""
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def server_version(conn: psycopg.Connection) -> str:
    return str(conn.execute("SHOW server_version").fetchone()[0])
