"""--format openmetrics for report, refresh --status and status, read back with prometheus_client's own parser
and checked against the situation the test built; --output's atomic write; a fleet run's one exposition."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from psycopg import sql

from dbtune.publish import openmetrics
from tests.fix_cli import OWN_MIGRATIONS, run_cli
from tests.fix_db import OwnedDatabase, Server

OWN = ["--migrations", str(OWN_MIGRATIONS / "alembic.ini")]
# A database name a label must escape: a double quote and a backslash.
NAME = 'shop "eu" \\ 1'
UNREACHABLE = "postgresql://nobody:secret@127.0.0.1:1/nothing"


@pytest.fixture(scope="module")
def shop(pg_server: Server) -> Iterator[str]:
    """A database with two refreshed views (the newest refresh of ``ratios`` failed), an INVALID index
    left by a failed concurrent build, and the first of three own-migrations revisions applied."""
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(NAME)))
    dsn = pg_server.admin_dsn.rsplit("/", 1)[0] + "/" + quote(NAME, safe="")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE readings (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO readings SELECT i, 1 + i % 7 FROM generate_series(1, 1000) i")
        conn.execute("CREATE MATERIALIZED VIEW keyed AS SELECT v, count(*) AS n FROM readings GROUP BY v")
        conn.execute("CREATE UNIQUE INDEX keyed_v ON keyed (v)")
        conn.execute("CREATE MATERIALIZED VIEW ratios AS SELECT id, 100 / v AS r FROM readings")
        conn.execute("CREATE UNIQUE INDEX ratios_id ON ratios (id)")
        with pytest.raises(psycopg.errors.UniqueViolation):  # leaves the index behind, INVALID
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY readings_v_unique ON readings (v)")
    for args in (["--setup"], ["--all"], ["--all"]):
        assert run_cli("refresh", *args, "--database-url", dsn).exit_code == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO readings VALUES (5000, 0)")  # the next refresh of ratios divides by zero
    assert run_cli("refresh", "ratios", "--database-url", dsn).exit_code == 1
    assert run_cli("apply", "--to", "a1", *OWN, "--database-url", dsn).exit_code == 0
    yield dsn
    pg_server.drop_database(dsn)


def parsed(text: str) -> dict[str, object]:
    """The exposition read by prometheus_client (which raises on anything malformed), by family name."""
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for f in families.values():
        assert f.name.startswith("dbtune_") and f.documentation, f  # every family has its # HELP
        assert f.unit == ("seconds" if f.name.endswith("_seconds") else "ratio" if f.name.endswith("_ratio") else "")
    return families  # type: ignore[return-value]


def values(family: object, *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels[k] for k in keys): s.value for s in family.samples}  # type: ignore[attr-defined]


def json_of(*args: str) -> object:
    result = run_cli(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_report_metrics_match_the_json_report_and_escape_the_database_name(shop: str, tmp_path: Path) -> None:
    doc = json_of("report", "--database-url", shop)
    target = tmp_path / "dbtune.prom"
    result = run_cli("report", "--format", "openmetrics", "--output", str(target), "--database-url", shop)
    assert result.exit_code == 0 and result.stdout == "", result.output
    found = parsed(target.read_text())
    assert values(found["dbtune_report_health_score"], "database") == {(NAME,): doc["score"]}  # type: ignore[index]
    assert values(found["dbtune_report_health_grade"], "database", "grade") == {(NAME, doc["grade"]): 1}  # type: ignore[index]
    counts = values(found["dbtune_report_findings"], "section", "severity")
    assert len(counts) == 2 * len(doc["sections"])  # type: ignore[arg-type]
    for (section, severity), count in counts.items():
        assert count == sum(f["section"] == section and f["severity"] == severity for f in doc["findings"])  # type: ignore[index]
    assert counts[("invalid-indexes", "crit")] == 1
    assert values(found["dbtune_report_invalid_indexes"]) == {(): 1}
    ratios = values(found["dbtune_report_cache_hit_ratio"], "kind")
    assert set(ratios) == {("tables",), ("indexes",)} and all(0 <= v <= 1 for v in ratios.values())
    reset = values(found["dbtune_report_statistics_reset_timestamp_seconds"])[()]
    assert reset == pytest.approx(dt.datetime.fromisoformat(doc["stats_since"]).timestamp())  # type: ignore[arg-type]
    assert values(found["dbtune_report_statistics_age_seconds"])[()] > 0


def test_refresh_status_metrics_date_each_view_and_name_a_failed_refresh(shop: str) -> None:
    rows = {r["view"]: r for r in json_of("refresh", "--status", "--all", "--database-url", shop)}  # type: ignore[attr-defined]
    result = run_cli("refresh", "--status", "--all", "--format", "openmetrics", "--database-url", shop)
    assert result.exit_code == 0, result.output
    found = parsed(result.stdout)
    assert values(found["dbtune_refresh_history_available"], "database") == {(NAME,): 1}
    keys = ("schema", "view")
    assert set(values(found["dbtune_refresh_populated"], *keys)) == {("public", "keyed"), ("public", "ratios")}
    when = values(found["dbtune_refresh_last_success_timestamp_seconds"], *keys)
    took = values(found["dbtune_refresh_last_success_duration_seconds"], *keys)
    count = values(found["dbtune_refresh_last_success_rows"], *keys)
    for (schema, view), finished in when.items():
        row = rows[f"{schema}.{view}"]
        assert finished == dt.datetime.fromisoformat(row["last_refresh"]).timestamp()
        assert took[(schema, view)] == row["duration_s"] and count[(schema, view)] == row["rows"]
    assert count == {("public", "keyed"): 7, ("public", "ratios"): 1000}
    assert all(age >= 0 for age in values(found["dbtune_refresh_last_success_age_seconds"], *keys).values())
    outcomes = values(found["dbtune_refresh_last_outcome"], "view", "outcome", "mode")
    assert outcomes == {("keyed", "refreshed", "concurrently"): 1, ("ratios", "failed", "concurrently"): 1}


def test_status_metrics_count_pending_revisions_and_invalid_indexes(shop: str) -> None:
    result = run_cli("status", *OWN, "--format", "openmetrics", "--database-url", shop)
    assert result.exit_code == 0, result.output
    found = parsed(result.stdout)
    assert values(found["dbtune_status_pending_revisions"], "database") == {(NAME,): 2}  # a2 and a3
    assert values(found["dbtune_status_invalid_indexes"]) == {(): 1}
    assert values(found["dbtune_status_current_revision"], "revision") == {("a1",): 1}


def test_exposition_escapes_every_label_value_the_spec_names() -> None:
    family = openmetrics.Family("dbtune_x", "gauge", "a \\ help\nline")
    family.add(1.5, {"database": 'a"b\\c\nd'})
    found = parsed(openmetrics.exposition([family]))
    assert found["dbtune_x"].documentation == "a \\ help\nline"  # type: ignore[attr-defined]
    assert values(found["dbtune_x"], "database") == {('a"b\\c\nd',): 1.5}


def test_output_replaces_the_file_atomically_and_a_failed_run_keeps_the_old_one(shop: str, tmp_path: Path) -> None:
    target = tmp_path / "dbtune.prom"
    target.write_text("old\n")
    inode = target.stat().st_mode, target.stat().st_ino
    umask = os.umask(0o027)
    try:
        assert run_cli("status", *OWN, "--format", "openmetrics", "-o", str(target), "--database-url", shop
                       ).exit_code == 0
    finally:
        os.umask(umask)
    assert target.stat().st_ino != inode[1]  # a new file renamed over the old one, not the old one rewritten
    assert target.stat().st_mode & 0o777 == 0o640  # readable by the collector's group, as the umask allows
    assert [p.name for p in tmp_path.iterdir()] == ["dbtune.prom"]  # no temporary file left beside it
    written = target.read_text()
    assert "dbtune_status_pending_revisions" in written
    failed = run_cli("report", "--format", "openmetrics", "-o", str(target), "--database-url", UNREACHABLE)
    assert failed.exit_code == 3 and "secret" not in failed.output
    assert target.read_text() == written  # the collector keeps the last good metrics
    missing = run_cli("report", "--format", "openmetrics", "-o", str(tmp_path / "no" / "m.prom"),
                      "--database-url", UNREACHABLE)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr  # refused before connecting
    refreshing = run_cli("refresh", "--format", "openmetrics", "--database-url", shop)
    assert refreshing.exit_code == 2 and "--status" in refreshing.stderr


def test_a_fleet_run_labels_each_target_in_one_exposition_and_one_page(
        shop: str, pg_server: Server, tmp_path: Path) -> None:
    other = pg_server.create_database()
    try:
        fleet = tmp_path / "fleet.toml"
        fleet.write_text("".join(f'[targets.{name}]\nurl = {json.dumps(url)}\n'
                                 for name, url in (("eu", shop), ("us", other), ("down", UNREACHABLE))))
        args = ["--targets", str(fleet), "--max-failures", "3"]
        report = run_cli("report", *args, "--format", "openmetrics", "-o", str(tmp_path / "r.prom"))
        assert report.exit_code == 3 and "secret" not in report.output, report.output
        found = parsed((tmp_path / "r.prom").read_text())
        assert values(found["dbtune_fleet_target_success"], "target") == {("eu",): 1, ("us",): 1, ("down",): 0}
        other_name = psycopg.conninfo.conninfo_to_dict(other)["dbname"]
        assert set(values(found["dbtune_report_health_score"], "target", "database")) == {
            ("eu", NAME), ("us", other_name)}
        status = run_cli("status", *OWN, *args, "--format", "openmetrics")
        pending = values(parsed(status.stdout)["dbtune_status_pending_revisions"], "target")
        assert pending == {("eu",): 2, ("us",): 3}
        refresh = run_cli("refresh", "--status", "--all", *args, "--format", "openmetrics")
        outcomes = values(parsed(refresh.stdout)["dbtune_refresh_last_outcome"], "target", "view", "outcome")
        assert outcomes == {("eu", "keyed", "refreshed"): 1, ("eu", "ratios", "failed"): 1}
        page = run_cli("report", *args, "--format", "html", "-o", str(tmp_path / "fleet.html"))
        assert page.exit_code == 3
        html = (tmp_path / "fleet.html").read_text()
        assert all(f'id="target-{name}"' in html for name in ("eu", "us", "down"))
        assert "secret" not in html
        assert html.count('id="t1-health"') == 1 and 'id="t3-health"' not in html  # down has no report
        ids = re.findall(r' id="([^"]+)"', html)  # each part's sections under its own name, each link found
        assert len(ids) == len(set(ids)) and set(re.findall(r'href="#([^"]+)"', html)) <= set(ids)
        assert "No refresh history to show: dbtune.refresh_history does not exist" in html  # target us
    finally:
        pg_server.drop_database(other)


def test_the_owner_and_a_cron_role_that_may_not_read_the_history_get_metrics_and_a_page(
        owned_database: OwnedDatabase, tmp_path: Path) -> None:
    """Where most teams run it: the owner role sets up and records refreshes; a monitoring role granted
    only the tables still gets its metrics and page, which name the grant that would date its refreshes,
    and once the owner grants it, the refreshes are there."""
    owner = owned_database.url
    cron = owned_database.other_role()  # before the tables: the default privileges give it them
    role = psycopg.conninfo.conninfo_to_dict(cron)["user"]
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("CREATE TABLE readings (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO readings SELECT i, 1 + i % 7 FROM generate_series(1, 100) i")
        conn.execute("CREATE MATERIALIZED VIEW keyed AS SELECT v, count(*) AS n FROM readings GROUP BY v")
        conn.execute("CREATE UNIQUE INDEX keyed_v ON keyed (v)")
    for args in (["--setup"], ["--all"]):
        assert run_cli("refresh", *args, "--database-url", owner).exit_code == 0

    def refresh_metrics(url: str) -> dict[str, object]:
        result = run_cli("refresh", "--status", "--all", "--format", "openmetrics", "--database-url", url)
        password = psycopg.conninfo.conninfo_to_dict(url)["password"]
        assert result.exit_code == 0 and password not in result.output, result.output
        return parsed(result.stdout)

    def page(url: str) -> str:
        result = run_cli("report", "--format", "html", "-o", str(tmp_path / "page.html"), "--database-url", url)
        assert result.exit_code == 0, result.output
        return (tmp_path / "page.html").read_text()

    as_owner = refresh_metrics(owner)
    assert values(as_owner["dbtune_refresh_history_available"]) == {(): 1}
    assert values(as_owner["dbtune_refresh_last_outcome"], "view", "outcome") == {("keyed", "refreshed"): 1}
    assert "No refresh history" not in page(owner) and 'data-section="refreshes"' in page(owner)

    as_cron = refresh_metrics(cron)
    assert values(as_cron["dbtune_refresh_history_available"]) == {(): 0}
    assert values(as_cron["dbtune_refresh_populated"], "view") == {("keyed",): 1}
    assert not values(as_cron["dbtune_refresh_last_outcome"])  # type: ignore[arg-type]
    grant = f"may not read dbtune.refresh_history: its owner can run dbtune refresh --setup --grant {role}"
    assert grant in page(cron)
    score = run_cli("report", "--format", "openmetrics", "--database-url", cron)
    assert score.exit_code == 0 and "dbtune_report_health_score" in parsed(score.stdout), score.output

    assert run_cli("refresh", "--setup", "--grant", role, "--database-url", owner).exit_code == 0
    granted = refresh_metrics(cron)
    assert values(granted["dbtune_refresh_history_available"]) == {(): 1}
    assert values(granted["dbtune_refresh_last_outcome"], "view", "outcome") == {("keyed", "refreshed"): 1}
    assert grant not in page(cron)
