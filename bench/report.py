"""How long `dbtune report` takes on the seeded database, and which monitoring view costs most.

`dbtune report --format json` (every section, health included) runs as a whole
process, against psql selecting every row of the same monitoring views in one
session: the same queries, without dbtune's start-up, thresholds and grading.
Each view is also timed alone through psycopg, so the costliest one is named.
Rounds are interleaved; medians are reported.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql
from tabulate import tabulate

from dbtune.monitoring.views import SCHEMA


def _views(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = %s ORDER BY 1",
                                           [SCHEMA])]


def _dbtune_report(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dbtune.cli", "report", "--format", "json"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _psql_views(bindir: Path, dsn: str, views: list[str]) -> float:
    script = "".join(sql.SQL("SELECT * FROM {};\n").format(sql.Identifier(SCHEMA, v)).as_string() for v in views)
    started = time.perf_counter()
    subprocess.run([str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn], input=script,
                   text=True, check=True, env=os.environ, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run_report(bindir: Path, dsn: str, env: dict[str, str], rounds: int = 5) -> dict[str, object]:
    """The database must be at head (the monitoring views exist)."""
    views = _views(dsn)
    _dbtune_report(env)  # warm-up, not measured
    walls: dict[str, list[float]] = {"dbtune report": [], "psql, the same views": []}
    per_view: dict[str, list[float]] = {v: [] for v in views}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(rounds):
            walls["dbtune report"].append(_dbtune_report(env))
            walls["psql, the same views"].append(_psql_views(bindir, dsn, views))
            for view in views:
                started = time.perf_counter()
                conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(SCHEMA, view))).fetchall()
                per_view[view].append((time.perf_counter() - started) * 1000)
    medians = {name: round(statistics.median(w), 3) for name, w in walls.items()}
    result: dict[str, object] = {
        "rounds": rounds,
        "commands": {"dbtune report": "dbtune report --format json",
                     "psql, the same views": f"psql -X -q: SELECT * FROM {SCHEMA}.<view>, each view once"},
        "wall_s": {name: [round(x, 3) for x in w] for name, w in walls.items()},
        "median_s": medians,
        "ratio": round(medians["dbtune report"] / max(medians["psql, the same views"], 0.001), 3),
        "view_ms": {v: round(statistics.median(ms), 2) for v, ms in per_view.items()},
    }
    print(f"report: {medians}", flush=True)
    return result


def report_report(results: dict[str, object]) -> str:
    medians, views = results["median_s"], results["view_ms"]
    assert isinstance(medians, dict) and isinstance(views, dict)
    return "\n".join([
        tabulate([[name, s] for name, s in medians.items()], headers=["report", "median s"]),
        f"dbtune report / psql on the same views: {results['ratio']}x",
        "",
        tabulate(sorted(views.items(), key=lambda kv: -kv[1]), headers=["view", "median ms"]),
    ])
