"""`dbtune refresh`: concurrently when possible, cron-safe, with a history PostgreSQL does not keep."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import pytest

from dbtune.maintenance.refresh import _LOCK_BASE
from tests.fix_cli import ROOT, run_cli, scalar
from tests.test_online import wait_until

T = TypeVar("T")


def execute(database: str, statement: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


@pytest.fixture
def views(database: str) -> str:
    """A table and four views over it: keyed (concurrent), unkeyed (plain), slow ones of each, one that can fail."""
    execute(database, """
        CREATE TABLE readings (id int PRIMARY KEY, v int NOT NULL);
        INSERT INTO readings SELECT i, 1 + i % 7 FROM generate_series(1, 1000) i;
        CREATE MATERIALIZED VIEW keyed AS SELECT v, count(*) AS n FROM readings GROUP BY v;
        CREATE UNIQUE INDEX keyed_v ON keyed (v);
        CREATE MATERIALIZED VIEW unkeyed AS SELECT v, count(*) AS n FROM readings GROUP BY v;
        CREATE MATERIALIZED VIEW slow_keyed AS
            SELECT r.v, count(*) AS n FROM readings r CROSS JOIN (SELECT pg_sleep(1.5)) s GROUP BY r.v WITH NO DATA;
        CREATE UNIQUE INDEX slow_keyed_v ON slow_keyed (v);
        CREATE MATERIALIZED VIEW slow_unkeyed AS
            SELECT r.v, count(*) AS n FROM readings r CROSS JOIN (SELECT pg_sleep(1.5)) s GROUP BY r.v WITH NO DATA;
        CREATE MATERIALIZED VIEW ratios AS SELECT id, 100 / v AS r FROM readings;
        CREATE UNIQUE INDEX ratios_id ON ratios (id);
    """)
    assert refresh(database, "--setup").exit_code == 0  # the history, once
    return database


def refresh(database: str, *args: str):
    return run_cli("refresh", "--database-url", database, *args)


def reader_waits_during(database: str, view: str) -> tuple[bool, int]:
    """Refresh ``view`` while a reader queries it in a loop: (was the reader ever blocked by a lock, reads done)."""
    reader = psycopg.connect(database, autocommit=True)
    reader_pid = reader.info.backend_pid
    stop = threading.Event()
    reads = [0]

    def read() -> None:
        while not stop.is_set():
            reader.execute(f"SELECT count(*) FROM {view}")  # noqa: S608 - a fixed test name
            reads[0] += 1

    result: list[object] = []
    refresher = threading.Thread(target=lambda: result.append(refresh(database, view)))
    reading = threading.Thread(target=read)
    reading.start()
    refresher.start()
    blocked = False
    with psycopg.connect(database, autocommit=True) as watcher:
        wait_until(lambda: watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                                           "'REFRESH MATERIALIZED VIEW%%' AND state = 'active'").fetchone()[0],
                   what="the refresh to start")
        reads_at_start = reads[0]
        while refresher.is_alive():
            waiting = watcher.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [reader_pid]).fetchone()[0]
            blocked = blocked or bool(waiting)
            refresher.join(timeout=0.05)
    stop.set()
    reading.join(timeout=30)
    reader.close()
    assert result and result[0].exit_code == 0, result  # type: ignore[union-attr]
    return blocked, reads[0] - reads_at_start


def test_readers_read_through_a_concurrent_refresh_and_wait_for_a_plain_one(views: str) -> None:
    assert refresh(views, "slow_keyed", "slow_unkeyed").exit_code == 0  # first population
    blocked, reads = reader_waits_during(views, "slow_keyed")
    assert not blocked and reads > 0, (blocked, reads)
    blocked, _ = reader_waits_during(views, "slow_unkeyed")
    assert blocked


def test_first_refresh_populates_then_refreshes_concurrently(views: str) -> None:
    first = refresh(views, "slow_keyed")
    assert first.exit_code == 0, first.output
    assert "populated plain" in first.stdout and "CONCURRENTLY needs a populated view" in first.stdout
    assert scalar(views, "SELECT sum(n) FROM slow_keyed") == 1000
    again = refresh(views, "slow_keyed")
    assert "refreshed concurrently" in again.stdout


def test_a_view_without_a_unique_index_falls_back_with_a_warning_or_fails_under_no_blocking(views: str) -> None:
    result = refresh(views, "unkeyed", "keyed")
    assert result.exit_code == 0, result.output
    assert "public.unkeyed: refreshing without CONCURRENTLY because it has no unique index" in result.stderr
    strict = refresh(views, "unkeyed", "keyed", "--no-blocking")
    assert strict.exit_code == 1, strict.output
    assert "public.unkeyed" in strict.stderr and "--no-blocking" in strict.stderr
    assert "public.keyed: refreshed concurrently" in strict.stdout  # the others go on


def test_a_view_another_run_is_refreshing_is_skipped(views: str) -> None:
    holder = psycopg.connect(views, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", [_LOCK_BASE | zlib.crc32(b"public.keyed")])
    try:
        both = refresh(views, "keyed", "unkeyed")
        alone = refresh(views, "keyed")
    finally:
        holder.close()
    assert both.exit_code == 0, both.output
    assert "public.keyed: skipped" in both.stdout and "is refreshing it now" in both.stdout
    assert alone.exit_code == 4, alone.output


def while_refreshing(database: str, view: str, meanwhile: Callable[[psycopg.Connection], T]) -> tuple[Any, T]:
    """Refresh ``view`` in a thread and, once its REFRESH runs, call ``meanwhile`` with a session of
    its own: (the refresh's result, what ``meanwhile`` returned)."""
    result: list[Any] = []
    refresher = threading.Thread(target=lambda: result.append(refresh(database, view)))
    refresher.start()
    try:
        with psycopg.connect(database, autocommit=True) as other:
            wait_until(lambda: other.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                                             "'REFRESH MATERIALIZED VIEW%%' AND state = 'active'").fetchone()[0],
                       what="the refresh to start")
            seen = meanwhile(other)
    finally:
        refresher.join(timeout=60)
    return result[0], seen


def test_one_session_holds_the_views_lock_refreshes_and_records_named_for_the_refresh(views: str) -> None:
    """One login a view: the session that runs the REFRESH is the one holding the view's lock (an
    overlapping run skips it), shows in pg_stat_activity as the refresh, and records the history row."""
    assert refresh(views, "slow_keyed").exit_code == 0  # populated: the next one runs concurrently
    done, sessions = while_refreshing(views, "slow_keyed", lambda watcher: watcher.execute(
        "SELECT a.application_name, a.query LIKE 'REFRESH MATERIALIZED VIEW%%', "
        "       EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' "
        "               AND l.granted AND ((l.classid::int8 << 32) | l.objid::int8) = %s) "
        "FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
        "  AND a.application_name LIKE 'dbtune%%'", [_LOCK_BASE | zlib.crc32(b"public.slow_keyed")]).fetchall())
    assert sessions == [("dbtune refresh slow_keyed", True, True)], sessions
    assert done.exit_code == 0, done.output
    assert scalar(views, "SELECT count(*) FROM dbtune.refresh_history WHERE view_name = 'public.slow_keyed'") == 2


@pytest.mark.parametrize("how", ["pg_cancel_backend", "pg_terminate_backend"])
def test_a_refresh_a_dba_cancels_or_ends_fails_in_one_line_and_is_recorded(views: str, how: str) -> None:
    """A DBA's pg_cancel_backend (no --timeout was given) or pg_terminate_backend on the refreshing session:
    exit 1 with the reason, the view keeps its contents, and the failure is in the history, written on a
    new session when the refresh's own was ended."""
    assert refresh(views, "slow_keyed").exit_code == 0
    failed, _ = while_refreshing(views, "slow_keyed", lambda dba: dba.execute(
        f"SELECT {how}(pid) FROM pg_stat_activity "  # noqa: S608 - one of two fixed names
        "WHERE query LIKE 'REFRESH MATERIALIZED VIEW%%' AND state = 'active'"))
    assert failed.exit_code == 1 and "Traceback" not in failed.output, failed.output
    expected = "cancelled by another session" if how == "pg_cancel_backend" else "terminat"
    assert expected in failed.stderr and "keeps its previous contents" in failed.stderr
    assert "not recorded" not in failed.output
    with psycopg.connect(views, autocommit=True) as conn:
        outcome, error = conn.execute("SELECT outcome, error FROM dbtune.refresh_history "
                                      "WHERE view_name = 'public.slow_keyed' ORDER BY id DESC LIMIT 1").fetchone()  # type: ignore[misc]
    assert outcome == "failed" and expected in error, (outcome, error)
    assert scalar(views, "SELECT sum(n) FROM slow_keyed") == 1000  # the previous contents


def test_if_older_than_skips_fresh_views(views: str) -> None:
    assert refresh(views, "keyed").exit_code == 0
    skipped = refresh(views, "keyed", "--if-older-than", "1h")
    assert skipped.exit_code == 0 and "skipped, refreshed" in skipped.stdout
    assert scalar(views, "SELECT count(*) FROM dbtune.refresh_history WHERE view_name = 'public.keyed'") == 1
    assert refresh(views, "keyed", "--if-older-than", "0s").exit_code == 0
    assert scalar(views, "SELECT count(*) FROM dbtune.refresh_history WHERE view_name = 'public.keyed'") == 2


def test_history_records_success_and_failure(views: str) -> None:
    assert refresh(views, "ratios").exit_code == 0
    execute(views, "INSERT INTO readings VALUES (5000, 0)")  # new data that divides by zero
    failed = refresh(views, "ratios")
    assert failed.exit_code == 1, failed.output
    assert "division by zero" in failed.stderr and "keeps its previous contents" in failed.stderr
    assert "Traceback" not in failed.output
    rows = scalar(views, "SELECT string_agg(outcome || ':' || coalesce(error, '-'), ',' ORDER BY id) "
                         "FROM dbtune.refresh_history WHERE view_name = 'public.ratios'")
    assert rows == "refreshed:-,failed:division by zero", rows
    assert scalar(views, "SELECT count(*) FROM ratios") == 1000  # the previous contents


def test_unknown_views_are_one_line_errors(views: str) -> None:
    for name in ("nope", "readings"):
        result = refresh(views, name)
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and "not a materialized view" in result.stderr


def test_status_shows_each_views_last_refresh(views: str) -> None:
    assert refresh(views, "keyed").exit_code == 0
    result = run_cli("refresh", "--database-url", views, "--all", "--status", "--format", "json")
    assert result.exit_code == 0, result.output
    import json

    rows = {row["view"]: row for row in json.loads(result.stdout)}
    assert rows["public.keyed"]["rows"] == 7 and rows["public.keyed"]["concurrently"] is True
    assert rows["public.slow_keyed"]["populated"] is False and rows["public.slow_keyed"]["last_refresh"] is None
    assert rows["public.unkeyed"]["concurrently"] is False and "no unique index" in rows["public.unkeyed"]["why_not"]


def test_history_is_pruned_to_keep(views: str) -> None:
    for _ in range(3):
        assert refresh(views, "keyed", "--keep", "2").exit_code == 0
    assert scalar(views, "SELECT count(*) FROM dbtune.refresh_history WHERE view_name = 'public.keyed'") == 2


def test_the_documented_crontab_line_runs_quietly(views: str) -> None:
    docs = (ROOT / "docs" / "refresh.md").read_text()
    [line] = [x for x in docs.splitlines()
              if re.match(r"^[*/0-9,-]+ [*/0-9,-]+ \S+ \S+ \S+ DBTUNE_DATABASE_URL=\S+ dbtune refresh", x)]
    command = line.split(None, 5)[5]
    command = re.sub(r"DBTUNE_DATABASE_URL=\S+", f"DBTUNE_DATABASE_URL='{views}'", command)
    env = {**os.environ, "PATH": f"{os.path.dirname(os.sys.executable)}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", command.replace("dbtune refresh", "dbtune refresh --all", 1)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # cron mails nothing on success
    assert scalar(views, "SELECT count(*) FROM dbtune.refresh_history") >= 5


def test_the_reference_views_refresh_from_the_reference_schema(database: str) -> None:
    env = {"DBTUNE_MIGRATIONS": "bundled"}
    assert run_cli("apply", "--database-url", database, "--to", "0002", env=env).exit_code == 0
    assert run_cli("seed", "--database-url", database, "--scale", "0.01", "--quiet").exit_code == 0
    applied = run_cli("apply", "--database-url", database, env=env)
    assert applied.exit_code == 0, applied.output
    first = run_cli("refresh", "--database-url", database)
    assert first.exit_code == 0, first.output
    assert first.stdout.count("populated plain") == 3
    assert scalar(database, "SELECT sum(order_count) FROM daily_revenue_summary") == \
        scalar(database, "SELECT count(*) FROM orders")
    assert scalar(database, "SELECT count(*) FROM vendor_performance_summary") == \
        scalar(database, "SELECT count(*) FROM vendors")
    second = run_cli("refresh", "--database-url", database, "--jobs", "2")
    assert second.exit_code == 0 and second.stdout.count("refreshed concurrently") == 3, second.output
    back = run_cli("rollback", "--database-url", database, "--to", "0006", env=env)
    assert back.exit_code == 0, back.output
    assert scalar(database, "SELECT count(*) FROM pg_matviews") == 0


def one_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_without_history_views_still_refresh_with_one_warning(database: str) -> None:
    execute(database, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);"
                      "CREATE MATERIALIZED VIEW v AS SELECT id FROM t; CREATE UNIQUE INDEX v_id ON v (id)")
    done = refresh(database, "v", "--quiet")
    assert done.exit_code == 0, done.output
    assert "refresh history not recorded" in one_line(done) and "dbtune refresh --setup" in done.stderr
    assert scalar(database, "SELECT to_regnamespace('dbtune') IS NULL")  # a run creates nothing
    status = refresh(database, "v", "--status")
    assert status.exit_code == 0 and "unknown" in status.stdout and "--setup" in one_line(status)
    setup = refresh(database, "--setup")
    assert setup.exit_code == 0 and "created dbtune.refresh_history" in setup.stdout, setup.output
    again = refresh(database, "--setup")
    assert again.exit_code == 0 and "already set up" in again.stdout
    recorded = refresh(database, "v")
    assert recorded.exit_code == 0 and recorded.stderr == "", recorded.output
    assert scalar(database, "SELECT count(*) FROM dbtune.refresh_history") == 1


def _role(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["user"]  # type: ignore[return-value]


@pytest.fixture
def cron(owned_database):  # type: ignore[no-untyped-def]
    """A view the owner made, handed to a cron role that is no member of the owner and may not CREATE."""
    url = owned_database.other_role()
    execute(owned_database.url, "CREATE TABLE readings (id int PRIMARY KEY, v int NOT NULL);"
                                "INSERT INTO readings SELECT i, i % 7 FROM generate_series(1, 100) i;"
                                "CREATE MATERIALIZED VIEW keyed AS SELECT v, count(*) AS n FROM readings GROUP BY v;"
                                "CREATE UNIQUE INDEX keyed_v ON keyed (v)")
    execute(owned_database.admin_url, f'ALTER MATERIALIZED VIEW keyed OWNER TO "{_role(url)}"')
    assert not scalar(owned_database.admin_url, "SELECT has_database_privilege(%s, current_database(), 'CREATE')",
                      [_role(url)])
    return owned_database, url


def test_a_cron_role_without_create_refreshes_and_records_once_the_owner_set_up_history(cron) -> None:  # type: ignore[no-untyped-def]
    owned, url = cron
    unrecorded = refresh(url, "keyed")
    assert unrecorded.exit_code == 0 and "does not exist" in one_line(unrecorded), unrecorded.output
    refused = refresh(url, "--setup")
    assert refused.exit_code == 2 and "database owner" in one_line(refused)
    assert refresh(owned.url, "--setup").exit_code == 0  # the owner, without granting
    ungranted = refresh(url, "keyed")
    assert ungranted.exit_code == 0 and f"--setup --grant {_role(url)}" in one_line(ungranted)
    granted = refresh(owned.url, "--setup", "--grant", _role(url))
    assert granted.exit_code == 0 and "may record refreshes" in granted.stdout, granted.output
    for _ in range(3):
        done = refresh(url, "keyed", "--keep", "2")
        assert done.exit_code == 0 and done.stderr == "", done.output
    assert scalar(owned.admin_url, "SELECT count(*) FROM dbtune.refresh_history") == 2  # pruned by the cron role
    status = run_cli("refresh", "--database-url", url, "keyed", "--status", "--format", "json")
    assert status.exit_code == 0 and status.stderr == "", status.output


def test_a_cron_role_given_the_schema_sets_history_up_itself(cron) -> None:  # type: ignore[no-untyped-def]
    """The documented way for a role without CREATE: CREATE SCHEMA dbtune AUTHORIZATION it, then --setup."""
    owned, url = cron
    execute(owned.admin_url, f'CREATE SCHEMA dbtune AUTHORIZATION "{_role(url)}"')
    setup = refresh(url, "--setup")
    assert setup.exit_code == 0 and "created dbtune.refresh_history" in setup.stdout, setup.output
    assert refresh(url, "keyed").stderr == ""
    assert refresh(url, "--setup").exit_code == 0  # every later run: nothing to create, nothing refused
    assert scalar(owned.admin_url, "SELECT count(*) FROM dbtune.refresh_history") == 1


def test_a_read_only_database_refreshes_nothing_in_one_line_and_status_still_reads(views: str) -> None:
    assert refresh(views, "keyed").exit_code == 0
    execute(views, "ALTER DATABASE " + psycopg.conninfo.conninfo_to_dict(views)["dbname"]  # type: ignore[operator]
            + " SET default_transaction_read_only = on")
    for args in (["keyed"], ["--setup"]):
        refused = refresh(views, *args)
        assert refused.exit_code == 2, refused.output
        line = one_line(refused)
        assert "read-only (default_transaction_read_only is on, set by the database (ALTER DATABASE" in line
        assert line.endswith("from a writable session"), line
    status = run_cli("refresh", "--database-url", views, "keyed", "--status", "--format", "json")
    assert status.exit_code == 0, status.output
    import json

    [row] = json.loads(status.stdout)
    assert row["rows"] == 7 and row["last_refresh"] is not None


def test_setup_granting_a_role_that_does_not_exist_keeps_nothing(database: str) -> None:
    refused = refresh(database, "--setup", "--grant", "no_such_role")
    assert refused.exit_code == 2, refused.output
    assert "cannot grant" in one_line(refused) and "no_such_role" in one_line(refused)
    # One transaction: the schema and table it created before the grant failed are gone with it.
    assert scalar(database, "SELECT to_regnamespace('dbtune') IS NULL")
