"""The online index engine against real PostgreSQL: repairs, blockers, locks, kills, writers."""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from dbtune.core.errors import BuildBlocked, DbtuneError, MigrationFailed
from dbtune.core.output import Output
from dbtune.core.retry import Backoff
from dbtune.core.settings import Target
from dbtune.online import Engine, OnlineOptions, next_build
from dbtune.sqltext.statements import IndexStatement, parse_index_statement
from tests.fix_cli import OWN_MIGRATIONS, dbtune_process, run_cli, scalar

OWN = ["--migrations", str(OWN_MIGRATIONS)]
ROWS = 200_000


def wait_until(check: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def engine(dsn: str, **options: object) -> tuple[Engine, io.StringIO, io.StringIO]:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(stdout=stdout, stderr=stderr, log_interval=0.0)
    opts = OnlineOptions(out=out, poll_interval=0.2, **options)  # type: ignore[arg-type]
    return Engine(Target.parse(dsn, "test"), opts), stdout, stderr


def stmt(sql: str):
    st = parse_index_statement(sql)
    assert st is not None
    return st


def index_state(dsn: str, name: str) -> tuple[bool, bool] | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = to_regclass(%s)",
                           [name]).fetchone()
    return (row[0], row[1]) if row else None


@pytest.fixture
def events(database: str) -> Iterator[str]:
    """A table big enough that a build takes a moment; autovacuum off so ANALYZE counts are ours."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE events (id bigint PRIMARY KEY, account int NOT NULL, kind text NOT NULL,
                                 created_at timestamptz NOT NULL, payload text)
            WITH (autovacuum_enabled = off)""")
        conn.execute("""
            INSERT INTO events
            SELECT i, i %% 5000, (ARRAY['click','view','buy','ship'])[1 + i %% 4],
                   timestamptz '2026-01-01' + i * interval '1 minute', md5(i::text)
            FROM generate_series(1, %s) AS i""", [ROWS])
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    yield database


class Blocker:
    """Another application session that holds something up, as a test's adversary."""

    def __init__(self, dsn: str, how: str, application: str = "blocker-app",
                 write: str = "INSERT INTO events VALUES (0, 0, 'x', now(), NULL)") -> None:
        self.conn = psycopg.connect(dsn, application_name=application)
        if how == "snapshot":  # an old snapshot, on another table: stalls the end of a build
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            self.conn.execute("SELECT count(*) FROM notes")
        else:  # an open write on the table: stalls the start of a build
            self.conn.execute(write)  # type: ignore[arg-type]
        self.pid = self.conn.info.backend_pid

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


@contextlib.contextmanager
def build_in_progress(dsn: str, index: str, statement: str, blocker: Blocker,
                      application: str = "") -> Iterator[None]:
    """Another session's concurrent build of ``index``, held in its waiting phases by ``blocker``
    for the length of the block; then the blocker lets go and the build finishes."""
    builder = psycopg.connect(dsn, autocommit=True, application_name=application)
    thread = threading.Thread(target=builder.execute, args=(statement,))
    thread.start()
    try:
        wait_until(lambda: index_state(dsn, index) is not None, what="the other session's build")
        yield
    finally:
        blocker.release()
        thread.join(timeout=60)
        builder.close()


def release_when(blocker: Blocker, dsn: str, query: str, what: str) -> threading.Thread:
    """Release the blocker once ``query`` (on pg_stat_progress_create_index) is true, from a thread."""
    def wait_then_release() -> None:
        try:
            wait_until(lambda: scalar(dsn, query), what=what)
        finally:
            blocker.release()

    thread = threading.Thread(target=wait_then_release)
    thread.start()
    return thread


def cancelled_build(dsn: str, sql: str, **blocker_options: str) -> None:
    """Start a concurrent build, stall it behind a writer, then cancel it: an INVALID leftover."""
    blocker = Blocker(dsn, "write", **blocker_options)
    builder = psycopg.connect(dsn, autocommit=True)
    pid = builder.info.backend_pid
    failure: list[BaseException] = []

    def build() -> None:
        try:
            builder.execute(sql)  # type: ignore[arg-type]
        except psycopg.errors.QueryCanceled as exc:
            failure.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    wait_until(lambda: scalar(dsn, "SELECT cardinality(pg_blocking_pids(%s)) > 0", [pid]), what="build to wait")
    scalar(dsn, "SELECT pg_cancel_backend(%s)", [pid])
    thread.join()
    builder.close()
    blocker.release()
    assert failure, "the build should have been cancelled"


def test_invalid_leftover_of_a_cancelled_build_is_repaired(events: str) -> None:
    sql = "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_events_account ON events (account, created_at)"
    cancelled_build(events, sql)
    assert index_state(events, "ix_events_account") == (False, False)
    # What other tools do: IF NOT EXISTS sees the name and accepts the broken index.
    with psycopg.connect(events, autocommit=True) as conn:
        conn.execute(sql)
    assert index_state(events, "ix_events_account") == (False, False)

    eng, stdout, stderr = engine(events)
    [result] = eng.run([stmt(sql)])
    assert result.outcome == "built"
    assert result.repaired == ["ix_events_account"]
    assert "is INVALID (left by a failed build); dropping it" in stderr.getvalue()
    assert index_state(events, "ix_events_account") == (True, True)


def test_reindex_concurrently_leftovers_are_dropped(events: str) -> None:
    with psycopg.connect(events, autocommit=True) as conn:
        conn.execute("CREATE INDEX ix_events_kind ON events (kind)")
    cancelled_build(events, "REINDEX INDEX CONCURRENTLY ix_events_kind")
    assert index_state(events, "ix_events_kind_ccnew") == (False, False)
    eng, _, stderr = engine(events)
    [result] = eng.run([stmt("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_events_kind ON events (kind)")])
    assert result.outcome == "present"
    assert result.repaired == ["ix_events_kind_ccnew"]
    assert index_state(events, "ix_events_kind_ccnew") is None
    assert index_state(events, "ix_events_kind") == (True, True)


def test_blocker_is_named_and_max_wait_cancels_cleanly(events: str) -> None:
    blocker = Blocker(events, "snapshot")
    try:
        eng, _, stderr = engine(events, max_wait=1.0)
        with pytest.raises(BuildBlocked) as failure:
            eng.run([stmt("CREATE INDEX CONCURRENTLY ix_events_created ON events (created_at)")])
    finally:
        blocker.release()
    error = failure.value
    assert [b.pid for b in error.blockers] == [blocker.pid]
    assert error.blockers[0].application == "blocker-app"
    assert error.waited_s >= 1.0
    assert f"pid {blocker.pid} (blocker-app" in str(error)
    assert f"is waiting for pid {blocker.pid} (blocker-app, idle in transaction" in stderr.getvalue()
    # Nothing left behind: the INVALID index was dropped.
    assert index_state(events, "ix_events_created") is None


def own_at_a1_with_a_reader(database: str, application: str = "blocker-app") -> Blocker:
    """The example project at a1, and a reader whose old snapshot will hold up a2's build."""
    assert run_cli("apply", "--database-url", database, *OWN, "--to", "a1").exit_code == 0
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int)")
    return Blocker(database, "snapshot", application)


def test_cli_exits_5_naming_the_blocker_and_keeps_the_revision(database: str) -> None:
    blocker = own_at_a1_with_a_reader(database, "report-job")
    try:
        result = run_cli("apply", "--database-url", database, *OWN, "--max-wait", "1")
    finally:
        blocker.release()
    assert result.exit_code == 5, result.output
    assert "report-job" in result.stderr and "--max-wait" in result.stderr
    assert "revision a2" in result.stderr and "the database stays at a1" in result.stderr
    assert scalar(database, "SELECT version_num FROM alembic_version") == "a1"
    assert index_state(database, "ix_customers_country") is None


def test_two_applies_at_once(database: str) -> None:
    blocker = own_at_a1_with_a_reader(database)
    first = dbtune_process("apply", "--database-url", database, *OWN, "--no-progress")
    try:
        wait_until(lambda: scalar(database, "SELECT count(*) FROM pg_stat_activity "
                                            "WHERE application_name LIKE 'dbtune create%%'"),
                   what="the first apply to be building")
        second = run_cli("apply", "--database-url", database, *OWN)
        assert second.exit_code == 4, second.output
        assert "another dbtune run holds this database's migration lock" in second.stderr
    finally:
        blocker.release()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert scalar(database, "SELECT version_num FROM alembic_version") == "a3"


def test_sigkill_mid_build_then_the_next_apply_finishes(database: str) -> None:
    blocker = own_at_a1_with_a_reader(database)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO customers (email, country) SELECT 'c' || i || '@x.test', 'NL' "
                      "FROM generate_series(1, 5000) i")
        before = conn.execute("SELECT count(*), sum(hashtext(email)) FROM customers").fetchone()
    victim = dbtune_process("apply", "--database-url", database, *OWN, "--no-progress")
    try:
        wait_until(lambda: scalar(database, "SELECT phase = 'waiting for old snapshots' "
                                            "FROM pg_stat_progress_create_index"),
                   what="the build to be mid-way")
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)  # reaps it and closes its pipes
    finally:
        blocker.release()
    # The orphaned build notices its client is gone and stops (or, before PostgreSQL 14, finishes).
    wait_until(lambda: not scalar(database, "SELECT count(*) FROM pg_stat_progress_create_index"),
               what="the orphaned build to end")
    assert scalar(database, "SELECT version_num FROM alembic_version") == "a1"

    again = run_cli("apply", "--database-url", database, *OWN)
    assert again.exit_code == 0, again.output
    assert scalar(database, "SELECT version_num FROM alembic_version") == "a3"
    assert scalar(database, "SELECT bool_and(indisvalid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                            "WHERE c.relname = 'customers'")
    assert index_state(database, "ix_customers_country") == (True, True)
    with psycopg.connect(database, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), sum(hashtext(email)) FROM customers").fetchone() == before


class Writer:
    """The application: one insert at a time, every few milliseconds, until the block ends."""

    def __init__(self, dsn: str, insert: str, args: Callable[[int], list[object]]) -> None:
        self.dsn, self.insert, self.args = dsn, insert, args
        self.inserted: list[int] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, application_name="app-writer") as conn:
            n = 0
            while not self._stop.is_set():
                n += 1
                try:
                    conn.execute(self.insert, self.args(n))  # type: ignore[arg-type]
                    self.inserted.append(n)
                except psycopg.Error as exc:
                    self.errors.append(exc)
                time.sleep(0.003)


def test_a_writer_never_fails_and_loses_nothing_during_builds(events: str) -> None:
    with Writer(events, "INSERT INTO events VALUES (%s, %s, 'buy', now(), 'w')",
                lambda n: [ROWS + n, (ROWS + n) % 97]) as writer:
        eng, _, _ = engine(events, jobs=2)
        results = eng.run([
            stmt("CREATE INDEX CONCURRENTLY ix_w_account ON events (account, created_at DESC)"),
            stmt("CREATE INDEX CONCURRENTLY ix_w_kind ON events (kind) WHERE kind <> 'view'"),
            stmt("CREATE INDEX CONCURRENTLY ix_w_cover ON events (account) INCLUDE (kind, payload)"),
        ])
    assert [r.outcome for r in results] == ["built"] * 3
    assert writer.errors == []
    assert len(writer.inserted) > 0
    assert scalar(events, "SELECT count(*) FROM events WHERE id > %s", [ROWS]) == len(writer.inserted)
    assert scalar(events, "SELECT count(*) FROM events WHERE id > %s AND account = id %% 97",
                  [ROWS]) == len(writer.inserted)


def _definitions(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                            "ORDER BY indexname").fetchall()


class RecordingEngine(Engine):
    """Records how many statements run at once per table, around the real builds."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.active: dict[str, int] = {}
        self.peak_per_table: dict[str, int] = {}
        self.peak_total = 0
        self._guard = threading.Lock()

    def _run_one(self, st, monitor, conn):  # type: ignore[no-untyped-def]
        table = st.table or st.name
        with self._guard:
            self.active[table] = self.active.get(table, 0) + 1
            self.peak_per_table[table] = max(self.peak_per_table.get(table, 0), self.active[table])
            self.peak_total = max(self.peak_total, sum(self.active.values()))
        try:
            return super()._run_one(st, monitor, conn)
        finally:
            with self._guard:
                self.active[table] -= 1


JOB_STATEMENTS = [
    "CREATE INDEX CONCURRENTLY ix_j1 ON events (account)",
    "CREATE INDEX CONCURRENTLY ix_j2 ON events (kind, created_at)",
    "CREATE INDEX CONCURRENTLY ix_j3 ON notes (body)",
    "CREATE INDEX CONCURRENTLY ix_j4 ON events (created_at) WHERE kind = 'buy'",
    "CREATE INDEX CONCURRENTLY ix_j5 ON notes (id, body)",
]


def test_jobs_build_tables_in_parallel_never_one_table_twice(events: str, pg_server) -> None:
    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    parallel = RecordingEngine(Target.parse(events, "test"), OnlineOptions(jobs=3, out=out))
    # Hold the first builds at their last phase for a while, so that they surely overlap.
    blocker = Blocker(events, "snapshot")
    releaser = release_when(blocker, events, "SELECT count(*) = 2 FROM pg_stat_progress_create_index",
                            "a build on each table")
    parallel.run([stmt(s) for s in JOB_STATEMENTS])
    releaser.join()
    assert parallel.peak_per_table == {"events": 1, "notes": 1}
    assert parallel.peak_total == 2

    serial_db = pg_server.create_database()
    try:
        with psycopg.connect(serial_db, autocommit=True) as conn:
            conn.execute("CREATE TABLE events (id bigint PRIMARY KEY, account int NOT NULL, kind text NOT NULL, "
                         "created_at timestamptz NOT NULL, payload text) WITH (autovacuum_enabled = off)")
            conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        Engine(Target.parse(serial_db, "test"), OnlineOptions(jobs=1, out=out)).run(
            [stmt(s) for s in JOB_STATEMENTS])
        assert _definitions(serial_db) == _definitions(events)
    finally:
        pg_server.drop_database(serial_db)


def test_progress_lines_show_phase_and_waits(events: str) -> None:
    blocker = Blocker(events, "snapshot")
    # Released once the monitor has had time to see the wait (a few polls of 0.2 s).
    releaser = release_when(blocker, events, "SELECT bool_or(phase = 'waiting for old snapshots') AND "
                            "bool_or(now() - query_start > interval '1 second') FROM pg_stat_progress_create_index "
                            "JOIN pg_stat_activity USING (pid)", "the build to wait")
    eng, stdout, stderr = engine(events)
    eng.run([stmt("CREATE INDEX CONCURRENTLY ix_events_payload ON events (payload)")])
    releaser.join()
    lines = stdout.getvalue()
    assert "ix_events_payload: waiting for old snapshots" in lines
    assert "elapsed" in lines
    assert "ix_events_payload: built in" in lines
    assert f"waiting for pid {blocker.pid}" in stderr.getvalue()


def test_quiet_builds_print_nothing(events: str) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(stdout=stdout, stderr=stderr, quiet=True)
    Engine(Target.parse(events, "test"), OnlineOptions(out=out)).run(
        [stmt("CREATE INDEX CONCURRENTLY ix_q ON events (kind)")])
    assert stdout.getvalue() == ""


def analyze_count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = %s",
                            [table]).fetchone()[0]  # type: ignore[index]


def test_only_tables_that_need_it_are_analyzed_once_each(events: str) -> None:
    """CREATE INDEX's documentation: plain-column indexes use the table's statistics at once; an
    expression index needs ANALYZE; a table never analyzed gets one anyway."""
    with psycopg.connect(events, autocommit=True) as conn:
        conn.execute("ANALYZE events")
        conn.execute("SELECT pg_stat_force_next_flush()")
    events_before = wait_until(lambda: analyze_count(events, "events"), what="the ANALYZE in the statistics")
    notes_before = analyze_count(events, "notes")
    eng, stdout, _ = engine(events, jobs=2)
    eng.run([stmt("CREATE INDEX CONCURRENTLY ix_a1 ON events (account)"),
             stmt("CREATE INDEX CONCURRENTLY ix_a2 ON events (kind)"),
             stmt("CREATE INDEX CONCURRENTLY ix_n1 ON notes (body)")])
    text = stdout.getvalue()
    assert "not analyzed public.events: its new indexes are on plain columns" in text
    assert "analyzed public.notes: it has never been analyzed" in text
    wait_until(lambda: analyze_count(events, "notes") == notes_before + 1, timeout=5, what="notes analyzed")
    assert analyze_count(events, "events") == events_before

    eng, stdout, _ = engine(events)
    eng.run([stmt("CREATE INDEX CONCURRENTLY ix_a3 ON events (lower(kind))"),
             stmt("CREATE INDEX CONCURRENTLY ix_a4 ON events (created_at)")])
    [line] = [t for t in stdout.getvalue().splitlines() if t.startswith("analyzed public.events")]
    assert line.endswith("ix_a3 is on an expression")
    wait_until(lambda: analyze_count(events, "events") == events_before + 1, timeout=5, what="events analyzed")


def test_jobs_start_the_table_with_the_most_work_first(events: str) -> None:
    """notes is tiny and listed first: the next build is the big table's, and never one on a busy table."""
    statements = [stmt("CREATE INDEX CONCURRENTLY ix_o1 ON notes (body)"),
                  stmt("CREATE INDEX CONCURRENTLY ix_o2 ON events (account)"),
                  stmt("CREATE INDEX CONCURRENTLY ix_o3 ON events (kind)")]
    eng, _, _ = engine(events, jobs=2)
    tables = {st: ("public", st.table or "") for st in statements}
    sizes = eng._sizes(tables)
    assert sizes[("public", "events")] > sizes[("public", "notes")] == 0

    def key(st: IndexStatement) -> tuple[str, str]:
        return tables[st]

    assert next_build(statements, set(), key, sizes) is statements[1]
    assert next_build(statements[:1] + statements[2:], {("public", "events")}, key, sizes) is statements[0]
    assert next_build(statements, set(), key, {}) is statements[0]  # no sizes (--jobs 1): revision order


def test_rollback_refuses_to_drop_an_index_backing_a_constraint(events: str) -> None:
    with psycopg.connect(events, autocommit=True) as conn:
        conn.execute("ALTER TABLE events ADD CONSTRAINT events_payload_key UNIQUE (id, payload)")
    eng, _, _ = engine(events)
    with pytest.raises(DbtuneError, match="backs constraint events_payload_key"):
        eng.run([stmt("DROP INDEX CONCURRENTLY IF EXISTS events_payload_key")])
    assert index_state(events, "events_payload_key") == (True, True)


def test_drop_of_a_missing_index_is_a_no_op(events: str) -> None:
    eng, _, _ = engine(events)
    [result] = eng.run([stmt("DROP INDEX CONCURRENTLY IF EXISTS ix_not_there")])
    assert result.outcome == "absent"


def _partitioned(dsn: str) -> None:
    """measures: two months, the second itself split in halves (a two-level tree)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE measures (at date NOT NULL, v int) PARTITION BY RANGE (at)")
        conn.execute("CREATE TABLE measures_2026_01 PARTITION OF measures "
                     "FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')")
        conn.execute("CREATE TABLE measures_2026_02 PARTITION OF measures "
                     "FOR VALUES FROM ('2026-02-01') TO ('2026-03-01') PARTITION BY RANGE (at)")
        conn.execute("CREATE TABLE measures_2026_02a PARTITION OF measures_2026_02 "
                     "FOR VALUES FROM ('2026-02-01') TO ('2026-02-15')")
        conn.execute("CREATE TABLE measures_2026_02b PARTITION OF measures_2026_02 "
                     "FOR VALUES FROM ('2026-02-15') TO ('2026-03-01')")
        conn.execute("INSERT INTO measures SELECT date '2026-01-01' + (i % 59), i FROM generate_series(1, 50000) i")


def _partition_indexes(dsn: str) -> list[tuple[str, str, bool]]:
    """(table, index, valid) for every index in the measures tree."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT t.relname, c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname LIKE 'measures%%' ORDER BY 1").fetchall()


def test_a_partitioned_table_is_indexed_partition_by_partition(database: str) -> None:
    _partitioned(database)
    eng, stdout, _ = engine(database)
    build = stmt("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_measures_v ON measures (v) WHERE v > 10")
    [result] = eng.run([build])
    assert result.outcome == "built"
    assert _partition_indexes(database) == [
        ("measures", "ix_measures_v", True),
        ("measures_2026_01", "measures_2026_01_ix_measures_v", True),
        ("measures_2026_02", "measures_2026_02_ix_measures_v", True),
        ("measures_2026_02a", "measures_2026_02a_ix_measures_v", True),
        ("measures_2026_02b", "measures_2026_02b_ix_measures_v", True),
    ]
    # Every partition's index is attached to its parent's, and keeps the predicate.
    assert scalar(database, "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                            "WHERE c.relname LIKE '%ix_measures_v'") == 4
    assert "WHERE (v > 10)" in scalar(database, "SELECT pg_get_indexdef('measures_2026_01_ix_measures_v'::regclass)")
    assert "public.measures_2026_02b_ix_measures_v: built in" in stdout.getvalue()
    [again] = engine(database)[0].run([build])
    assert again.outcome == "present"

    eng, _, _ = engine(database)
    [dropped] = eng.run([stmt("DROP INDEX CONCURRENTLY IF EXISTS ix_measures_v")])
    assert dropped.outcome == "dropped"
    assert _partition_indexes(database) == []


def test_a_partitioned_build_cut_short_resumes(database: str) -> None:
    _partitioned(database)
    # A failed earlier run: the parent's index exists ON ONLY (INVALID), one partition's
    # build was cancelled (INVALID), nothing attached.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE INDEX ix_measures_v ON ONLY measures (v)")
    cancelled_build(database, "CREATE INDEX CONCURRENTLY measures_2026_01_ix_measures_v ON measures_2026_01 (v)",
                    write="INSERT INTO measures VALUES ('2026-01-02', 1)")
    eng, _, stderr = engine(database)
    [result] = eng.run([stmt("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_measures_v ON measures (v)")])
    assert result.outcome == "built"
    assert result.repaired == ["measures_2026_01_ix_measures_v"]
    assert all(valid for _, _, valid in _partition_indexes(database))


def test_sessions_that_stall_builds_are_warned_about(events: str) -> None:
    idle = psycopg.connect(events, application_name="forgotten-psql")
    idle.execute("SELECT 1")  # now idle in transaction
    pid = idle.info.backend_pid
    try:
        eng, _, stderr = engine(events)
        eng.run([stmt("CREATE INDEX CONCURRENTLY ix_s ON notes (body)")])
    finally:
        idle.rollback()
        idle.close()
    assert f"this one may stall it: pid {pid} (forgotten-psql, idle in transaction" \
        in stderr.getvalue()


def test_a_valid_index_of_the_same_name_on_another_table_is_an_error(events: str) -> None:
    with psycopg.connect(events, autocommit=True) as conn:
        conn.execute("CREATE INDEX ix_clash ON notes (body)")
    eng, _, _ = engine(events)
    with pytest.raises(DbtuneError, match="already exists on public.notes"):
        eng.run([stmt("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_clash ON events (kind)")])


def test_writer_during_dbtune_apply_of_the_reference_migrations(database: str) -> None:
    """The application keeps inserting orders while every shipped index is built."""
    assert run_cli("apply", "--database-url", database, "--to", "0002").exit_code == 0
    assert run_cli("seed", "--database-url", database, "--scale", "0.02", "--quiet").exit_code == 0
    base = scalar(database, "SELECT count(*) FROM orders")
    with Writer(database, "INSERT INTO orders (order_number, retailer_id, vendor_id, total) "
                          "VALUES (%s, 1 + %s %% 50, 1 + %s %% 5, 10)",
                lambda n: [f"LIVE-{n}", n, n]) as writer:
        result = run_cli("apply", "--database-url", database, "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert writer.errors == []
    assert len(writer.inserted) > 50
    numbers = [f"LIVE-{n}" for n in writer.inserted]
    assert scalar(database, "SELECT count(*) FROM orders") == base + len(numbers)
    assert scalar(database, "SELECT count(*) FROM orders WHERE order_number = ANY(%s)", [numbers]) == len(numbers)
    assert scalar(database, "SELECT bool_and(indisvalid) FROM pg_index") is True


def test_a_terminated_build_is_a_clean_error_and_the_next_apply_repairs(database: str) -> None:
    blocker = own_at_a1_with_a_reader(database)
    victim = dbtune_process("apply", "--database-url", database, *OWN, "--no-progress")
    try:
        pid = wait_until(lambda: scalar(database, "SELECT pid FROM pg_stat_progress_create_index"),
                         what="the build to start")
        scalar(database, "SELECT pg_terminate_backend(%s)", [pid])  # what a DBA might do
        out, err = victim.communicate(timeout=60)
    finally:
        blocker.release()
    assert victim.returncode == 1, err
    assert "Traceback" not in err
    [error] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "revision a2 failed: public.ix_customers_country" in error
    assert scalar(database, "SELECT version_num FROM alembic_version") == "a1"
    again = run_cli("apply", "--database-url", database, *OWN)
    assert again.exit_code == 0, again.output
    assert index_state(database, "ix_customers_country") == (True, True)


def test_a_cancelled_drop_is_reported_as_invalid_and_a_second_rollback_finishes(database: str) -> None:
    assert run_cli("apply", "--database-url", database, *OWN, "--to", "a2").exit_code == 0
    reader = psycopg.connect(database, application_name="reporting")
    reader.execute("SELECT count(*) FROM customers")  # holds ACCESS SHARE until it ends
    try:
        result = run_cli("rollback", "--database-url", database, *OWN, "--max-wait", "1")
        assert result.exit_code == 5, result.output
        assert "reporting" in result.stderr
        assert "is now INVALID" in result.stderr and "run the rollback again" in result.stderr
        status = run_cli("status", "--database-url", database, *OWN)
        assert "INVALID index public.ix_customers_country" in status.stderr
    finally:
        reader.rollback()
        reader.close()
    assert scalar(database, "SELECT version_num FROM alembic_version") == "a2"
    finished = run_cli("rollback", "--database-url", database, *OWN)
    assert finished.exit_code == 0, finished.output
    assert index_state(database, "ix_customers_country") is None


def test_long_index_names_reindex_leftovers_are_found(events: str) -> None:
    name = "ix_events_account_kind_created_at_payload_for_reporting_only"  # 60 characters
    with psycopg.connect(events, autocommit=True) as conn:
        conn.execute(f"CREATE INDEX {name} ON events (account, kind)")
    cancelled_build(events, f"REINDEX INDEX CONCURRENTLY {name}")
    leftover = scalar(events, "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                              "WHERE NOT i.indisvalid")
    assert isinstance(leftover, str) and leftover.endswith("_ccnew") and not leftover.startswith(name)
    eng, _, _ = engine(events)
    [result] = eng.run([stmt(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON events (account, kind)")])
    assert result.repaired == [leftover]
    assert index_state(events, leftover) is None


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_the_builds_and_the_next_apply_finishes(database: str, jobs: str) -> None:
    assert run_cli("apply", "--database-url", database, "--to", "0002").exit_code == 0
    assert run_cli("seed", "--database-url", database, "--scale", "0.005", "--quiet").exit_code == 0
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int)")
    blocker = Blocker(database, "snapshot")
    run = dbtune_process("apply", "--database-url", database, "--jobs", jobs, "--no-progress")
    try:
        wait_until(lambda: scalar(database, "SELECT count(*) = %s FROM pg_stat_progress_create_index",
                                  [int(jobs)]), what="the builds to wait")
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
        assert run.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        # Nothing of ours keeps building behind the DBA's back.
        wait_until(lambda: scalar(database, "SELECT count(*) = 0 FROM pg_stat_activity "
                                            "WHERE application_name LIKE 'dbtune%%'"), what="our sessions to end")
    finally:
        blocker.release()
    again = run_cli("apply", "--database-url", database)
    assert again.exit_code == 0, again.output
    assert scalar(database, "SELECT bool_and(indisvalid) FROM pg_index") is True


def test_a_partitioned_index_gives_up_after_bounded_retries(database: str) -> None:
    _partitioned(database)
    writer = psycopg.connect(database, application_name="busy-app")
    writer.execute("INSERT INTO measures VALUES ('2026-01-03', 3)")  # holds ROW EXCLUSIVE on the parent
    try:
        out = Output(stdout=io.StringIO(), stderr=io.StringIO())
        eng = Engine(Target.parse(database, "test"),
                     OnlineOptions(out=out, lock_timeout_s=0.1, backoff=Backoff(retries=1, base_s=0.05)))
        with pytest.raises(MigrationFailed, match=r"lock timeout.*\(2 tries\)"):
            eng.run([stmt("CREATE INDEX CONCURRENTLY ix_measures_v ON measures (v)")])
    finally:
        writer.rollback()
        writer.close()
    assert "could not get a lock within 0.1s; retrying" in out.stderr.getvalue()
    assert _partition_indexes(database) == []  # the ON ONLY index never got created


def test_the_scheduler_never_runs_two_jobs_that_share_a_key() -> None:
    from dbtune.online.scheduler import Scheduler

    keys = {"a": {"t1"}, "b": {"t1", "t2"}, "c": {"t2"}, "d": {"t3"}, "e": {"t3", "t1"}, "f": {"t4"}}
    held: set[str] = set()
    overlaps: list[str] = []
    mutex = threading.Lock()

    @contextlib.contextmanager
    def worker() -> Iterator[Callable[[str], str]]:
        def run(job: str) -> str:
            with mutex:
                if held & keys[job]:
                    overlaps.append(job)
                held.update(keys[job])
            time.sleep(0.05)  # long enough for the other workers to try a job that shares a key
            with mutex:
                held.difference_update(keys[job])
            return job.upper()
        yield run

    results = Scheduler(lambda job: keys[job], jobs=3, name="test").run(list(keys), worker)
    assert results == {job: job.upper() for job in keys}
    assert overlaps == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_scheduler_stops_at_the_first_error_and_raises_it(jobs: int) -> None:
    from dbtune.online.scheduler import Scheduler

    ran: list[str] = []

    @contextlib.contextmanager
    def worker() -> Iterator[Callable[[str], str]]:
        def run(job: str) -> str:
            ran.append(job)
            if job == "b":
                raise ValueError("b failed")
            return job
        yield run

    # One key for all: they run one after another, so "c" is still queued when "b" fails.
    with pytest.raises(ValueError, match="b failed"):
        Scheduler(lambda job: {"one table"}, jobs=jobs, name="test").run(["a", "b", "c"], worker)
    assert ran == ["a", "b"]
