"""The online index engine: build and drop indexes without blocking the application.

`CREATE INDEX CONCURRENTLY` is safe only when it is run carefully:

* it cannot run inside a transaction, so each build gets its own autocommit
  connection (never the migration's transaction);
* a failed or cancelled build leaves an INVALID index behind, which
  `IF NOT EXISTS` then silently accepts and every write keeps maintaining, so
  before a build we drop an INVALID index of the same name (and the
  ``_ccnew``/``_ccold`` leftovers of a failed REINDEX CONCURRENTLY), and after
  it we confirm ``pg_index.indisvalid``;
* it waits for every transaction that holds a conflicting lock or an older
  snapshot, so a monitor on a second connection names who we are waiting for,
  and past ``max_wait`` cancels our own build and cleans up;
* two builds on one table deadlock each other, so at most one build runs per
  table, while ``jobs`` builds on different tables run at once;
* parallel maintenance workers take CPU from the application on a small
  server, so they are off unless asked for.

The engine works on IndexStatement objects and knows nothing of Alembic;
dbtune.ops calls it from migrations.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ..core import db
from ..core.errors import Blocker, BuildBlocked, DbtuneError, MigrationFailed
from ..core.output import Output, bar
from ..core.runlock import Backoff, set_lock_timeout
from ..core.settings import Target
from ..sqltext.statements import IndexStatement, retarget


@dataclass
class OnlineOptions:
    jobs: int = 1
    # Longest a build may wait on other sessions before we cancel it (None: forever).
    max_wait: float | None = None
    # Parallel maintenance workers per build (PostgreSQL's max_parallel_maintenance_workers).
    # 0 by default: on a small server the workers compete with the application for CPU.
    maintenance_workers: int = 0
    poll_interval: float = 0.5
    # Warn about transactions older than this before building (they stall the build).
    old_transaction_s: float = 30.0
    # Bound on any strong lock dbtune waits for (a transactional migration step,
    # ANALYZE, a partitioned index's ON ONLY/ATTACH/DROP), and the retries after it.
    lock_timeout_s: float = 2.0
    # statement_timeout for the run (--statement-timeout): None leaves the migration's own statements
    # the server's, and runs builds (and what is treated like one) with none, watched by max_wait.
    statement_timeout_s: float | None = None
    backoff: Backoff = field(default_factory=Backoff)
    # When a list, the tables that got new indexes are queued here (schema, table, and
    # why it must be analyzed: an expression index; "" to decide by its statistics) for
    # the caller to analyze once at the end of a whole run (`dbtune apply` does).
    analyze_queue: list[tuple[str, str, str]] | None = None
    out: Output = field(default_factory=Output)
    # The run's lock (a locking.RunLock), checked before every build and while builds
    # are polled; None under plain `alembic upgrade`.
    lock: Any = None
    # Sessions already warned about as stalling builds: once per run, not per statement.
    warned: set[int] = field(default_factory=set)
    # Notes already given once this run (what a missing privilege hides).
    notes: set[str] = field(default_factory=set)


@dataclass
class BuildResult:
    statement: IndexStatement
    outcome: str  # "built", "present", "dropped", "absent", "reindexed"
    seconds: float = 0.0
    repaired: list[str] = field(default_factory=list)


@dataclass
class IndexInfo:
    oid: int
    schema: str
    name: str
    valid: bool
    table_schema: str
    table: str
    backs_constraint: str | None
    partitioned: bool


_INDEX_INFO = """
SELECT c.oid, n.nspname, c.relname, i.indisvalid, tn.nspname, t.relname,
       (SELECT conname FROM pg_constraint WHERE conindid = c.oid LIMIT 1), c.relkind = 'I'
FROM pg_class c
JOIN pg_index i ON i.indexrelid = c.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE c.oid = to_regclass(%s)
"""

_INVALID_ON_TABLE = """
SELECT c.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass(%s) AND NOT i.indisvalid
"""

_WATCH = """
SELECT a.pid, a.query_start, pg_blocking_pids(a.pid), p.phase, p.blocks_total, p.blocks_done,
       p.tuples_total, p.tuples_done, p.current_locker_pid
FROM pg_stat_activity a
LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid
WHERE a.pid = ANY(%s)
"""

# The partitions under a table, parents before children (PostgreSQL 12+).
_PARTITION_TREE = """
SELECT n.nspname, c.relname, pn.nspname, p.relname, t.isleaf, t.level
FROM pg_partition_tree(%s::regclass) t
JOIN pg_class c ON c.oid = t.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class p ON p.oid = t.parentrelid
LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
ORDER BY t.level, c.relname
"""

# Sessions building an index on a table (CREATE INDEX and REINDEX, concurrent or not), from
# what every role can see: pg_stat_progress_create_index shows another role's build only as a
# pid (its table, command and phase need pg_read_all_stats), but pg_locks shows the lock a build
# holds on its table for its whole length (SHARE UPDATE EXCLUSIVE for a concurrent build, held at
# session level between its transactions; SHARE for a plain one).  BUILDING_ON is the one
# condition, on a table oid; it is used here and by maintain.
BUILDING_ON = """
SELECT l.pid FROM pg_locks l JOIN pg_stat_progress_create_index p ON p.pid = l.pid
WHERE l.locktype = 'relation' AND l.relation = {table} AND l.granted
  AND l.mode IN ('ShareUpdateExclusiveLock', 'ShareLock')
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.pid <> pg_backend_pid()
"""

_OTHER_BUILDS = f"""
SELECT p.pid, coalesce(p.command, 'an index build'), coalesce(p.phase, 'its phase hidden'),
       coalesce(a.usename, '?')
FROM pg_stat_progress_create_index p LEFT JOIN pg_stat_activity a ON a.pid = p.pid
WHERE p.pid IN ({BUILDING_ON.format(table="to_regclass(%s)")}) AND NOT p.pid = ANY(%s)
"""

# Whether this role may see a session's state, transaction age and query: its own role's (and
# those it inherits), or everyone's with pg_read_all_stats (PostgreSQL's HAS_PGSTAT_PERMISSIONS).
# Without it pg_stat_activity shows only the pid, the role and the database.
_HIDDEN = ("NOT (coalesce(pg_has_role(usesysid, 'USAGE'), false) "
           "OR pg_has_role('pg_read_all_stats', 'USAGE'))")

_SESSION_COLUMNS = f"""pid, coalesce(application_name, ''), coalesce(state, ''),
       extract(epoch FROM now() - xact_start)::float8, coalesce(query, ''), coalesce(usename, ''), {_HIDDEN}"""

_SESSIONS = f"""
SELECT {_SESSION_COLUMNS}
FROM pg_stat_activity
WHERE pid = ANY(%s)
"""

# Sessions that stall a concurrent build: idle in transaction, or holding a snapshot
# for long (CREATE INDEX CONCURRENTLY waits for every older snapshot in the database).
# Another role's session whose age this role cannot see counts when it has a transaction
# open (its virtualxid lock, which pg_locks shows to everyone).
_STALLERS = f"""
SELECT {_SESSION_COLUMNS}
FROM pg_stat_activity a
WHERE datname = current_database()
  AND pid <> pg_backend_pid() AND NOT pid = ANY(%s)
  AND ((xact_start IS NOT NULL
        AND (state LIKE 'idle in transaction%%' OR now() - xact_start > make_interval(secs => %s)))
       OR ({_HIDDEN} AND usesysid IS NOT NULL  -- background workers (autovacuum) hold no snapshot a build waits for
           AND EXISTS (SELECT 1 FROM pg_locks l
                       WHERE l.pid = a.pid AND l.locktype = 'virtualxid' AND l.granted)))
ORDER BY xact_start
"""

PRIVILEGE_HINT = ("this role cannot see other roles' sessions in full (their state, transaction age and query): "
                  "grant it pg_read_all_stats to see them; blockers are still found and named by pid and role")


def _ident(schema: str | None, name: str) -> sql.Composable:
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)


def index_info(conn: psycopg.Connection, schema: str | None, name: str) -> IndexInfo | None:
    regclass = _ident(schema, name).as_string(conn)
    row = conn.execute(_INDEX_INFO, [regclass]).fetchone()
    return IndexInfo(*row) if row else None


def _blockers(conn: psycopg.Connection, pids: list[int]) -> list[Blocker]:
    return [_blocker(r) for r in conn.execute(_SESSIONS, [pids]).fetchall()]


def _blocker(row: tuple[Any, ...]) -> Blocker:
    return Blocker(pid=row[0], application=row[1], state=row[2], xact_age_s=row[3], query=row[4], role=row[5],
                   hidden=bool(row[6]))


def note_hidden(options: OnlineOptions, blockers: list[Blocker]) -> None:
    """Say once per run what a missing privilege hides (it costs detail, never a decision)."""
    if any(b.hidden for b in blockers) and PRIVILEGE_HINT not in options.notes:
        options.notes.add(PRIVILEGE_HINT)
        options.out.warn(PRIVILEGE_HINT)


@dataclass
class _Watch:
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
        self._watches: dict[int, _Watch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lock_lost = False
        self._conn = db.connect(target, purpose="monitor")
        self._thread = threading.Thread(target=self._loop, name="dbtune-monitor", daemon=True)
        self._thread.start()

    def watch(self, pid: int, statement: IndexStatement) -> None:
        with self._lock:
            self._watches[pid] = _Watch(statement, time.monotonic())

    def unwatch(self, pid: int) -> _Watch | None:
        with self._lock:
            return self._watches.pop(pid, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._conn.close()

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
                named = _blockers(self._conn, list(key))
                for blocker in named:
                    self.options.out.warn(f"{watch.statement.label} is waiting for {blocker.describe()}")
                note_hidden(self.options, named)
            waited = now - watch.waiting_since
            max_wait = self.options.max_wait
            if max_wait is not None and waited >= max_wait and watch.cancelled_for is None:
                blockers = _blockers(self._conn, list(key))
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

    def _report_progress(self, watch: _Watch, phase: str | None, btotal: int | None, bdone: int | None,
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


class Engine:
    """Runs index statements online; one instance per migration step."""

    def __init__(self, target: Target, options: OnlineOptions | None = None,
                 own_pids: set[int] | None = None) -> None:
        self.target = target
        self.options = options or OnlineOptions()
        self.out = self.options.out
        self.own_pids: set[int] = set(own_pids or ())

    # -- public -------------------------------------------------------------

    def run(self, statements: list[IndexStatement]) -> list[BuildResult]:
        """Run the statements, ``jobs`` at a time but never two on one table."""
        if not statements:
            return []
        with db.connect(self.target, purpose="control") as control:
            self.own_pids.add(db.pid(control))
            self._preflight(control)
            tables = {st: self._table_of(control, st) for st in statements}
        monitor = Monitor(self.target, self.options, self.own_pids)
        try:
            return self._schedule(statements, tables, monitor)
        finally:
            monitor.close()

    # -- scheduling ---------------------------------------------------------

    def _schedule(self, statements: list[IndexStatement], tables: dict[IndexStatement, tuple[str, str] | None],
                  monitor: Monitor) -> list[BuildResult]:
        pending = list(statements)
        busy: set[tuple[str, str]] = set()
        live: set[int] = set()  # backends of the builds running now
        results: dict[IndexStatement, BuildResult] = {}
        errors: list[BaseException] = []
        cond = threading.Condition()

        def key(st: IndexStatement) -> tuple[str, str]:
            return tables[st] or ("", st.label)

        sizes = self._sizes(tables) if self.options.jobs > 1 else {}

        def worker() -> None:
            conn: psycopg.Connection | None = None  # one build connection per worker, reused
            try:
                while True:
                    with cond:
                        while True:
                            if errors or not pending:
                                return
                            # Never two builds on one table (they deadlock each other); among the
                            # free ones, the table with the most work left first (by relation
                            # size), so that no long table's builds trail alone at the end.
                            pick = next_build(pending, busy, key, sizes)
                            if pick is not None:
                                pending.remove(pick)
                                busy.add(key(pick))
                                break
                            cond.wait()
                    try:
                        if conn is None or conn.closed:
                            conn = self._connect_build()
                        with cond:
                            live.add(db.pid(conn))
                        result = self._run_one(pick, monitor, conn)
                        with cond:
                            results[pick] = result
                    except psycopg.Error as exc:  # a catalog lookup or the connection itself failed
                        with cond:
                            errors.append(MigrationFailed(
                                f"{pick.label}: {db.describe(exc, self.target)}", revision=None,
                                failed_revision=None, statement=pick.sql, sqlstate=exc.sqlstate))
                    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others stop
                        with cond:
                            errors.append(exc)
                    finally:
                        with cond:
                            if conn is not None and not conn.closed:
                                live.discard(db.pid(conn))
                            busy.discard(key(pick))
                            cond.notify_all()
            finally:
                if conn is not None:
                    conn.close()

        jobs = max(1, min(self.options.jobs, len(statements)))
        if jobs == 1:
            worker()
        else:
            threads = [threading.Thread(target=worker, name=f"dbtune-build-{i}", daemon=True)
                       for i in range(jobs)]
            for thread in threads:
                thread.start()
            try:
                for thread in threads:
                    thread.join()
            except BaseException as exc:  # Ctrl-C: stop taking work, cancel the running builds
                with cond:
                    errors.append(exc)
                    running = list(live)
                for pid in running:
                    _cancel(self.target, pid)
                for thread in threads:
                    thread.join(timeout=60)
                raise
        if errors:
            raise errors[0]
        # ANALYZE once the builds are done: it holds a snapshot, which a concurrent
        # build on another table would otherwise have to wait for.
        built = [(*t, f"its new index {st.label} is on an expression" if has_expression(st) else "")
                 for st in statements
                 if results[st].outcome in ("built", "reindexed") and (t := tables[st])]
        if self.options.analyze_queue is not None:
            self.options.analyze_queue.extend(built)
        else:
            analyze_tables(self.target, built, self.options)
        return [results[st] for st in statements]

    def _sizes(self, tables: dict[IndexStatement, tuple[str, str] | None]) -> dict[tuple[str, str], int]:
        """Each table's size in bytes (its heap: what a build reads)."""
        wanted = sorted({t for t in tables.values() if t})
        if not wanted:
            return {}
        with db.connect(self.target, purpose="sizes") as conn:
            return {t: conn.execute("SELECT pg_relation_size(%s::regclass)",
                                    [sql.Identifier(*t).as_string(conn)]).fetchone()[0]  # type: ignore[index]
                    for t in wanted}

    # -- one statement ------------------------------------------------------

    def _connect_build(self) -> psycopg.Connection:
        """A build connection: no timeouts (the monitor bounds waits), our worker count."""
        conn = db.connect(self.target, purpose="build")
        try:
            self.own_pids.add(db.pid(conn))
            # A statement_timeout the role or database carries would cancel a long build halfway.
            conn.execute(sql.SQL("SET lock_timeout = 0; SET statement_timeout = {}; "
                                 "SET max_parallel_maintenance_workers = {}").format(
                sql.Literal(f"{build_statement_timeout_ms(self.options)}ms"),
                sql.Literal(self.options.maintenance_workers)))
            if conn.info.server_version >= 140000:
                # If dbtune dies mid-build, the server notices the closed connection
                # within a second and aborts the build, instead of finishing an index
                # nobody will confirm; the next apply then repairs the INVALID leftover.
                # Platforms that cannot detect a closed socket refuse the setting.
                try:
                    conn.execute("SET client_connection_check_interval = '1s'")
                except psycopg.errors.InvalidParameterValue:
                    pass
        except BaseException:
            conn.close()
            raise
        return conn

    def _run_one(self, st: IndexStatement, monitor: Monitor, conn: psycopg.Connection) -> BuildResult:
        if self.options.lock is not None:
            self.options.lock.check()  # never start a build without the run's lock
        started = time.monotonic()
        # Name the statement in pg_stat_activity, for a DBA watching the server.
        conn.execute(sql.SQL("SET application_name = {}").format(
            sql.Literal(f"{db.APPLICATION} {st.verb} {st.name}"[:63])))
        if st.verb == "create":
            result = self._create(conn, st, monitor)
        elif st.verb == "drop":
            result = self._drop(conn, st, monitor)
        else:
            result = self._reindex(conn, st, monitor)
        result.seconds = time.monotonic() - started
        verb = {"built": "built", "present": "already valid, kept", "dropped": "dropped",
                "absent": "not there, nothing to drop", "reindexed": "rebuilt"}[result.outcome]
        repaired = f" (repaired: dropped INVALID {', '.join(result.repaired)})" if result.repaired else ""
        self.out.progress(st.label, f"{st.label}: {verb} in {result.seconds:.1f}s{repaired}", final=True)
        if not self.out.show_progress:
            self.out.info(f"{st.label}: {verb} in {result.seconds:.1f}s{repaired}")
        return result

    def _create(self, conn: psycopg.Connection, st: IndexStatement, monitor: Monitor) -> BuildResult:
        table = self._table_of(conn, st)
        if table is None:
            raise DbtuneError(f"{st.label}: table {st.table} does not exist", statement=st.sql)
        if self._is_partitioned(conn, table):
            return self._create_partitioned(conn, st, table, monitor)
        repaired = self._drop_leftovers(conn, table, st.name, monitor, st, include_self=True)
        existing = index_info(conn, table[0], st.name)
        if existing is not None and existing.valid:
            self._same_index(conn, st, table, existing)
            return BuildResult(st, "present", repaired=repaired)
        if not self._execute(conn, st, monitor, table):
            return BuildResult(st, "built", repaired=repaired)
        after = index_info(conn, table[0], st.name)
        if after is None or not after.valid:
            left = self._cleanup_after_failure(conn, st, table, monitor)
            raise MigrationFailed(f"{st.label}: the build finished but the index is not valid"
                                  + _left_behind(left), revision=None, failed_revision=None, statement=st.sql)
        return BuildResult(st, "built", repaired=repaired)

    def _drop(self, conn: psycopg.Connection, st: IndexStatement, monitor: Monitor) -> BuildResult:
        existing = index_info(conn, st.schema, st.name)
        if existing is None:
            return BuildResult(st, "absent")
        if existing.backs_constraint:
            raise DbtuneError(f"refusing to drop {st.label}: it backs constraint {existing.backs_constraint} "
                              f"on {existing.table_schema}.{existing.table}", statement=st.sql)
        if existing.partitioned:
            # PostgreSQL cannot drop a partitioned index concurrently: a plain DROP, whose
            # brief ACCESS EXCLUSIVE locks wait at most lock_timeout, retried with backoff.
            self._locked(conn, sql.SQL("DROP INDEX IF EXISTS {}").format(
                _ident(existing.schema, existing.name)), st)
            return BuildResult(st, "dropped")
        self._execute(conn, st, monitor, (existing.table_schema, existing.table))
        return BuildResult(st, "dropped")

    def _reindex(self, conn: psycopg.Connection, st: IndexStatement, monitor: Monitor) -> BuildResult:
        existing = index_info(conn, st.schema, st.name)
        if existing is None:
            raise DbtuneError(f"{st.label}: no such index to rebuild", statement=st.sql)
        table = (existing.table_schema, existing.table)
        repaired = self._drop_leftovers(conn, table, st.name, monitor, st, include_self=False)
        self._execute(conn, st, monitor, table)
        return BuildResult(st, "reindexed", repaired=repaired)

    def _execute(self, conn: psycopg.Connection, st: IndexStatement, monitor: Monitor,
                 table: tuple[str, str]) -> bool:
        """Run the statement under the monitor; False when a late cancel found it already done."""
        pid = db.pid(conn)
        monitor.watch(pid, st)
        try:
            conn.execute(st.sql)  # type: ignore[arg-type] - the migration's own SQL
            return True
        except psycopg.errors.QueryCanceled:
            watch = monitor.unwatch(pid)
            if st.verb == "create" and (info := self._index_or_none(conn, table[0], st.name)) and info.valid:
                return False  # the cancel arrived after the index was marked valid: it is built
            left = self._after_failure(conn, st, table, monitor)
            if watch is None or watch.cancelled_for is None:
                raise MigrationFailed(f"{st.label}: the statement was cancelled by another session"
                                      + left, revision=None, failed_revision=None, statement=st.sql,
                                      sqlstate="57014") from None
            names = "; ".join(b.describe() for b in watch.cancelled_for) or "another session"
            raise BuildBlocked(
                f"{st.label}: gave up after waiting {watch.waited_s:.0f}s (--max-wait) for {names}{left}",
                index=st.label, blockers=watch.cancelled_for, waited_s=watch.waited_s) from None
        except psycopg.Error as exc:
            left = self._after_failure(conn, st, table, monitor)
            raise MigrationFailed(f"{st.label}: {db.describe(exc, self.target)}{left}", revision=None,
                                  failed_revision=None, statement=st.sql, sqlstate=exc.sqlstate) from None
        finally:
            monitor.unwatch(pid)

    def _index_or_none(self, conn: psycopg.Connection, schema: str | None, name: str) -> IndexInfo | None:
        try:
            return index_info(conn, schema, name)
        except psycopg.Error:
            return None

    def _after_failure(self, conn: psycopg.Connection, st: IndexStatement, table: tuple[str, str],
                       monitor: Monitor) -> str:
        """Clean up after a failed statement; the words to add to its error message."""
        if conn.closed or conn.broken:
            # The build's session is gone (terminated, or the network): clean up from a new one.
            try:
                conn = self._connect_build()
            except DbtuneError:
                return "; an INVALID index may be left behind: the next dbtune apply repairs it"
        try:
            if st.verb == "drop":
                info = index_info(conn, st.schema, st.name)
                if info is not None and not info.valid:
                    return (f"; {st.label} is now INVALID (queries no longer use it, writes still maintain it):"
                            " run the rollback again to finish dropping it")
                return ""
            return _left_behind(self._cleanup_after_failure(conn, st, table, monitor))
        except psycopg.Error as exc:
            return f"; cleaning up failed too ({db.describe(exc, self.target)}): the next dbtune apply repairs it"

    # -- repairs ------------------------------------------------------------

    def _leftovers(self, conn: psycopg.Connection, table: tuple[str, str], name: str,
                   include_self: bool) -> list[str]:
        """INVALID indexes on ``table`` left by failed builds of ``name``.

        A failed REINDEX CONCURRENTLY leaves ``<name>_ccnew`` or ``_ccold`` (with a
        number when taken); PostgreSQL shortens ``<name>`` so the whole fits in 63 bytes.
        """
        found = []
        for (candidate,) in conn.execute(_INVALID_ON_TABLE, [_ident(*table).as_string(conn)]):
            if include_self and candidate == name:
                found.append(candidate)
                continue
            m = re.match(r"^(.*)_cc(new|old)\d*$", candidate)
            if m and (m.group(1) == name or (name.startswith(m.group(1)) and len(candidate.encode()) >= 62)):
                found.append(candidate)
        return found

    def _drop_leftovers(self, conn: psycopg.Connection, table: tuple[str, str], name: str, monitor: Monitor,
                        st: IndexStatement, *, include_self: bool) -> list[str]:
        """Drop INVALID indexes named ``name`` (or its REINDEX CONCURRENTLY leftovers)."""
        schema = table[0]
        invalid = self._leftovers(conn, table, name, include_self)
        if invalid:
            self._wait_for_other_builds(conn, table, st)
            invalid = self._leftovers(conn, table, name, include_self)  # its build may have finished it
        for leftover in invalid:
            self.out.warn(f"{schema}.{leftover} is INVALID (left by a failed build); dropping it concurrently")
            drop = IndexStatement(sql=sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                _ident(schema, leftover)).as_string(conn), verb="drop", name=leftover, schema=schema,
                table=None, table_schema=None, concurrently=True, source=st.source)
            monitor.watch(db.pid(conn), drop)
            try:
                conn.execute(drop.sql)  # type: ignore[arg-type]
            except psycopg.errors.QueryCanceled:
                watch = monitor.unwatch(db.pid(conn))
                blockers = watch.cancelled_for if watch and watch.cancelled_for else []
                raise BuildBlocked(f"could not drop the INVALID leftover {schema}.{leftover}: waited "
                                   f"{watch.waited_s if watch else 0:.0f}s for "
                                   f"{'; '.join(b.describe() for b in blockers) or 'another session'}",
                                   index=st.label, blockers=blockers,
                                   waited_s=watch.waited_s if watch else 0.0) from None
            finally:
                monitor.unwatch(db.pid(conn))
        return invalid

    def _cleanup_after_failure(self, conn: psycopg.Connection, st: IndexStatement, table: tuple[str, str],
                               monitor: Monitor) -> list[str]:
        """After a failed build, drop what it left; return what could not be dropped."""
        left = []
        for name in self._leftovers(conn, table, st.name, include_self=st.verb == "create"):
            if not self._drop_quietly(conn, table[0], name, monitor, st):
                left.append(f"{table[0]}.{name}")
        return left

    def _drop_quietly(self, conn: psycopg.Connection, schema: str, name: str, monitor: Monitor,
                      st: IndexStatement) -> bool:
        """DROP INDEX CONCURRENTLY, bounded by max-wait (or 30 s); True when it is gone."""
        statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(_ident(schema, name))
        pid = db.pid(conn)
        bound = self.options.max_wait if self.options.max_wait is not None else 30.0
        monitor.watch(pid, st)
        timer = threading.Timer(bound + 5.0, lambda: _cancel(self.target, pid))
        timer.start()
        try:
            conn.execute(statement)
            return True
        except psycopg.errors.QueryCanceled:
            return False
        except psycopg.Error as exc:
            self.out.warn(f"could not drop {schema}.{name}: {db.describe(exc, self.target)}")
            return False
        finally:
            timer.cancel()
            monitor.unwatch(pid)

    def _same_index(self, conn: psycopg.Connection, st: IndexStatement, table: tuple[str, str],
                    existing: IndexInfo) -> None:
        """Keep an existing valid index of the requested name only if it is the requested index.

        The server says what each is: the requested definition is built on an empty
        temporary copy of the table (in a transaction that is rolled back, so nothing
        stays; LIKE takes only ACCESS SHARE on the table, bounded by lock_timeout) and
        both are compared as pg_get_indexdef prints them, past the names.
        """
        if (existing.table_schema, existing.table) != table:
            raise DbtuneError(f"{st.label}: an index of that name already exists on "
                              f"{existing.table_schema}.{existing.table}", statement=st.sql)
        have = conn.execute("SELECT pg_get_indexdef(%s)", [existing.oid]).fetchone()[0]  # type: ignore[index]
        try:
            with conn.transaction(force_rollback=True):
                conn.execute(set_lock_timeout(self.options.lock_timeout_s))
                conn.execute(sql.SQL("CREATE TEMPORARY TABLE dbtune_probe (LIKE {}) ON COMMIT DROP").format(
                    _ident(*table)))
                probe = retarget(st, "dbtune_probe_index", ("pg_temp", "dbtune_probe"), concurrently=False,
                                 only=False)
                conn.execute(probe.sql)  # type: ignore[arg-type]
                wanted = conn.execute("SELECT pg_get_indexdef('pg_temp.dbtune_probe_index'::regclass)").fetchone()[0]  # type: ignore[index]  # noqa: E501
        except psycopg.Error as exc:
            self.out.warn(f"{st.label} exists and is valid; could not compare it with the migration's definition "
                          f"({db.describe(exc, self.target)}), so it is kept as it is")
            return
        if _definition(have) == _definition(wanted):
            return
        asked = re.sub(r"(?i)^(CREATE (UNIQUE )?INDEX )dbtune_probe_index ON \S+", lambda m: m.group(1) + st.name
                       + f" ON {table[0]}.{table[1]}", wanted)
        words = f"{st.label} already exists with another definition: it is `{have}`, the migration asks for `{asked}`"
        if re.search(r"\bIF\s+NOT\s+EXISTS\b", st.sql, re.IGNORECASE):
            self.out.warn(f"{words}; kept, because the statement says IF NOT EXISTS")
            return
        raise DbtuneError(f"{words}: rename or drop the existing index, or change the migration", statement=st.sql)

    def _wait_for_other_builds(self, conn: psycopg.Connection, table: tuple[str, str], st: IndexStatement) -> None:
        """Never drop an INVALID index another session is still building: wait for its build first.

        An INVALID index is also what a build in progress looks like; a second run
        that dropped it would deadlock with (or wait on) the first.  Any build on the
        table counts, since DROP INDEX CONCURRENTLY would wait for it anyway.
        """
        started = time.monotonic()
        announced: set[int] = set()
        while True:
            rows = conn.execute(_OTHER_BUILDS, [_ident(*table).as_string(conn), list(self.own_pids)]).fetchall()
            if not rows:
                return
            waited = time.monotonic() - started
            blockers = _blockers(conn, [r[0] for r in rows])
            for pid, command, phase, role in rows:
                if pid not in announced:
                    announced.add(pid)
                    self.out.warn(f"{st.label}: pid {pid} (role {role}) is running {command} on "
                                  f"{table[0]}.{table[1]} ({phase}); waiting for it to finish before touching "
                                  "the INVALID index left there")
            if self.options.max_wait is not None and waited >= self.options.max_wait:
                raise BuildBlocked(f"{st.label}: gave up after waiting {waited:.0f}s (--max-wait) for "
                                   f"{'; '.join(b.describe() for b in blockers)}, which is still building on "
                                   f"{table[0]}.{table[1]}", index=st.label, blockers=blockers, waited_s=waited)
            if self.options.lock is not None:
                self.options.lock.check()
            time.sleep(self.options.poll_interval)

    # -- checks around builds -----------------------------------------------

    def _preflight(self, conn: psycopg.Connection) -> None:
        version = conn.info.server_version
        if 140000 <= version < 140004:
            self.out.warn("PostgreSQL 14.0 to 14.3 can build concurrent indexes that miss rows "
                          "(fixed in 14.4): upgrade, or REINDEX the indexes built on this server")
        rows = conn.execute(_STALLERS, [list(self.own_pids), self.options.old_transaction_s]).fetchall()
        stallers = [_blocker(r) for r in rows if r[0] not in self.options.warned]
        for blocker in stallers:
            self.options.warned.add(blocker.pid)
            if not blocker.hidden:
                self.out.warn(f"a concurrent build waits for every older transaction; this one may stall it: "
                              f"{blocker.describe()}")
        if hidden := [b for b in stallers if b.hidden]:
            self.out.warn(f"a concurrent build waits for every older transaction; {len(hidden)} session(s) of "
                          "other roles have one open now, of an age this role cannot see: "
                          + "; ".join(b.describe() for b in hidden[:5]) + ("; ..." if len(hidden) > 5 else ""))
            note_hidden(self.options, hidden)

    def _table_of(self, conn: psycopg.Connection, st: IndexStatement) -> tuple[str, str] | None:
        if st.verb == "create":
            assert st.table is not None
            row = conn.execute(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = to_regclass(%s)", [_ident(st.table_schema, st.table).as_string(conn)]).fetchone()
        else:
            info = index_info(conn, st.schema, st.name)
            row = (info.table_schema, info.table) if info else None
        return (row[0], row[1]) if row else None

    def _is_partitioned(self, conn: psycopg.Connection, table: tuple[str, str]) -> bool:
        row = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
                           [_ident(*table).as_string(conn)]).fetchone()
        return bool(row and row[0] == "p")

    def _create_partitioned(self, conn: psycopg.Connection, st: IndexStatement, table: tuple[str, str],
                            monitor: Monitor) -> BuildResult:
        """PostgreSQL cannot build a partitioned table's index concurrently, so build it piece by piece.

        The index is created ON ONLY each partitioned table (no data, so brief; INVALID
        until all its partitions have theirs), each leaf partition's index is built
        CONCURRENTLY with the usual repair and checks, and ATTACHed to its parent's;
        the last attach makes the whole tree valid.  Re-running resumes where it stopped.
        https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE
        """
        existing = index_info(conn, table[0], st.name)
        if existing is not None and existing.valid:
            self._same_index(conn, st, table, existing)
            return BuildResult(st, "present")
        index_of: dict[tuple[str, str], str] = {}
        repaired: list[str] = []
        tree = conn.execute(_PARTITION_TREE, [_ident(*table).as_string(conn)]).fetchall()
        for schema, rel, parent_schema, parent, leaf, level in tree:
            name = st.name if level == 0 else _partition_index_name(st.name, rel)
            index_of[(schema, rel)] = name
            if leaf:
                part = retarget(st, name, (schema, rel), concurrently=True, only=False)
                started = time.monotonic()
                done = self._create(conn, part, monitor)
                repaired += done.repaired
                self.out.info(f"{part.label}: {'built' if done.outcome == 'built' else 'already valid, kept'} "
                              f"in {time.monotonic() - started:.1f}s (partition of {table[0]}.{table[1]})")
            else:
                left = index_info(conn, schema, name)
                if left is not None and (left.table_schema, left.table) != (schema, rel):
                    raise DbtuneError(f"{schema}.{name}: an index of that name already exists on "
                                      f"{left.table_schema}.{left.table}", statement=st.sql)
                if left is None:
                    only = retarget(st, name, (schema, rel), concurrently=False, only=True)
                    self._locked(conn, only.sql, st)
                elif not left.valid:
                    # Left by a run that failed part way: INVALID until every partition's index is
                    # attached, which the attaches below finish.
                    self.out.info(f"{schema}.{name}: INVALID, left by an earlier run; attaching what it lacks")
            if level > 0:
                self._locked(conn, sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(
                    _ident(parent_schema, index_of[(parent_schema, parent)]), _ident(schema, name)), st)
        after = index_info(conn, table[0], st.name)
        if after is None or not after.valid:
            raise MigrationFailed(f"{st.label}: every partition's index is built and attached, but the "
                                  "partitioned index is not valid", revision=None, failed_revision=None,
                                  statement=st.sql)
        return BuildResult(st, "built", repaired=repaired)

    def _locked(self, conn: psycopg.Connection, statement: str | sql.Composable, st: IndexStatement) -> None:
        """A statement that needs a strong lock: wait at most lock_timeout, retry with backoff and jitter."""
        backoff = self.options.backoff
        for attempt in range(backoff.retries + 1):
            conn.execute(set_lock_timeout(self.options.lock_timeout_s))
            try:
                conn.execute(statement)  # type: ignore[arg-type]
                return
            except psycopg.errors.LockNotAvailable as exc:
                if attempt == backoff.retries:
                    raise MigrationFailed(f"{st.label}: {db.describe(exc, self.target)} "
                                          f"({backoff.retries + 1} tries)", revision=None, failed_revision=None,
                                          statement=statement if isinstance(statement, str)
                                          else statement.as_string(conn), sqlstate=exc.sqlstate) from None
                delay = backoff.delay(attempt)
                self.out.warn(f"{st.label}: could not get a lock within {self.options.lock_timeout_s:g}s; "
                              f"retrying in {delay:.1f}s")
                time.sleep(delay)
            finally:
                conn.execute("SET lock_timeout = 0")


def _definition(indexdef: str) -> tuple[bool, str]:
    """Uniqueness and everything from USING on: what an index is, without its name and table."""
    unique = indexdef.upper().startswith("CREATE UNIQUE")
    return unique, indexdef.split(" USING ", 1)[-1]


def build_statement_timeout_ms(options: OnlineOptions) -> int:
    """statement_timeout for a build, and for what runs like one (REINDEX/DETACH CONCURRENTLY, VACUUM)."""
    return int((options.statement_timeout_s or 0) * 1000)


def _partition_index_name(name: str, partition: str) -> str:
    """``<partition>_<index>``, shortened with a hash to PostgreSQL's 63 bytes when needed."""
    full = f"{partition}_{name}"
    if len(full.encode()) <= 63:
        return full
    digest = hashlib.md5(full.encode()).hexdigest()[:8]
    return full.encode()[:54].decode(errors="ignore") + "_" + digest


def _left_behind(left: list[str]) -> str:
    if not left:
        return ""
    return (f"; the INVALID index {', '.join(left)} could not be dropped now (another session holds the table) "
            "and will be removed by the next dbtune apply")


def next_build(pending: list[IndexStatement], busy: set[tuple[str, str]],
               key: Callable[[IndexStatement], tuple[str, str]],
               sizes: dict[tuple[str, str], int]) -> IndexStatement | None:
    """The build to start next: never on a busy table; among the free ones, the table with the most work
    left (its size times its pending builds), so that no long table's builds trail alone at the end.
    max() keeps the first of equals: revision order when sizes tie (and with --jobs 1, no sizes)."""
    free = [s for s in pending if key(s) not in busy]
    if not free:
        return None
    return max(free, key=lambda st: sum(sizes.get(key(s), 0) for s in pending if key(s) == key(st)))


def has_expression(st: IndexStatement) -> bool:
    """Whether a CREATE INDEX has an expression column (the only kind that needs new statistics)."""
    from pglast import ast, parse_sql
    from pglast.parser import ParseError

    if st.verb != "create":
        return False
    try:
        [raw] = parse_sql(st.sql)
    except (ParseError, ValueError):
        return True  # unsure: analyze, as before
    stmt = raw.stmt
    return isinstance(stmt, ast.IndexStmt) and any(p.expr is not None for p in stmt.indexParams or ())


# A table whose rows changed this much since its last ANALYZE has stale statistics
# (autovacuum's default analyze threshold is 10%).
STALE_FRACTION = 0.1


def analyze_tables(target: Target, tables: list[tuple[str, str, str]], options: OnlineOptions) -> None:
    """ANALYZE the tables that need it, once each, saying why: (schema, table, reason), where
    an empty reason leaves the decision to the table's statistics.

    PostgreSQL's CREATE INDEX documentation: a new index on plain columns uses the
    table's existing column statistics at once; only an expression index needs
    ANALYZE (or autovacuum) to gather statistics for its expression.  So a table is
    analyzed when it got an expression index, or when its statistics are missing or
    stale; the others are left alone, and the output says so.

    Best effort: the indexes are built whatever happens here.  Bounded by
    lock_timeout (ANALYZE's SHARE UPDATE EXCLUSIVE lock only conflicts with DDL
    and VACUUM; if one holds the table we leave it to autovacuum rather than
    queue in front of the application), and free of any statement_timeout the
    role or database sets.
    """
    reasons: dict[tuple[str, str], str] = {}
    for schema, table, reason in tables:
        reasons[(schema, table)] = reasons.get((schema, table)) or reason
    if not reasons:
        return
    try:
        with db.connect(target, purpose="analyze") as conn:
            conn.execute("SET statement_timeout = 0")
            conn.execute(set_lock_timeout(options.lock_timeout_s))
            for (schema, table), reason in reasons.items():
                why = reason or _stale(conn, schema, table)
                if why is None:
                    options.out.info(f"not analyzed {schema}.{table}: its new indexes are on plain columns, "
                                     "which use the table's current statistics")
                    continue
                try:
                    conn.execute(sql.SQL("ANALYZE {}").format(_ident(schema, table)))
                    options.out.info(f"analyzed {schema}.{table}: {why}")
                except psycopg.errors.LockNotAvailable:
                    options.out.warn(f"ANALYZE {schema}.{table} skipped: the table is locked "
                                     "(autovacuum will do it)")
    except (DbtuneError, psycopg.Error) as exc:
        options.out.warn(f"ANALYZE of the new indexes' tables did not finish ({exc}); "
                         "run ANALYZE on them, or let autovacuum do it")


def _stale(conn: psycopg.Connection, schema: str, table: str) -> str | None:
    """Why a table's statistics need refreshing, or None when they are current."""
    row = conn.execute(
        "SELECT s.last_analyze IS NULL AND s.last_autoanalyze IS NULL, s.n_mod_since_analyze, c.reltuples "
        "FROM pg_class c JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = %s::regclass",
        [sql.Identifier(schema, table).as_string(conn)]).fetchone()
    if row is None:
        return None
    never, changed, rows = row
    if never:
        return "it has never been analyzed"
    if changed and changed > STALE_FRACTION * max(rows, 1):
        return f"its statistics are stale ({changed:,} rows changed since its last ANALYZE)"
    return None


def _cancel(target: Target, pid: int) -> None:
    try:
        with db.connect(target, purpose="cancel") as conn:
            conn.execute("SELECT pg_cancel_backend(%s)", [pid])
    except (DbtuneError, psycopg.Error):
        pass
