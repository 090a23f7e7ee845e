"""The monitoring views and `dbtune report`: each view shows the situation a test builds, on both servers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from dbtune.monitoring import views as monitoring
from dbtune.servers.throwaway import throwaway_server
from tests.fix_cli import run_cli, scalar
from tests.fix_db import _kinds
from tests.test_online import wait_until

SCHEMA = monitoring.SCHEMA


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_kind" in metafunc.fixturenames:
        metafunc.parametrize("server_kind", [k for k in _kinds(metafunc.config) if k in ("embedded", "system")])


def create_views(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        run = lambda q: (lambda cur: cur.fetchall() if cur.description else [])(conn.execute(q))  # noqa: E731
        monitoring.create_views(run, monitoring.facts(run))


@pytest.fixture
def monitored(database: str) -> Iterator[str]:
    """A database with the monitoring views and a table of 60,000 rows."""
    create_views(database)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, kind int, label text) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO items SELECT g, g % 50, repeat('x', 40) || g FROM generate_series(1, 60000) g")
        conn.execute("SELECT pg_stat_force_next_flush()")  # the inserts counted before ANALYZE sets the row count
        conn.execute("ANALYZE items")
    yield database


def rows(dsn: str, view: str) -> list[dict[str, object]]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(SCHEMA, view))).fetchall()


def report(dsn: str, *args: str) -> dict[str, object]:
    result = run_cli("report", *args, "--format", "json", "--database-url", dsn)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_slow_query_shows_in_slow_queries(monitored: str) -> None:
    with psycopg.connect(monitored, autocommit=True) as conn:
        for _ in range(2):
            conn.execute("SELECT pg_sleep(0.12) AS dbtune_slow_probe")
    slow = [r for r in rows(monitored, "slow_queries") if "dbtune_slow_probe" in str(r["query"])]
    assert len(slow) == 1 and slow[0]["calls"] == 2 and float(slow[0]["mean_ms"]) >= 120  # type: ignore[arg-type]
    found = report(monitored, "slow-queries")
    assert any("dbtune_slow_probe" in str(r["query"]) for r in found["sections"]["slow-queries"]["rows"])  # type: ignore[index]
    assert any(f["section"] == "slow-queries" for f in found["findings"])  # type: ignore[union-attr]


def test_slow_queries_rank_by_total_time_and_give_each_kind_the_advice_that_fits_it(monitored: str) -> None:
    # Every statement counts as slow here (--slow-ms 0): the fixture's INSERT ... SELECT is a bulk
    # load, its CREATE TABLE and ANALYZE are DDL and maintenance; then a query an index serves,
    # called three times, and one no index can serve.
    with psycopg.connect(monitored, autocommit=True) as conn:
        for kind in (1, 2, 3):
            conn.execute("SELECT label FROM items WHERE kind = %s ORDER BY id", [kind])
        conn.execute("SELECT count(*) AS dbtune_every_row FROM items")
    found = report(monitored, "slow-queries", "--slow-ms", "0", "--limit", "50")
    shown = found["sections"]["slow-queries"]["rows"]  # type: ignore[index]
    totals = [float(r["total_ms"]) for r in shown]
    assert totals == sorted(totals, reverse=True) and all(r["calls"] >= 1 for r in shown)
    assert {r["kind"] for r in shown} <= {"query", "update", "delete", "insert", "bulk load", "unparsable"}
    by_text = {" ".join(str(r["query"]).split()): r for r in shown}
    indexed = by_text["SELECT label FROM items WHERE kind = $1 ORDER BY id"]
    assert indexed["calls"] == 3 and indexed["kind"] == "query" and indexed["index_may_help"]
    assert indexed["advice"] == ("an index on items (kind, id) may serve it: dbtune advise --write-revision "
                                 "proves it with the planner and writes it")
    every_row = by_text["SELECT count(*) AS dbtune_every_row FROM items"]
    assert not every_row["index_may_help"] and every_row["advice"].startswith("no condition, join or sort")
    [load] = [r for r in shown if str(r["query"]).startswith("INSERT INTO items SELECT")]
    assert load["kind"] == "bulk load" and load["advice"] == "a bulk load (INSERT ... SELECT or COPY): not index work"
    # Findings for what an index or a closer look can fix; none for the one-off load.
    fixes = {f["what"].rsplit("queryid ", 1)[1].rstrip(")"): f["fix"] for f in found["findings"]}  # type: ignore[union-attr]
    assert fixes[str(indexed["queryid"])] == indexed["advice"]
    assert fixes[str(every_row["queryid"])].endswith("EXPLAIN (ANALYZE, BUFFERS) it to see where the time goes")
    assert str(load["queryid"]) not in fixes
    text = run_cli("report", "slow-queries", "--slow-ms", "0", "--limit", "50", "--database-url", monitored)
    assert text.exit_code == 0 and "bulk load" in text.stdout and "an index on items (kind, id)" in text.stdout


def test_a_never_used_index_shows_unused_but_fresh_statistics_are_not_judged(monitored: str) -> None:
    with psycopg.connect(monitored, autocommit=True) as conn:
        conn.execute("CREATE INDEX ix_items_label ON items (label)")  # about 3 MB, never scanned
        conn.execute("CREATE UNIQUE INDEX ux_items_label_id ON items (label, id)")  # unique: never "unused"
    unused = {r["index_name"] for r in rows(monitored, "unused_indexes")}
    assert unused == {"ix_items_label"}
    found = report(monitored, "unused-indexes")
    assert "too short to call an index unused" in found["sections"]["unused-indexes"]["note"]  # type: ignore[index]
    assert not [f for f in found["findings"] if f["section"] == "unused-indexes"]  # type: ignore[union-attr]


def test_duplicated_indexes_show_with_the_drop_that_fixes_them(monitored: str) -> None:
    with psycopg.connect(monitored, autocommit=True) as conn:
        conn.execute("CREATE INDEX ix_items_kind ON items (kind)")
        conn.execute("CREATE INDEX ix_items_kind_again ON items (kind)")
        conn.execute("CREATE INDEX ix_items_kind_label ON items (kind, label)")
        conn.execute("CREATE INDEX ix_items_kind_partial ON items (kind) WHERE id > 10")  # another predicate
    dupes = {(r["redundant_index"], r["covered_by"], r["reason"]) for r in rows(monitored, "duplicate_indexes")}
    assert ("ix_items_kind_again", "ix_items_kind", "identical") in dupes
    assert ("ix_items_kind", "ix_items_kind_label", "prefix") in dupes
    assert not any("partial" in str(d) for d in dupes)
    found = report(monitored, "duplicate-indexes")
    fixes = {f["fix"] for f in found["findings"]}  # type: ignore[union-attr]
    assert "DROP INDEX CONCURRENTLY public.ix_items_kind_again" in fixes


def test_a_cancelled_build_shows_invalid_and_a_running_one_does_not(monitored: str) -> None:
    holder = psycopg.connect(monitored)
    holder.execute("INSERT INTO items VALUES (0, 0, 'held')")  # an open write: a concurrent build waits for it
    builder = psycopg.connect(monitored, autocommit=True)
    thread = threading.Thread(target=lambda: _ignore_cancel(builder, "CREATE INDEX CONCURRENTLY ix_items_building "
                                                            "ON items (label)"))
    thread.start()
    try:
        wait_until(lambda: scalar(monitored, "SELECT count(*) FROM pg_stat_progress_create_index") == 1,
                   what="build to start")
        assert scalar(monitored, "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_building'::regclass")
        assert rows(monitored, "invalid_indexes") == []  # running right now: not a leftover
        scalar(monitored, "SELECT pg_cancel_backend(pid) FROM pg_stat_progress_create_index")
        thread.join()
    finally:
        holder.rollback()
        holder.close()
        builder.close()
    assert [r["index_name"] for r in rows(monitored, "invalid_indexes")] == ["ix_items_building"]
    found = report(monitored, "health")
    invalid = [f for f in found["findings"] if f["section"] == "invalid-indexes"]  # type: ignore[union-attr]
    assert invalid and invalid[0]["severity"] == "crit" and "ix_items_building" in invalid[0]["what"]
    assert found["score"] < 100  # type: ignore[operator]


def _ignore_cancel(conn: psycopg.Connection, statement: str) -> None:
    try:
        conn.execute(statement)  # type: ignore[arg-type]
    except psycopg.errors.QueryCanceled:
        pass


def test_mass_deletes_show_dead_tuples_and_lower_the_grade(monitored: str) -> None:
    before = report(monitored, "health")
    with psycopg.connect(monitored, autocommit=True) as conn:
        conn.execute("DELETE FROM items WHERE id % 2 = 0")
        conn.execute("SELECT pg_stat_force_next_flush()")
    wait_until(lambda: scalar(monitored, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'items'") >= 30000,
               what="the deletes to reach the statistics")
    [bloat] = [r for r in rows(monitored, "table_bloat_stats") if r["table_name"] == "items"]
    assert bloat["dead_tuples"] == 30000 and float(bloat["dead_pct"]) == pytest.approx(50.0, abs=0.1)  # type: ignore[arg-type]
    assert bloat["statistics"] == "estimated"
    after = report(monitored, "health", "--bloat-min-mb", "1")
    reasons = [f for f in after["findings"] if f["section"] == "bloat"]  # type: ignore[union-attr]
    assert reasons and "public.items" in reasons[0]["what"] and "dbtune maintain" in reasons[0]["fix"]
    assert after["score"] < before["score"]  # type: ignore[operator]


def test_a_table_never_analyzed_has_no_statistics(monitored: str) -> None:
    with psycopg.connect(monitored, autocommit=True) as conn:
        conn.execute("CREATE TABLE fresh (id int) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO fresh SELECT generate_series(1, 1000)")
    [fresh] = [r for r in rows(monitored, "table_bloat_stats") if r["table_name"] == "fresh"]
    assert fresh["statistics"] == "no statistics" and fresh["bloat_bytes"] is None


def test_missing_indexes_and_cache_ratio_answer(monitored: str) -> None:
    with psycopg.connect(monitored, autocommit=True) as conn:
        for _ in range(3):
            conn.execute("SELECT count(*) FROM items WHERE label = 'nothing'")
        conn.execute("SELECT pg_stat_force_next_flush()")
    wait_until(lambda: scalar(monitored, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'items'") >= 3,
               what="seq scans to reach the statistics")
    missing = {r["table_name"]: r for r in rows(monitored, "missing_indexes")}
    assert missing["items"]["seq_tup_read"] >= 3 * 60000  # type: ignore[operator]
    found = report(monitored, "missing-indexes", "--min-table-mb", "1")
    assert [f for f in found["findings"] if "public.items" in f["what"]]  # type: ignore[union-attr]
    assert {r["kind"] for r in rows(monitored, "cache_hit_ratio")} == {"tables", "indexes"}


def test_only_pg_monitor_reads_the_views_and_the_report_says_what_a_role_without_it_misses(monitored: str) -> None:
    role = f"watcher_{abs(hash(monitored)) % 10**6}"
    with psycopg.connect(monitored, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'w'").format(sql.Identifier(role)))
    try:
        params = psycopg.conninfo.conninfo_to_dict(monitored)
        as_role = psycopg.conninfo.make_conninfo(**{**params, "user": role, "password": "w"})
        with psycopg.connect(as_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(SCHEMA, "index_usage_stats")))
        # The report runs the queries itself: no view to read, so it answers, and says once what it cannot see.
        unprivileged = report(as_role, "health")
        assert unprivileged["grade"] in "ABCDF"
        [note] = unprivileged["notes"]  # type: ignore[misc]
        assert "grant it pg_monitor" in note
        with psycopg.connect(monitored, autocommit=True) as conn:
            conn.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(role)))
        assert rows(as_role, "index_usage_stats") is not None
        assert report(as_role, "health")["notes"] == []
    finally:
        with psycopg.connect(monitored, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_the_migration_creates_them_refuses_a_stranger_and_rollback_drops_them(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("CREATE TABLE {} (keep int)").format(sql.Identifier(SCHEMA, "slow_queries")))
    bundled = ["--migrations", "bundled", "--database-url", database]
    refused = run_cli("apply", *bundled)
    assert refused.exit_code == 1
    assert f"{SCHEMA}.slow_queries exists and dbtune did not create it" in refused.stderr
    assert "the database stays at 0008" in refused.stderr
    assert scalar(database, f"SELECT to_regclass('{SCHEMA}.slow_queries') IS NOT NULL")  # overwritten nothing
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
    applied = run_cli("apply", *bundled)
    assert applied.exit_code == 0, applied.output
    with psycopg.connect(database) as conn:
        views = {r[0] for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = %s", [SCHEMA])}
    assert views == set(monitoring.VIEWS)
    assert scalar(database, f"SELECT has_schema_privilege('pg_monitor', '{SCHEMA}', 'USAGE')")
    assert not scalar(database, f"SELECT has_table_privilege('public', '{SCHEMA}.slow_queries', 'SELECT')")
    rolled = run_cli("rollback", "--to", "0008", *bundled)
    assert rolled.exit_code == 0, rolled.output
    assert scalar(database, f"SELECT to_regnamespace('{SCHEMA}') IS NULL")


def test_without_pg_stat_statements_preloaded_every_other_report_works(server_kind: str) -> None:
    with throwaway_server(server_kind) as server:
        dsn = server.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            # The throwaway server's settings live in postgresql.auto.conf: RESET takes the line out.
            conn.execute("ALTER SYSTEM RESET shared_preload_libraries")
        server.stop()
        server.start()
        create_views(dsn)
        [row] = rows(dsn, "slow_queries")
        assert "shared_preload_libraries" in str(row["note"]) and row["query"] is None
        found = report(dsn, "health")
        assert "not preloaded" in found["sections"]["slow-queries"]["note"]  # type: ignore[index]
        assert found["sections"]["cache"]["rows"]  # type: ignore[index]
        text = run_cli("report", "slow-queries", "--database-url", dsn)
        assert text.exit_code == 0 and "shared_preload_libraries" in text.stdout

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        server.stop()
        server.start()
        repaired = run_cli("report", "--install-views", "--database-url", dsn)
        assert repaired.exit_code == 0, repaired.output
        assert all(r["note"] is None for r in rows(dsn, "slow_queries"))


def test_fail_on_exits_1_for_ci(monitored: str) -> None:
    with psycopg.connect(monitored, autocommit=True) as conn:
        conn.execute("CREATE INDEX ix_items_kind ON items (kind)")
        conn.execute("CREATE INDEX ix_items_kind_again ON items (kind)")
    assert run_cli("report", "duplicate-indexes", "--fail-on", "crit", "--database-url", monitored).exit_code == 0
    warned = run_cli("report", "duplicate-indexes", "--fail-on", "warn", "--database-url", monitored)
    assert warned.exit_code == 1 and "ix_items_kind_again" in warned.stdout
    markdown = run_cli("report", "duplicate-indexes", "--format", "markdown", "--database-url", monitored)
    assert "| table" in markdown.stdout and "## Duplicate indexes" in markdown.stdout
    csv = run_cli("report", "duplicate-indexes", "--format", "csv", "--database-url", monitored)
    assert "ix_items_kind_again" in csv.stdout and "," in csv.stdout


def test_the_report_needs_no_views_and_writes_nothing(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, kind int)")
        conn.execute("CREATE INDEX ix_items_kind ON items (kind)")
        conn.execute("CREATE INDEX ix_items_kind_again ON items (kind)")
        before = conn.execute("SELECT count(*) FROM pg_class").fetchone()[0]  # type: ignore[index]
    found = report(database, "health")
    assert [f["fix"] for f in found["findings"] if f["section"] == "duplicate-indexes"] == [  # type: ignore[union-attr]
        "DROP INDEX CONCURRENTLY public.ix_items_kind_again"]
    assert scalar(database, f"SELECT to_regnamespace('{SCHEMA}') IS NULL")
    assert scalar(database, "SELECT count(*) FROM pg_class") == before
    # The report's own session ran READ ONLY: what a hot standby allows.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
            sql.Identifier(conn.info.dbname)))
    assert report(database, "duplicate-indexes")["findings"]


def test_fixes_name_mixed_case_and_non_ascii_indexes_exactly(monitored: str) -> None:
    """Each printed DROP, run as printed, drops the index it names and no other."""
    names = ['"Ix_Kind"', '"ix_kind"', '"ïx_kind"', '"select"']  # same columns: three are redundant
    with psycopg.connect(monitored, autocommit=True) as conn:
        for name in names:
            conn.execute(f"CREATE INDEX {name} ON items (kind)")  # noqa: S608 - the test's own names
        conn.execute('CREATE INDEX "Ünused" ON items (label)')
    found = report(monitored, "duplicate-indexes", "unused-indexes")
    fixes = {f["fix"] for f in found["findings"] if f["section"] == "duplicate-indexes"}  # type: ignore[union-attr]
    assert fixes == {"DROP INDEX CONCURRENTLY public.ix_kind", 'DROP INDEX CONCURRENTLY public."ïx_kind"',
                     'DROP INDEX CONCURRENTLY public."select"'}
    [unused] = [r["fix"] for r in found["sections"]["unused-indexes"]["rows"]]  # type: ignore[index]
    assert unused == 'DROP INDEX CONCURRENTLY public."Ünused"'

    def indexes() -> set[str]:
        with psycopg.connect(monitored) as conn:
            return {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'items'")}

    for fix in [*fixes, unused]:
        before = indexes()
        with psycopg.connect(monitored, autocommit=True) as conn:
            conn.execute(fix)  # type: ignore[arg-type]
        assert len(before - indexes()) == 1, fix
    assert indexes() == {"items_pkey", "Ix_Kind"}  # the first built of the four identical ones stays


def test_a_non_superuser_owner_reads_the_report_and_installs_the_views(owned_database) -> None:  # type: ignore[no-untyped-def]
    url = owned_database.url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, kind int)")
        conn.execute("INSERT INTO items SELECT g, g % 5 FROM generate_series(1, 1000) g")
        conn.execute("ANALYZE items")
    found = report(url, "health")
    assert found["grade"] in "ABCDF" and found["notes"]
    installed = run_cli("report", "--install-views", "--database-url", url)
    assert installed.exit_code == 0, installed.output
    assert scalar(owned_database.admin_url, f"SELECT count(*) FROM pg_views WHERE schemaname = '{SCHEMA}'") == \
        len(monitoring.VIEWS)
    # The owner may not read pg_statistic: the bloat estimate comes from pg_stats, and still answers.
    [items] = [r for r in rows(url, "table_bloat_stats") if r["table_name"] == "items"]
    assert items["statistics"] == "estimated"
    other = owned_database.other_role()
    refused = run_cli("report", "--install-views", "--database-url", other)
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.output
    assert "database owner" in refused.stderr


def test_another_roles_build_in_progress_is_not_called_invalid_by_a_role_that_cannot_see_it(
        owned_database) -> None:  # type: ignore[no-untyped-def]
    owner = owned_database.url
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        conn.execute("INSERT INTO items SELECT g, 'x' || g FROM generate_series(1, 1000) g")
    colleague = owned_database.other_role(member_of_owner=True)  # a DBA building an index by hand
    holder = psycopg.connect(owner)
    holder.execute("INSERT INTO items VALUES (0, 'held')")  # an open write: the build waits for it
    builder = psycopg.connect(colleague, autocommit=True)
    thread = threading.Thread(target=lambda: _ignore_cancel(builder, "CREATE INDEX CONCURRENTLY ix_items_label "
                                                            "ON items (label)"))
    thread.start()
    try:
        wait_until(lambda: scalar(owned_database.admin_url,
                                  "SELECT count(*) FROM pg_stat_progress_create_index") == 1, what="build to start")
        assert scalar(owner, "SELECT relid IS NULL FROM pg_stat_progress_create_index")  # hidden from the owner
        found = report(owner, "invalid-indexes")
        assert found["sections"]["invalid-indexes"]["rows"] == []  # type: ignore[index]
        assert not found["findings"]
        scalar(owned_database.admin_url, "SELECT pg_cancel_backend(pid) FROM pg_stat_progress_create_index")
        thread.join()
    finally:
        holder.rollback()
        holder.close()
        builder.close()
    left = report(owner, "invalid-indexes")
    assert [r["index_name"] for r in left["sections"]["invalid-indexes"]["rows"]] == ["ix_items_label"]  # type: ignore[index]
