"""`dbtune verify`: prove with EXPLAIN that each index serves its query, and catch plan regressions.

For every check (see ``checks.py``) the query is EXPLAINed in its own
``BEGIN READ ONLY`` transaction that is always rolled back, so verify never
changes data, statistics or settings: it does not even run ANALYZE, it only
says when statistics look stale.  A check passes when the plan reads the
expected index (Index Scan, Index Only Scan or Bitmap Index Scan).

Modes: the planner's real choice on the current data (default); ``can_use``,
where ``enable_seqscan`` is off for the check's transaction, to prove the index
*can* serve the query on a nearly empty CI database; ``analyze``, which runs the
query (EXPLAIN ANALYZE, BUFFERS) for times and buffer counts.

``verify()`` returns a VerifyReport; ``render()`` and ``render_comparison()``
draw it; ``save_baseline()``/``load_baseline()`` keep plans and times to
compare a later run against.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from ..core.db import connect, describe
from ..core.errors import ConfigError, ConnectionFailed
from ..core.output import Column, Output
from ..core.settings import Target
from .checks import INDEX_NODES, Check, IndexName, load_checks

BASELINE_FORMAT = 1

# With can_use and an -- expect-node, the planner settings turned off besides enable_seqscan.
_CAN_USE_OFF = {
    "Index Only Scan": ("enable_bitmapscan",),
    "Index Scan": ("enable_bitmapscan", "enable_indexonlyscan"),
    "Bitmap Index Scan": ("enable_indexscan", "enable_indexonlyscan"),
}
PLAN_EXCERPT_LINES = 30

# Autovacuum analyzes a table once this many rows changed since its last ANALYZE
# (autovacuum_analyze_threshold + autovacuum_analyze_scale_factor * reltuples,
# defaults 50 and 0.1): past that, the planner's row estimates are likely off.
# https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-STATISTICS
STALE_THRESHOLD = 50
STALE_SCALE = 0.1

_INDEX_SQL = """
SELECT c.oid, n.nspname, c.relname, i.indisvalid, i.indrelid, tn.nspname, t.relname,
       (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) AND a.attnum > 0),
       (SELECT array_agg(pc.relname::text) FROM pg_partition_tree(c.oid) p
          JOIN pg_class pc ON pc.oid = p.relid)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_index i ON i.indexrelid = c.oid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
 WHERE c.relname = %(name)s AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s)
 ORDER BY pg_table_is_visible(c.oid) DESC, n.nspname
 LIMIT 1
"""

# Plans name relations without their schema: resolve them through the search_path, as the query did.
_TABLE_STATS_SQL = """
SELECT s.schemaname, s.relname, s.n_mod_since_analyze, greatest(c.reltuples, 0)::bigint,
       s.last_analyze IS NULL AND s.last_autoanalyze IS NULL
  FROM pg_stat_user_tables s
  JOIN pg_class c ON c.oid = s.relid
 WHERE s.relid = ANY (%(oids)s::oid[])
    OR s.relid = ANY (SELECT to_regclass(quote_ident(r)) FROM unnest(%(names)s::text[]) r)
 ORDER BY s.schemaname, s.relname
"""


@dataclass
class CheckResult:
    """What one check's EXPLAIN showed, and why it failed if it did."""

    name: str
    file: str
    query: str | None
    expected_index: str | None
    passed: bool
    node: str | None = None  # the plan node that decided: the one on the index, else the scan it lost to
    plan_summary: str | None = None  # e.g. "Index Only Scan using orders_customer_idx on orders"
    indexes_used: list[str] = field(default_factory=list)
    shape: list[dict[str, str | None]] = field(default_factory=list)  # every node: type, index, relation
    cost: float | None = None  # the planner's estimated total cost
    ms: float | None = None  # actual execution time (analyze only)
    shared_hit: int | None = None
    shared_read: int | None = None
    expect_node: str | None = None
    max_ms: float | None = None
    reason: str | None = None
    hint: str | None = None
    sqlstate: str | None = None
    plan: str | None = None  # text rendering of the plan
    stale_tables: list[str] = field(default_factory=list)
    # Against a baseline, when one was given.
    baseline_ms: float | None = None
    baseline_cost: float | None = None
    baseline_plan: str | None = None
    plan_change: str | None = None

    def fail(self, reason: str, hint: str | None = None) -> None:
        self.passed = False
        self.reason = f"{self.reason}; {reason}" if self.reason else reason
        if hint:
            self.hint = f"{self.hint}; {hint}" if self.hint else hint

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerifyReport:
    checks: list[CheckResult]
    can_use: bool = False
    analyze: bool = False
    database: str = ""
    server_version: int | None = None
    baseline: str | None = None  # where the compared baseline came from

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def passed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.passed]

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def get(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "mode": _mode(self), "can_use": self.can_use, "analyze": self.analyze,
                "database": self.database, "server_version": self.server_version, "baseline": self.baseline,
                "passed": len(self.passed), "failed": len(self.failed),
                "checks": [c.to_dict() for c in self.checks]}


@dataclass
class BaselineEntry:
    name: str
    query: str | None
    expected_index: str | None
    passed: bool
    plan_summary: str | None
    indexes_used: list[str]
    shape: list[dict[str, str | None]]
    cost: float | None
    ms: float | None


@dataclass
class Baseline:
    checks: dict[str, BaselineEntry]
    created: str = ""
    analyze: bool = False
    can_use: bool = False
    source: str | None = None  # the file it was read from


# ---------------------------------------------------------------------------
# Running checks


def verify(target: Target, check_dirs: Sequence[str | PathLike[str]] | None = None, *,
           can_use: bool = False, analyze: bool = False, baseline: Baseline | None = None,
           max_regression: float = 2.0, regression_floor_ms: float = 1.0,
           timeout_s: float = 60.0) -> VerifyReport:
    """Run every check in ``check_dirs`` (default: the shipped index checks) against ``target``.

    Raises ConfigError for bad directories or options and ConnectionFailed when
    the database cannot be reached; every problem with a single check (no query,
    bad SQL, a missing table or index) is a failed check in the report instead.
    """
    if max_regression <= 1.0:
        raise ConfigError(f"max_regression must be above 1 (got {max_regression})")
    checks = load_checks(check_dirs)
    with connect(target, purpose="verify") as conn:
        results = run_checks(conn, checks, can_use=can_use, analyze=analyze, timeout_s=timeout_s)
        version = conn.info.server_version
    report = VerifyReport(checks=results, can_use=can_use, analyze=analyze, database=target.masked,
                          server_version=version)
    if baseline is not None:
        compare_baseline(report, baseline, max_regression=max_regression, floor_ms=regression_floor_ms)
    return report


def run_checks(conn: psycopg.Connection[Any], checks: Sequence[Check], *, can_use: bool = False,
               analyze: bool = False, timeout_s: float = 60.0) -> list[CheckResult]:
    """Run ``checks`` on an autocommit connection, each in its own rolled-back READ ONLY transaction."""
    if not conn.autocommit:
        raise ConfigError("run_checks needs an autocommit connection: it opens its own transactions")
    return [_run_check(conn, check, can_use=can_use, analyze=analyze, timeout_s=timeout_s) for check in checks]


def _run_check(conn: psycopg.Connection[Any], check: Check, *, can_use: bool, analyze: bool,
               timeout_s: float) -> CheckResult:
    result = CheckResult(name=check.name, file=str(check.file), query=check.query,
                         expected_index=str(check.index) if check.index else None, passed=False,
                         expect_node=check.expect_node, max_ms=check.max_ms)
    if check.problem or check.query is None:
        result.fail(check.problem or "no query", "fix the check file's -- header lines")
        return result
    try:
        # READ ONLY: even EXPLAIN ANALYZE of a query that writes is refused, not run.
        conn.execute("BEGIN READ ONLY")
        try:
            _explain_check(conn, check, result, can_use=can_use, analyze=analyze, timeout_s=timeout_s)
        finally:
            if not conn.broken:
                conn.execute("ROLLBACK")
    except pgerrors.DatabaseError as exc:
        if conn.broken:
            raise ConnectionFailed(f"lost the connection during check {check.name}: {exc}") from None
        _explain_failed(result, exc, timeout_s)
    return result


def _explain_check(conn: psycopg.Connection[Any], check: Check, result: CheckResult, *, can_use: bool,
                   analyze: bool, timeout_s: float) -> None:
    assert check.query is not None and check.index is not None
    # A long query under ANALYZE, or a lock held by a migration, must fail this check, not hang the run.
    conn.execute("SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                 (f"{int(timeout_s * 1000)}ms", f"{int(min(timeout_s, 10) * 1000)}ms"))
    if can_use:
        # Seq scans priced out (not forbidden): any index path, bitmap ones included, now wins if one exists.
        conn.execute("SET LOCAL enable_seqscan = off")
        # An -- expect-node prices out the other ways to read an index too: on an empty, never
        # vacuumed table the planner picks a bitmap scan over an Index Only Scan (no visibility map),
        # which says nothing about whether the index can answer the query alone.
        for setting in _CAN_USE_OFF.get(check.expect_node, ()):
            conn.execute(sql.SQL("SET LOCAL {} = off").format(sql.Identifier(setting)))
    index = _index_info(conn, check.index)
    options = sql.SQL("ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON")
    # Prepared, because a prepared statement is one command by protocol: nothing after a ";" in the
    # query (a COMMIT, then a DELETE) can run outside this READ ONLY transaction.
    explain = sql.SQL("EXPLAIN ({}) {}").format(options, sql.SQL(check.query))
    row = conn.execute(explain, prepare=True).fetchone()
    assert row is not None
    doc = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    top = doc[0]
    plan = top["Plan"]
    nodes = list(_walk(plan))
    result.shape = [{"node": n.get("Node Type"), "index": n.get("Index Name"), "relation": n.get("Relation Name")}
                    for _, n in nodes]
    result.indexes_used = _unique(n["Index Name"] for _, n in nodes if n.get("Index Name"))
    result.cost = plan.get("Total Cost")
    if analyze:
        result.ms = top.get("Execution Time")
        result.shared_hit = plan.get("Shared Hit Blocks")
        result.shared_read = plan.get("Shared Read Blocks")
    result.plan = render_plan(plan, analyze=analyze)

    accepted = set(index["names"]) if index else {check.index.name}
    on_index = [n for _, n in nodes if n.get("Node Type") in INDEX_NODES and n.get("Index Name") in accepted]
    wanted = [n for n in on_index if check.expect_node in (None, n.get("Node Type"))]
    table = index["table"] if index else None
    decisive = (wanted or on_index or [n for _, n in nodes if table and n.get("Relation Name") == table]
                or [n for _, n in nodes if str(n.get("Node Type", "")).endswith("Scan")] or [plan])[0]
    result.node = decisive.get("Node Type")
    result.plan_summary = _node_summary(decisive)
    result.passed = bool(wanted)
    if result.passed:
        if check.max_ms is not None and result.ms is not None and result.ms >= check.max_ms:
            stale = _stale_tables(conn, index, nodes)
            result.stale_tables = stale
            result.fail(f"took {result.ms:.3f} ms, over its -- max-ms: {check.max_ms:g}",
                        _stale_hint(stale) if stale else "the index is used; compare shared read vs hit "
                        "(a cold cache) and the rows the query returns")
        return

    stale = _stale_tables(conn, index, nodes)
    result.stale_tables = stale
    name = str(check.index)
    if index is None:
        result.fail(f"expected index {name} does not exist",
                    "create it (`dbtune apply`, or the file's CREATE INDEX), or correct -- verify-index:")
        return
    if not index["valid"]:
        result.fail(f"index {name} exists but is INVALID (pg_index.indisvalid is false), so the planner "
                    "ignores it", "a failed or interrupted CREATE INDEX CONCURRENTLY leaves it behind: "
                    "`dbtune apply` drops and rebuilds it")
        return
    if on_index:
        got = on_index[0].get("Node Type")
        hints = []
        if check.expect_node == "Index Only Scan":
            hints.append("an Index Only Scan needs every column the query reads in the index and a current "
                         f"visibility map: VACUUM {index['table']}")
        if stale:
            hints.append(_stale_hint(stale))
        result.fail(f"uses {name} through {got}, expected {check.expect_node}", "; ".join(hints) or None)
        return
    result.fail(f"the plan does not use {name}: {result.plan_summary}")
    hints = []
    if stale:
        hints.append(_stale_hint(stale))
    mismatch = _predicate_mismatch(nodes, index)
    if mismatch:
        # The specific cause: the generic advice below would only distract from it.
        hints.append(f"the plan casts or re-collates the indexed column ({mismatch}): the query's types or "
                     "collation do not match the index, so it cannot be used; fix the literal's type or the "
                     "query's COLLATE")
    elif can_use and result.indexes_used:
        # enable_seqscan off rules out sequential scans, not one index against another.
        hints.append(f"another index ({', '.join(result.indexes_used)}) serves this query at a lower estimated "
                     f"cost on this data: on a table with realistic rows and statistics the planner may prefer "
                     f"{name}; if not, one of the two indexes may be redundant")
    elif can_use:
        hints.append(f"even with enable_seqscan off the planner does not use {name}: it cannot serve this query "
                     "as written (columns, operator class, partial-index predicate, collation)")
    else:
        hints.append(f"the planner prefers {result.plan_summary} (est. cost {_fmt_cost(result.cost)}): "
                     "check the predicate's selectivity, or try --can-use to prove the index is usable")
    result.hint = "; ".join(hints)


def _explain_failed(result: CheckResult, exc: psycopg.errors.DatabaseError, timeout_s: float) -> None:
    message = describe(exc)
    result.sqlstate = exc.sqlstate
    if isinstance(exc, pgerrors.SyntaxError):
        result.fail(f"the query does not parse: {message}", "fix the -- verify: line")
    elif isinstance(exc, pgerrors.UndefinedTable):
        result.fail(f"the query reads a table that does not exist: {message}",
                    "run verify against the database that has the schema (or create it: `dbtune apply`)")
    elif isinstance(exc, pgerrors.UndefinedParameter):
        result.fail(f"the query has parameters: {message}", "write literal values in the -- verify: line")
    elif isinstance(exc, (pgerrors.UndefinedColumn, pgerrors.UndefinedFunction, pgerrors.UndefinedObject)):
        result.fail(f"the query names something that does not exist: {message}",
                    "fix the -- verify: line, or run verify against the database it was written for")
    elif isinstance(exc, pgerrors.ReadOnlySqlTransaction):
        result.fail(f"the query writes: {message}", "verify runs queries read-only; check a SELECT instead")
    elif isinstance(exc, pgerrors.LockNotAvailable):
        result.fail(f"waited too long for a lock: {message}",
                    "another session holds a table of this query exclusively (a migration?); retry later")
    elif isinstance(exc, pgerrors.QueryCanceled):
        result.fail(f"the query ran past the {timeout_s:g} s timeout", "run without --analyze, or raise the timeout")
    elif isinstance(exc, pgerrors.InsufficientPrivilege):
        result.fail(f"permission denied: {message}", "verify needs SELECT on the tables the query reads")
    else:
        result.fail(f"the query failed ({exc.sqlstate}): {message}")


def _index_info(conn: psycopg.Connection[Any], index: IndexName) -> dict[str, Any] | None:
    row = conn.execute(_INDEX_SQL, {"name": index.name, "schema": index.schema}).fetchone()
    if row is None:
        return None
    oid, schema, name, valid, table_oid, table_schema, table, columns, tree = row
    # A partitioned index is scanned through its partitions' indexes, each with its own name.
    return {"oid": oid, "schema": schema, "name": name, "valid": valid, "table_oid": table_oid,
            "table_schema": table_schema, "table": table, "columns": columns or [],
            "names": sorted({name, *(tree or [])})}


def _stale_tables(conn: psycopg.Connection[Any], index: dict[str, Any] | None,
                  nodes: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """Tables of this check whose statistics are missing or out of date, described."""
    oids = [index["table_oid"]] if index else []
    names = _unique(n["Relation Name"] for _, n in nodes if n.get("Relation Name"))
    stale = []
    for schema, table, modified, reltuples, never in conn.execute(_TABLE_STATS_SQL, {"oids": oids, "names": names}):
        label = table if schema == "public" else f"{schema}.{table}"
        if never:
            stale.append(f"{label} (never analyzed)")
        elif modified > STALE_THRESHOLD + STALE_SCALE * reltuples:
            stale.append(f"{label} ({modified} rows changed since its last ANALYZE)")
    return stale


def _stale_hint(stale: list[str]) -> str:
    tables = ", ".join(s.split(" (")[0] for s in stale)
    return (f"statistics are stale or missing for {'; '.join(stale)}: run ANALYZE {tables} "
            "(verify never analyzes for you)")


def _predicate_mismatch(nodes: list[tuple[int, dict[str, Any]]], index: dict[str, Any]) -> str | None:
    """A Filter on the index's table that casts or re-collates an indexed column, quoted from the plan."""
    for _, node in nodes:
        if node.get("Relation Name") != index["table"]:
            continue
        for key in ("Filter", "Index Cond", "Recheck Cond"):
            text = node.get(key)
            if not text:
                continue
            for column in index["columns"]:
                col = re.escape(column)
                # EXPLAIN prints a cast column as "(col)::type" and an explicit collation as 'COLLATE "x"'.
                if re.search(rf'\(\s*(?:\w+\.)?"?{col}"?\s*\)::', text) or \
                        re.search(rf'\b{col}"?\s+COLLATE\b|COLLATE\s+"[^"]+"', text):
                    return f"{key}: {text}"
    return None


# ---------------------------------------------------------------------------
# Plans


def _walk(node: dict[str, Any], depth: int = 0, heap: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    # A Bitmap Index Scan does not name its table; its Bitmap Heap Scan (above any BitmapAnd/Or) does.
    if node.get("Node Type") == "Bitmap Heap Scan":
        heap = node.get("Relation Name")
    elif node.get("Node Type") == "Bitmap Index Scan" and heap and "Relation Name" not in node:
        node["Relation Name"] = heap
    yield depth, node
    for child in node.get("Plans", []):
        yield from _walk(child, depth + 1, heap)


def _node_summary(node: dict[str, Any]) -> str:
    text = str(node.get("Node Type", "?"))
    if node.get("Node Type") == "Aggregate" and node.get("Strategy") in ("Hashed", "Mixed"):
        text = "HashAggregate" if node["Strategy"] == "Hashed" else "MixedAggregate"
    if node.get("Index Name"):
        text += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        text += f" on {node['Relation Name']}"
        if node.get("Alias") and node["Alias"] != node["Relation Name"]:
            text += f" {node['Alias']}"
    return text


_DETAILS = ("Index Cond", "Recheck Cond", "Filter", "Rows Removed by Filter", "Rows Removed by Index Recheck",
            "Hash Cond", "Merge Cond", "Join Filter", "Sort Key", "Heap Fetches")


def render_plan(plan: dict[str, Any], *, analyze: bool = False, limit: int = PLAN_EXCERPT_LINES) -> str:
    """The plan as psql's text EXPLAIN would show it, in short: nodes, costs, conditions."""
    lines: list[str] = []
    for depth, node in _walk(plan):
        pad = "  " * depth + ("->  " if depth else "")
        line = f"{pad}{_node_summary(node)}  (cost={_fmt_cost(node.get('Startup Cost'))}.." \
               f"{_fmt_cost(node.get('Total Cost'))} rows={node.get('Plan Rows')})"
        if analyze and "Actual Total Time" in node:
            line += f" (actual time={node['Actual Total Time']:.3f} rows={_fmt_rows(node.get('Actual Rows'))} " \
                    f"loops={node.get('Actual Loops')})"
        lines.append(line)
        inner = "  " * depth + ("    " if depth else "  ")
        for key in _DETAILS:
            if key in node and node[key] not in (None, 0, []):
                value = ", ".join(node[key]) if isinstance(node[key], list) else node[key]
                lines.append(f"{inner}{key}: {value}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def _unique(items: Any) -> list[Any]:
    return list(dict.fromkeys(items))


def _fmt_rows(value: float | None) -> str:
    # PostgreSQL 18 reports fractional average rows per loop; whole numbers read better without ".0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fmt_cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# ---------------------------------------------------------------------------
# Baselines


def baseline_from_report(report: VerifyReport) -> Baseline:
    return Baseline(
        checks={c.name: BaselineEntry(name=c.name, query=c.query, expected_index=c.expected_index, passed=c.passed,
                                      plan_summary=c.plan_summary, indexes_used=list(c.indexes_used),
                                      shape=list(c.shape), cost=c.cost, ms=c.ms)
                for c in report.checks},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        analyze=report.analyze, can_use=report.can_use)


def save_baseline(report: VerifyReport, path: str | PathLike[str]) -> Baseline:
    """Write the plans (node types and index names), costs and times of ``report`` to ``path`` as JSON."""
    baseline = baseline_from_report(report)
    data = {"format": BASELINE_FORMAT, "created": baseline.created, "analyze": baseline.analyze,
            "can_use": baseline.can_use, "checks": [asdict(e) for e in baseline.checks.values()]}
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the baseline {path}: {exc.strerror}", path=str(path)) from None
    baseline.source = str(path)
    return baseline


def load_baseline(path: str | PathLike[str]) -> Baseline:
    try:
        data = json.loads(Path(path).read_text())
        if data.get("format") != BASELINE_FORMAT:
            raise ConfigError(f"{path} is not a dbtune verify baseline (format {data.get('format')!r})",
                              path=str(path))
        entries = [BaselineEntry(**entry) for entry in data["checks"]]
    except OSError as exc:
        raise ConfigError(f"cannot read the baseline {path}: {exc.strerror}", path=str(path)) from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{path} is not a dbtune verify baseline", path=str(path)) from None
    return Baseline(checks={e.name: e for e in entries}, created=data.get("created", ""),
                    analyze=bool(data.get("analyze")), can_use=bool(data.get("can_use")), source=str(path))


def compare_baseline(report: VerifyReport, baseline: Baseline, *, max_regression: float = 2.0,
                     floor_ms: float = 1.0) -> None:
    """Fail the checks of ``report`` whose plan left their index, or whose time grew past ``max_regression``x.

    Times under ``floor_ms`` are never a regression: sub-millisecond timings are noise.
    """
    report.baseline = baseline.source or "given"
    for result in report.checks:
        before = baseline.checks.get(result.name)
        if before is None or not result.shape:  # new check, or it failed before planning
            continue
        result.baseline_ms, result.baseline_cost, result.baseline_plan = before.ms, before.cost, before.plan_summary
        if before.query != result.query:
            result.plan_change = "the query changed since the baseline; not compared"
            continue
        expected = (result.expected_index or "").split(".")[-1]
        used_before = expected in before.indexes_used
        used_now = expected in result.indexes_used
        if used_before and not used_now:
            result.fail(f"plan regression: the baseline used {expected} ({before.plan_summary}), "
                        f"now {result.plan_summary}")
        elif _shape_key(before.shape) != _shape_key(result.shape):
            result.plan_change = f"plan changed: was {before.plan_summary}, now {result.plan_summary}"
        if before.ms and result.ms is not None and result.ms >= floor_ms:
            ratio = result.ms / before.ms
            if ratio > max_regression:
                result.fail(f"time regression: {before.ms:.3f} ms in the baseline, now {result.ms:.3f} ms "
                            f"({ratio:.1f}x, limit {max_regression:g}x)",
                            "compare the plan with the baseline's; look for stale statistics or data growth")


def _shape_key(shape: list[dict[str, str | None]]) -> list[tuple[str | None, str | None]]:
    return [(n.get("node"), n.get("index")) for n in shape]


# ---------------------------------------------------------------------------
# Rendering


def _mode(report: VerifyReport) -> str:
    mode = "can-use (enable_seqscan off)" if report.can_use else "planner's choice"
    return mode + (", EXPLAIN ANALYZE" if report.analyze else ", EXPLAIN")


def render(report: VerifyReport, out: Output, fmt: str = "table") -> None:
    """Draw ``report``: a table, then what failed with its reason, hint and plan; or JSON."""
    if fmt == "json":
        out.json(report.to_dict())
        return
    if fmt != "table":
        raise ConfigError(f"unknown format {fmt!r}: use table or json")
    # One column per fact: the expected index only where it is not the check's own name.
    rows: list[dict[str, Any]] = []
    for c in report.checks:
        rows.append({"check": c.name, "index": c.expected_index if c.expected_index != c.name else None,
                     "result": "PASS" if c.passed else "FAIL", "plan": c.plan_summary, "cost": c.cost,
                     "ms": c.ms, "buffers": None if c.shared_hit is None else f"{c.shared_hit}/{c.shared_read}",
                     "baseline": _versus(c)})
    columns = [Column("check", "check"), Column("result", "result"), Column("plan", "plan", "sql"),
               Column("cost", "est. cost", "float")]
    if any(r["index"] for r in rows):
        columns.insert(1, Column("index", "expected index (when not the check's name)"))
    if report.analyze:
        columns += [Column("ms", "time", "ms"), Column("buffers", "buffers hit/read")]
    if report.baseline:
        columns += [Column("baseline", "vs baseline")]
    out.grid(rows, columns)
    for c in report.failed:
        block = [f"\nFAIL {c.name} ({c.file})"]
        if c.query:
            block.append(f"  query:  {c.query}")
        block.append(f"  reason: {c.reason}")
        if c.hint:
            block.append(f"  hint:   {c.hint}")
        if c.plan:
            block.append("  plan:")
            block.extend("    " + line for line in c.plan.splitlines())
        out.result("\n".join(block))
    for c in report.passed:
        if c.plan_change:
            out.info(f"note: {c.name}: {c.plan_change}")
    out.info(f"\n{len(report.checks)} checks ({_mode(report)}): {len(report.passed)} passed, "
             f"{len(report.failed)} failed")


def _versus(c: CheckResult) -> str:
    if c.baseline_ms and c.ms:
        return f"{c.baseline_ms / c.ms:.1f}x faster" if c.ms <= c.baseline_ms else f"{c.ms / c.baseline_ms:.1f}x slower"
    if c.baseline_plan is None:
        return "-"
    return "plan changed" if c.plan_change else "same plan"


def comparison_rows(baseline: Baseline, report: VerifyReport) -> list[dict[str, Any]]:
    """Per check: plan, cost and time before (the baseline) and after (the report), and the speed-up."""
    rows = []
    for c in report.checks:
        before = baseline.checks.get(c.name)
        speedup = None
        if before and before.ms and c.ms:
            speedup = before.ms / c.ms
        rows.append({"check": c.name, "plan_before": before.plan_summary if before else None,
                     "plan_after": c.plan_summary, "cost_before": before.cost if before else None,
                     "cost_after": c.cost, "ms_before": before.ms if before else None, "ms_after": c.ms,
                     "speedup": speedup, "passed": c.passed})
    return rows


def render_comparison(baseline: Baseline, report: VerifyReport, out: Output, fmt: str = "table") -> None:
    """Before (``baseline``, e.g. recorded without the indexes) against after (``report``), per check."""
    rows = comparison_rows(baseline, report)
    if fmt == "json":
        out.json(rows)
        return
    if fmt != "table":
        raise ConfigError(f"unknown format {fmt!r}: use table or json")
    expected = {c.name: c.expected_index for c in report.checks}

    def short(plan: str | None, check: str) -> str:
        # The check is named for its index: "Index Scan" says it all, and keeps the table narrow.
        index = expected.get(check)
        return (plan.replace(f" using {index}", "") if plan and index else plan) or "-"

    for r in rows:
        r["plan_before"], r["plan_after"] = short(r["plan_before"], r["check"]), short(r["plan_after"], r["check"])
        r["speed-up"] = None if r["speedup"] is None else f"{r['speedup']:.1f}x"
    out.grid(rows, [Column("check", "check"), Column("plan_before", "plan before", "sql"),
                    Column("plan_after", "plan after", "sql"), Column("cost_before", "cost before", "float"),
                    Column("cost_after", "cost after", "float"), Column("ms_before", "before", "ms"),
                    Column("ms_after", "after", "ms"), Column("speed-up", "speed-up")])
