"""The engine's own connections, kept open from one revision's builds to the next within a run.

A migration run hands the engine one revision's statements at a time, and each
hand-over used to open a control session, a monitor session and a build session
and close them again: three logins (about 10 ms each with SCRAM) per revision,
which a chain of many small CONCURRENTLY revisions pays over and over.  With a
``Sessions`` in its OnlineOptions, the engine takes each one back from here and
returns it when the revision's builds are done; the run closes them at its end.
A connection comes back only idle (autocommit, no transaction, not broken), and
only to the same target (the same database and the same session settings, such
as the migration connection's search_path): anything else is closed and a new
one opened, exactly as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
from psycopg.pq import TransactionStatus

from ..core.settings import Target


def _idle(conn: psycopg.Connection) -> bool:
    return not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE


class Sessions:
    """Idle connections by purpose ("control", "monitor", "build") and target."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, Target], list[psycopg.Connection]] = {}
        self._mutex = threading.Lock()

    def take(self, purpose: str, target: Target, connect: Callable[[], psycopg.Connection]) -> psycopg.Connection:
        with self._mutex:
            kept = self._idle.get((purpose, target), [])
            while kept:
                conn = kept.pop()
                if _idle(conn):
                    return conn
                conn.close()
        return connect()

    def give(self, purpose: str, target: Target, conn: psycopg.Connection) -> None:
        if not _idle(conn):
            conn.close()
            return
        with self._mutex:
            self._idle.setdefault((purpose, target), []).append(conn)

    def close(self) -> None:
        with self._mutex:
            kept, self._idle = self._idle, {}
        for conns in kept.values():
            for conn in conns:
                conn.close()


def take(sessions: Sessions | None, purpose: str, target: Target,
         connect: Callable[[], psycopg.Connection]) -> psycopg.Connection:
    """A kept connection, or a new one (no Sessions: always a new one)."""
    return sessions.take(purpose, target, connect) if sessions is not None else connect()


def give(sessions: Sessions | None, purpose: str, target: Target, conn: psycopg.Connection) -> None:
    """Keep the connection for the run's next revision (no Sessions: close it)."""
    if sessions is not None:
        sessions.give(purpose, target, conn)
    else:
        conn.close()
