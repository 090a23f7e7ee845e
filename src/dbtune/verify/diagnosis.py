"""Why a check of `dbtune verify` passed or failed: the plan judged, and each failure given a reason and a hint.

The decisive plan node, the index missing or INVALID, the wrong node type, a
predicate the index cannot serve, statistics out of date, or the query's own
error (by SQLSTATE class).  Reads the catalog and the statistics views only.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors as pgerrors

from ..core.db import describe
from ..online import statistics
from .checks import INDEX_NODES, Check
from .plans import fmt_cost, node_summary, predicate_mismatch, unique
from .results import CheckResult

# Autovacuum analyzes a table once this many rows changed since its last ANALYZE
# (autovacuum_analyze_threshold + autovacuum_analyze_scale_factor * reltuples,
# defaults 50 and 0.1): past that, the planner's row estimates are likely off.
# https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-STATISTICS
# The scale factor is the one staleness rule's (online.statistics); verify adds autovacuum's base.
AUTOVACUUM_ANALYZE_THRESHOLD = 50

# Plans name relations without their schema: resolve them through the search_path, as the query did.
_OF_THIS_CHECK = ("s.relid = ANY (%(oids)s::oid[]) "
                  "OR s.relid = ANY (SELECT to_regclass(quote_ident(r)) FROM unnest(%(names)s::text[]) r)")


def judge(conn: psycopg.Connection[Any], check: Check, result: CheckResult, index: dict[str, Any] | None,
          nodes: list[tuple[int, dict[str, Any]]], *, can_use: bool) -> None:
    """Pass ``result`` when the plan reads the expected index (with the expected node), else say why not."""
    assert check.index is not None
    plan = nodes[0][1]
    accepted = set(index["names"]) if index else {check.index.name}
    on_index = [n for _, n in nodes if n.get("Node Type") in INDEX_NODES and n.get("Index Name") in accepted]
    wanted = [n for n in on_index if check.expect_node in (None, n.get("Node Type"))]
    table = index["table"] if index else None
    decisive = (wanted or on_index or [n for _, n in nodes if table and n.get("Relation Name") == table]
                or [n for _, n in nodes if str(n.get("Node Type", "")).endswith("Scan")] or [plan])[0]
    result.node = decisive.get("Node Type")
    result.plan_summary = node_summary(decisive)
    result.passed = bool(wanted)
    if result.passed:
        if check.max_ms is not None and result.ms is not None and result.ms >= check.max_ms:
            stale = stale_tables(conn, index, nodes)
            result.stale_tables = stale
            result.fail(f"took {result.ms:.3f} ms, over its -- max-ms: {check.max_ms:g}",
                        _stale_hint(stale) if stale else "the index is used; compare shared read vs hit "
                        "(a cold cache) and the rows the query returns")
        return

    stale = stale_tables(conn, index, nodes)
    result.stale_tables = stale
    _why_not(check, result, index, nodes, on_index, stale, can_use=can_use)


def _why_not(check: Check, result: CheckResult, index: dict[str, Any] | None, nodes: list[tuple[int, dict[str, Any]]],
             on_index: list[dict[str, Any]], stale: list[str], *, can_use: bool) -> None:
    """Fail ``result`` with the reason its plan does not read the expected index the expected way."""
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
    result.hint = "; ".join(_not_used_hints(result, name, index, nodes, stale, can_use=can_use))


def _not_used_hints(result: CheckResult, name: str, index: dict[str, Any], nodes: list[tuple[int, dict[str, Any]]],
                    stale: list[str], *, can_use: bool) -> list[str]:
    hints = []
    if stale:
        hints.append(_stale_hint(stale))
    mismatch = predicate_mismatch(nodes, index)
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
        hints.append(f"the planner prefers {result.plan_summary} (est. cost {fmt_cost(result.cost)}): "
                     "check the predicate's selectivity, or try --can-use to prove the index is usable")
    return hints


# Per SQLSTATE class, in order: why the check failed (with the server's message) and what to do.
_ERRORS: tuple[tuple[Any, str, str], ...] = (
    (pgerrors.SyntaxError, "the query does not parse: {message}", "fix the -- verify: line"),
    (pgerrors.UndefinedTable, "the query reads a table that does not exist: {message}",
     "run verify against the database that has the schema (or create it: `dbtune apply`)"),
    (pgerrors.UndefinedParameter, "the query has parameters: {message}", "write literal values in the -- verify: line"),
    ((pgerrors.UndefinedColumn, pgerrors.UndefinedFunction, pgerrors.UndefinedObject),
     "the query names something that does not exist: {message}",
     "fix the -- verify: line, or run verify against the database it was written for"),
    (pgerrors.ReadOnlySqlTransaction, "the query writes: {message}",
     "verify runs queries read-only; check a SELECT instead"),
    (pgerrors.LockNotAvailable, "waited too long for a lock: {message}",
     "another session holds a table of this query exclusively (a migration?); retry later"),
    (pgerrors.QueryCanceled, "the query ran past the {timeout_s:g} s timeout",
     "run without --analyze, or raise the timeout"),
    (pgerrors.InsufficientPrivilege, "permission denied: {message}",
     "verify needs SELECT on the tables the query reads"),
)


def explain_error(result: CheckResult, exc: pgerrors.DatabaseError, timeout_s: float) -> None:
    """Fail ``result`` for the error its query raised, by the error's SQLSTATE class."""
    message = describe(exc)
    result.sqlstate = exc.sqlstate
    for classes, reason, hint in _ERRORS:
        if isinstance(exc, classes):
            result.fail(reason.format(message=message, timeout_s=timeout_s), hint)
            return
    result.fail(f"the query failed ({exc.sqlstate}): {message}")


def stale_tables(conn: psycopg.Connection[Any], index: dict[str, Any] | None,
                 nodes: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """Tables of this check whose statistics are missing or out of date, described."""
    oids = [index["table_oid"]] if index else []
    names = unique(n["Relation Name"] for _, n in nodes if n.get("Relation Name"))
    stale = []
    for found in statistics.stale_tables(conn, _OF_THIS_CHECK, {"oids": oids, "names": names},
                                         base_rows=AUTOVACUUM_ANALYZE_THRESHOLD):
        label = found.table if found.schema == "public" else f"{found.schema}.{found.table}"
        if found.never:
            stale.append(f"{label} (never analyzed)")
        else:
            stale.append(f"{label} ({found.changed} rows changed since its last ANALYZE)")
    return stale


def _stale_hint(stale: list[str]) -> str:
    tables = ", ".join(s.split(" (")[0] for s in stale)
    return (f"statistics are stale or missing for {'; '.join(stale)}: run ANALYZE {tables} "
            "(verify never analyzes for you)")

