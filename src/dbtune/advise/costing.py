"""The planner's cost of each query with and without a candidate index, built nowhere on the target.

Two ways, and the result says which was used:

* ``Hypothetical``: hypopg's hypothetical indexes on the target itself, private to this
  session (hypopg keeps them in the backend's memory; nothing is written).  hypopg holds
  btree indexes only, so a trigram (GIN) candidate is costed the other way.
* ``Sample``: a scratch copy in a throwaway server (``servers.throwaway``): the tables'
  columns, a bounded sample of their rows (TABLESAMPLE), their existing indexes, ANALYZE,
  then each candidate built there for real.  An empty copy with the statistics restored
  does not work: the planner sizes a table by its actual pages, so it plans as empty.

A statement with ``$n`` parameters (pg_stat_statements normalises constants away) is planned
with EXPLAIN (GENERIC_PLAN) on PostgreSQL 16+; older servers have no generic EXPLAIN, so the
parameters are filled from pg_stats (``fill``): a typical value for an equality, the low or
high end of the histogram for a range, a fragment of a value for a LIKE.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ..core.output import Output
from ..sqltext.parameters import Param
from .candidates import Candidate
from .tables import Table

DEFAULT_LIMIT = "20"


@dataclass(frozen=True)
class Plan:
    cost: float
    indexes: frozenset[str]  # every index the plan reads


def fill(text: str, params: list[Param], tables: dict[str | None, Table]) -> str | None:
    """``text`` with each ``$n`` replaced by a value from pg_stats; None when one cannot be filled.

    ``tables`` maps each alias (and None, for an unqualified column) to its table."""
    values: dict[int, str] = {}
    for p in params:
        table = _table_of(p, tables)
        value = DEFAULT_LIMIT if p.role == "limit" else _value(p, table)
        if value is None:
            return None
        values[p.number] = value if p.role == "limit" or _is_number(p, table, value) else \
            sql.Literal(value).as_string()
    if set(int(n) for n in re.findall(r"\$(\d+)", text)) - set(values):
        return None
    return re.sub(r"\$(\d+)", lambda m: values[int(m.group(1))], text)


def _table_of(p: Param, tables: dict[str | None, Table]) -> Table | None:
    return tables.get(p.table) if p.table else next((t for t in tables.values() if p.column in t.stats), None)


# format_type's names of the built-in numeric types, whose values a check writes as numbers:
# "retailer_id = 758" reads as the application's query does; '758' works too, but reads as text.
# Not real: a real column compared with the numeric 0.1 is compared as float8, where 0.1::real is
# not 0.1, and the quoted '0.1' (read as a real) is what matches the row pg_stats took it from.
_NUMERIC = re.compile(r"(smallint|integer|bigint|double precision|numeric(\(\d+(,\d+)?\))?)")


def _is_number(p: Param, table: Table | None, value: str) -> bool:
    column = table.columns.get(p.column or "") if table else None
    return bool(column and column[1] and _NUMERIC.fullmatch(column[0])
                and re.fullmatch(r"\d+(\.\d+)?", value))  # a negative one stays quoted: "a -$1" would be "a --5"


def _value(p: Param, table: Table | None) -> str | None:
    st = table.stats.get(p.column or "") if table else None
    if st is None:
        return None
    bounds, common = st.bounds, st.common
    if p.role == "lt":
        return bounds[len(bounds) // 10] if bounds else (common[-1] if common else None)
    if p.role == "gt":
        return bounds[len(bounds) * 9 // 10] if bounds else (common[-1] if common else None)
    # A typical value: a histogram bound is one of the many values outside the most common ones.
    value = bounds[len(bounds) // 2] if bounds else (common[-1] if common else None)
    if p.role == "pattern" and value is not None:
        # One whole value: pg_stats cannot tell a rare fragment from a common one, and a
        # fragment of a name made of common words (a few characters, or one word) matches so
        # many rows that the planner rightly reads the table instead.
        return f"%{value}%"
    return value


def explain(conn: psycopg.Connection[Any], text: str, generic: bool) -> Plan:
    options = "GENERIC_PLAN, FORMAT JSON" if generic and "$" in text else "FORMAT JSON"
    row = conn.execute(sql.SQL("EXPLAIN ({}) {}").format(sql.SQL(options), sql.SQL(text))).fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    return Plan(float(plan["Total Cost"]), frozenset(_indexes(plan)))


def _indexes(node: dict[str, Any]) -> Iterator[str]:
    if "Index Name" in node:
        yield node["Index Name"]
    for child in node.get("Plans", ()):
        yield from _indexes(child)


class Hypothetical:
    """hypopg on the target: each candidate a hypothetical index, visible to this session only."""

    how = "planned with hypopg"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.generic = conn.info.server_version >= 160000

    def can_hold(self, candidate: Candidate) -> bool:
        return candidate.method == "btree"

    def plan(self, text: str) -> Plan:
        return explain(self.conn, text, self.generic)

    @contextlib.contextmanager
    def built(self, candidate: Candidate) -> Iterator[tuple[str, int]]:
        """The candidate as a hypothetical index: (the name plans show, its estimated size in bytes)."""
        oid, name = self.conn.execute("SELECT indexrelid, indexname FROM hypopg_create_index(%s)",
                                      [candidate.definition(name=False)]).fetchone()  # type: ignore[misc]
        try:
            size = self.conn.execute("SELECT hypopg_relation_size(%s)", [oid]).fetchone()[0]  # type: ignore[index]
            yield name, int(size)
        finally:
            self.conn.execute("SELECT hypopg_drop_index(%s)", [oid])


class Sample:
    """A scratch copy of the tables, ``rows`` sampled rows each, in a throwaway server."""

    def __init__(self, target: psycopg.Connection[Any], tables: list[Table], rows: int, out: Output) -> None:
        self.target, self.tables, self.rows, self.out = target, tables, rows, out
        self.copied: dict[str, int] = {}  # table -> rows in the sample
        self.stack = contextlib.ExitStack()
        self.conn: psycopg.Connection[Any]
        self.generic = True

    @property
    def how(self) -> str:
        most = max(self.copied.values(), default=0)
        return f"planned on a sample of up to {most:,} rows a table in a scratch server"

    def can_hold(self, candidate: Candidate) -> bool:
        return True

    def __enter__(self) -> Sample:
        from ..core.errors import ServerError
        from ..servers.throwaway import throwaway_server

        self.out.progress("advise", "starting a scratch server for the sample")
        try:
            server = self.stack.enter_context(throwaway_server("embedded"))
        except ServerError:
            server = self.stack.enter_context(throwaway_server("system"))
        self.conn = self.stack.enter_context(psycopg.connect(server.dsn(), autocommit=True))
        # The scratch server runs with synchronous_commit off: a row whose commit is not yet
        # flushed gets no hint bit, and VACUUM marks no page holding one all-visible, so the
        # planner would cost an index-only scan (a covering index) as a plain index scan.
        self.conn.execute("SET synchronous_commit = on")
        self.generic = self.conn.info.server_version >= 160000
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        path = self.target.execute("SELECT current_setting('search_path')").fetchone()[0]  # type: ignore[index]
        for table in self.tables:
            self._copy(table)
        self.conn.execute(sql.SQL("SET search_path = {}").format(sql.SQL(path)))
        self.out.progress("advise", "sample copied", final=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def _copy(self, table: Table) -> None:
        self.out.progress("advise", f"sampling {table.qualified}")
        self.conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(table.schema)))
        # A type of the application's own (an enum, a domain) is carried as text: the sample
        # server does not have it, and text compares and sorts its values all the same.
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t if builtin else "text"))
            for c, (t, builtin) in table.columns.items())
        self.conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.SQL(table.qualified), columns))
        names = sql.SQL(", ").join(map(sql.Identifier, table.columns))
        source = sql.SQL("SELECT {} FROM {}").format(names, sql.SQL(table.qualified))
        if table.rows > self.rows:
            share = min(100.0, 100.0 * self.rows / table.rows * 1.2)
            source += sql.SQL(" TABLESAMPLE SYSTEM ({}) REPEATABLE (0)").format(sql.Literal(share))
        source += sql.SQL(" LIMIT {}").format(sql.Literal(self.rows))
        with self.target.cursor().copy(sql.SQL("COPY ({}) TO STDOUT").format(source)) as out, \
                self.conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.SQL(table.qualified), names)) as into:
            for data in out:
                into.write(data)
        for index in table.indexes:
            with contextlib.suppress(psycopg.errors.UndefinedObject, psycopg.errors.UndefinedFunction,
                                     psycopg.errors.InvalidTextRepresentation, psycopg.errors.UniqueViolation):
                self.conn.execute(sql.SQL(index.definition))  # type: ignore[arg-type]
        # VACUUM too: a vacuumed table's visibility map (relallvisible) is what makes an
        # index-only scan (a covering index) cheap, and a freshly copied one has none.
        self.conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.SQL(table.qualified)))
        self.copied[table.qualified] = self.conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(table.qualified))).fetchone()[0]  # type: ignore[index]

    def plan(self, text: str) -> Plan:
        return explain(self.conn, text, self.generic)

    @contextlib.contextmanager
    def built(self, candidate: Candidate) -> Iterator[tuple[str, int]]:
        """The candidate built on the sample: (its name, its size scaled up to the full table)."""
        self.conn.execute(sql.SQL(candidate.definition()))  # type: ignore[arg-type]
        try:
            table = next(t for t in self.tables if t.qualified == candidate.table)
            size = self.conn.execute("SELECT pg_relation_size(%s::regclass)", [
                sql.Identifier(table.schema, candidate.name).as_string(self.conn)]).fetchone()[0]  # type: ignore[index]
            sampled = max(self.copied.get(candidate.table, 1), 1)
            yield candidate.name, int(size * max(table.rows / sampled, 1.0))
        finally:
            self.conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(table.schema, candidate.name)))
