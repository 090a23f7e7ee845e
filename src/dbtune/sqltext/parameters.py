"""What each ``$n`` parameter of a statement is compared with, from its parse tree (pglast).

pg_stat_statements normalises constants to ``$n``: on a server without EXPLAIN (GENERIC_PLAN)
(before 16) `advise` fills each from the compared column's statistics, and this says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .shapes import PATTERN, RANGE, column_ref, expr_kind, opname, tree, walk


@dataclass(frozen=True)
class Param:
    """Where a ``$n`` parameter sits: compared with a column (role eq, range, pattern) or a LIMIT."""

    number: int
    role: str  # "eq", "lt", "gt", "pattern", "limit"
    table: str | None = None  # the alias or table name as written
    column: str | None = None


def params(text: str) -> list[Param]:
    """Every ``$n`` of the statement and the column it is compared with, where one is."""
    from pglast import ast

    stmt = tree(text)
    if stmt is None:
        return []
    found: dict[int, Param] = {}
    if isinstance(stmt, ast.SelectStmt):
        for clause in (stmt.limitCount, stmt.limitOffset):
            if isinstance(clause, ast.ParamRef):
                found[clause.number] = Param(clause.number, "limit")
    for node in walk(stmt):
        if isinstance(node, ast.A_Expr):
            _param_of(node, found)
    return sorted(found.values(), key=lambda p: p.number)


def _param_of(node: Any, found: dict[int, Param]) -> None:
    op, between = opname(node), "BETWEEN" in expr_kind(node)
    for col, other, flipped in ((node.lexpr, node.rexpr, False), (node.rexpr, node.lexpr, True)):
        ref = column_ref(col)
        if ref is None:
            continue
        for i, p in enumerate(_params_in(other)):
            if between:
                role = "gt" if i == 0 else "lt"
            elif op in PATTERN:
                role = "pattern"
            elif op in RANGE:
                role = "lt" if op.startswith("<") != flipped else "gt"
            else:
                role = "eq"
            found.setdefault(p.number, Param(p.number, role, *ref))


def _params_in(node: Any) -> list[Any]:
    from pglast import ast

    items = list(node) if isinstance(node, (list, tuple)) else [node]
    out = []
    for item in items:
        while isinstance(item, ast.TypeCast):
            item = item.arg
        if isinstance(item, ast.ParamRef):
            out.append(item)
    return out
