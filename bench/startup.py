"""The verbs that run no migration, as whole processes, against the smallest psycopg program.

What cron pays every few minutes is mostly fixed cost: the interpreter, the
imports, the connection.  Each verb below runs as a whole process on a small
database (the reference schema at head, seeded at a small scale, so the queries
themselves take a few milliseconds), paired with the smallest psycopg program
that connects and runs one query (the same interpreter; it imports psycopg as
dbtune does): verb, program, verb, program, ... and the ratio of the medians is
reported.  `dbtune --help` (Click and dbtune's command modules, no psycopg) and
the program's own median say how much of it is start-up.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import psycopg
from tabulate import tabulate

from dbtune.core.output import Output
from dbtune.seed import seed
from dbtune.servers.throwaway import throwaway_server

TARGET_RATIO = 1.5
SCALE = 0.01
VERBS = {
    "refresh": ["refresh", "--all", "--quiet"],
    "refresh --status": ["refresh", "--status", "--format", "json"],
    "maintain": ["maintain"],
    "report": ["report", "--format", "json"],
    "config render": ["config", "render", "--memory", "2GB", "--cpus", "2"],
    "config diff": ["config", "diff", "--memory", "2GB", "--cpus", "2"],
    "verify": ["verify"],
}
# A run that finished: 0, or 1 where the verb's verdict is a failure (verify's checks at this small
# scale, where the planner reads some tables whole). Any other code is an error, and is not timed.
FINISHED = (0, 1)
PROGRAM = ("import sys, psycopg\n"
           "with psycopg.connect(sys.argv[1]) as conn:\n"
           "    conn.execute('SELECT 1').fetchone()\n")


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, done.returncode


def run_startup(rounds: int = 7) -> dict[str, object]:
    results: dict[str, object] = {"scale": SCALE, "rounds": rounds, "program": PROGRAM}
    with throwaway_server("embedded") as server:
        dsn = server.dsn()
        env = {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
               "DBTUNE_DATABASE_URL": dsn, "DBTUNE_MIGRATIONS": "bundled"}
        dbtune = [sys.executable, "-m", "dbtune.cli"]
        subprocess.run([*dbtune, "apply", "--to", "0002", "--quiet"], env=env, check=True)
        with psycopg.connect(dsn) as conn:
            seed(conn, SCALE, out=Output(quiet=True))
        subprocess.run([*dbtune, "apply", "--quiet"], env=env, check=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            results["server"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            conn.execute("VACUUM ANALYZE")
        program = [sys.executable, "-c", PROGRAM, dsn]
        walls: dict[str, list[float]] = {name: [] for name in (*VERBS, "program", "dbtune --help")}
        codes: dict[str, list[int]] = {name: [] for name in walls}
        for argv in (*VERBS.values(), ["--help"]):  # warm-up, not measured: the OS file cache, maintain's ANALYZE
            _timed([*dbtune, *argv], env)
        _timed(program, env)
        for _ in range(rounds):
            for name, argv in (*VERBS.items(), ("dbtune --help", ["--help"])):
                for name_, run in ((name, [*dbtune, *argv]), ("program", program)):
                    wall, code = _timed(run, env)
                    codes[name_].append(code)
                    if code in FINISHED:
                        walls[name_].append(wall)
    medians = {name: round(statistics.median(w), 3) if w else None for name, w in walls.items()}
    results.update({
        "commands": {name: "dbtune " + " ".join(argv) for name, argv in VERBS.items()},
        "exit_codes": {name: sorted(set(c)) for name, c in codes.items()},
        "wall_s": {name: [round(x, 3) for x in w] for name, w in walls.items()},
        "median_s": medians,
        "ratio": {name: round(medians[name] / medians["program"], 3) if medians[name] and medians["program"]
                  else None for name in VERBS},
    })
    print(f"start-up: {medians}", flush=True)
    return results


def startup_report(results: dict[str, object]) -> str:
    medians, ratio, commands = results["median_s"], results["ratio"], results["commands"]
    assert isinstance(medians, dict) and isinstance(ratio, dict) and isinstance(commands, dict)
    rows = [[commands[name], medians[name], ratio[name],
             "no figure" if ratio[name] is None else "met" if ratio[name] <= TARGET_RATIO else "MISSED"]
            for name in ratio]
    return "\n".join([
        tabulate(rows, headers=["command", "median s", "/ program", f"<= {TARGET_RATIO}x"]),
        f"the smallest psycopg program: {medians['program']} s; dbtune --help: {medians['dbtune --help']} s",
    ])
