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

from .altertable import alter_table
from .lockmodel import (
    ACCESS_EXCLUSIVE,
    ACCESS_SHARE,
    EXCLUSIVE,
    HOLDS_UP,
    MODES,
    ROW_EXCLUSIVE,
    ROW_SHARE,
    SHARE,
    SHARE_ROW_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
    Lock,
    Locks,
    Statement,
    name_of,
    walk,
    words,
)

__all__ = ["ACCESS_EXCLUSIVE", "HOLDS_UP", "MODES", "Lock", "Statement", "classify", "describe"]


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

def _classify(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast import ast

    handler = _HANDLERS.get(type(stmt).__name__)
    if handler is not None:
        return handler(stmt)
    kind = words(type(stmt).__name__.removesuffix("Stmt"))
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

    locks = Locks()
    notes: list[str] = []
    writes = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
    for node in walk(stmt):
        if isinstance(node, writes):
            name = name_of(node.relation)
            locks.add(name, ROW_EXCLUSIVE)
            if isinstance(node, ast.UpdateStmt) and node.whereClause is None and not node.fromClause:
                notes.append(f"rewrites every row of {name} (UPDATE without WHERE)")
            if isinstance(node, ast.DeleteStmt) and node.whereClause is None and not node.usingClause:
                notes.append(f"deletes every row of {name} (DELETE without WHERE)")
        elif isinstance(node, ast.SelectStmt) and node.lockingClause:
            for clause in node.lockingClause:
                targets = clause.lockedRels or ()
                for rel in targets:
                    locks.add(name_of(rel), ROW_SHARE)
                if not targets:
                    for rel in (n for n in walk(node.fromClause) if isinstance(n, ast.RangeVar)):
                        locks.add(name_of(rel), ROW_SHARE)
    locks.reads(stmt)
    kind = type(stmt).__name__.removesuffix("Stmt").upper()
    if kind != "SELECT" and any(isinstance(n, writes) for n in walk(stmt.withClause)):
        kind += " with a data-modifying CTE"
    elif kind == "SELECT" and any(isinstance(n, writes) for n in walk(stmt)):
        kind = "SELECT with a data-modifying CTE"
    if isinstance(stmt, ast.SelectStmt) and stmt.intoClause is not None:
        kind = "SELECT INTO"
    return Statement(kind, locks.result(), notes=tuple(notes))


def _index(stmt) -> Statement:  # type: ignore[no-untyped-def]
    table = name_of(stmt.relation)
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
    what = name_of(stmt.relation) if stmt.relation is not None else stmt.name
    kind = "REINDEX " + ReindexObjectType(stmt.kind).name.removeprefix("REINDEX_OBJECT_")
    if concurrent:
        return Statement(kind + " CONCURRENTLY", (Lock(what, SHARE_UPDATE_EXCLUSIVE, scans=True),),
                         concurrent=True, transaction_block=False)
    return Statement(kind, (Lock(what, SHARE, scans=True),),
                     notes=("writes wait for the whole rebuild; queries that would use the index wait too",))


def _refresh(stmt) -> Statement:  # type: ignore[no-untyped-def]
    view = name_of(stmt.relation)
    if stmt.concurrent:
        return Statement("REFRESH MATERIALIZED VIEW CONCURRENTLY", (Lock(view, EXCLUSIVE, scans=True),),
                         concurrent=True)
    return Statement("REFRESH MATERIALIZED VIEW", (Lock(view, ACCESS_EXCLUSIVE, rewrites=True),),
                     notes=("readers of the view wait for the whole refresh",))


def _create_table(stmt) -> Statement:  # type: ignore[no-untyped-def]
    """A new table locks nothing of its own; its foreign keys and parent do."""
    from pglast import ast
    from pglast.enums import ConstrType

    locks = Locks()
    for node in walk(stmt):
        if isinstance(node, ast.Constraint) and node.contype == ConstrType.CONSTR_FOREIGN:
            locks.add(name_of(node.pktable), SHARE_ROW_EXCLUSIVE)
    for parent in stmt.inhRelations or ():
        # CREATE TABLE ... PARTITION OF takes ACCESS EXCLUSIVE on the parent; INHERITS, SHARE UPDATE EXCLUSIVE.
        locks.add(name_of(parent), ACCESS_EXCLUSIVE if stmt.partbound is not None else SHARE_UPDATE_EXCLUSIVE)
    return Statement("CREATE TABLE" + (" PARTITION OF" if stmt.partbound is not None else ""), locks.result(),
                     creates=name_of(stmt.relation))


def _create_as(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast.enums import ObjectType

    locks = Locks()
    no_data = bool(stmt.into.skipData)
    if not no_data:
        locks.reads(stmt.query)
    kind = "CREATE MATERIALIZED VIEW" if stmt.objtype == ObjectType.OBJECT_MATVIEW else "CREATE TABLE AS"
    notes = ("WITH NO DATA: reads nothing now",) if no_data else ("reads every table of its query",)
    return Statement(kind, locks.result(), notes=notes, creates=name_of(stmt.into.rel))


def _view(stmt) -> Statement:  # type: ignore[no-untyped-def]
    locks = Locks()
    view = name_of(stmt.view)
    if stmt.replace:
        locks.add(view, ACCESS_EXCLUSIVE)
    return Statement("CREATE OR REPLACE VIEW" if stmt.replace else "CREATE VIEW", locks.result(),
                     notes=("brief: catalog changes only",), creates=view)


def _truncate(stmt) -> Statement:  # type: ignore[no-untyped-def]
    return Statement("TRUNCATE", tuple(Lock(name_of(r), ACCESS_EXCLUSIVE, rewrites=True) for r in stmt.relations))


def _vacuum(stmt) -> Statement:  # type: ignore[no-untyped-def]
    options = {getattr(opt, "defname", None) for opt in (stmt.options or ())}
    tables = [name_of(r.relation) for r in (stmt.rels or ())] or ["every table"]
    if not stmt.is_vacuumcmd:
        return Statement("ANALYZE", tuple(Lock(t, SHARE_UPDATE_EXCLUSIVE) for t in tables))
    if "full" in options:
        return Statement("VACUUM FULL", tuple(Lock(t, ACCESS_EXCLUSIVE, rewrites=True) for t in tables),
                         transaction_block=False)
    return Statement("VACUUM", tuple(Lock(t, SHARE_UPDATE_EXCLUSIVE, scans=True) for t in tables),
                     transaction_block=False)


def _cluster(stmt) -> Statement:  # type: ignore[no-untyped-def]
    table = name_of(stmt.relation) if stmt.relation is not None else "every clustered table"
    return Statement("CLUSTER", (Lock(table, ACCESS_EXCLUSIVE, rewrites=True),))


def _lock(stmt) -> Statement:  # type: ignore[no-untyped-def]
    mode = MODES[stmt.mode - 1] if 1 <= stmt.mode <= len(MODES) else ACCESS_EXCLUSIVE
    return Statement("LOCK", tuple(Lock(name_of(r), mode) for r in stmt.relations),
                     notes=("held until the transaction ends",))


def _copy(stmt) -> Statement:  # type: ignore[no-untyped-def]
    if stmt.relation is None:
        locks = Locks()
        locks.reads(stmt.query)
        return Statement("COPY (query) TO", locks.result())
    table = name_of(stmt.relation)
    if stmt.is_from:
        return Statement("COPY FROM", (Lock(table, ROW_EXCLUSIVE),))
    return Statement("COPY TO", (Lock(table, ACCESS_SHARE, scans=True),))


def _trigger(stmt) -> Statement:  # type: ignore[no-untyped-def]
    return Statement("CREATE TRIGGER", (Lock(name_of(stmt.relation), SHARE_ROW_EXCLUSIVE),))


def _rule_or_policy(stmt) -> Statement:  # type: ignore[no-untyped-def]
    kind = "CREATE RULE" if type(stmt).__name__ == "RuleStmt" else words(type(stmt).__name__.removesuffix("Stmt"))
    table = stmt.relation if hasattr(stmt, "relation") else stmt.table
    return Statement(kind, (Lock(name_of(table), ACCESS_EXCLUSIVE),))


def _statistics(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast import ast

    tables = [name_of(r) for r in (stmt.relations or ()) if isinstance(r, ast.RangeVar)]
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
    return Statement(kind, (Lock(name_of(stmt.relation), mode),))


_HANDLERS = {
    "SelectStmt": _dml, "InsertStmt": _dml, "UpdateStmt": _dml, "DeleteStmt": _dml, "MergeStmt": _dml,
    "IndexStmt": _index, "DropStmt": _drop, "ReindexStmt": _reindex, "RefreshMatViewStmt": _refresh,
    "CreateStmt": _create_table, "CreateTableAsStmt": _create_as, "ViewStmt": _view,
    "TruncateStmt": _truncate, "VacuumStmt": _vacuum, "ClusterStmt": _cluster, "LockStmt": _lock,
    "CopyStmt": _copy, "CreateTrigStmt": _trigger, "RuleStmt": _rule_or_policy,
    "CreatePolicyStmt": _rule_or_policy, "AlterPolicyStmt": _rule_or_policy, "CreateStatsStmt": _statistics,
    "CommentStmt": _comment, "RenameStmt": _rename, "AlterTableStmt": alter_table,
}
