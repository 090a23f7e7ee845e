"""The progress monitor: watches our builds from a second connection, names who they wait for, enforces max-wait.

It runs in a thread of its own, so that a build blocked on another session is
seen (and, past ``max_wait``, cancelled) while the build's own connection sits
in its statement.  It never takes a build down: a failed poll is a warning.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg

from ..core import db
from ..core.errors import Blocker, DbtuneError
from ..core.output import bar
from ..core.settings import Target
from ..sqltext.statements import IndexStatement
from . import sessions
from .catalog import note_hidden, read_blockers
from .options import OnlineOptions

_WATCH = """
SELECT a.pid, a.query_start, pg_blocking_pids(a.pid), p.phase, p.blocks_total, p.blocks_done,
       p.tuples_total, p.tuples_done, p.current_locker_pid
FROM pg_stat_activity a
LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid
WHERE a.pid = ANY(%s)
"""


@dataclass
class Watch:
    """One statement under watch: since when it waits, for whom, and whom it was cancelled for."""

    statement: IndexStatement
    started: float
    waiting_since: float | None = None
    blockers: tuple[int, ...] = ()
    cancelled_for: list[Blocker] | None = None
    waited_s: float = 0.0


class Monitor:
    """Watches our builds from a second connection: progress, blockers, max-wait."""

    def __init__(self, target: Target, options: OnlineOptions, own_pids: set[int]) -> None:
        self.target = target
        self.options = options
        self.own_pids = own_pids
        self._watches: dict[int, Watch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lock_lost = False
        self._conn = sessions.take(options.sessions, "monitor", target, lambda: db.connect(target, purpose="monitor"))
        # Each poll holds a snapshot for a moment, which a concurrent build in its waiting
        # phases waits out: that is our own session, never a blocker to name.
        self.own_pids.add(db.pid(self._conn))
        self._thread = threading.Thread(target=self._loop, name="dbtune-monitor", daemon=True)
        self._thread.start()

    def watch(self, pid: int, statement: IndexStatement) -> None:
        with self._lock:
            self._watches[pid] = Watch(statement, time.monotonic())

    def unwatch(self, pid: int) -> Watch | None:
        with self._lock:
            return self._watches.pop(pid, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._thread.is_alive():  # a poll still running on it: never hand that connection on
            self._conn.close()
        else:
            sessions.give(self.options.sessions, "monitor", self.target, self._conn)

    def _loop(self) -> None:
        while not self._stop.wait(self.options.poll_interval):
            with self._lock:
                pids = list(self._watches)
            if not pids:
                continue
            try:
                self._poll(pids)
            except psycopg.Error as exc:  # the monitor must never take a build down
                self.options.out.warn(f"progress monitor: {db.describe(exc, self.target)}")
                try:
                    self._conn.close()
                    self._conn = db.connect(self.target, purpose="monitor")
                    self.own_pids.add(db.pid(self._conn))
                except DbtuneError:
                    self.options.out.warn("progress monitor stopped: no more progress or blocker reports, "
                                          "and --max-wait is no longer enforced for the builds running now")
                    return

    def _poll(self, pids: list[int]) -> None:
        self._check_lock()
        now = time.monotonic()
        rows = self._conn.execute(_WATCH, [pids]).fetchall()
        for pid, query_start, blocking, phase, btotal, bdone, ttotal, tdone, locker in rows:
            with self._lock:
                watch = self._watches.get(pid)
            if watch is None:
                continue
            others = {p for p in (blocking or []) if p not in self.own_pids}
            if locker and locker not in self.own_pids and phase and phase.startswith("waiting"):
                others.add(locker)
            self._report_progress(watch, phase, btotal, bdone, ttotal, tdone, now)
            if not others:
                watch.waiting_since = None
                watch.blockers = ()
                continue
            if watch.waiting_since is None:
                watch.waiting_since = now
            key = tuple(sorted(others))
            if key != watch.blockers:
                watch.blockers = key
                named = read_blockers(self._conn, list(key))
                for blocker in named:
                    self.options.out.warn(f"{watch.statement.label} is waiting for {blocker.describe()}")
                note_hidden(self.options, named)
            waited = now - watch.waiting_since
            max_wait = self.options.max_wait
            if max_wait is not None and waited >= max_wait and watch.cancelled_for is None:
                blockers = read_blockers(self._conn, list(key))
                with self._lock:
                    if self._watches.get(pid) is not watch:
                        continue  # the statement finished meanwhile
                    watch.cancelled_for, watch.waited_s = blockers, waited
                # Cancel our own statement only, and only while it is the statement we
                # watched: the same backend may have moved on to the next build.
                cancelled = self._conn.execute(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                    "WHERE pid = %s AND state = 'active' AND query_start = %s", [pid, query_start]).fetchone()
                if not cancelled:
                    watch.cancelled_for = None

    def _check_lock(self) -> None:
        """While builds run: re-take a lost lock at once; if another run has it, let the
        running builds finish (cutting them short helps nobody) and stop before the next."""
        if self.options.lock is None or self._lock_lost:
            return
        try:
            self.options.lock.check()
        except DbtuneError as exc:
            self._lock_lost = True
            self.options.out.warn(f"{exc}; the builds running now will finish, nothing more starts")

    def _report_progress(self, watch: Watch, phase: str | None, btotal: int | None, bdone: int | None,
                         ttotal: int | None, tdone: int | None, now: float) -> None:
        elapsed = now - watch.started
        if not phase:
            return
        if btotal:
            done, total, unit = bdone or 0, btotal, "blocks"
        elif ttotal:
            done, total, unit = tdone or 0, ttotal, "tuples"
        else:
            done, total, unit = 0, 0, ""
        text = f"{watch.statement.label}: {phase}"
        if total:
            pct = 100.0 * done / total
            text += f" {bar(done, total)} {pct:5.1f}% {unit} {done}/{total}"
        text += f" elapsed {elapsed:.0f}s"
        if total and done and "building" in phase:
            eta = elapsed * (total - done) / done
            text += f" ETA {eta:.0f}s"
        self.options.out.progress(watch.statement.label, text)
