"""Engine: build, drop and rebuild indexes without blocking the application.

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

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
from psycopg import sql

from ..core import db
from ..core.errors import BuildBlocked, DbtuneError, MigrationFailed
from ..core.retry import locked
from ..core.settings import Target
from ..sqltext.statements import IndexStatement
from . import sessions
from .catalog import cancel, ident, index_info, is_partitioned, table_of, warn_before_builds
from .monitor import Monitor
from .options import BuildResult, IndexInfo, OnlineOptions, build_statement_timeout_ms
from .partitioned import create_partitioned
from .repair import Repair, left_behind
from .scheduler import Scheduler, next_build
from .statistics import analyze_tables, has_expression


class Engine:
    """Runs index statements online; one instance per migration step."""

    def __init__(self, target: Target, options: OnlineOptions | None = None,
                 own_pids: set[int] | None = None) -> None:
        self.target = target
        self.options = options or OnlineOptions()
        self.out = self.options.out
        self.own_pids: set[int] = set(own_pids or ())
        self.repair = Repair(target, self.options, self.own_pids, self._connect_build)

    def run(self, statements: list[IndexStatement]) -> list[BuildResult]:
        """Run the statements, ``jobs`` at a time but never two on one table."""
        if not statements:
            return []
        control = self._take("control", lambda: db.connect(self.target, purpose="control"))
        try:
            warn_before_builds(control, self.options, self.own_pids)
            tables = {st: table_of(control, st) for st in statements}
        finally:
            sessions.give(self.options.sessions, "control", self.target, control)
        monitor = Monitor(self.target, self.options, self.own_pids)
        try:
            results = self._schedule(statements, tables, monitor)
            self._analyze(statements, tables, results)
        finally:
            monitor.close()
        return [results[st] for st in statements]

    def _analyze(self, statements: list[IndexStatement], tables: dict[IndexStatement, tuple[str, str] | None],
                 results: dict[IndexStatement, BuildResult]) -> None:
        """ANALYZE once the builds are done: it holds a snapshot, which a concurrent
        build on another table would otherwise have to wait for."""
        built = [(*t, f"its new index {st.label} is on an expression" if has_expression(st) else "")
                 for st in statements
                 if results[st].outcome in ("built", "reindexed") and (t := tables[st])]
        if self.options.analyze_queue is not None:
            self.options.analyze_queue.extend(built)
        else:
            analyze_tables(self.target, built, self.options)

    # -- scheduling ---------------------------------------------------------

    def _schedule(self, statements: list[IndexStatement], tables: dict[IndexStatement, tuple[str, str] | None],
                  monitor: Monitor) -> dict[IndexStatement, BuildResult]:
        """Never two builds on one table (they deadlock each other); among the free ones, the table
        with the most work left first (by relation size), so that no long table's builds trail alone."""
        def key(st: IndexStatement) -> tuple[str, str]:
            return tables[st] or ("", st.label)

        sizes = self._sizes(tables) if self.options.jobs > 1 else {}
        running = _Running(self.target)
        scheduler: Scheduler[IndexStatement, tuple[str, str], BuildResult] = Scheduler(
            lambda st: (key(st),), jobs=self.options.jobs, name="dbtune-build",
            choose=lambda pending, busy: next_build(pending, busy, key, sizes), on_interrupt=running.cancel)
        return scheduler.run(statements, lambda: self._worker(monitor, running))

    @contextlib.contextmanager
    def _worker(self, monitor: Monitor, running: _Running) -> Iterator[Callable[[IndexStatement], BuildResult]]:
        """What one worker runs its builds with: a build connection of its own, opened once and reused."""
        conn: psycopg.Connection | None = None

        def build(st: IndexStatement) -> BuildResult:
            nonlocal conn
            try:
                if conn is None or conn.closed:
                    conn = self._take("build", self._connect_build)
                running.add(db.pid(conn))
                return self._run_one(st, monitor, conn)
            except psycopg.Error as exc:  # a catalog lookup or the connection itself failed
                raise MigrationFailed(f"{st.label}: {db.describe(exc, self.target)}", revision=None,
                                      failed_revision=None, statement=st.sql, sqlstate=exc.sqlstate) from None
            finally:
                if conn is not None and not conn.closed:
                    running.discard(db.pid(conn))

        try:
            yield build
        finally:
            if conn is not None:
                sessions.give(self.options.sessions, "build", self.target, conn)

    def _take(self, purpose: str, connect: Callable[[], psycopg.Connection]) -> psycopg.Connection:
        """A session of this run's (kept from an earlier revision) or a new one; either way one of ours."""
        conn = sessions.take(self.options.sessions, purpose, self.target, connect)
        self.own_pids.add(db.pid(conn))
        return conn

    # -- one statement ------------------------------------------------------

    def _sizes(self, tables: dict[IndexStatement, tuple[str, str] | None]) -> dict[tuple[str, str], int]:
        """Each table's size in bytes (its heap: what a build reads)."""
        wanted = sorted({t for t in tables.values() if t})
        if not wanted:
            return {}
        with db.connect(self.target, purpose="sizes") as conn:
            return {t: conn.execute("SELECT pg_relation_size(%s::regclass)",
                                    [sql.Identifier(*t).as_string(conn)]).fetchone()[0]  # type: ignore[index]
                    for t in wanted}

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
            result = self.create(conn, st, monitor)
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

    def create(self, conn: psycopg.Connection, st: IndexStatement, monitor: Monitor) -> BuildResult:
        table = table_of(conn, st)
        if table is None:
            raise DbtuneError(f"{st.label}: table {st.table} does not exist", statement=st.sql)
        if is_partitioned(conn, table):
            return create_partitioned(self, conn, st, table, monitor)
        repaired = self.repair.drop_leftovers(conn, table, st.name, monitor, st, include_self=True)
        existing = index_info(conn, table[0], st.name)
        if existing is not None and existing.valid:
            self.repair.same_index(conn, st, table, existing)
            return BuildResult(st, "present", repaired=repaired)
        if not self._execute(conn, st, monitor, table):
            return BuildResult(st, "built", repaired=repaired)
        after = index_info(conn, table[0], st.name)
        if after is None or not after.valid:
            left = self.repair.cleanup_after_failure(conn, st, table, monitor)
            raise MigrationFailed(f"{st.label}: the build finished but the index is not valid"
                                  + left_behind(left), revision=None, failed_revision=None, statement=st.sql)
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
            self.locked(conn, sql.SQL("DROP INDEX IF EXISTS {}").format(
                ident(existing.schema, existing.name)), st)
            return BuildResult(st, "dropped")
        self._execute(conn, st, monitor, (existing.table_schema, existing.table))
        return BuildResult(st, "dropped")

    def _reindex(self, conn: psycopg.Connection, st: IndexStatement, monitor: Monitor) -> BuildResult:
        existing = index_info(conn, st.schema, st.name)
        if existing is None:
            raise DbtuneError(f"{st.label}: no such index to rebuild", statement=st.sql)
        table = (existing.table_schema, existing.table)
        repaired = self.repair.drop_leftovers(conn, table, st.name, monitor, st, include_self=False)
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
            left = self.repair.after_failure(conn, st, table, monitor)
            if watch is None or watch.cancelled_for is None:
                raise MigrationFailed(f"{st.label}: the statement was cancelled by another session"
                                      + left, revision=None, failed_revision=None, statement=st.sql,
                                      sqlstate="57014") from None
            names = "; ".join(b.describe() for b in watch.cancelled_for) or "another session"
            raise BuildBlocked(
                f"{st.label}: gave up after waiting {watch.waited_s:.0f}s (--max-wait) for {names}{left}",
                index=st.label, blockers=watch.cancelled_for, waited_s=watch.waited_s) from None
        except psycopg.Error as exc:
            left = self.repair.after_failure(conn, st, table, monitor)
            raise MigrationFailed(f"{st.label}: {db.describe(exc, self.target)}{left}", revision=None,
                                  failed_revision=None, statement=st.sql, sqlstate=exc.sqlstate) from None
        finally:
            monitor.unwatch(pid)

    def _index_or_none(self, conn: psycopg.Connection, schema: str | None, name: str) -> IndexInfo | None:
        try:
            return index_info(conn, schema, name)
        except psycopg.Error:
            return None

    def locked(self, conn: psycopg.Connection, statement: str | sql.Composable, st: IndexStatement) -> None:
        """A statement that needs a strong lock: wait at most lock_timeout, retry with backoff and jitter."""
        def again(exc: BaseException, attempt: int, delay: float) -> None:
            self.out.warn(f"{st.label}: could not get a lock within {self.options.lock_timeout_s:g}s; "
                          f"retrying in {delay:.1f}s")

        try:
            locked(conn, statement, self.options.lock_timeout_s, self.options.backoff, again)
        except psycopg.errors.LockNotAvailable as exc:
            raise MigrationFailed(f"{st.label}: {db.describe(exc, self.target)} "
                                  f"({self.options.backoff.retries + 1} tries)", revision=None, failed_revision=None,
                                  statement=statement if isinstance(statement, str)
                                  else statement.as_string(conn), sqlstate=exc.sqlstate) from None
        finally:
            conn.execute("SET lock_timeout = 0")


class _Running:
    """The backends of the builds running now, to cancel them on Ctrl-C."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._pids: set[int] = set()
        self._guard = threading.Lock()

    def add(self, pid: int) -> None:
        with self._guard:
            self._pids.add(pid)

    def discard(self, pid: int) -> None:
        with self._guard:
            self._pids.discard(pid)

    def cancel(self) -> None:
        with self._guard:
            pids = list(self._pids)
        for pid in pids:
            cancel(self.target, pid)
