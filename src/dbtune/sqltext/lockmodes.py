"""The table locks a SQL statement takes, read from PostgreSQL's own parse tree.

The dry run labels every statement of a migration with what it locks, what the
lock holds up and whether the statement reads or rewrites a whole table while
holding it; ``dbtune check`` lints with the same answers.  Statements are parsed
with pglast (libpg_query, the server's own grammar), so a data-modifying CTE,
a sub-select or a multi-command ALTER TABLE is read as PostgreSQL reads it.

The lock levels come from the PostgreSQL documentation: the "Explicit Locking"
chapter (https://www.postgresql.org/docs/current/explicit-locking.html) for
each command's lock, and the ALTER TABLE page
(https://www.postgresql.org/docs/current/sql-altertable.html) for the level of
each subcommand ("the lock level is the strictest one required by any
subcommand") and for when a subcommand scans or rewrites the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# The eight table lock modes, weakest first.
MODES = ("ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
         "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")
ACCESS_SHARE, ROW_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE, \
    ACCESS_EXCLUSIVE = MODES

# What each mode waits for and holds up, in the application's terms (conflicts are symmetric:
# the table "Conflicting Lock Modes" of "Explicit Locking").
HOLDS_UP = {
    ACCESS_SHARE: "reads and writes continue; conflicts only with ACCESS EXCLUSIVE",
    ROW_SHARE: "reads and writes continue; conflicts with EXCLUSIVE and ACCESS EXCLUSIVE",
    ROW_EXCLUSIVE: "reads and writes continue; waits for and blocks index builds without CONCURRENTLY",
    SHARE_UPDATE_EXCLUSIVE: "reads and writes continue; waits for other DDL, VACUUM and concurrent builds",
    SHARE: "waits for open writes, then blocks writes",
    SHARE_ROW_EXCLUSIVE: "waits for open writes, then blocks writes",
    EXCLUSIVE: "waits for open writes, then blocks writes; reads continue",
    ACCESS_EXCLUSIVE: "waits for every open transaction on it, reads included, then blocks reads and writes",
}

# Readable names of ALTER TABLE subcommands (pglast's AlterTableType, without AT_).
_SUBCOMMANDS = {
    "AddColumn": "ADD COLUMN", "DropColumn": "DROP COLUMN", "ColumnDefault": "ALTER COLUMN SET/DROP DEFAULT",
    "SetNotNull": "ALTER COLUMN SET NOT NULL", "DropNotNull": "ALTER COLUMN DROP NOT NULL",
    "AlterColumnType": "ALTER COLUMN TYPE", "ValidateConstraint": "VALIDATE CONSTRAINT",
    "DropConstraint": "DROP CONSTRAINT", "SetRelOptions": "SET (storage parameters)",
    "ResetRelOptions": "RESET (storage parameters)", "SetStatistics": "ALTER COLUMN SET STATISTICS",
    "AttachPartition": "ATTACH PARTITION", "DetachPartition": "DETACH PARTITION",
}

# Functions known not to be volatile, for a column default (PostgreSQL 11+ adds a
# column with a non-volatile default without rewriting the table).
_STABLE_DEFAULTS = frozenset({"now", "transaction_timestamp", "statement_timestamp", "current_date",
                              "current_timestamp", "localtimestamp", "current_user", "session_user",
                              "lower", "upper", "coalesce", "make_interval", "to_timestamp", "jsonb_build_object",
                              "json_build_object", "array_fill", "repeat", "concat"})


@dataclass(frozen=True)
class Lock:
    relation: str  # as written in the statement
    mode: str
    scans: bool = False  # reads every row of the table while holding the lock
    rewrites: bool = False  # writes a new copy of the table (and its indexes)

    def describe(self) -> str:
        extra = [HOLDS_UP[self.mode]]
        if self.rewrites:
            extra.append("rewrites the table")
        elif self.scans:
            extra.append("scans the table")
        return f"{self.mode} on {self.relation} ({'; '.join(extra)})"


@dataclass(frozen=True)
class Statement:
    kind: str  # e.g. "ALTER TABLE ADD CONSTRAINT FOREIGN KEY"
    locks: tuple[Lock, ...] = ()
    concurrent: bool = False
    notes: tuple[str, ...] = ()  # what a reviewer should know beyond the locks
    transaction_block: bool = True  # may run inside BEGIN ... COMMIT
    creates: str | None = None  # the table or view the statement creates, as written

    @property
    def strongest(self) -> str | None:
        return max((lock.mode for lock in self.locks), key=MODES.index, default=None)

    def describe(self) -> str:
        if not self.locks:
            text = "no table lock"
        else:
            text = "; ".join(lock.describe() for lock in self.locks)
        return "; ".join((text, *self.notes))


def classify(sql: str) -> list[Statement]:
    """One Statement per SQL statement in ``sql`` (an unparsable text is one Statement saying so)."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        parsed = parse_sql(sql)
    except ParseError as exc:
        return [Statement("unparsable", notes=(f"not classified: {exc.args[0]}",))]
    return [_classify(raw.stmt) for raw in parsed]


def describe(sql: str) -> str:
    """The dry run's lock label for one statement."""
    return " | ".join(statement.describe() for statement in classify(sql)) or "nothing to run"


# -- the classification -------------------------------------------------------------------

def _words(camel: str) -> str:
    """CreateFunction -> CREATE FUNCTION."""
    import re

    return " ".join(re.findall(r"[A-Z][a-z]*", camel)).upper() or camel


def _name(rangevar) -> str:  # type: ignore[no-untyped-def]
    return ".".join(part for part in (rangevar.schemaname, rangevar.relname) if part)


def _walk(node) -> Iterator:  # type: ignore[no-untyped-def]
    """Every node below ``node``, depth first."""
    from pglast import ast

    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            yield item
            stack.extend(getattr(item, slot) for slot in item.__slots__)


@dataclass
class _Locks:
    """The strongest lock asked of each relation, in the order first met."""

    by_name: dict[str, Lock] = field(default_factory=dict)

    def add(self, relation: str, mode: str, *, scans: bool = False, rewrites: bool = False) -> None:
        old = self.by_name.get(relation)
        if old is not None:
            mode = max(mode, old.mode, key=MODES.index)
            scans, rewrites = scans or old.scans, rewrites or old.rewrites
        self.by_name[relation] = Lock(relation, mode, scans, rewrites)

    def reads(self, node, skip: frozenset[str] = frozenset()) -> None:  # type: ignore[no-untyped-def]
        """ACCESS SHARE on every relation read below ``node`` (CTE names excepted)."""
        from pglast import ast

        ctes = {n.ctename for n in _walk(node) if isinstance(n, ast.CommonTableExpr)}
        for n in _walk(node):
            if isinstance(n, ast.RangeVar) and not (n.schemaname is None and n.relname in ctes):
                name = _name(n)
                if name not in skip:
                    self.add(name, ACCESS_SHARE)

    def result(self) -> tuple[Lock, ...]:
        return tuple(self.by_name.values())


def _classify(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast import ast

    handler = _HANDLERS.get(type(stmt).__name__)
    if handler is not None:
        return handler(stmt)
    kind = _words(type(stmt).__name__.removesuffix("Stmt"))
    if isinstance(stmt, ast.DefineStmt):
        from pglast.enums import ObjectType

        kind = "CREATE " + ObjectType(stmt.kind).name.removeprefix("OBJECT_")
    if isinstance(stmt, (ast.VariableSetStmt, ast.VariableShowStmt, ast.TransactionStmt)):
        return Statement(kind.removeprefix("VARIABLE "))
    if isinstance(stmt, (ast.DoStmt, ast.CallStmt)):
        return Statement(kind, notes=("runs code that dbtune cannot see into: its locks are whatever that "
                                      "code takes",))
    # Everything else (CREATE FUNCTION, CREATE OPERATOR, CREATE TYPE, CREATE EXTENSION, GRANT, ...)
    # changes catalogs only and takes no lock on a user table.
    return Statement(kind)


def _dml(stmt) -> Statement:  # type: ignore[no-untyped-def]
    """SELECT, INSERT, UPDATE, DELETE, MERGE, with data-modifying CTEs at any depth."""
    from pglast import ast

    locks = _Locks()
    notes: list[str] = []
    writes = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
    for node in _walk(stmt):
        if isinstance(node, writes):
            name = _name(node.relation)
            locks.add(name, ROW_EXCLUSIVE)
            if isinstance(node, ast.UpdateStmt) and node.whereClause is None and not node.fromClause:
                notes.append(f"rewrites every row of {name} (UPDATE without WHERE)")
            if isinstance(node, ast.DeleteStmt) and node.whereClause is None and not node.usingClause:
                notes.append(f"deletes every row of {name} (DELETE without WHERE)")
        elif isinstance(node, ast.SelectStmt) and node.lockingClause:
            for clause in node.lockingClause:
                targets = clause.lockedRels or ()
                for rel in targets:
                    locks.add(_name(rel), ROW_SHARE)
                if not targets:
                    for rel in (n for n in _walk(node.fromClause) if isinstance(n, ast.RangeVar)):
                        locks.add(_name(rel), ROW_SHARE)
    locks.reads(stmt)
    kind = type(stmt).__name__.removesuffix("Stmt").upper()
    if kind != "SELECT" and any(isinstance(n, writes) for n in _walk(stmt.withClause)):
        kind += " with a data-modifying CTE"
    elif kind == "SELECT" and any(isinstance(n, writes) for n in _walk(stmt)):
        kind = "SELECT with a data-modifying CTE"
    if isinstance(stmt, ast.SelectStmt) and stmt.intoClause is not None:
        kind = "SELECT INTO"
    return Statement(kind, locks.result(), notes=tuple(notes))


def _index(stmt) -> Statement:  # type: ignore[no-untyped-def]
    table = _name(stmt.relation)
    if stmt.concurrent:
        return Statement("CREATE INDEX CONCURRENTLY", (Lock(table, SHARE_UPDATE_EXCLUSIVE, scans=True),),
                         concurrent=True, notes=("waits for every transaction that could use the index",),
                         transaction_block=False)
    return Statement("CREATE INDEX", (Lock(table, SHARE, scans=True),),
                     notes=("writes wait for the whole build",))


def _drop(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast.enums import ObjectType

    objects = [".".join(part.sval for part in obj) for obj in stmt.objects
               if isinstance(obj, (list, tuple))]
    kind = "DROP " + ObjectType(stmt.removeType).name.removeprefix("OBJECT_").replace("_", " ")
    if stmt.removeType == ObjectType.OBJECT_INDEX:
        if stmt.concurrent:
            return Statement(kind + " CONCURRENTLY", tuple(Lock(f"the table of {o}", SHARE_UPDATE_EXCLUSIVE)
                                                           for o in objects), concurrent=True,
                             transaction_block=False)
        return Statement(kind, tuple(Lock(f"{o} and its table", ACCESS_EXCLUSIVE) for o in objects))
    if stmt.removeType in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW,
                           ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_FOREIGN_TABLE):
        return Statement(kind, tuple(Lock(o, ACCESS_EXCLUSIVE) for o in objects))
    if stmt.removeType in (ObjectType.OBJECT_TRIGGER, ObjectType.OBJECT_RULE, ObjectType.OBJECT_POLICY):
        # DROP TRIGGER t ON table: the object is [table..., name]; the table is locked.
        return Statement(kind, tuple(Lock(o.rsplit(".", 1)[0], ACCESS_EXCLUSIVE) for o in objects))
    return Statement(kind)


def _reindex(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast.enums import ReindexObjectType

    concurrent = any(getattr(opt, "defname", None) == "concurrently" for opt in (stmt.params or ()))
    what = _name(stmt.relation) if stmt.relation is not None else stmt.name
    kind = "REINDEX " + ReindexObjectType(stmt.kind).name.removeprefix("REINDEX_OBJECT_")
    if concurrent:
        return Statement(kind + " CONCURRENTLY", (Lock(what, SHARE_UPDATE_EXCLUSIVE, scans=True),),
                         concurrent=True, transaction_block=False)
    return Statement(kind, (Lock(what, SHARE, scans=True),),
                     notes=("writes wait for the whole rebuild; queries that would use the index wait too",))


def _refresh(stmt) -> Statement:  # type: ignore[no-untyped-def]
    view = _name(stmt.relation)
    if stmt.concurrent:
        return Statement("REFRESH MATERIALIZED VIEW CONCURRENTLY", (Lock(view, EXCLUSIVE, scans=True),),
                         concurrent=True)
    return Statement("REFRESH MATERIALIZED VIEW", (Lock(view, ACCESS_EXCLUSIVE, rewrites=True),),
                     notes=("readers of the view wait for the whole refresh",))


def _create_table(stmt) -> Statement:  # type: ignore[no-untyped-def]
    """A new table locks nothing of its own; its foreign keys and parent do."""
    from pglast import ast
    from pglast.enums import ConstrType

    locks = _Locks()
    for node in _walk(stmt):
        if isinstance(node, ast.Constraint) and node.contype == ConstrType.CONSTR_FOREIGN:
            locks.add(_name(node.pktable), SHARE_ROW_EXCLUSIVE)
    for parent in stmt.inhRelations or ():
        # CREATE TABLE ... PARTITION OF takes ACCESS EXCLUSIVE on the parent; INHERITS, SHARE UPDATE EXCLUSIVE.
        locks.add(_name(parent), ACCESS_EXCLUSIVE if stmt.partbound is not None else SHARE_UPDATE_EXCLUSIVE)
    return Statement("CREATE TABLE" + (" PARTITION OF" if stmt.partbound is not None else ""), locks.result(),
                     creates=_name(stmt.relation))


def _create_as(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast.enums import ObjectType

    locks = _Locks()
    no_data = bool(stmt.into.skipData)
    if not no_data:
        locks.reads(stmt.query)
    kind = "CREATE MATERIALIZED VIEW" if stmt.objtype == ObjectType.OBJECT_MATVIEW else "CREATE TABLE AS"
    notes = ("WITH NO DATA: reads nothing now",) if no_data else ("reads every table of its query",)
    return Statement(kind, locks.result(), notes=notes, creates=_name(stmt.into.rel))


def _view(stmt) -> Statement:  # type: ignore[no-untyped-def]
    locks = _Locks()
    view = _name(stmt.view)
    if stmt.replace:
        locks.add(view, ACCESS_EXCLUSIVE)
    return Statement("CREATE OR REPLACE VIEW" if stmt.replace else "CREATE VIEW", locks.result(),
                     notes=("brief: catalog changes only",), creates=view)


def _truncate(stmt) -> Statement:  # type: ignore[no-untyped-def]
    return Statement("TRUNCATE", tuple(Lock(_name(r), ACCESS_EXCLUSIVE, rewrites=True) for r in stmt.relations))


def _vacuum(stmt) -> Statement:  # type: ignore[no-untyped-def]
    options = {getattr(opt, "defname", None) for opt in (stmt.options or ())}
    tables = [_name(r.relation) for r in (stmt.rels or ())] or ["every table"]
    if not stmt.is_vacuumcmd:
        return Statement("ANALYZE", tuple(Lock(t, SHARE_UPDATE_EXCLUSIVE) for t in tables))
    if "full" in options:
        return Statement("VACUUM FULL", tuple(Lock(t, ACCESS_EXCLUSIVE, rewrites=True) for t in tables),
                         transaction_block=False)
    return Statement("VACUUM", tuple(Lock(t, SHARE_UPDATE_EXCLUSIVE, scans=True) for t in tables),
                     transaction_block=False)


def _cluster(stmt) -> Statement:  # type: ignore[no-untyped-def]
    table = _name(stmt.relation) if stmt.relation is not None else "every clustered table"
    return Statement("CLUSTER", (Lock(table, ACCESS_EXCLUSIVE, rewrites=True),))


def _lock(stmt) -> Statement:  # type: ignore[no-untyped-def]
    mode = MODES[stmt.mode - 1] if 1 <= stmt.mode <= len(MODES) else ACCESS_EXCLUSIVE
    return Statement("LOCK", tuple(Lock(_name(r), mode) for r in stmt.relations),
                     notes=("held until the transaction ends",))


def _copy(stmt) -> Statement:  # type: ignore[no-untyped-def]
    if stmt.relation is None:
        locks = _Locks()
        locks.reads(stmt.query)
        return Statement("COPY (query) TO", locks.result())
    table = _name(stmt.relation)
    if stmt.is_from:
        return Statement("COPY FROM", (Lock(table, ROW_EXCLUSIVE),))
    return Statement("COPY TO", (Lock(table, ACCESS_SHARE, scans=True),))


def _trigger(stmt) -> Statement:  # type: ignore[no-untyped-def]
    return Statement("CREATE TRIGGER", (Lock(_name(stmt.relation), SHARE_ROW_EXCLUSIVE),))


def _rule_or_policy(stmt) -> Statement:  # type: ignore[no-untyped-def]
    kind = "CREATE RULE" if type(stmt).__name__ == "RuleStmt" else _words(type(stmt).__name__.removesuffix("Stmt"))
    table = stmt.relation if hasattr(stmt, "relation") else stmt.table
    return Statement(kind, (Lock(_name(table), ACCESS_EXCLUSIVE),))


def _statistics(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast import ast

    tables = [_name(r) for r in (stmt.relations or ()) if isinstance(r, ast.RangeVar)]
    return Statement("CREATE STATISTICS", tuple(Lock(t, SHARE_UPDATE_EXCLUSIVE) for t in tables))


def _comment(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast.enums import ObjectType

    if stmt.objtype in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN, ObjectType.OBJECT_INDEX,
                        ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
        parts = [p.sval for p in stmt.object] if isinstance(stmt.object, (list, tuple)) else []
        if stmt.objtype == ObjectType.OBJECT_COLUMN:
            parts = parts[:-1]
        return Statement("COMMENT", (Lock(".".join(parts) or "the object", SHARE_UPDATE_EXCLUSIVE),))
    return Statement("COMMENT")


def _rename(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast.enums import ObjectType

    kind = "RENAME " + ObjectType(stmt.renameType).name.removeprefix("OBJECT_")
    if stmt.relation is None:
        return Statement(kind)
    # Renaming an index takes SHARE UPDATE EXCLUSIVE (PostgreSQL 12+); anything else on a table, ACCESS EXCLUSIVE.
    mode = SHARE_UPDATE_EXCLUSIVE if stmt.renameType == ObjectType.OBJECT_INDEX else ACCESS_EXCLUSIVE
    return Statement(kind, (Lock(_name(stmt.relation), mode),))


def _alter_table(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast.enums import AlterTableType as AT
    from pglast.enums import ObjectType

    table = _name(stmt.relation)
    locks = _Locks()
    notes: list[str] = []
    kinds: list[str] = []
    concurrent = False
    for cmd in stmt.cmds:
        sub = AT(cmd.subtype)
        name = sub.name.removeprefix("AT_")
        kinds.append(_SUBCOMMANDS.get(name, _words(name)))
        if sub == AT.AT_AddConstraint:
            _add_constraint(cmd.def_, table, locks, notes, kinds)
        elif sub == AT.AT_AddColumn:
            _add_column(cmd.def_, table, locks, notes)
        elif sub == AT.AT_SetNotNull:
            locks.add(table, ACCESS_EXCLUSIVE, scans=True)
            notes.append(f"SET NOT NULL scans {table} unless a valid CHECK ({cmd.name} IS NOT NULL) proves it")
        elif sub == AT.AT_AlterColumnType:
            locks.add(table, ACCESS_EXCLUSIVE, rewrites=True)
            notes.append("a type change rewrites the table and its indexes unless the types are binary "
                         "compatible")
        elif sub in (AT.AT_SetTableSpace, AT.AT_SetLogged, AT.AT_SetUnLogged, AT.AT_SetAccessMethod):
            locks.add(table, ACCESS_EXCLUSIVE, rewrites=True)
        elif sub == AT.AT_ValidateConstraint:
            locks.add(table, SHARE_UPDATE_EXCLUSIVE, scans=True)
        elif sub in (AT.AT_SetStatistics, AT.AT_SetOptions, AT.AT_ResetOptions, AT.AT_ClusterOn,
                     AT.AT_DropCluster, AT.AT_SetRelOptions, AT.AT_ResetRelOptions):
            # Storage parameters: most (fillfactor, autovacuum_*, toast.*, parallel_workers) take
            # SHARE UPDATE EXCLUSIVE; the ALTER TABLE page lists the few that need more.
            locks.add(table, SHARE_UPDATE_EXCLUSIVE)
        elif sub in (AT.AT_EnableTrig, AT.AT_EnableAlwaysTrig, AT.AT_EnableReplicaTrig, AT.AT_DisableTrig,
                     AT.AT_EnableTrigAll, AT.AT_DisableTrigAll, AT.AT_EnableTrigUser, AT.AT_DisableTrigUser):
            locks.add(table, SHARE_ROW_EXCLUSIVE)
        elif sub == AT.AT_AttachPartition:
            locks.add(table, SHARE_UPDATE_EXCLUSIVE)
            locks.add(_name(cmd.def_.name), ACCESS_EXCLUSIVE, scans=True)
            notes.append("the new partition is scanned unless a valid CHECK constraint proves its bound")
        elif sub == AT.AT_DetachPartition:
            concurrent = bool(cmd.def_.concurrent)
            kinds[-1] += " CONCURRENTLY" if concurrent else ""
            mode = SHARE_UPDATE_EXCLUSIVE if concurrent else ACCESS_EXCLUSIVE
            locks.add(table, mode)
            locks.add(_name(cmd.def_.name), mode)
        elif sub == AT.AT_DropConstraint:
            locks.add(table, ACCESS_EXCLUSIVE)
        else:
            locks.add(table, ACCESS_EXCLUSIVE)
    if stmt.objtype == ObjectType.OBJECT_INDEX:
        # ALTER INDEX ... SET (...) / RENAME / ATTACH PARTITION: SHARE UPDATE EXCLUSIVE at most.
        locks = _Locks({name: Lock(name, min(lock.mode, SHARE_UPDATE_EXCLUSIVE, key=MODES.index))
                        for name, lock in locks.by_name.items()})
    object_kind = ObjectType(stmt.objtype).name.removeprefix("OBJECT_").replace("_", " ")
    return Statement(f"ALTER {object_kind} " + ", ".join(dict.fromkeys(kinds)), locks.result(),
                     concurrent=concurrent, notes=tuple(notes), transaction_block=not concurrent)


def _add_constraint(con, table: str, locks: _Locks, notes: list[str], kinds: list[str]) -> None:  # type: ignore[no-untyped-def]
    from pglast.enums import ConstrType

    contype = ConstrType(con.contype)
    kinds[-1] = "ADD " + {ConstrType.CONSTR_FOREIGN: "FOREIGN KEY", ConstrType.CONSTR_PRIMARY: "PRIMARY KEY"}.get(
        contype, contype.name.removeprefix("CONSTR_")) + (" NOT VALID" if con.skip_validation else "")
    not_valid = bool(con.skip_validation)
    if contype == ConstrType.CONSTR_FOREIGN:
        # SHARE ROW EXCLUSIVE on both tables; validation scans the referencing table under it.
        locks.add(table, SHARE_ROW_EXCLUSIVE, scans=not not_valid)
        locks.add(_name(con.pktable), SHARE_ROW_EXCLUSIVE)
        notes.append("NOT VALID: existing rows are not checked; VALIDATE CONSTRAINT later takes SHARE UPDATE "
                     "EXCLUSIVE" if not_valid else
                     f"every row of {table} is checked while writes to both tables wait: add it NOT VALID, "
                     "then VALIDATE CONSTRAINT")
    elif contype == ConstrType.CONSTR_CHECK:
        locks.add(table, ACCESS_EXCLUSIVE, scans=not not_valid)
        if not not_valid:
            notes.append(f"every row of {table} is checked under ACCESS EXCLUSIVE: add it NOT VALID, then "
                         "VALIDATE CONSTRAINT")
    elif contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_EXCLUSION):
        if con.indexname:
            locks.add(table, ACCESS_EXCLUSIVE)  # USING INDEX: the index exists, brief
        else:
            locks.add(table, ACCESS_EXCLUSIVE, scans=True)
            notes.append("builds its index under ACCESS EXCLUSIVE: build a unique index CONCURRENTLY first, "
                         "then ADD CONSTRAINT ... USING INDEX")
    elif contype == ConstrType.CONSTR_NOTNULL:
        locks.add(table, ACCESS_EXCLUSIVE, scans=not not_valid)
    else:
        locks.add(table, ACCESS_EXCLUSIVE)


def _add_column(column, table: str, locks: _Locks, notes: list[str]) -> None:  # type: ignore[no-untyped-def]
    from pglast import ast
    from pglast.enums import ConstrType

    rewrites = False
    type_name = column.typeName.names[-1].sval if column.typeName is not None else ""
    if type_name in ("serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"):
        rewrites = True
    for con in column.constraints or ():
        if con.contype == ConstrType.CONSTR_DEFAULT and con.raw_expr is not None:
            calls = [n for n in _walk(con.raw_expr) if isinstance(n, ast.FuncCall)]
            if any(call.funcname[-1].sval not in _STABLE_DEFAULTS for call in calls):
                rewrites = True
        elif con.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED):
            rewrites = True
        elif con.contype == ConstrType.CONSTR_FOREIGN:
            locks.add(_name(con.pktable), SHARE_ROW_EXCLUSIVE)
    locks.add(table, ACCESS_EXCLUSIVE, rewrites=rewrites)
    if rewrites:
        notes.append(f"the new column {column.colname} is filled row by row (a volatile default, identity, "
                     "serial or stored generated column): the whole table is rewritten under ACCESS EXCLUSIVE")


_HANDLERS = {
    "SelectStmt": _dml, "InsertStmt": _dml, "UpdateStmt": _dml, "DeleteStmt": _dml, "MergeStmt": _dml,
    "IndexStmt": _index, "DropStmt": _drop, "ReindexStmt": _reindex, "RefreshMatViewStmt": _refresh,
    "CreateStmt": _create_table, "CreateTableAsStmt": _create_as, "ViewStmt": _view,
    "TruncateStmt": _truncate, "VacuumStmt": _vacuum, "ClusterStmt": _cluster, "LockStmt": _lock,
    "CopyStmt": _copy, "CreateTrigStmt": _trigger, "RuleStmt": _rule_or_policy,
    "CreatePolicyStmt": _rule_or_policy, "AlterPolicyStmt": _rule_or_policy, "CreateStatsStmt": _statistics,
    "CommentStmt": _comment, "RenameStmt": _rename, "AlterTableStmt": _alter_table,
}
