"""Connections dbtune opens itself, with errors a DBA can read.

Every connection says who it is in ``application_name`` so a DBA watching
pg_stat_activity sees dbtune's sessions for what they are.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .errors import ConnectionFailed
from .settings import Target

APPLICATION = "dbtune"


def connect(target: Target, *, purpose: str = "", autocommit: bool = True, **options: Any) -> psycopg.Connection:
    """Open a psycopg connection to ``target``; ConnectionFailed on any failure to log in."""
    kwargs = target.connect_kwargs()
    kwargs.setdefault("connect_timeout", 10)
    kwargs["application_name"] = f"{APPLICATION} {purpose}".strip()
    kwargs.update(options)
    try:
        conn = psycopg.connect(autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        # libpq reports login failures without an SQLSTATE, so the text is all there
        # is; it never contains the password, but scrub it anyway.
        raise ConnectionFailed(f"cannot connect to {target.masked}: {describe(exc, target)}") from None
    if conn.info.server_version >= 140000:
        # Our lock session and our connections between builds sit idle on purpose;
        # a server-wide idle_session_timeout (PostgreSQL 14+) must not end them.
        conn.execute("SET idle_session_timeout = 0")
        if not autocommit:
            conn.commit()
    return conn


def describe(exc: BaseException, target: Target | None = None) -> str:
    """One line for a psycopg error: the server's primary message, password scrubbed."""
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag is not None and diag.message_primary else None) or str(exc)
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith("Is the server running")]
    line = " ".join(lines).replace("FATAL:", "")
    if target is not None:
        line = target.scrub(line)
    return " ".join(line.split())


def server_version(conn: psycopg.Connection) -> str:
    return str(conn.execute("SHOW server_version").fetchone()[0])
