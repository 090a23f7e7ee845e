"""What a statement is and how it uses each table, read from PostgreSQL's parse tree (pglast).

Pure: no connection.  ``kind`` says whether an index can serve a statement at all (a
one-off bulk load, DDL and maintenance are not index work); ``uses`` says, per table,
which columns a query compares with a value (equality, range, pattern), which it sorts
by, which conditions compare a column with a constant (a partial index's predicate) and
which columns it reads (a covering index's INCLUDE); ``key_columns`` is the one rule for a
btree's key order, and ``outlines`` the indexes the parse tree alone suggests (what
`report` names; `advise` costs them with the table's facts) or ``no_index`` why none can.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

# What kind of statement, and whether an index can serve it.
SERVABLE = ("query", "update", "delete")
KINDS = {
    "query": "a query", "update": "an UPDATE", "delete": "a DELETE", "insert": "a single-row INSERT",
    "bulk load": "a bulk load (INSERT ... SELECT or COPY)", "ddl": "DDL", "maintenance": "maintenance",
    "session": "session or transaction control", "other": "a utility statement", "unparsable": "unreadable SQL",
}
EQUAL, RANGE = ("=",), ("<", ">", "<=", ">=")
PATTERN = ("~~", "~~*", "%", "<%", "%>", "<<%", "%>>", "!~~", "!~~*")
_SIMILARITY = ("similarity", "word_similarity", "strict_word_similarity")


@dataclass(frozen=True)
class Constant:
    """A condition that compares one column with constants only: a partial index's predicate."""

    column: str
    op: str  # "=", "in", "not in", "is null", "true", "false"
    values: tuple[str, ...] = ()  # SQL literals as written

    def sql(self) -> str:
        col = _ident(self.column)
        if self.op == "=":
            return f"{col} = {self.values[0]}"
        if self.op in ("in", "not in"):
            return f"{col} {self.op.upper()} ({', '.join(self.values)})"
        if self.op == "is null":
            return f"{col} IS NULL"
        return col if self.op == "true" else f"NOT {col}"


@dataclass
class Use:
    """How one query uses one table (named ``relation``, ``alias`` in the query)."""

    relation: tuple[str | None, str]  # (schema or None, name)
    alias: str
    equal: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)  # the equal columns compared with a list (IN)
    ranges: list[str] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    patterns: list[str] = field(default_factory=list)
    constants: list[Constant] = field(default_factory=list)
    read: set[str] | None = field(default_factory=set)  # None: every column (SELECT *)


def _ident(name: str) -> str:
    from psycopg import sql

    return sql.Identifier(name).as_string()


# pg_stat_statements writes a typed literal (DATE '2025-07-01') as ``DATE $2``, which no parser
# reads; the cast ``$2::date`` means the same.
_TYPED = re.compile(r"\b(date|time(?:stamp)?(?:tz)?(?:\s+with(?:out)?\s+time\s+zone)?|interval|numeric|decimal|"
                    r"(?:small|big)?int|integer|int[248]|float[48]?|real|double\s+precision|text|varchar|bool(?:ean)?|"
                    r"uuid|jsonb?|inet|cidr|bytea|money)\s+(\$\d+)", re.IGNORECASE)


def readable(text: str) -> str:
    """``text`` with pg_stat_statements' typed parameters (``DATE $2``) as casts (``$2::date``)."""
    return _TYPED.sub(lambda m: f"{m.group(2)}::{' '.join(m.group(1).split())}", text)


def tree(text: str) -> Any:
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        stmts = parse_sql(readable(text))
    except ParseError:
        return None
    return stmts[0].stmt if len(stmts) == 1 else None


def kind(text: str) -> str:
    """One of KINDS' keys."""
    from pglast import ast

    stmt = tree(text)
    if stmt is None:
        return "unparsable"
    if isinstance(stmt, ast.SelectStmt):
        return "bulk load" if stmt.intoClause is not None else "query"
    if isinstance(stmt, ast.InsertStmt):
        select = stmt.selectStmt
        rows = select.valuesLists if isinstance(select, ast.SelectStmt) else None
        return "insert" if rows is not None and len(rows) == 1 else "bulk load"
    if isinstance(stmt, ast.CopyStmt):
        return "bulk load"
    if isinstance(stmt, ast.UpdateStmt):
        return "update"
    if isinstance(stmt, ast.DeleteStmt):
        return "delete"
    if isinstance(stmt, (ast.VacuumStmt, ast.ReindexStmt, ast.ClusterStmt, ast.RefreshMatViewStmt,
                         ast.CheckPointStmt)):
        return "maintenance"
    if isinstance(stmt, (ast.TransactionStmt, ast.VariableSetStmt, ast.VariableShowStmt, ast.DiscardStmt,
                         ast.LockStmt)):
        return "session"
    name = type(stmt).__name__
    if name.startswith(("Create", "Alter", "Drop", "Index", "Rename", "Grant", "Comment", "Truncate", "Define")):
        return "ddl"
    return "other"


def uses(text: str) -> list[Use]:
    """Each table the statement reads (its top-level SELECT, UPDATE or DELETE), and how."""
    from pglast import ast

    stmt = tree(text)
    if isinstance(stmt, ast.SelectStmt) and stmt.fromClause:
        reader = _Reader(stmt.fromClause)
        reader.conditions(stmt.whereClause)
        reader.sort(stmt.sortClause)
        reader.targets(stmt.targetList)
        return reader.result()
    if isinstance(stmt, (ast.UpdateStmt, ast.DeleteStmt)) and stmt.whereClause is not None:
        reader = _Reader((stmt.relation,))
        reader.conditions(stmt.whereClause)
        return reader.result()
    return []


def key_columns(use: Use, known: Collection[str] | None = None,
                skip: Collection[str] = ()) -> tuple[tuple[str, bool], ...]:
    """A btree's keys for ``use``, (column, descending): the equality columns first, then one range
    column, then the ORDER BY, so that one index serves as much of the query as it can.  Only
    columns of ``known`` where it is given; ``skip`` (a partial index's fixed column) left out."""
    def fits(column: str) -> bool:
        return (known is None or column in known) and column not in taken

    taken = set(skip)
    keys: list[tuple[str, bool]] = []

    def add(column: str, desc: bool = False) -> None:
        keys.append((column, desc))
        taken.add(column)

    # A column compared with a list (IN) matches several runs of the index: rows come out in key
    # order within each run only, so before an ORDER BY it goes after the sort's columns, where
    # the scan still filters on it without reading the table.
    later = use.listed if use.order else []
    for column in use.equal:
        if fits(column) and column not in later:
            add(column)
    first_range = next((c for c in use.ranges if fits(c)), None)
    if first_range is not None:
        add(first_range, dict(use.order).get(first_range, False))
    for column, desc in use.order:
        if fits(column):
            add(column, desc)
    for column in later:
        if fits(column):
            add(column)
    return tuple(keys)


@dataclass(frozen=True)
class Outline:
    """An index the parse tree alone suggests: its table as written, its keys, btree or trigram."""

    relation: tuple[str | None, str]
    keys: tuple[tuple[str, bool], ...]
    method: str = "btree"  # "gin": a trigram index (pg_trgm)

    def __str__(self) -> str:
        table = ".".join(p for p in self.relation if p)
        columns = ", ".join(c + (" DESC" if desc else "") for c, desc in self.keys)
        return f"{'a trigram index' if self.method == 'gin' else 'an index'} on {table} ({columns})"


def outlines(text: str) -> list[Outline]:
    """The indexes that may serve the statement, from its parse tree alone (no table facts, no
    costing: `advise` proves or drops each of them with the planner)."""
    if kind(text) not in SERVABLE:
        return []
    found: list[Outline] = []
    for use in uses(text):
        if _catalog(use.relation):
            continue
        keys = key_columns(use)
        if keys:
            found.append(Outline(use.relation, keys))
        found += [Outline(use.relation, ((c, False),), "gin") for c in use.patterns]
    return list(dict.fromkeys(found))


def _catalog(relation: tuple[str | None, str]) -> bool:
    """A system catalog or view (pg_settings, pg_stat_*): a monitoring tool's query, not the application's."""
    schema, name = relation
    return schema in ("pg_catalog", "information_schema") or (schema is None and name.startswith("pg_"))


def no_index(text: str) -> str | None:
    """Why no index can serve the statement, or None when one may (``outlines`` names it)."""
    what = kind(text)
    if what == "insert":
        return "a single-row INSERT: an index does not speed it up (each one slows it down)"
    if what not in SERVABLE:
        return f"{KINDS[what]}: not index work"
    if outlines(text):
        return None
    read = uses(text)
    if not read:
        return "reads no table: its time is its own work, which no index shortens"
    if all(_catalog(u.relation) for u in read):
        return "reads the system catalog: not the application's tables"
    return "no condition, join or sort on a column an index can use: it reads every row it touches"


def expr_kind(node: Any) -> str:
    """AEXPR_OP, AEXPR_IN, AEXPR_BETWEEN, ... (the A_Expr_Kind's name)."""
    from pglast.enums import A_Expr_Kind

    return A_Expr_Kind(node.kind).name


def opname(node: Any) -> str:
    return node.name[-1].sval if node.name else ""


def column_ref(node: Any) -> tuple[str | None, str] | None:
    """(qualifier, column) of a plain column reference, through casts."""
    from pglast import ast

    while isinstance(node, ast.TypeCast):
        node = node.arg
    if not isinstance(node, ast.ColumnRef) or not all(isinstance(f, ast.String) for f in node.fields):
        return None
    names = [f.sval for f in node.fields]
    return (names[-2] if len(names) > 1 else None, names[-1])


def _literal(node: Any) -> str | None:
    """A constant as SQL text (through casts), or None when ``node`` is not one."""
    from pglast import ast
    from pglast.stream import RawStream

    inner = node
    while isinstance(inner, ast.TypeCast):
        inner = inner.arg
    return RawStream()(node) if isinstance(inner, ast.A_Const) and not inner.isnull else None


def walk(node: Any):  # type: ignore[no-untyped-def]
    from pglast import ast

    if isinstance(node, (list, tuple)):
        for item in node:
            yield from walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from walk(getattr(node, name))


class _Reader:
    """Collects each table's columns from a FROM clause's conditions, sort and targets."""

    def __init__(self, from_clause: Any) -> None:
        from pglast import ast

        self.uses: dict[str, Use] = {}
        self.join_quals: list[Any] = []
        for node in walk(from_clause):
            if isinstance(node, ast.RangeVar):
                alias = node.alias.aliasname if node.alias else node.relname
                self.uses[alias] = Use((node.schemaname, node.relname), alias)
            elif isinstance(node, ast.JoinExpr) and node.quals is not None:
                self.join_quals.append(node.quals)
            elif isinstance(node, (ast.RangeSubselect, ast.RangeFunction)):
                break  # a sub-select's columns are its own: only the tables before it are read here
        for quals in self.join_quals:
            self.conditions(quals)

    def _use(self, ref: tuple[str | None, str] | None) -> Use | None:
        if ref is None:
            return None
        if ref[0] is not None:
            return self.uses.get(ref[0])
        return next(iter(self.uses.values())) if len(self.uses) == 1 else None

    def _read(self, ref: tuple[str | None, str] | None) -> None:
        use = self._use(ref)
        if use is not None and use.read is not None and ref is not None:
            use.read.add(ref[1])

    def conditions(self, node: Any) -> None:
        from pglast import ast
        from pglast.enums import BoolExprType, NullTestType

        if node is None:
            return
        if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.AND_EXPR:
            for arg in node.args:
                self.conditions(arg)
            return
        if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.NOT_EXPR and column_ref(node.args[0]):
            self._constant(column_ref(node.args[0]), "false")
            return
        if column_ref(node) is not None:
            self._constant(column_ref(node), "true")
            return
        if isinstance(node, ast.NullTest) and column_ref(node.arg):
            if node.nulltesttype == NullTestType.IS_NULL:
                self._constant(column_ref(node.arg), "is null")
            else:
                self._read(column_ref(node.arg))
            return
        if isinstance(node, ast.FuncCall) and node.funcname[-1].sval in _SIMILARITY and node.args:
            for arg in node.args:
                self._add("patterns", column_ref(arg))
            return
        if isinstance(node, ast.A_Expr):
            self._compare(node)
            return
        for ref in (n for n in walk(node) if isinstance(n, ast.ColumnRef)):
            self._read(column_ref(ref))

    def _compare(self, node: Any) -> None:
        op, kind = opname(node), expr_kind(node)
        for col, other in ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr)):
            ref = column_ref(col)
            if ref is None or self._use(ref) is None:
                continue
            literal = _literal(other) if not isinstance(other, (list, tuple)) else None
            if kind == "AEXPR_IN" and isinstance(other, (list, tuple)):
                values = [_literal(v) for v in other]
                if all(values):
                    self._constant(ref, "in" if op == "=" else "not in", tuple(values))  # type: ignore[arg-type]
                if op == "=":
                    self._add("equal", ref)
                    self._add("listed", ref)
            elif "BETWEEN" in kind:
                self._add("ranges", ref)
            elif op in EQUAL:
                if literal is not None:
                    self._constant(ref, "=", (literal,))
                self._add("equal", ref)
            elif op in RANGE:
                self._add("ranges", ref)
            elif op in PATTERN:
                self._add("patterns", ref)
            else:
                self._read(ref)

    def _add(self, what: str, ref: tuple[str | None, str] | None) -> None:
        use = self._use(ref)
        if use is not None and ref is not None:
            if ref[1] not in getattr(use, what):
                getattr(use, what).append(ref[1])
            self._read(ref)

    def _constant(self, ref: tuple[str | None, str] | None, op: str, values: tuple[str, ...] = ()) -> None:
        use = self._use(ref)
        if use is not None and ref is not None:
            use.constants.append(Constant(ref[1], op, values))
            self._read(ref)

    def sort(self, clause: Any) -> None:
        from pglast.enums import SortByDir

        for item in clause or ():
            ref = column_ref(item.node)
            use = self._use(ref)
            if use is None or ref is None:
                return  # an expression or another table's column: no index order serves the rest
            use.order.append((ref[1], item.sortby_dir == SortByDir.SORTBY_DESC))
            self._read(ref)

    def targets(self, targets: Any) -> None:
        from pglast import ast

        for target in targets or ():
            for node in walk(target.val):
                if isinstance(node, ast.ColumnRef):
                    if isinstance(node.fields[-1], ast.A_Star):
                        star = node.fields[0].sval if len(node.fields) > 1 else None
                        for use in self.uses.values():
                            if star is None or use.alias == star:
                                use.read = None
                    else:
                        self._read(column_ref(node))

    def result(self) -> list[Use]:
        return list(self.uses.values())
