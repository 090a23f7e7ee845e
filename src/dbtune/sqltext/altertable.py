"""The locks an ALTER TABLE takes: the strictest of its subcommands', and whether one scans
or rewrites the table (the ALTER TABLE page of the PostgreSQL documentation)."""

from __future__ import annotations

from .lockmodel import (
    ACCESS_EXCLUSIVE,
    MODES,
    SHARE_ROW_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
    Lock,
    Locks,
    Statement,
    name_of,
    walk,
    words,
)

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


def alter_table(stmt) -> Statement:  # type: ignore[no-untyped-def]
    from pglast.enums import AlterTableType as AT
    from pglast.enums import ObjectType

    table = name_of(stmt.relation)
    locks = Locks()
    notes: list[str] = []
    kinds: list[str] = []
    concurrent = False
    for cmd in stmt.cmds:
        sub = AT(cmd.subtype)
        name = sub.name.removeprefix("AT_")
        kinds.append(_SUBCOMMANDS.get(name, words(name)))
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
            locks.add(name_of(cmd.def_.name), ACCESS_EXCLUSIVE, scans=True)
            notes.append("the new partition is scanned unless a valid CHECK constraint proves its bound")
        elif sub == AT.AT_DetachPartition:
            concurrent = bool(cmd.def_.concurrent)
            kinds[-1] += " CONCURRENTLY" if concurrent else ""
            mode = SHARE_UPDATE_EXCLUSIVE if concurrent else ACCESS_EXCLUSIVE
            locks.add(table, mode)
            locks.add(name_of(cmd.def_.name), mode)
        elif sub == AT.AT_DropConstraint:
            locks.add(table, ACCESS_EXCLUSIVE)
        else:
            locks.add(table, ACCESS_EXCLUSIVE)
    if stmt.objtype == ObjectType.OBJECT_INDEX:
        # ALTER INDEX ... SET (...) / RENAME / ATTACH PARTITION: SHARE UPDATE EXCLUSIVE at most.
        locks = Locks({name: Lock(name, min(lock.mode, SHARE_UPDATE_EXCLUSIVE, key=MODES.index))
                        for name, lock in locks.by_name.items()})
    object_kind = ObjectType(stmt.objtype).name.removeprefix("OBJECT_").replace("_", " ")
    return Statement(f"ALTER {object_kind} " + ", ".join(dict.fromkeys(kinds)), locks.result(),
                     concurrent=concurrent, notes=tuple(notes), transaction_block=not concurrent)


def _add_constraint(con, table: str, locks: Locks, notes: list[str], kinds: list[str]) -> None:  # type: ignore[no-untyped-def]
    from pglast.enums import ConstrType

    contype = ConstrType(con.contype)
    kinds[-1] = "ADD " + {ConstrType.CONSTR_FOREIGN: "FOREIGN KEY", ConstrType.CONSTR_PRIMARY: "PRIMARY KEY"}.get(
        contype, contype.name.removeprefix("CONSTR_")) + (" NOT VALID" if con.skip_validation else "")
    not_valid = bool(con.skip_validation)
    if contype == ConstrType.CONSTR_FOREIGN:
        # SHARE ROW EXCLUSIVE on both tables; validation scans the referencing table under it.
        locks.add(table, SHARE_ROW_EXCLUSIVE, scans=not not_valid)
        locks.add(name_of(con.pktable), SHARE_ROW_EXCLUSIVE)
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


def _add_column(column, table: str, locks: Locks, notes: list[str]) -> None:  # type: ignore[no-untyped-def]
    from pglast import ast
    from pglast.enums import ConstrType

    rewrites = False
    type_name = column.typeName.names[-1].sval if column.typeName is not None else ""
    if type_name in ("serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"):
        rewrites = True
    for con in column.constraints or ():
        if con.contype == ConstrType.CONSTR_DEFAULT and con.raw_expr is not None:
            calls = [n for n in walk(con.raw_expr) if isinstance(n, ast.FuncCall)]
            if any(call.funcname[-1].sval not in _STABLE_DEFAULTS for call in calls):
                rewrites = True
        elif con.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED):
            rewrites = True
        elif con.contype == ConstrType.CONSTR_FOREIGN:
            locks.add(name_of(con.pktable), SHARE_ROW_EXCLUSIVE)
    locks.add(table, ACCESS_EXCLUSIVE, rewrites=rewrites)
    if rewrites:
        notes.append(f"the new column {column.colname} is filled row by row (a volatile default, identity, "
                     "serial or stored generated column): the whole table is rewritten under ACCESS EXCLUSIVE")
