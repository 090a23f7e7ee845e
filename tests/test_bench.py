"""The benchmarks still run: each part at a tiny scale, its JSON written. No timing is asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import docs, provenance
from bench.chain import KINDS
from bench.startup import VERBS

ROOT = Path(__file__).resolve().parent.parent


def bench(tmp_path: Path, *args: str) -> dict[str, dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "bench", "--no-docs", "--results", str(tmp_path), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}


def test_the_index_refresh_and_report_benchmarks_run(tmp_path: Path) -> None:
    results = bench(tmp_path, "--only", "indexes", "--scale", "0.002", "--refresh-rounds", "1")
    runs = results["indexes"]["write_stall"]
    assert set(runs) >= {"dbtune apply", "psql CONCURRENTLY", "plain CREATE INDEX", "dbtune apply --jobs 2"}  # type: ignore[arg-type]
    assert all(r["errors"] == 0 for r in runs.values())  # type: ignore[union-attr, index]
    assert results["refresh"]["runs"]["plain REFRESH"][0]["reads"] > 0  # type: ignore[index]
    assert len(results["report"]["wall_s"]["dbtune report"]) == 5  # type: ignore[index, arg-type]
    assert "table_bloat_stats" in results["report"]["view_ms"]  # type: ignore[operator]


def test_the_growth_benchmark_runs(tmp_path: Path) -> None:
    results = bench(tmp_path, "--only", "growth", "--scales", "0.001")
    [run] = results["growth"]["runs"]  # type: ignore[misc]
    assert run["orders"] == 1000 and run["peak_rss_mb"] > 0  # type: ignore[index]


def test_the_chain_benchmark_runs_and_times_every_kind_of_revision(tmp_path: Path) -> None:
    results = bench(tmp_path, "--only", "chain", "--chain-rounds", "1", "--chain-revisions", "30")
    assert results["chain"]["revisions"] == 30
    tools = results["chain"]["tools"]
    assert tools["dbtune"]["ok_runs"] == tools["alembic"]["ok_runs"] == 1  # type: ignore[index]
    assert results["chain"]["help"]["dbtune"] is not None  # type: ignore[index]
    for tool in ("alembic", "dbtune"):
        timeline = results["chain"]["timeline"][tool]  # type: ignore[index]
        assert timeline["ok"] and set(timeline["kind_mean_ms"]) == set(KINDS)  # type: ignore[index, arg-type]
        assert all(ms is not None and ms > 0 for ms in timeline["kind_mean_ms"].values())  # type: ignore[index, union-attr]


def test_the_start_up_benchmark_runs(tmp_path: Path) -> None:
    results = bench(tmp_path, "--only", "startup", "--startup-rounds", "1")
    startup = results["startup"]
    assert set(startup["ratio"]) == set(VERBS)  # type: ignore[arg-type]
    codes = startup["exit_codes"]
    assert codes["report"] == codes["refresh --status"] == codes["program"] == [0]  # type: ignore[index]
    # Every finished run timed (verify's verdict may be 1 at this scale), no other code among them.
    assert all(set(c) <= {0, 1} for c in codes.values()), codes  # type: ignore[union-attr]
    assert len(startup["wall_s"]["program"]) == len(VERBS) + 1  # type: ignore[index, arg-type]


def test_the_fleet_benchmark_runs(tmp_path: Path) -> None:
    results = bench(tmp_path, "--only", "fleet", "--fleet-rounds", "1", "--fleet-databases", "2",
                    "--fleet-many", "3")
    fleet = results["fleet"]
    assert set(fleet["median_s"]) == {"apply", "status"}  # type: ignore[arg-type]
    assert set(fleet["throughput"]["runs"]) == {"1", "4", "8"}  # type: ignore[index, arg-type]
    assert fleet["throughput"]["databases"] == 3  # type: ignore[index]


def test_each_results_file_says_which_code_it_measured(tmp_path: Path) -> None:
    """The commit and every part of the code are recorded; the page names what changed after the run."""
    recorded = provenance.snapshot()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert recorded["commit"] == commit
    assert {"src/dbtune/fleet.py", "src/dbtune/online", "bench/chain.py", "sql", "migrations"} <= set(recorded["code"])
    assert "bench/results" not in recorded["code"]
    assert provenance.changed_since(recorded, provenance.code_ids()) == []
    later = {**recorded["code"], "src/dbtune/online": "0" * 40}
    assert provenance.changed_since(recorded, later) == ["src/dbtune/online"]
    assert "changed since: src/dbtune/online." in docs._provenance({"code": recorded}, later)
    # The median of an even count is the mean of the middle two.
    assert docs._median([1.0, 2.0, 10.0, 20.0]) == 6.0


# Each command in a fresh interpreter: its exit code, and whether Alembic or SQLAlchemy got imported.
_IMPORTS = """
import sys
from dbtune.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="dbtune")
    code = 0
except SystemExit as exc:
    code = exc.code
print(code, sorted({m.split(".")[0] for m in sys.modules} & {"alembic", "sqlalchemy"}), file=sys.stderr)
"""


def test_the_verbs_that_run_no_migration_import_neither_alembic_nor_sqlalchemy(database: str) -> None:
    for argv in (["report", "--format", "json"], ["refresh", "--status", "--all", "--format", "json"],
                 ["refresh", "--all"],
                 ["maintain", "--dry-run"], ["verify"], ["config", "diff", "--memory", "2GB", "--cpus", "2"],
                 ["config", "render", "--memory", "2GB", "--cpus", "2"]):
        done = subprocess.run([sys.executable, "-c", _IMPORTS, *argv], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "DBTUNE_DATABASE_URL": database})
        code, imported = done.stderr.strip().splitlines()[-1].split(" ", 1)
        assert imported == "[]", (argv, imported)
        assert code in ("0", "1"), (argv, done.stderr)  # verify fails its checks on an empty database
