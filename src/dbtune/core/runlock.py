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
import select
import threading
import time
from collections.abc import Iterator

import psycopg

from . import db
from .errors import LockBusy, LockLost
from .output import Output
from .settings import Target

# pg_advisory_lock takes a bigint; this one spells "dbtune" in ASCII.  Other
# verbs that must not overlap with themselves (a cron-driven refresh, say) pass
# a key of their own.
LOCK_KEY = 0x646274756E65

# pg_locks and pg_stat_activity's pid and role are visible to every role; another role's
# backend_start and client address are not (without pg_read_all_stats): then NULL.
_HOLDER = """
SELECT a.pid, coalesce(a.application_name, ''), a.backend_start, coalesce(a.client_addr::text, 'local'),
       coalesce(a.usename, '?')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database
                                                               WHERE datname = current_database())
  AND l.classid = (%(key)s >> 32)::oid AND l.objid = (%(key)s & 4294967295)::oid AND l.objsubid = 1
"""


class RunLock:
    """A held dbtune lock, and the session that holds it.

    The session can be ended under us (an idle-session killer, a pooler, a DBA's
    pg_terminate_backend), and with it the lock.  ``check()`` runs before every
    statement of a run and while a build is polled: it notices a lost session
    without a round trip, re-takes the lock at once when it is free, and otherwise
    raises LockLost, so the run stops at a safe point instead of going on unguarded
    while another run starts.
    """

    def __init__(self, target: Target, key: int, what: str, out: Output | None) -> None:
        self.target, self.key, self.what, self.out = target, key, what, out
        self._mutex = threading.Lock()
        self.conn: psycopg.Connection | None = None
        self.held_by = 0  # the backend pid of the session holding it
        self.pids: set[int] = set()  # every session that has held it for this run

    @property
    def pid(self) -> int:
        assert self.conn is not None
        return db.pid(self.conn)

    def acquire(self, wait: bool, poll_s: float, session: psycopg.Connection | None = None) -> None:
        """Take the lock on a new session, or on ``session`` (an idle autocommit session of
        the caller's, named for what it does, which the lock then owns and closes): one
        connection fewer per run."""
        conn = session or db.connect(self.target, purpose="lock")
        try:
            announced = False
            while not _try(conn, self.key):
                who, holder = _holder(conn, self.key)
                if not wait:
                    raise LockBusy(f"another dbtune run holds this database's {self.what}: {who}. "
                                   "Try again when it finishes, or pass --wait", holder_pid=holder)
                if not announced and self.out is not None:
                    self.out.info(f"waiting for another dbtune run to finish: {who}")
                    announced = True
                time.sleep(poll_s)
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        self.held_by = db.pid(conn)
        self.pids.add(self.held_by)

    def alive(self) -> bool:
        """Is the holding session still there?

        The session sits idle, so the server has nothing to send it: a readable
        socket means it was ended (its FATAL and the close are waiting) or sent
        something unasked, and only then does a round trip confirm it.  So the
        check before every statement costs one poll of the socket, not a query.
        """
        conn = self.conn
        if conn is None or conn.closed or conn.broken:
            return False
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
            if readable:
                conn.execute("SELECT 1")
        except (psycopg.Error, OSError, ValueError):
            return False
        return True

    def check(self) -> None:
        with self._mutex:
            if self.alive():
                return
            lost = self.held_by
            if self.conn is not None:
                self.conn.close()
                self.conn = None
            conn = db.connect(self.target, purpose="lock")
            if _try(conn, self.key):
                self.conn = conn
                self.held_by = db.pid(conn)
                self.pids.add(self.held_by)
                if self.out is not None:
                    self.out.warn(f"the session holding this run's {self.what} (pid {lost}) was ended by "
                                  f"someone else; took the lock again (pid {db.pid(conn)})")
                return
            who, holder = _holder(conn, self.key)
            conn.close()
            raise LockLost(f"the session holding this run's {self.what} (pid {lost}) was ended by someone else, "
                           f"and {who} holds the lock now: stopped here, before changing anything more",
                           holder_pid=holder)

    @contextlib.contextmanager
    def borrowed(self) -> Iterator[psycopg.Connection]:
        """The holding session for a quick autocommit read (never a transaction: it must hold
        no snapshot, or our own concurrent builds would wait for it); a new session when the
        holding one was lost, so that a run stopped by that loss can still say where it is."""
        with self._mutex:
            if self.alive():
                assert self.conn is not None
                yield self.conn
                return
        with db.connect(self.target, purpose="status") as conn:
            yield conn

    def release(self) -> None:
        with self._mutex:
            if self.conn is not None:
                self.conn.close()  # closing the session releases the lock
                self.conn = None


def _try(conn: psycopg.Connection, key: int) -> bool:
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0])  # type: ignore[index]


def _holder(conn: psycopg.Connection, key: int) -> tuple[str, int | None]:
    holder = conn.execute(_HOLDER, {"key": key}).fetchone()
    if not holder:
        return "another session", None
    pid, application, started, address, role = holder
    if started is None:  # another role's session: its details are hidden from this one
        return f"pid {pid} (role {role}, {application or 'dbtune'})", pid
    return f"pid {pid} (role {role}, {application or 'dbtune'}, from {address}, since {started:%Y-%m-%d %H:%M:%S})", pid


@contextlib.contextmanager
def run_lock(target: Target, *, wait: bool = False, out: Output | None = None, poll_s: float = 1.0,
             key: int = LOCK_KEY, what: str = "migration lock",
             session: psycopg.Connection | None = None) -> Iterator[RunLock]:
    """Hold one of the database's dbtune locks for the length of the block."""
    lock = RunLock(target, key, what, out)
    lock.acquire(wait, poll_s, session)
    try:
        yield lock
    finally:
        lock.release()
