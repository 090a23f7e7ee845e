"""`dbtune verify`: prove with EXPLAIN that each index serves its query, and catch plan regressions.

For every check (see ``checks.py``) the query is EXPLAINed in its own
``BEGIN READ ONLY`` transaction that is always rolled back, so verify never
changes data, statistics or settings: it does not even run ANALYZE, it only
says when statistics look stale.  A check passes when the plan reads the
expected index (Index Scan, Index Only Scan or Bitmap Index Scan); why one
fails is ``diagnosis.py``'s.

Modes: the planner's real choice on the current data (default); ``can_use``,
where ``enable_seqscan`` is off for the check's transaction, to prove the index
*can* serve the query on a nearly empty CI database; ``analyze``, which runs the
query (EXPLAIN ANALYZE, BUFFERS) for times and buffer counts.

``verify()`` returns a VerifyReport; ``render()`` and ``render_comparison()``
(render.py) draw it; ``save_baseline()``/``load_baseline()`` (baselines.py) keep
plans and times to compare a later run against.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from ..core.db import connect
from ..core.errors import ConfigError, ConnectionFailed
from ..core.settings import Target
from .baselines import Baseline, compare_baseline
from .checks import Check, IndexName, load_checks
from .diagnosis import explain_error, judge
from .plans import render_plan, unique, walk
from .results import CheckResult, VerifyReport

# With can_use and an -- expect-node, the planner settings turned off besides enable_seqscan.
_CAN_USE_OFF = {
    "Index Only Scan": ("enable_bitmapscan",),
    "Index Scan": ("enable_bitmapscan", "enable_indexonlyscan"),
    "Bitmap Index Scan": ("enable_indexscan", "enable_indexonlyscan"),
}

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
        explain_error(result, exc, timeout_s)
    return result


def _explain_check(conn: psycopg.Connection[Any], check: Check, result: CheckResult, *, can_use: bool,
                   analyze: bool, timeout_s: float) -> None:
    assert check.query is not None and check.index is not None
    _set_limits(conn, check, can_use=can_use, timeout_s=timeout_s)
    index = _index_info(conn, check.index)
    top = _explain(conn, check.query, analyze=analyze)
    nodes = _record_plan(result, top, analyze=analyze)
    judge(conn, check, result, index, nodes, can_use=can_use)


def _set_limits(conn: psycopg.Connection[Any], check: Check, *, can_use: bool, timeout_s: float) -> None:
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


def _explain(conn: psycopg.Connection[Any], query: str, *, analyze: bool) -> dict[str, Any]:
    """EXPLAIN (FORMAT JSON) of ``query``: its top object, with the "Plan" and, under ANALYZE, the times."""
    options = sql.SQL("ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON")
    # Prepared, because a prepared statement is one command by protocol: nothing after a ";" in the
    # query (a COMMIT, then a DELETE) can run outside this READ ONLY transaction.
    explain = sql.SQL("EXPLAIN ({}) {}").format(options, sql.SQL(query))
    row = conn.execute(explain, prepare=True).fetchone()
    assert row is not None
    doc = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    top: dict[str, Any] = doc[0]
    return top


def _record_plan(result: CheckResult, top: dict[str, Any], *, analyze: bool) -> list[tuple[int, dict[str, Any]]]:
    """The plan's shape, indexes, cost (and times) on ``result``; its nodes, for judging it."""
    plan = top["Plan"]
    nodes = list(walk(plan))
    result.shape = [{"node": n.get("Node Type"), "index": n.get("Index Name"), "relation": n.get("Relation Name")}
                    for _, n in nodes]
    result.indexes_used = unique(n["Index Name"] for _, n in nodes if n.get("Index Name"))
    result.cost = plan.get("Total Cost")
    if analyze:
        result.ms = top.get("Execution Time")
        result.shared_hit = plan.get("Shared Hit Blocks")
        result.shared_read = plan.get("Shared Read Blocks")
    result.plan = render_plan(plan, analyze=analyze)
    return nodes


def _index_info(conn: psycopg.Connection[Any], index: IndexName) -> dict[str, Any] | None:
    row = conn.execute(_INDEX_SQL, {"name": index.name, "schema": index.schema}).fetchone()
    if row is None:
        return None
    oid, schema, name, valid, table_oid, table_schema, table, columns, tree = row
    # A partitioned index is scanned through its partitions' indexes, each with its own name.
    return {"oid": oid, "schema": schema, "name": name, "valid": valid, "table_oid": table_oid,
            "table_schema": table_schema, "table": table, "columns": columns or [],
            "names": sorted({name, *(tree or [])})}

