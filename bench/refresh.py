"""Readers of a materialized view during its refresh: `dbtune refresh` (CONCURRENTLY) against a plain REFRESH.

The dashboard's side of issue "materialized views": readers query
daily_revenue_summary back to back while the view refreshes, on the same
server and data, in one run:

* ``dbtune refresh daily_revenue_summary``: REFRESH ... CONCURRENTLY, then ANALYZE;
* the same REFRESH ... CONCURRENTLY statement alone, through psycopg in this process
  (what dbtune adds is its start-up, lock, history row and ANALYZE);
* the same statement from the smallest psycopg program, as a whole process (like for
  like with dbtune's whole process: what dbtune adds is its lock, history row and ANALYZE);
* a plain ``REFRESH MATERIALIZED VIEW``, which holds ACCESS EXCLUSIVE on the view
  for the whole refresh.

Each mode runs ``rounds`` times; the readers' max and p99 latency and the
refresh's wall time are kept for every round.  Target: readers' max under 50 ms
with dbtune's refresh.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import psycopg
from tabulate import tabulate

from .load import Reader

VIEW = "daily_revenue_summary"
# What a revenue dashboard asks: the last month, by status.
QUERY = (f"SELECT status, sum(order_count), sum(revenue) FROM {VIEW} "
         f"WHERE day >= (SELECT max(day) FROM {VIEW}) - 30 GROUP BY status")
READERS = 2
READ_RATE = 100.0  # queries per second per reader: a busy dashboard, leaving CPU for the refresh
TARGET_MAX_MS = 50.0


def _dbtune_refresh(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "dbtune.cli", "refresh", VIEW, "--quiet"], check=True, env=env)


def _statement(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def _program(dsn: str, statement: str) -> None:
    """The same statement from the smallest psycopg program, as a whole process (start-up included, as
    dbtune's is)."""
    program = ("import sys, psycopg\n"
               "with psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
               "    c.execute(sys.argv[2])\n")
    subprocess.run([sys.executable, "-c", program, dsn, statement], check=True)


def run_refresh(dsn: str, env: dict[str, str], rounds: int = 3) -> dict[str, object]:
    """The database must be at head with data: the view exists and has been populated once."""
    # The history table is set up once, as a DBA would before the cron line: every timed refresh
    # records its row, as in production.
    subprocess.run([sys.executable, "-m", "dbtune.cli", "refresh", "--setup", "--quiet"], check=True, env=env)
    _dbtune_refresh(env)  # populate (a first refresh is plain: CONCURRENTLY needs a populated view)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {VIEW}").fetchone()[0]  # type: ignore[index]
    modes = {
        "dbtune refresh (CONCURRENTLY)": lambda: _dbtune_refresh(env),
        "REFRESH ... CONCURRENTLY (psycopg)": lambda: _statement(dsn, f"REFRESH MATERIALIZED VIEW CONCURRENTLY {VIEW}"),
        "REFRESH ... CONCURRENTLY (psycopg program, whole process)":
            lambda: _program(dsn, f"REFRESH MATERIALIZED VIEW CONCURRENTLY {VIEW}"),
        "plain REFRESH": lambda: _statement(dsn, f"REFRESH MATERIALIZED VIEW {VIEW}"),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in modes}
    for _ in range(rounds):
        for name, action in modes.items():  # interleaved, so drift on the machine hits every mode alike
            readers = [Reader(dsn, rate=READ_RATE, name=f"bench-reader-{i}", query=QUERY) for i in range(READERS)]
            for reader in readers:
                reader.__enter__()
            started = time.perf_counter()
            try:
                action()
            finally:
                wall = time.perf_counter() - started
                time.sleep(0.2)
                for reader in readers:
                    reader.__exit__(None, None, None)
            latencies = sorted(ms for r in readers for ms in r.latencies_ms)
            errors = sum(len(r.errors) for r in readers)
            runs[name].append({"refresh_s": round(wall, 3), "reads": len(latencies),
                               "max_ms": round(latencies[-1], 2) if latencies else 0.0,
                               "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2) if latencies else 0.0,
                               "errors": errors})
            print(f"refresh: {name}: {runs[name][-1]}", flush=True)
    return {"view": VIEW, "view_rows": rows, "readers": READERS, "rounds": rounds, "runs": runs}


def refresh_report(results: dict[str, object]) -> str:
    runs = results["runs"]
    assert isinstance(runs, dict)
    table = []
    for name, rounds in runs.items():
        table.append([name, statistics.median(r["refresh_s"] for r in rounds),
                      statistics.median(r["p99_ms"] for r in rounds), max(r["max_ms"] for r in rounds),
                      sum(r["reads"] for r in rounds), sum(r["errors"] for r in rounds)])
    worst = max(r["max_ms"] for r in runs["dbtune refresh (CONCURRENTLY)"])
    plain = max(r["max_ms"] for r in runs["plain REFRESH"])
    return "\n".join([
        f"{results['view']} ({results['view_rows']} rows), {results['readers']} readers at {READ_RATE:g} "
        f"queries/s each, "
        f"{results['rounds']} rounds per mode, interleaved",
        tabulate(table, headers=["refresh", "median refresh s", "median reader p99 ms", "worst reader max ms",
                                 "reads", "errors"]),
        f"readers' worst wait during dbtune refresh: {worst} ms (target < {TARGET_MAX_MS:g}) "
        f"{'met' if worst < TARGET_MAX_MS else 'MISSED'}; during a plain REFRESH: {plain} ms"])
