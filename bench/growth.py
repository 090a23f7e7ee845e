"""How `dbtune apply` grows with the data: wall time, seconds per million orders and peak memory per scale.

For each scale, a fresh throwaway server is seeded, vacuumed and analyzed, and
`dbtune apply --to 0006` (the 16 shipped index builds) runs as a whole process,
after an unmeasured warm-up build through psql.  Its peak RSS is the child's
own (``os.wait4``), not this harness's.  Targets: the cost grows linearly with
the rows, and the peak RSS stays flat (under 150 MB).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg
from psycopg import sql
from tabulate import tabulate

from dbtune.core.output import Output
from dbtune.seed import seed
from dbtune.servers.throwaway import throwaway_server
from dbtune.sqltext.statements import read_index_file

TARGET_RSS_MB = 150.0


def _apply(env: dict[str, str], *args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `dbtune apply` process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dbtune.cli", "apply", *args, "--quiet"], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"dbtune apply exited {proc.returncode}")
    return wall, usage.ru_maxrss / 1024  # Linux reports kB


def run_growth(scales: list[float]) -> dict[str, object]:
    from .__main__ import BEFORE_INDEXES, INDEXES_DONE, index_files, psql_concurrently

    rows = []
    for scale in scales:
        with throwaway_server("embedded") as server:
            dsn = server.dsn()
            env = {**os.environ, "DBTUNE_DATABASE_URL": dsn, "DBTUNE_MIGRATIONS": "bundled"}
            _apply(env, "--to", BEFORE_INDEXES)
            with psycopg.connect(dsn) as conn:
                orders = seed(conn, scale, out=Output(quiet=True)).get("orders", 0)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            psql_concurrently(server.bindir, dsn, 0)  # warm-up, not measured
            with psycopg.connect(dsn, autocommit=True) as conn:
                for path in index_files():
                    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(read_index_file(path).name)))
                conn.execute("VACUUM ANALYZE")
            wall, rss = _apply(env, "--to", INDEXES_DONE)
        row = {"scale": scale, "orders": orders, "wall_s": round(wall, 2),
               "s_per_million_orders": round(wall / (orders / 1e6), 2) if orders else None,
               "peak_rss_mb": round(rss, 1), "server": version}
        rows.append(row)
        print(f"scale {scale}: {row}", flush=True)
    return {"runs": rows, "target_rss_mb": TARGET_RSS_MB}


def growth_report(results: dict[str, object]) -> str:
    runs = results["runs"]
    assert isinstance(runs, list)
    worst = max(r["peak_rss_mb"] for r in runs)
    return "\n".join([
        tabulate([[r["scale"], f"{r['orders']:,}", r["wall_s"], r["s_per_million_orders"], r["peak_rss_mb"]]
                  for r in runs], headers=["scale", "orders", "apply s", "s per million orders", "peak RSS MB"]),
        f"peak RSS of dbtune apply: {worst} MB at most (target < {TARGET_RSS_MB:g}) "
        f"{'met' if worst < TARGET_RSS_MB else 'MISSED'}"])
