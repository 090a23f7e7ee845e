"""Index candidates for one query's use of one table, and the existing index that already serves one.

The rules (a btree's key order is the one that lets it serve the most of the query):
equality columns first, then one range column, then the ORDER BY; a **partial** index
when a condition compares a column with constants that select a small share of the rows
(by pg_stats); a **covering** index (INCLUDE) when the query reads few other columns, so
an index-only scan can answer it; a **trigram** GIN index (pg_trgm) for LIKE, ILIKE and
the similarity operators.  Which candidate pays for itself is the planner's call (costing).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from psycopg import sql

from ..sqltext.shapes import Use, key_columns
from .tables import Existing, Table

PARTIAL_SHARE = 0.2  # a predicate selecting at most this share of the rows makes a partial index
# ... on a column of this many distinct values at most (a status, a flag): a constant compared
# with an id or a date is one value of many that the next call changes, not a fixed slice.
PARTIAL_DISTINCT = 20
MAX_INCLUDE = 5  # more columns than this and the index is a second copy of the table
NAME_MAX = 63  # PostgreSQL's NAMEDATALEN - 1


@dataclass(frozen=True)
class Candidate:
    table: str  # schema-qualified, quoted
    table_name: str
    kind: str  # "composite", "partial", "covering", "trigram"
    keys: tuple[tuple[str, bool], ...]  # (column, descending)
    include: tuple[str, ...] = ()
    where: str | None = None
    method: str = "btree"

    @property
    def name(self) -> str:
        """ix_<table>_<columns>, then _covering, _trgm or the predicate's words; a hash when too long."""
        words = {"covering": "covering", "trigram": "trgm"}.get(self.kind, "")
        if self.where:
            words = "_".join(re.findall(r"[a-z0-9]+", self.where.lower().replace("not in", "not")))
        full = "_".join(p for p in (f"ix_{self.table_name}", *(c for c, _ in self.keys), words) if p)
        full = re.sub(r"[^a-z0-9_]", "", full.lower())
        if len(full) <= NAME_MAX:
            return full
        digest = hashlib.sha1(full.encode()).hexdigest()[:6]
        return f"{full[:NAME_MAX - 7]}_{digest}"

    def columns_sql(self) -> str:
        if self.method == "gin":
            return ", ".join(f"{_ident(c)} gin_trgm_ops" for c, _ in self.keys)
        return ", ".join(_ident(c) + (" DESC" if desc else "") for c, desc in self.keys)

    def definition(self, *, concurrently: bool = False, name: bool = True) -> str:
        """The CREATE INDEX statement (hypopg takes it without CONCURRENTLY and without a name)."""
        parts = ["CREATE INDEX", "CONCURRENTLY IF NOT EXISTS" if concurrently else "",
                 _ident(self.name) if name else "", "ON", self.table,
                 f"USING {self.method}" if self.method != "btree" else "", f"({self.columns_sql()})",
                 f"INCLUDE ({', '.join(map(_ident, self.include))})" if self.include else "",
                 f"WHERE {self.where}" if self.where else ""]
        return " ".join(p for p in parts if p)


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string()


def propose(use: Use, table: Table) -> list[Candidate]:
    """Every candidate for this use of ``table``: plain, partial, covering and trigram ones."""
    found: list[Candidate] = []
    q, name = table.qualified, table.name
    keys = key_columns(use, table.columns)
    if keys:
        found.append(Candidate(q, name, "composite", keys))
        rest = _include(use, keys, table)
        if rest:
            found.append(Candidate(q, name, "covering", keys, include=rest))
    for constant in use.constants:
        share = table.share(constant.column, constant.op, constant.values)
        if share is None or share > PARTIAL_SHARE or not table.few_values(constant.column, PARTIAL_DISTINCT):
            continue
        fixed = {constant.column} if constant.op in ("=", "true", "false", "is null") else set()
        part = key_columns(use, table.columns, fixed)
        if not part:  # nothing left to order by: any small column indexes the slice
            part = ((constant.column, False),)
        found.append(Candidate(q, name, "partial", part, where=constant.sql()))
    for column in use.patterns:
        if column in table.columns:
            found.append(Candidate(q, name, "trigram", ((column, False),), method="gin"))
    return list(dict.fromkeys(found))


def _include(use: Use, keys: tuple[tuple[str, bool], ...], table: Table) -> tuple[str, ...]:
    if use.read is None:
        return ()
    key_names = {c for c, _ in keys}
    rest = tuple(sorted(c for c in use.read if c in table.columns and c not in key_names))
    return rest if 0 < len(rest) <= MAX_INCLUDE else ()


def served_by(candidate: Candidate, indexes: list[Existing]) -> Existing | None:
    """The existing index that already serves what ``candidate`` would: a btree whose keys begin
    with the candidate's (in any direction: a btree reads both ways) and that covers its INCLUDE,
    under the same predicate; a trigram index on the same column."""
    for index in indexes:
        if candidate.method == "gin":
            if index.method == "gin" and index.keys[:1] == (candidate.keys[0][0],) and \
                    any(o.startswith("gin_trgm") for o in index.opclasses):
                return index
            continue
        if index.method != "btree" or _norm(index.predicate) != _norm(candidate.where):
            continue
        wanted = tuple(c for c, _ in candidate.keys)
        if index.keys[:len(wanted)] == wanted and set(candidate.include) <= {*index.keys, *index.include}:
            return index
    return None


def _norm(predicate: str | None) -> str:
    """A predicate without the parentheses, casts and spacing pg_get_expr adds."""
    if predicate is None:
        return ""
    text = re.sub(r"::[\w ]+(\[\])?", "", predicate.lower())
    text = re.sub(r"<>\s*all\s*\(array\[(.*?)\]\)", r"not in (\1)", text)
    text = re.sub(r"=\s*any\s*\(array\[(.*?)\]\)", r"in (\1)", text)
    return re.sub(r"[\s()\"]", "", text)

