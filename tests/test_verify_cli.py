"""`dbtune verify` on the command line: exit codes, shipped and own checks, baselines."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from tests.fix_cli import ROOT, run_cli


def _tiny(database: str, checks: Path) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE parcels (id int PRIMARY KEY, zone int NOT NULL, weight int NOT NULL)")
        conn.execute("INSERT INTO parcels SELECT i, i % 500, i % 70 FROM generate_series(1, 20000) i")
        conn.execute("CREATE INDEX ix_parcels_zone ON parcels (zone)")
        conn.execute("ANALYZE parcels")
    checks.mkdir()
    (checks / "parcels_zone.sql").write_text(
        "-- verify: SELECT id FROM parcels WHERE zone = 7\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_parcels_zone ON parcels (zone);\n")


def test_own_checks_pass_then_fail_when_the_index_goes(database: str, tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    _tiny(database, checks)
    ok = run_cli("verify", "--database-url", database, "--checks", str(checks), "--format", "json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["checks"][0]["passed"] is True
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DROP INDEX ix_parcels_zone")
    failed = run_cli("verify", "--database-url", database, "--checks", str(checks))
    assert failed.exit_code == 1
    assert "FAIL" in failed.stdout and "does not exist" in failed.stdout
    assert "Traceback" not in failed.output


def test_baseline_gate_and_comparison(database: str, tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    _tiny(database, checks)
    baseline = tmp_path / "base.json"
    saved = run_cli("verify", "--database-url", database, "--checks", str(checks), "--analyze",
                    "--save-baseline", str(baseline))
    assert saved.exit_code == 0, saved.output
    assert json.loads(baseline.read_text())["checks"][0]["name"] == "parcels_zone"
    compared = run_cli("verify", "--database-url", database, "--checks", str(checks), "--analyze",
                       "--compare", str(baseline))
    assert compared.exit_code == 0 and "speed-up" in compared.stdout
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DROP INDEX ix_parcels_zone")
    gated = run_cli("verify", "--database-url", database, "--checks", str(checks), "--baseline", str(baseline))
    assert gated.exit_code == 1


def test_bad_usage_exits_2(database: str, tmp_path: Path) -> None:
    missing = run_cli("verify", "--database-url", database, "--checks", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    not_a_baseline = tmp_path / "junk.json"
    not_a_baseline.write_text("{}")
    junk = run_cli("verify", "--database-url", database, "--baseline", str(not_a_baseline))
    assert junk.exit_code == 2 and "not a dbtune verify baseline" in junk.stderr


def test_shipped_checks_fail_on_a_database_without_the_indexes(database: str) -> None:
    assert run_cli("apply", "--database-url", database, "--to", "0002").exit_code == 0
    result = run_cli("verify", "--database-url", database, "--format", "json")
    assert result.exit_code == 1
    checks = json.loads(result.stdout)["checks"]
    assert len(checks) == len(list((ROOT / "sql" / "indexes").glob("*.sql")))
    assert not any(check["passed"] for check in checks)
    assert all("does not exist" in check["reason"] for check in checks)
