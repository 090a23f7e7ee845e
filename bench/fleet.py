"""Fleet throughput: a fleet run against the same single runs one after another, on one server's databases.

A new user with 20 databases checks them one by one (`dbtune apply`, `dbtune
status`, one process each) or hands them to one fleet run (`--targets FILE
--parallel 4`).  Both are timed as whole processes on the same databases, every
one at head before the measured runs (so `apply` is a no-op: the fixed cost a
scheduled fleet run pays most often), the two ways alternating within each
round.  Then the fleet's no-op `apply` runs over 100 databases at `--parallel` 1,
4 and 8, and the targets per minute are reported.  The project is dbtune's own
(bundled) migrations; each run goes through its env.py, as a single run does.
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

from dbtune.servers.throwaway import LocalServer, throwaway_server

TARGET_RATIO = 0.4
FLEET_SIZE = 20
FLEET_PARALLEL = 4
THROUGHPUT_SIZE = 100
THROUGHPUT_PARALLEL = (1, 4, 8)
COMMANDS = {"single": "dbtune VERB (DBTUNE_DATABASE_URL=each database in turn)",
            "fleet": "dbtune VERB --targets FILE --parallel N"}


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dbtune.cli", *argv], check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _databases(server: LocalServer, count: int, prefix: str) -> list[str]:
    names = [f"{prefix}{n:03d}" for n in range(count)]
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return [server.dsn(name) for name in names]


def _targets_file(folder: Path, name: str, dsns: list[str]) -> Path:
    path = folder / f"{name}.toml"
    path.write_text("".join(f'[targets.db{n:03d}]\nurl = "{dsn}"\n' for n, dsn in enumerate(dsns)))
    return path


def _singles(verb: list[str], dsns: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    for dsn in dsns:
        _timed(verb, {**env, "DBTUNE_DATABASE_URL": dsn})
    return time.perf_counter() - started


def run_fleet(folder: Path, rounds: int = 2, size: int = FLEET_SIZE, many: int = THROUGHPUT_SIZE) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DBTUNE_DATABASE_URL")}
    env["DBTUNE_MIGRATIONS"] = "bundled"
    results: dict[str, object] = {"databases": size, "parallel": FLEET_PARALLEL, "rounds": rounds,
                                  "commands": COMMANDS}
    with throwaway_server("embedded") as server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            results["server"] = conn.execute("SHOW server_version").fetchone()[0]
        dsns = _databases(server, max(size, many), "fleet")
        every = _targets_file(folder, "all", dsns)
        _timed(["apply", "--targets", str(every), "--parallel", "4", "--quiet"], env)  # to head, not measured
        some = _targets_file(folder, "some", dsns[:size])
        walls: dict[str, dict[str, list[float]]] = {}
        for verb in ("apply", "status"):
            fleet = [verb, "--targets", str(some), "--parallel", str(FLEET_PARALLEL), "--format", "json"]
            single = [verb, "--quiet"] if verb == "apply" else [verb, "--format", "json"]
            walls[verb] = {"single": [], "fleet": []}
            for n in range(rounds):
                order = ("single", "fleet") if n % 2 == 0 else ("fleet", "single")
                for way in order:
                    wall = _singles(single, dsns[:size], env) if way == "single" else _timed(fleet, env)
                    walls[verb][way].append(round(wall, 2))
        results["wall_s"] = walls
        medians = {verb: {way: round(statistics.median(w), 2) for way, w in ways.items()}
                   for verb, ways in walls.items()}
        results["median_s"] = medians
        results["ratio"] = {verb: round(m["fleet"] / m["single"], 3) for verb, m in medians.items()}
        throughput = {}
        many_file = _targets_file(folder, "many", dsns[:many])
        for parallel in THROUGHPUT_PARALLEL:
            wall = _timed(["apply", "--targets", str(many_file), "--parallel", str(parallel), "--format", "json"], env)
            throughput[str(parallel)] = {"wall_s": round(wall, 2), "targets_per_minute": round(many / wall * 60)}
        results["throughput"] = {"databases": many, "runs": throughput}
    print(f"fleet: {results['median_s']} {results['ratio']}", flush=True)
    return results


def fleet_report(results: dict[str, object]) -> str:
    medians, ratio, throughput = results["median_s"], results["ratio"], results["throughput"]
    assert isinstance(medians, dict) and isinstance(ratio, dict) and isinstance(throughput, dict)
    rows = [[verb, m["single"], m["fleet"], ratio[verb], "met" if ratio[verb] <= TARGET_RATIO else "MISSED"]
            for verb, m in medians.items()]
    return "\n".join([
        tabulate(rows, headers=["no-op verb", f"{results['databases']} singles s",
                                f"fleet --parallel {results['parallel']} s", "ratio", f"<= {TARGET_RATIO}x"]),
        "",
        tabulate([[p, r["wall_s"], r["targets_per_minute"]] for p, r in throughput["runs"].items()],
                 headers=["--parallel", f"{throughput['databases']} databases s", "targets/minute"]),
    ])
