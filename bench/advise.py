"""Index advice against the hand-written indexes: does `dbtune advise` find what a DBA wrote by hand?

The reference schema at scale 1 with revisions 0003-0006 (the sixteen hand-written indexes) not
applied; a workload made of the shipped checks' queries (each sql/indexes file's ``-- verify:``
line, a few calls each) run through pg_stat_statements; `dbtune advise --write-revision` on
that, as a user runs it, writing into a copy of the project holding 0001-0002; the revision
applied.  Each query's median execution time (EXPLAIN ANALYZE, server side) is measured with no
index, with the advised set and with the hand-written set, in the same run on the same data.
The figure is the share of the time the hand-written set takes off each query that the advised
set takes off, median over the queries (target: at least 90%, with no more indexes); the median
speed-ups are shown beside it.  Each hand-written index advise did not
propose is listed with the reason advise's own output gives for its query.

`python -m bench --only advise` runs this part; `python -m bench.advise` rewrites its section of
docs/benchmarks.md from bench/results/advise.json without running anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from tabulate import tabulate

from dbtune.core.output import Output
from dbtune.core.resources import sql_path
from dbtune.seed import seed
from dbtune.servers.throwaway import throwaway_server
from dbtune.sqltext.statements import read_index_file
from dbtune.verify.checks import load_checks

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "advise.json"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- advise figures: written by `python -m bench --only advise`; do not edit -->", \
    "<!-- end of advise figures -->"
TARGET_SHARE = 0.9
CALLS = 3  # each workload query's calls before advise reads pg_stat_statements
RUNS = 11  # timed executions per query and index set (after one unmeasured)
BEFORE_INDEXES, HAND_WRITTEN = "0002", "0006"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dbtune.cli", *args], check=True, env=env, text=True,
                          capture_output=True)


def _project(folder: Path) -> Path:
    """A copy of the bundled project with the revisions before the indexes only: advise writes into it."""
    shutil.copy(ROOT / "alembic.ini", folder / "alembic.ini")
    shutil.copytree(ROOT / "migrations", folder / "migrations",
                    ignore=lambda d, names: [n for n in names if n == "__pycache__" or
                                             (n.endswith(".py") and n[:4].isdigit() and n[:4] > BEFORE_INDEXES)])
    return folder / "alembic.ini"


def _workload(dsn: str, queries: dict[str, str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        for _ in range(CALLS):
            for query in queries.values():
                conn.execute(query).fetchall()  # type: ignore[arg-type]


def _timings(dsn: str, queries: dict[str, str]) -> dict[str, float]:
    """Each query's median execution time in ms, as the server measures it."""
    found: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("SET pg_stat_statements.track = 'none'")  # the measuring is not the workload
        for name, query in queries.items():
            times = []
            for n in range(RUNS + 1):
                row = conn.execute(sql.SQL("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {}").format(
                    sql.SQL(query))).fetchone()  # type: ignore[arg-type]
                if n:
                    times.append(float(row[0][0]["Execution Time"]))  # type: ignore[index]
            found[name] = statistics.median(times)
    return found


def _key(definition: str) -> tuple[str, str, tuple[str, ...]]:
    """(table, method, key columns) of a CREATE INDEX statement: what two indexes must share to be one."""
    match = re.search(r'\bON\s+(?:"?public"?\.)?"?(\w+)"?\s*(?:USING\s+(\w+)\s*)?\(([^)]*)\)', definition, re.I)
    assert match is not None, definition
    columns = tuple(re.sub(r'"|\s+(desc|asc|gin_trgm_ops)\b', "", c.strip(), flags=re.I).strip()
                    for c in match.group(3).split(","))
    return match.group(1), (match.group(2) or "btree").lower(), columns


def _extra(definition: str) -> str:
    """What a CREATE INDEX adds beyond its keys: its INCLUDE and its predicate, spacing and quotes aside."""
    match = re.search(r"\)\s*((?:INCLUDE|WHERE)\b.*)$", " ".join(definition.split()), re.I)
    if not match:
        return ""
    text = re.sub(r'"|;$', "", match.group(1)).strip()
    # INCLUDE's columns in any order are the same index.
    return re.sub(r"INCLUDE \(([^)]*)\)", lambda m: f"INCLUDE ({', '.join(sorted(m.group(1).split(', ')))})", text)


def _why(advice: dict[str, Any], query: str, table: str, hand: str) -> str:
    """Why advise proposed no index like ``hand``, in advise's own terms."""
    # pg_stat_statements keeps no constant: a predicate that names one cannot be proposed from it.
    lost = "its predicate's constants are $n in pg_stat_statements, so no partial index can be proposed; " \
        if re.search(r"\bWHERE\b.*'", hand, re.I | re.S) else ""
    served = [i for i in advice["indexes"] if any(_same_query(q["query"], query) for q in i["queries"])]
    if served:
        return f"{lost}its query is served by the advised {', '.join(i['name'] for i in served)} instead"
    note = next((q["why"] for q in advice["not_advised"] if _same_query(q["query"], query)), None)
    if note:
        return f"not advised for its query: {note}"
    under = [u for u in advice["under_threshold"] if _key(u["candidate"])[0] == table]
    if under:
        best = max(under, key=lambda u: u["best_gain"])
        return (f"under the threshold: the best candidate on {table} cut its plan cost by "
                f"{best['best_gain']:.0%} ({' '.join(best['candidate'].split()[-3:])})")
    return f"{lost}no candidate for its query"


def _same_query(normalised: str, query: str) -> bool:
    """pg_stat_statements' text of a query against the query with its constants (words outside them)."""
    words = lambda text: [w for w in re.findall(r"[a-z_]+", re.sub(r"'[^']*'", "", text.lower()))]  # noqa: E731
    return words(normalised) == words(query)


def run_advise(scale: float = 1.0) -> dict[str, Any]:
    checks = {c.name: c.query for c in load_checks([sql_path("indexes")]) if c.query}
    hand = {path.stem: read_index_file(path) for path in sorted(sql_path("indexes").glob("*.sql"))}
    results: dict[str, Any] = {"scale": scale, "calls_each": CALLS, "runs_each": RUNS}
    with throwaway_server("embedded") as server, tempfile.TemporaryDirectory(prefix="dbtune-advise-") as folder:
        dsn = server.dsn()
        env = {**os.environ, "DBTUNE_DATABASE_URL": dsn, "DBTUNE_MIGRATIONS": "bundled"}
        _cli("apply", "--to", BEFORE_INDEXES, "--quiet", env=env)
        with psycopg.connect(dsn) as conn:
            results["server"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            results["orders"] = seed(conn, scale, out=Output(quiet=True)).get("orders")
        _workload(dsn, checks)
        ini = _project(Path(folder))
        own = {k: v for k, v in env.items() if k != "DBTUNE_MIGRATIONS"}
        started = time.perf_counter()
        done = _cli("advise", "--format", "json", "--write-revision", "--migrations", str(ini), env=own)
        results["advise_s"] = round(time.perf_counter() - started, 1)
        advice = json.loads(done.stdout)
        results["planned"] = advice["planned"]
        results["advised"] = [{"name": i["name"], "definition": i["definition"],
                               "queries": len(i["queries"])} for i in advice["indexes"]]
        before = _timings(dsn, checks)
        _cli("apply", "--migrations", str(ini), "--quiet", env=own)
        advised = _timings(dsn, checks)
        _cli("rollback", "--migrations", str(ini), "--to", BEFORE_INDEXES, "--quiet", env=own)
        _cli("apply", "--to", HAND_WRITTEN, "--quiet", env=env)
        written = _timings(dsn, checks)
    results["queries"] = [{"check": name, "before_ms": round(before[name], 3), "advised_ms": round(advised[name], 3),
                           "hand_ms": round(written[name], 3),
                           "advised_speedup": round(before[name] / max(advised[name], 0.001), 1),
                           "hand_speedup": round(before[name] / max(written[name], 0.001), 1)} for name in checks]
    by_key = {_key(i["definition"]): i for i in advice["indexes"]}
    results["missed"] = [{"index": name, "why": _why(advice, checks.get(name, ""), _key(st.sql)[0], st.sql)}
                         for name, st in hand.items() if _key(st.sql) not in by_key]
    results["in_part"] = [{"index": name, "as": by_key[_key(st.sql)]["name"], "hand": _extra(st.sql) or None,
                           "advised": _extra(by_key[_key(st.sql)]["definition"]) or None}
                          for name, st in hand.items() if _key(st.sql) in by_key
                          and _extra(st.sql) != _extra(by_key[_key(st.sql)]["definition"])]
    results["hand_written"] = len(hand)
    median_advised = round(statistics.median(q["advised_speedup"] for q in results["queries"]), 1)
    median_hand = round(statistics.median(q["hand_speedup"] for q in results["queries"]), 1)
    # The time each set saves a query, the advised set's as a share of the hand-written's: steadier
    # than the speed-ups, which divide by times of a few microseconds after either set.
    shares = [(q["before_ms"] - q["advised_ms"]) / (q["before_ms"] - q["hand_ms"])
              for q in results["queries"] if q["before_ms"] > q["hand_ms"]]
    results.update(median_advised_speedup=median_advised, median_hand_speedup=median_hand,
                   saved_share=round(statistics.median(shares), 4) if shares else None)
    return results


def advise_report(results: dict[str, Any]) -> str:
    lines = [f"advise: PostgreSQL {results['server']}, scale {results['scale']} ({results['orders']:,} orders); "
             f"{'; '.join(results['planned'])}; advise took {results['advise_s']} s", ""]
    lines.append(tabulate([[q["check"], q["before_ms"], q["advised_ms"], q["hand_ms"], q["advised_speedup"],
                            q["hand_speedup"]] for q in results["queries"]],
                          headers=["query (its check)", "no index ms", "advised ms", "hand-written ms",
                                   "advised speed-up", "hand-written speed-up"]))
    lines += ["", verdict(results)]
    lines += [f"  not found: {m['index']}: {m['why']}" for m in results["missed"]]
    lines += [f"  same keys: {m['index']} as {m['as']}: {_differs(m)}" for m in results["in_part"]]
    return "\n".join(lines)


def _differs(m: dict[str, Any]) -> str:
    return f"hand-written {m['hand'] or 'with nothing more'}, advised {m['advised'] or 'with nothing more'}"


def verdict(results: dict[str, Any]) -> str:
    # Judged by the time each set takes off each query, not by the ratio of the speed-ups: after
    # either set a query takes tens of microseconds, and a ratio of two such times is mostly noise
    # (docs/benchmarks.md gives the spread of the ratio over repeated runs).
    share, count, hand = results["saved_share"], len(results["advised"]), results["hand_written"]
    met = share is not None and share >= TARGET_SHARE and count <= hand
    if share is None:
        return "no figure: no query got faster with the hand-written indexes in this run"
    return (f"the advised indexes take off {share:.1%} of the query time the hand-written set takes off (median "
            f"over the queries), with {count} indexes against {hand} (target: at least {TARGET_SHARE:.0%}, no more "
            f"indexes): {'met' if met else 'MISSED'}; median speed-up {results['median_advised_speedup']}x "
            f"advised against {results['median_hand_speedup']}x hand-written")


def section(results: dict[str, Any]) -> str:
    """docs/benchmarks.md's advise figures, in markdown."""
    lines = [START, "", f"PostgreSQL {results['server']}, scale {results['scale']} ({results['orders']:,} orders), "
             f"{'; '.join(results['planned'])}; `dbtune advise --write-revision` took {results['advise_s']} s.", "",
             f"**{verdict(results)}**", "",
             "| query (its check) | no index ms | advised ms | hand-written ms | advised speed-up | "
             "hand-written speed-up |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {q['check']} | {q['before_ms']} | {q['advised_ms']} | {q['hand_ms']} | {q['advised_speedup']}x | "
              f"{q['hand_speedup']}x |" for q in results["queries"]]
    lines += ["", "Advised:", ""] + [f"- `{i['definition']}`" for i in results["advised"]]
    lines += ["", "Hand-written indexes advise did not propose, and why:", ""]
    lines += [f"- `{m['index']}`: {m['why']}" for m in results["missed"]] or ["- none"]
    lines += ["", "Found with the same keys, and otherwise different:", ""]
    lines += [f"- `{m['index']}` as `{m['as']}`: {_differs(m)}" for m in results["in_part"]] or ["- none"]
    return "\n".join([*lines, "", END])


def run_part(scale: float, results_dir: Path, docs: bool) -> None:
    """`python -m bench` registers this: run, write advise.json, print the table, rewrite the section."""
    results = run_advise(scale)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    results = {"machine": {"cores": os.cpu_count()}, "commit": commit or None, **results}
    results_dir.mkdir(exist_ok=True, parents=True)
    (results_dir / "advise.json").write_text(json.dumps(results, indent=2))
    print(advise_report(results), flush=True)
    if docs:
        publish(results)


def publish(results: dict[str, Any] | None = None) -> None:
    """Rewrite the advise block of docs/benchmarks.md (the section's prose stays as written)."""
    results = results or json.loads(RESULTS.read_text())
    text = DOC.read_text()
    if START not in text:
        return
    head, rest = text.split(START, 1)
    DOC.write_text(head + section(results) + rest.split(END, 1)[1])


if __name__ == "__main__":
    publish()
