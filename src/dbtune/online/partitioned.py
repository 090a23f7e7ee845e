"""A partitioned table's index, built online partition by partition.

PostgreSQL cannot build a partitioned table's index concurrently (CREATE INDEX
CONCURRENTLY refuses a partitioned table), so the engine builds it in pieces that
each hold only brief locks, and a run that stops part way is resumed by the next.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from ..core.errors import DbtuneError, MigrationFailed
from ..sqltext.statements import IndexStatement, retarget
from .catalog import ident, index_info
from .monitor import Monitor
from .options import BuildResult

if TYPE_CHECKING:
    from .builder import Engine

# The partitions under a table, parents before children (PostgreSQL 12+).
_PARTITION_TREE = """
SELECT n.nspname, c.relname, pn.nspname, p.relname, t.isleaf, t.level
FROM pg_partition_tree(%s::regclass) t
JOIN pg_class c ON c.oid = t.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class p ON p.oid = t.parentrelid
LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
ORDER BY t.level, c.relname
"""


def create_partitioned(engine: Engine, conn: psycopg.Connection, st: IndexStatement, table: tuple[str, str],
                       monitor: Monitor) -> BuildResult:
    """PostgreSQL cannot build a partitioned table's index concurrently, so build it piece by piece.

    The index is created ON ONLY each partitioned table (no data, so brief; INVALID
    until all its partitions have theirs), each leaf partition's index is built
    CONCURRENTLY with the usual repair and checks, and ATTACHed to its parent's;
    the last attach makes the whole tree valid.  Re-running resumes where it stopped.
    https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE
    """
    existing = index_info(conn, table[0], st.name)
    if existing is not None and existing.valid:
        engine.repair.same_index(conn, st, table, existing)
        return BuildResult(st, "present")
    index_of: dict[tuple[str, str], str] = {}
    repaired: list[str] = []
    tree = conn.execute(_PARTITION_TREE, [ident(*table).as_string(conn)]).fetchall()
    for schema, rel, parent_schema, parent, leaf, level in tree:
        name = st.name if level == 0 else partition_index_name(st.name, rel)
        index_of[(schema, rel)] = name
        if leaf:
            part = retarget(st, name, (schema, rel), concurrently=True, only=False)
            started = time.monotonic()
            done = engine.create(conn, part, monitor)
            repaired += done.repaired
            engine.out.info(f"{part.label}: {'built' if done.outcome == 'built' else 'already valid, kept'} "
                            f"in {time.monotonic() - started:.1f}s (partition of {table[0]}.{table[1]})")
        else:
            left = index_info(conn, schema, name)
            if left is not None and (left.table_schema, left.table) != (schema, rel):
                raise DbtuneError(f"{schema}.{name}: an index of that name already exists on "
                                  f"{left.table_schema}.{left.table}", statement=st.sql)
            if left is None:
                only = retarget(st, name, (schema, rel), concurrently=False, only=True)
                engine.locked(conn, only.sql, st)
            elif not left.valid:
                # Left by a run that failed part way: INVALID until every partition's index is
                # attached, which the attaches below finish.
                engine.out.info(f"{schema}.{name}: INVALID, left by an earlier run; attaching what it lacks")
        if level > 0:
            engine.locked(conn, sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(
                ident(parent_schema, index_of[(parent_schema, parent)]), ident(schema, name)), st)
    after = index_info(conn, table[0], st.name)
    if after is None or not after.valid:
        raise MigrationFailed(f"{st.label}: every partition's index is built and attached, but the "
                              "partitioned index is not valid", revision=None, failed_revision=None,
                              statement=st.sql)
    return BuildResult(st, "built", repaired=repaired)


def partition_index_name(name: str, partition: str) -> str:
    """``<partition>_<index>``, shortened with a hash to PostgreSQL's 63 bytes when needed."""
    full = f"{partition}_{name}"
    if len(full.encode()) <= 63:
        return full
    digest = hashlib.md5(full.encode()).hexdigest()[:8]
    return full.encode()[:54].decode(errors="ignore") + "_" + digest
