"""Reading an EXPLAIN (FORMAT JSON) plan: walking its nodes, summing one up, drawing it as psql would.

Also what the plan says about a predicate that cannot use an index (a cast or a
collation on the indexed column).  Pure functions over the plan; no connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

PLAN_EXCERPT_LINES = 30


def walk(node: dict[str, Any], depth: int = 0, heap: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first, with its depth."""
    # A Bitmap Index Scan does not name its table; its Bitmap Heap Scan (above any BitmapAnd/Or) does.
    if node.get("Node Type") == "Bitmap Heap Scan":
        heap = node.get("Relation Name")
    elif node.get("Node Type") == "Bitmap Index Scan" and heap and "Relation Name" not in node:
        node["Relation Name"] = heap
    yield depth, node
    for child in node.get("Plans", []):
        yield from walk(child, depth + 1, heap)


def node_summary(node: dict[str, Any]) -> str:
    """One node in a line: "Index Only Scan using orders_customer_idx on orders o"."""
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
    for depth, node in walk(plan):
        pad = "  " * depth + ("->  " if depth else "")
        line = f"{pad}{node_summary(node)}  (cost={fmt_cost(node.get('Startup Cost'))}.." \
               f"{fmt_cost(node.get('Total Cost'))} rows={node.get('Plan Rows')})"
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


def unique(items: Any) -> list[Any]:
    """``items`` without repeats, in their first order."""
    return list(dict.fromkeys(items))


def _fmt_rows(value: float | None) -> str:
    # PostgreSQL 18 reports fractional average rows per loop; whole numbers read better without ".0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fmt_cost(value: float | None) -> str:
    """A cost as EXPLAIN prints it, or "-" when the plan gives none."""
    return "-" if value is None else f"{value:.2f}"


def predicate_mismatch(nodes: list[tuple[int, dict[str, Any]]], index: dict[str, Any]) -> str | None:
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
