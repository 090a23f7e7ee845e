"""dbtune benchmarks: `make bench` (or `python -m bench --scale 1`).

Every figure is a ratio against the alternative measured in the same run, on
the same throwaway server and the same seeded data:

* write stall: a writer inserts single orders throughout `dbtune apply`, and
  throughout the same indexes built by plain CREATE INDEX (what a default
  Alembic op.create_index does); its max and p99 latency for both;
* overhead: `dbtune apply` wall time against the same CONCURRENTLY statements
  run straight through psql with the same session settings;
* maintenance workers: the writer's latency and the build time with 0 and 2
  parallel maintenance workers;
* query speed-ups: every shipped verify check before and after the indexes;
* long chain: `dbtune apply` against plain `alembic upgrade head` on 300
  revisions like real ones (bench/chain.py; `--only chain` runs just this part);
* start-up: each verb that runs no migration against the smallest psycopg
  program, as whole processes (bench/startup.py; `--only startup`);
* fleet: a fleet's no-op `apply` and `status` over 20 databases against the
  same 20 single runs, and targets per minute over 100 (bench/fleet.py; `--only fleet`);
* refresh: readers of a materialized view during `dbtune refresh` (CONCURRENTLY)
  and during a plain REFRESH (bench/refresh.py; `--only refresh`);
* report: `dbtune report` against psql selecting the same monitoring views
  (bench/report.py; with the index part);
* growth: `dbtune apply` wall time and peak RSS at scales 0.25, 1 and 4
  (bench/growth.py; `--only growth`).

Each part writes bench/results/<part>.json (indexes, refresh, report, chain, growth, startup,
fleet) with the machine, the commit and the code it measured (bench/provenance.py), and every
raw figure, and prints its tables.  Targets are reported as met or missed; nothing here is a
test assertion.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from tabulate import tabulate

import dbtune as dbtune_package
from dbtune.core.output import Output
from dbtune.core.resources import sql_path
from dbtune.seed import seed
from dbtune.servers.throwaway import LocalServer, throwaway_server
from dbtune.sqltext.statements import read_index_file

from . import docs, provenance
from .advise import run_part as run_advise_part
from .chain import GROUP, REVISIONS, chain_report, run_chain
from .fleet import fleet_report, run_fleet
from .growth import growth_report, run_growth
from .load import Writer
from .refresh import refresh_report, run_refresh
from .report import report_report, run_report
from .startup import run_startup, startup_report

RESULTS = Path(__file__).resolve().parent / "results"
# Each part with its own results file, and its summary; the index part's other figures go in indexes.json.
PARTS = {"refresh": refresh_report, "report": report_report, "growth": growth_report, "chain": chain_report,
         "startup": startup_report, "fleet": fleet_report}
BEFORE_INDEXES = "0002"  # schema and extensions, no performance indexes yet
INDEXES_DONE = "0006"  # the last revision of the 16 shipped index builds


def dbtune(*args: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dbtune.cli", *args, "--quiet"], check=True, env=env)
    return time.perf_counter() - started


def index_files() -> list[Path]:
    return sorted(sql_path("indexes").glob("*.sql"))


def psql_concurrently(bindir: Path, dsn: str, maintenance_workers: int, analyze: bool = False) -> float:
    """The same CREATE INDEX CONCURRENTLY statements, straight through psql (and ANALYZE, as dbtune does)."""
    statements = [read_index_file(path) for path in index_files()]
    script = "".join(st.sql + ";\n" for st in statements)
    if analyze:
        tables = dict.fromkeys(st.table for st in statements if st.table)
        script += "".join(sql.SQL("ANALYZE {};\n").format(sql.Identifier(t)).as_string() for t in tables)
    env = {**os.environ, "PGOPTIONS": f"-c max_parallel_maintenance_workers={maintenance_workers}"}
    started = time.perf_counter()
    subprocess.run([str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn], input=script,
                   text=True, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def server_build_seconds(dsn: str) -> float:
    """The server's own execution time of the index builds since the last reset (pg_stat_statements):
    a variant's wall time less this is what it adds around the same builds."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(sum(total_exec_time), 0) / 1000 FROM pg_stat_statements "
                           "WHERE query ILIKE 'CREATE%INDEX%'").fetchone()
    return float(row[0]) if row else 0.0


def plain_create_index(dsn: str) -> float:
    """What a default Alembic op.create_index does: CREATE INDEX, holding a SHARE lock throughout."""
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET max_parallel_maintenance_workers = 0")
        for path in index_files():
            statement = read_index_file(path).sql.replace("CONCURRENTLY ", "", 1)
            conn.execute(statement)  # type: ignore[arg-type]
    return time.perf_counter() - started


@contextmanager
def seeded(scale: float, results: dict[str, object]) -> Iterator[tuple[LocalServer, str, dict[str, str]]]:
    """A throwaway server with the reference schema (no indexes yet) and data at ``scale``."""
    with throwaway_server("embedded") as server:
        dsn = server.dsn()
        env = {**os.environ, "DBTUNE_DATABASE_URL": dsn, "DBTUNE_MIGRATIONS": "bundled"}
        with psycopg.connect(dsn, autocommit=True) as conn:
            results["server"] = conn.execute("SHOW server_version").fetchone()[0]
        dbtune("apply", "--to", BEFORE_INDEXES, env=env)
        started = time.perf_counter()
        with psycopg.connect(dsn) as conn:
            counts = seed(conn, scale, out=Output(quiet=True))
        results["seed_s"] = round(time.perf_counter() - started, 1)
        results["orders"] = counts.get("orders")
        print(f"seeded scale {scale}: {counts.get('orders'):,} orders in {results['seed_s']}s", flush=True)
        yield server, dsn, env


def run_refresh_only(scale: float, rounds: int) -> dict[str, object]:
    results: dict[str, object] = {"scale": scale}
    with seeded(scale, results) as (_, dsn, env):
        dbtune("apply", env=env)
        results["refresh"] = run_refresh(dsn, env, rounds)
    return results


def run(scale: float, rate: float, refresh_rounds: int) -> dict[str, object]:
    results: dict[str, object] = {"scale": scale, "writer_rate_per_s": rate}
    with seeded(scale, results) as (server, dsn, env):
        runs: dict[str, dict[str, object]] = {}

        def measure(name: str, action, record: bool = True) -> None:  # type: ignore[no-untyped-def]
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")
            with Writer(dsn, rate=rate) as writer:
                wall = action()
            if record:
                build_s = server_build_seconds(dsn)
                # With --jobs the builds overlap: their server time adds up to more than the wall.
                runs[name] = {"wall_s": round(wall, 2), "server_build_s": round(build_s, 2),
                              "beyond_builds_s": round(wall - build_s, 2) if wall >= build_s else None,
                              **writer.summary()}
                print(f"{name}: {runs[name]}", flush=True)
            dbtune("rollback", "--to", BEFORE_INDEXES, env=env)
            with psycopg.connect(dsn, autocommit=True) as conn:
                # The psql and plain runs built the indexes outside any migration.
                for path in index_files():
                    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(
                        sql.Identifier(read_index_file(path).name)))
                conn.execute("VACUUM ANALYZE")
                # Every variant starts right after a checkpoint: the builds write about a
                # gigabyte of WAL at scale 1, and a checkpoint that falls inside one run and
                # not another would be measured as that variant's cost.
                conn.execute("CHECKPOINT")

        # Like for like: the index revisions only (0003-0006: the 16 statements psql runs), after an
        # unmeasured warm-up build, so that no variant pays for a cold cache.
        measure("warm-up", lambda: psql_concurrently(server.bindir, dsn, 0), record=False)
        measure("dbtune apply", lambda: dbtune("apply", "--to", INDEXES_DONE, env=env))
        measure("psql CONCURRENTLY", lambda: psql_concurrently(server.bindir, dsn, 0))
        measure("psql CONCURRENTLY + ANALYZE", lambda: psql_concurrently(server.bindir, dsn, 0, analyze=True))
        measure("plain CREATE INDEX", lambda: plain_create_index(dsn))
        measure("dbtune apply --jobs 2", lambda: dbtune("apply", "--to", INDEXES_DONE, "--jobs", "2", env=env))
        measure("dbtune apply --maintenance-workers 2",
                lambda: dbtune("apply", "--to", INDEXES_DONE, "--maintenance-workers", "2", env=env))
        results["write_stall"] = runs

        results["verify"] = verify_speedups(dsn, env)
        results["refresh"] = run_refresh(dsn, env, refresh_rounds)  # the database is at head now
        results["report"] = run_report(server.bindir, dsn, env)
    return results


def verify_speedups(dsn: str, env: dict[str, str]) -> list[dict[str, object]]:
    """Each shipped check's execution time before the indexes and after them."""
    try:
        from dbtune.core.settings import Target
        from dbtune.verify import verify
    except ImportError:
        return []
    target = Target.parse(dsn, "bench")
    before = verify(target, [sql_path("indexes")], analyze=True)
    dbtune("apply", env=env)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    after = verify(target, [sql_path("indexes")], analyze=True)
    rows = []
    times_after = {c.name: c for c in after.checks}
    for check in before.checks:
        later = times_after.get(check.name)
        if later is None or check.ms is None or later.ms is None:
            continue
        rows.append({"check": check.name, "before_ms": round(check.ms, 3),
                     "after_ms": round(later.ms, 3),
                     "speedup": round(check.ms / max(later.ms, 0.001), 1),
                     "uses_index": later.passed})
    return rows


def report(results: dict[str, object]) -> str:
    runs = results["write_stall"]
    assert isinstance(runs, dict)
    lines = [f"PostgreSQL {results['server']}, scale {results['scale']} ({results['orders']:,} orders), "
             f"writer at {results['writer_rate_per_s']:.0f} inserts/s", ""]
    lines.append(tabulate([[name, r["wall_s"], r["server_build_s"], r["beyond_builds_s"], r["inserts"], r["errors"],
                            r["median_ms"], r["p99_ms"], r["max_ms"]] for name, r in runs.items()],
                          headers=["build", "wall s", "server build s", "beyond s", "inserts", "errors", "median ms",
                                   "p99 ms", "max ms"]))
    apply_run, psql_run = runs["dbtune apply"], runs["psql CONCURRENTLY"]
    plain = runs["plain CREATE INDEX"]
    overhead = apply_run["wall_s"] / max(psql_run["wall_s"], 0.001)
    like_for_like = apply_run["wall_s"] / max(runs["psql CONCURRENTLY + ANALYZE"]["wall_s"], 0.001)
    workers = runs["dbtune apply --maintenance-workers 2"]
    jobs = runs["dbtune apply --jobs 2"]["wall_s"] / max(apply_run["wall_s"], 0.001)
    lines += ["",
              f"writer max during dbtune apply: {apply_run['max_ms']} ms (target < 150) "
              f"{'met' if apply_run['max_ms'] < 150 else 'MISSED'}; p99 {apply_run['p99_ms']} ms (target < 50) "
              f"{'met' if apply_run['p99_ms'] < 50 else 'MISSED'}",
              f"writer max during plain CREATE INDEX: {plain['max_ms']} ms "
              f"({plain['max_ms'] / max(apply_run['max_ms'], 0.001):.0f}x dbtune's)",
              f"dbtune apply wall time / psql: {overhead:.3f}x (target <= {docs.APPLY_OVER_PSQL}) "
              f"{'met' if overhead <= docs.APPLY_OVER_PSQL else 'MISSED'}; "
              f"/ psql with the same ANALYZEs: {like_for_like:.3f}x",
              f"dbtune apply --jobs 2 / --jobs 1: {jobs:.3f}x (target <= 0.7) {'met' if jobs <= 0.7 else 'MISSED'}",
              f"--maintenance-workers 2: wall {workers['wall_s']} s against {apply_run['wall_s']} s with 0; "
              f"writer p99 {workers['p99_ms']} ms against {apply_run['p99_ms']} ms, max {workers['max_ms']} ms "
              f"against {apply_run['max_ms']} ms"]
    checks = results.get("verify") or []
    if checks:
        assert isinstance(checks, list)
        lines += ["", tabulate([[c["check"], c["before_ms"], c["after_ms"], c["speedup"], c["uses_index"]]
                                for c in checks], headers=["check", "before ms", "after ms", "speed-up", "uses index"])]
        median = statistics.median(c["speedup"] for c in checks)
        slow = [c["check"] for c in checks if c["speedup"] < 10 or c["after_ms"] >= 10]
        lines.append(f"median speed-up {median}x (target >= 100); checks below 10x or over 10 ms: "
                     f"{', '.join(slow) or 'none'}")
    return "\n".join(lines)


def _chain_length(text: str) -> int:
    revisions = int(text)
    if revisions < GROUP or revisions % GROUP:
        raise argparse.ArgumentTypeError(f"a multiple of {GROUP}, got {text}")
    return revisions


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="seed scale (1 = about 1,000,000 orders)")
    parser.add_argument("--rate", type=float, default=500.0, help="writer inserts per second")
    parser.add_argument("--scales", default="0.25,1,4",
                        help="scales of the growth part (apply time and peak memory per scale)")
    parser.add_argument("--only", choices=["indexes", "chain", "refresh", "growth", "startup", "fleet", "advise"],
                        help="run one part: the index builds and checks (with the refresh), the long migration "
                             "chain, the refresh alone, the growth per scale, the verbs' start-up, or the fleet")
    parser.add_argument("--chain-rounds", type=int, default=5, help="rounds of the long-chain comparison")
    parser.add_argument("--chain-revisions", type=_chain_length, default=REVISIONS,
                        help=f"revisions of the long chain, a multiple of {GROUP} (fewer only for a smoke run)")
    parser.add_argument("--refresh-rounds", type=int, default=3, help="rounds of each refresh mode")
    parser.add_argument("--startup-rounds", type=int, default=7, help="rounds of the start-up comparison")
    parser.add_argument("--fleet-rounds", type=int, default=2, help="rounds of the fleet against single runs")
    parser.add_argument("--fleet-databases", type=int, default=20, help="databases of the fleet against single runs")
    parser.add_argument("--fleet-many", type=int, default=100, help="databases of the fleet's targets per minute")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone (smoke runs)")
    parser.add_argument("--results", type=Path, help="write the JSON files here instead of bench/results")
    args = parser.parse_args()
    # Time dbtune as an installed wheel runs: pip byte-compiles a wheel at install, and
    # alembic's and SQLAlchemy's files were compiled so; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would otherwise compile dbtune's modules on every start.
    compileall.compile_dir(Path(dbtune_package.__file__).parent, quiet=1)
    if args.only in (None, "advise"):  # bench/advise.py: its own server, results file and docs section
        run_advise_part(args.scale, args.results or RESULTS, docs=not args.no_docs)
        if args.only:
            return
    code = provenance.snapshot()  # before anything runs: the code these figures measure
    results_dir = args.results or RESULTS
    results_dir.mkdir(exist_ok=True, parents=True)
    machine = {"cores": os.cpu_count(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                                           / 1024 ** 3, 1)}

    def save(part: str, data: dict[str, object]) -> None:
        """A part's results file, written as soon as the part is done: a later part that fails loses
        nothing measured before it."""
        (results_dir / f"{part}.json").write_text(json.dumps({"machine": machine, **data, "code": code}, indent=2))

    results: dict[str, object] = {}
    if args.only == "refresh":
        results = run_refresh_only(args.scale, args.refresh_rounds)
    elif args.only in (None, "indexes"):
        results = run(args.scale, args.rate, args.refresh_rounds)
    common = {k: results[k] for k in ("scale", "server", "orders", "seed_s") if k in results}
    for part in ("refresh", "report"):  # measured on the index part's seeded server
        if part in results:
            save(part, {**common, **results[part]})  # type: ignore[dict-item]
    if "write_stall" in results:
        save("indexes", {k: v for k, v in results.items() if k not in PARTS})
    runners = {"chain": lambda: run_chain(args.chain_rounds, revisions=args.chain_revisions),
               "growth": lambda: run_growth([float(s) for s in args.scales.split(",") if s.strip()]),
               "startup": lambda: run_startup(args.startup_rounds),
               "fleet": lambda: _fleet(args)}
    for part, runner in runners.items():
        if args.only in (None, part):
            results[part] = runner()
            save(part, results[part])  # type: ignore[arg-type]
    if not args.no_docs:
        docs.write()  # docs/benchmarks.md's figures, from every results file
    if "write_stall" in results:
        print()
        print(report(results))
    for part, describe in PARTS.items():
        if part in results:
            print()
            print(describe(results[part]))  # type: ignore[operator, arg-type]


def _fleet(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dbtune-fleet-") as folder:
        return run_fleet(Path(folder), args.fleet_rounds, args.fleet_databases, args.fleet_many)

if __name__ == "__main__":
    main()
