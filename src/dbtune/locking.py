"""One apply or rollback at a time per database.

A session-level advisory lock, taken and held by a connection of its own in
autocommit mode.  It must never be taken inside a transaction: CREATE INDEX
CONCURRENTLY waits for every transaction with an older snapshot, so a lock
session sitting in an open transaction would make our own builds wait for it
forever.  An idle autocommit session has no snapshot, and the lock goes away
by itself if dbtune dies (the server ends the session when the socket closes).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from psycopg import sql

from . import db
from .errors import LockBusy
from .output import Output
from .settings import Target


@dataclass(frozen=True)
class Backoff:
    """How long to pause before retrying a statement that hit lock_timeout.

    Exponential with "full jitter": several waiting runs do not retry in step
    and queue in front of the application together.
    """

    retries: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0.1, min(self.cap_s, self.base_s * 2 ** attempt))


def set_lock_timeout(seconds: float) -> sql.Composed:
    return sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{int(seconds * 1000)}ms"))


# pg_advisory_lock takes a bigint; this one spells "dbtune" in ASCII.  Other
# verbs that must not overlap with themselves (a cron-driven refresh, say) pass
# a key of their own.
LOCK_KEY = 0x646274756E65

_HOLDER = """
SELECT a.pid, coalesce(a.application_name, ''), a.backend_start, coalesce(a.client_addr::text, 'local')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database
                                                               WHERE datname = current_database())
  AND l.classid = (%(key)s >> 32)::oid AND l.objid = (%(key)s & 4294967295)::oid AND l.objsubid = 1
"""


@contextlib.contextmanager
def run_lock(target: Target, *, wait: bool = False, out: Output | None = None, poll_s: float = 1.0,
             key: int = LOCK_KEY, what: str = "migration lock") -> Iterator[int]:
    """Hold one of the database's dbtune locks; yields the backend pid of the holding session."""
    conn = db.connect(target, purpose="lock")
    try:
        announced = False
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
            holder = conn.execute(_HOLDER, {"key": key}).fetchone()
            who = (f"pid {holder[0]} ({holder[1] or 'dbtune'}, from {holder[3]}, since "
                   f"{holder[2]:%Y-%m-%d %H:%M:%S})" if holder else "another session")
            if not wait:
                raise LockBusy(f"another dbtune run holds this database's {what}: {who}. "
                               "Try again when it finishes, or pass --wait", holder_pid=holder[0] if holder else None)
            if not announced and out is not None:
                out.info(f"waiting for another dbtune run to finish: {who}")
                announced = True
            time.sleep(poll_s)
        yield conn.info.backend_pid
    finally:
        conn.close()  # closing the session releases the lock
