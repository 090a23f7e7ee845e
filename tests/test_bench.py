"""The benchmarks still run: each part at a tiny scale, its JSON written. No timing is asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_the_chain_benchmark_runs(tmp_path: Path) -> None:
    results = bench(tmp_path, "--only", "chain", "--chain-rounds", "1")
    tools = results["chain"]["tools"]
    assert tools["dbtune"]["ok_runs"] == tools["alembic"]["ok_runs"] == 1  # type: ignore[index]
    assert results["chain"]["help"]["dbtune"] is not None  # type: ignore[index]
