"""dbtune verify: checks pass and fail for the right reasons, on real servers.

The scenario is ``tests/checks_tiny``: a one-table schema (``schema.sql``,
``rows.sql``) and a checks directory a DBA could have written.  Bad check
files are written per test in ``tmp_path``.  The last tests run the shipped
checks against the seeded reference schema.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dbtune.core.errors import ConfigError, ConnectionFailed
from dbtune.core.output import Output
from dbtune.core.resources import sql_path
from dbtune.core.settings import Target
from dbtune.verify import load_baseline, render, render_comparison, run_checks, save_baseline, verify
from dbtune.verify.checks import Check, IndexName, created_index, load_checks, parse_check_file, parse_index_name

TINY = Path(__file__).parent / "checks_tiny"
CHECKS = TINY / "checks"
TINY_NAMES = ["items_by_id", "items_category", "items_sku#1", "items_sku#2"]


def _target(dsn: str) -> Target:
    return Target.parse(dsn, "test")


def _execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


# Statistics are flushed to shared memory lazily (PostgreSQL 15+): forced here, so that the insert
# counts land before ANALYZE resets them and n_mod_since_analyze does not call the table stale.
FLUSH_STATS = "SELECT pg_stat_force_next_flush()"


def _load_tiny(dsn: str, *, rows: bool = True, analyze: bool = True) -> None:
    _execute(dsn, (TINY / "schema.sql").read_text())
    if rows:
        _execute(dsn, (TINY / "rows.sql").read_text(), FLUSH_STATS, "SELECT 1")
    if rows and analyze:
        # VACUUM too, not only ANALYZE: an Index Only Scan needs the visibility map.
        _execute(dsn, "VACUUM ANALYZE items")


def _out() -> tuple[Output, io.StringIO]:
    buffer = io.StringIO()
    return Output(stdout=buffer, stderr=io.StringIO(), show_progress=False), buffer


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny(pg_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The tiny schema with its rows, analyzed; read-only tests share it."""
    dsn = pg_server.create_database()
    try:
        _load_tiny(dsn)
        yield dsn
    finally:
        pg_server.drop_database(dsn)


@pytest.fixture
def tiny_own(database: str) -> str:
    """The tiny schema in a database of this test's own, for tests that break it."""
    _load_tiny(database)
    return database


# --- check files, no database ----------------------------------------------------------------


@pytest.mark.parametrize(("statement", "expected"), [
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);",
     IndexName("orders_customer_idx")),
    ('create unique index concurrently "Odd Name" on "Sales".orders (id)', IndexName("Odd Name", "Sales")),
    ("CREATE INDEX Mixed_Case ON ONLY app.t USING gin (doc)", IndexName("mixed_case", "app")),
    ("-- CREATE INDEX not_this ON t (a)\nCREATE INDEX\n  this_one\n  ON t (a)", IndexName("this_one")),
    ("SELECT 1", None),
])
def test_created_index_name(statement: str, expected: IndexName | None) -> None:
    assert created_index(statement) == expected


def test_created_index_name_ambiguous_or_missing() -> None:
    with pytest.raises(ValueError, match="no index name"):
        created_index("CREATE INDEX ON t (a)")
    with pytest.raises(ValueError, match="several"):
        created_index("CREATE INDEX a ON t (a); CREATE INDEX b ON t (b);")
    assert parse_index_name('public."Idx"') == IndexName("Idx", "public")
    assert parse_index_name("not an index") is None


def test_check_file_headers(tmp_path: Path) -> None:
    path = _write(tmp_path, "orders.sql", "-- verify: SELECT 1 FROM t WHERE a = 1;\n-- VERIFY: SELECT 2\n"
                  "-- expect-node: index only scan\n-- max-ms: 2.5\nCREATE INDEX t_a ON t (a);\n")
    first, second = parse_check_file(path)
    assert (first.name, second.name) == ("orders#1", "orders#2")
    assert first.query == "SELECT 1 FROM t WHERE a = 1"
    assert (first.index, first.expect_node, first.max_ms, first.problem) == (
        IndexName("t_a"), "Index Only Scan", 2.5, None)
    (bad,) = parse_check_file(_write(tmp_path, "bad.sql", "-- verify: SELECT 1\n-- expect-node: Seq Scan\n"
                                     "-- max-ms: soon\n-- verify-index: t_a\n"))
    assert "expect-node" in bad.problem and "max-ms" in bad.problem  # type: ignore[operator]


def test_bad_directories_are_config_errors(tmp_path: Path) -> None:
    target = _target("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ConfigError, match="does not exist"):
        verify(target, [tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no .sql files"):
        verify(target, [tmp_path / "empty"])
    _write(tmp_path / "a", "same.sql", "-- verify: SELECT 1\n")
    _write(tmp_path / "b", "same.sql", "-- verify: SELECT 1\n")
    with pytest.raises(ConfigError, match="two check files"):
        load_checks([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ConfigError, match="max_regression"):
        verify(target, [CHECKS], max_regression=1.0)


def test_unreachable_database(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionFailed):
        verify(_target(f"postgresql://postgres:secret@127.0.0.1:{port}/x?connect_timeout=2"), [CHECKS])


# --- the tiny scenario -------------------------------------------------------------------------


def test_tiny_checks_pass(tiny: str) -> None:
    report = verify(_target(tiny), [CHECKS])
    assert [c.name for c in report.checks] == TINY_NAMES
    assert report.ok, [(c.name, c.reason, c.plan) for c in report.failed]
    sku = report.get("items_sku#1")
    assert sku.node == "Index Only Scan" and sku.indexes_used == ["items_sku_idx"]
    assert sku.cost is not None and sku.ms is None  # plain EXPLAIN: nothing executed
    assert report.get("items_by_id").expected_index == "items_pkey"


def test_planner_choice_fails_where_can_use_passes(tiny: str, tmp_path: Path) -> None:
    # Every row matches: the planner rightly prefers a seq scan, yet the index could serve it.
    _write(tmp_path, "broad.sql", "-- verify-index: items_category_idx\n"
           "-- verify: SELECT id FROM items WHERE category >= 0\n")
    (check,) = verify(_target(tiny), [tmp_path]).checks
    assert not check.passed and check.node == "Seq Scan"
    assert "does not use items_category_idx" in check.reason  # type: ignore[operator]
    assert "the planner prefers Seq Scan on items" in check.hint  # type: ignore[operator]
    assert "Seq Scan on items" in check.plan  # type: ignore[operator]
    assert verify(_target(tiny), [tmp_path], can_use=True).ok


def test_stale_statistics_are_named(database: str) -> None:
    _execute(database, (TINY / "schema.sql").read_text(),
             "ALTER TABLE items SET (autovacuum_enabled = false)")  # no ANALYZE behind our back
    # Analyzed while every row was in category 42, then spread out: the planner still expects
    # "category = 42" to match the whole table, and scans it.
    _execute(database, "INSERT INTO items SELECT g, 42, 'sku-' || g, 1 FROM generate_series(1, 20000) g",
             FLUSH_STATS, "SELECT 1")
    _execute(database, "ANALYZE items")
    _execute(database, "UPDATE items SET category = id % 500", FLUSH_STATS, "SELECT 1")
    check = verify(_target(database), [CHECKS]).get("items_category")
    assert not check.passed and check.stale_tables == ["items (20000 rows changed since its last ANALYZE)"]
    assert "run ANALYZE items (verify never analyzes for you)" in check.hint  # type: ignore[operator]
    with psycopg.connect(database) as conn:  # and verify did not analyze either
        assert conn.execute("SELECT n_mod_since_analyze FROM pg_stat_user_tables").fetchone() == (20000,)


def test_type_mismatch_is_named(tiny: str, tmp_path: Path) -> None:
    # integer = numeric: the column is cast, so no integer index can match, not even with can_use.
    _write(tmp_path, "cast.sql", "-- verify-index: items_category_idx\n"
           "-- verify: SELECT id FROM items WHERE category = 42.0\n")
    (check,) = verify(_target(tiny), [tmp_path], can_use=True).checks
    assert not check.passed
    assert "casts or re-collates the indexed column" in check.hint  # type: ignore[operator]
    assert "::numeric" in check.hint  # type: ignore[operator]


def test_can_use_on_empty_database(database: str, tmp_path: Path) -> None:
    _load_tiny(database, rows=False)
    folder = tmp_path / "checks"
    shutil.copytree(CHECKS, folder)
    # Each node type can be asked for; the other ways to read the index are then priced out.
    _write(folder, "bitmap.sql", "-- verify-index: items_category_idx\n-- expect-node: Bitmap Index Scan\n"
           "-- verify: SELECT * FROM items WHERE category IN (1, 2)\n")
    _write(folder, "plain.sql", "-- verify-index: items_sku_idx\n-- expect-node: Index Scan\n"
           "-- verify: SELECT price FROM items WHERE sku = 'x'\n")
    report = verify(_target(database), [folder], can_use=True)
    assert report.ok, [(c.name, c.reason, c.plan) for c in report.failed]
    assert {c.name: c.node for c in report.checks}["bitmap"] == "Bitmap Index Scan"


def test_dropped_index_fails_with_hint(tiny_own: str) -> None:
    _execute(tiny_own, "DROP INDEX items_category_idx")
    report = verify(_target(tiny_own), [CHECKS])
    assert [c.name for c in report.failed] == ["items_category"]
    check = report.get("items_category")
    assert check.reason == "expected index items_category_idx does not exist"
    assert "dbtune apply" in check.hint  # type: ignore[operator]


def test_invalid_index_is_reported(tiny_own: str) -> None:
    # What an interrupted CREATE INDEX CONCURRENTLY leaves behind.
    _execute(tiny_own, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'items_category_idx'::regclass")
    report = verify(_target(tiny_own), [CHECKS], can_use=True)
    check = report.get("items_category")
    assert not check.passed and "INVALID" in check.reason  # type: ignore[operator]
    assert "`dbtune apply` drops and rebuilds it" in check.hint  # type: ignore[operator]
    assert len(report.passed) == len(TINY_NAMES) - 1


def test_bad_files_are_failed_checks(tiny: str, tmp_path: Path) -> None:
    folder = tmp_path / "checks"
    shutil.copytree(CHECKS, folder)
    _write(folder, "no_query.sql", "CREATE INDEX CONCURRENTLY IF NOT EXISTS x_idx ON items (price);\n")
    _write(folder, "no_index.sql", "-- verify: SELECT 1\n")
    _write(folder, "syntax.sql", "-- verify-index: items_pkey\n-- verify: SELEC id FROM items\n")
    _write(folder, "missing_table.sql", "-- verify-index: items_pkey\n-- verify: SELECT * FROM nowhere WHERE id = 1\n")
    _write(folder, "missing_column.sql", "-- verify-index: items_pkey\n-- verify: SELECT nope FROM items\n")
    _write(folder, "writes.sql", "-- verify-index: items_pkey\n-- verify: DELETE FROM items WHERE id = 5\n")
    _write(folder, "two.sql", "-- verify-index: items_pkey\n-- verify: SELECT 1; COMMIT; DELETE FROM items\n")
    report = verify(_target(tiny), [folder], analyze=True)
    failed = {c.name: c for c in report.failed}
    assert sorted(failed) == ["missing_column", "missing_table", "no_index", "no_query", "syntax", "two", "writes"]
    assert failed["two"].reason == "the -- verify: line holds several statements; a check is one query"
    assert [c.name for c in report.passed] == TINY_NAMES
    assert failed["no_query"].reason == "no -- verify: line"
    assert failed["no_index"].reason.startswith("no expected index")  # type: ignore[union-attr]
    assert failed["syntax"].sqlstate == "42601" and "does not parse" in failed["syntax"].reason  # type: ignore[operator]
    assert failed["missing_table"].sqlstate == "42P01"
    assert 'relation "nowhere" does not exist' in failed["missing_table"].reason  # type: ignore[operator]
    assert failed["missing_column"].sqlstate == "42703"
    # EXPLAIN ANALYZE would have run the DELETE: the READ ONLY transaction refuses it.
    assert failed["writes"].sqlstate == "25006" and "writes" in failed["writes"].reason  # type: ignore[operator]
    with psycopg.connect(tiny) as conn:
        assert conn.execute("SELECT count(*) FROM items WHERE id = 5").fetchone() == (1,)


def test_a_query_cannot_escape_its_read_only_transaction(tiny: str) -> None:
    # Past the file parser's own guard: the server itself refuses a second command.
    sneaky = Check(name="sneaky", file=Path("sneaky.sql"), query="SELECT 1; COMMIT; DELETE FROM items WHERE id = 6",
                   index=IndexName("items_pkey"))
    with psycopg.connect(tiny, autocommit=True) as conn:
        (result,) = run_checks(conn, [sneaky], analyze=True)
        assert not result.passed and result.sqlstate == "42601"
        assert conn.execute("SELECT count(*) FROM items WHERE id = 6").fetchone() == (1,)


def test_analyze_reports_time_buffers_and_max_ms(tiny: str, tmp_path: Path) -> None:
    _write(tmp_path, "fast.sql", "-- verify-index: items_pkey\n-- verify: SELECT * FROM items WHERE id = 7\n")
    _write(tmp_path, "impossible.sql", "-- verify-index: items_pkey\n-- max-ms: 0.000001\n"
           "-- verify: SELECT * FROM items WHERE id = 8\n")
    report = verify(_target(tiny), [tmp_path], analyze=True)
    fast, impossible = report.get("fast"), report.get("impossible")
    assert fast.passed and fast.ms is not None and fast.ms > 0
    assert fast.shared_hit is not None and fast.shared_read is not None
    assert not impossible.passed and "over its -- max-ms: 1e-06" in impossible.reason  # type: ignore[operator]
    assert verify(_target(tiny), [tmp_path]).ok  # max-ms is only checked when the query runs


def test_baseline_catches_plan_regression(tiny_own: str, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    save_baseline(verify(_target(tiny_own), [CHECKS], analyze=True), path)
    assert {c["name"] for c in json.loads(path.read_text())["checks"]} == set(TINY_NAMES)
    _execute(tiny_own, "DROP INDEX items_category_idx")
    report = verify(_target(tiny_own), [CHECKS], analyze=True, baseline=load_baseline(path))
    assert [c.name for c in report.failed] == ["items_category"]
    check = report.get("items_category")
    assert check.reason.startswith("expected index items_category_idx does not exist; plan regression: "  # type: ignore[union-attr]
                                   "the baseline used items_category_idx")
    assert check.baseline_plan is not None and check.baseline_plan.endswith("using items_category_idx on items")


def test_baseline_catches_time_regression(tiny: str, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    save_baseline(verify(_target(tiny), [CHECKS], analyze=True), path)
    data = json.loads(path.read_text())
    for entry in data["checks"]:
        entry["ms"] = 1e-6  # as if every query once took a nanosecond
    path.write_text(json.dumps(data))
    baseline = load_baseline(path)
    report = verify(_target(tiny), [CHECKS], analyze=True, baseline=baseline, regression_floor_ms=0.0)
    assert not report.ok
    assert all("time regression" in c.reason for c in report.checks)  # type: ignore[operator]
    # The default floor ignores sub-millisecond noise.
    assert verify(_target(tiny), [CHECKS], analyze=True, baseline=baseline).ok
    with pytest.raises(ConfigError):
        path.write_text("{}")
        load_baseline(path)


def test_render_table_json_and_comparison(tiny: str, tmp_path: Path) -> None:
    folder = tmp_path / "checks"
    shutil.copytree(CHECKS, folder)
    _write(folder, "broad.sql",
           "-- verify-index: items_category_idx\n-- verify: SELECT id FROM items WHERE category >= 0\n")
    report = verify(_target(tiny), [folder], analyze=True)
    out, buffer = _out()
    render(report, out)
    text = buffer.getvalue()
    assert "PASS" in text and "FAIL broad" in text and "buffers hit/read" in text
    assert "  hint:   the planner prefers Seq Scan on items" in text and "  plan:\n    Seq Scan on items" in text
    assert "5 checks (planner's choice, EXPLAIN ANALYZE): 4 passed, 1 failed" in text

    out, buffer = _out()
    render(report, out, fmt="json")
    data = json.loads(buffer.getvalue())
    assert data["ok"] is False and data["failed"] == 1
    assert {c["name"]: c["passed"] for c in data["checks"]}["broad"] is False

    baseline = save_baseline(report, tmp_path / "before.json")
    out, buffer = _out()
    render_comparison(baseline, verify(_target(tiny), [folder], analyze=True), out)
    lines = buffer.getvalue().splitlines()
    assert lines[0].split()[:3] == ["check", "plan", "before"] and len(lines) == 2 + 5
    out, buffer = _out()
    render_comparison(baseline, report, out, fmt="json")
    assert json.loads(buffer.getvalue())[0]["check"] == "broad"


# --- the shipped checks on the reference schema --------------------------------------------------

REFERENCE_SCHEMA = sql_path("schema", "reference_schema.sql")
REFERENCE_SCALE = 0.05
SHIPPED = sql_path("indexes")
_have_reference = REFERENCE_SCHEMA.is_file() and any(SHIPPED.glob("*.sql"))
needs_reference = pytest.mark.skipif(not _have_reference, reason="no reference schema or shipped index files")


def _reference_schema(dsn: str) -> None:
    _execute(dsn, REFERENCE_SCHEMA.read_text(), "CREATE EXTENSION IF NOT EXISTS pg_trgm",
             "CREATE EXTENSION IF NOT EXISTS btree_gin")


def _shipped_indexes(dsn: str) -> None:
    # CREATE INDEX CONCURRENTLY cannot run in a transaction block: one autocommit statement per file.
    import sqlparse

    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in sorted(SHIPPED.glob("*.sql")):
            for statement in sqlparse.split(sqlparse.format(path.read_text(), strip_comments=True)):
                if statement.strip():
                    conn.execute(statement)  # type: ignore[arg-type]


@pytest.mark.slow
@needs_reference
def test_shipped_checks_pass_on_seeded_reference(database: str) -> None:
    from dbtune.seed import seed

    _reference_schema(database)
    with psycopg.connect(database, autocommit=True) as conn:
        # 0.05 (vendors: 100 rows, users: 1,100) is the smallest scale at which the planner picks
        # every shipped index over a seq scan on both servers; below it the small tables fit a page or two.
        seed(conn, REFERENCE_SCALE)
        conn.execute(FLUSH_STATS)
        conn.execute("SELECT 1")
    _shipped_indexes(database)
    _execute(database, "VACUUM ANALYZE")
    report = verify(_target(database))
    assert report.checks and report.ok, [(c.name, c.reason, c.hint, c.plan) for c in report.failed]


@pytest.mark.slow
@needs_reference
def test_shipped_checks_can_use_on_empty_reference(database: str) -> None:
    _reference_schema(database)
    _shipped_indexes(database)
    report = verify(_target(database), can_use=True)
    assert report.checks and report.ok, [(c.name, c.reason, c.hint, c.plan) for c in report.failed]


def test_the_table_fits_120_columns_and_repeats_no_column(tiny: str, tmp_path: Path) -> None:
    """The check name is the index name for most checks: the index column only shows where they differ."""
    folder = tmp_path / "checks"
    folder.mkdir()
    _write(folder, "items_category_idx.sql", "-- verify-index: items_category_idx\n"
           "-- verify: SELECT id FROM items WHERE category = 3 AND sku <> '" + "x" * 150 + "'\n")
    out, buffer = _out()
    render(verify(_target(tiny), [folder], analyze=True), out)
    lines = buffer.getvalue().splitlines()
    assert lines[0].split()[:2] == ["check", "result"]  # no "expected index" column: it would repeat the name
    assert max(len(line) for line in lines[:3]) <= 120
    assert "PASS" in lines[2] and " ms " in lines[2]  # times carry their unit

    out, buffer = _out()
    render(verify(_target(tiny), [CHECKS]), out)
    header = buffer.getvalue().splitlines()[0]
    assert "expected index (when not the check's name)" in header  # the tiny checks name other indexes
