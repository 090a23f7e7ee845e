"""Statistics after builds, and the one rule for when a table's statistics are stale.

A table's statistics are stale when it has never been analyzed, or when more rows
changed since its last ANALYZE than a fraction of its rows (autovacuum's default
analyze scale factor is 10%; autovacuum adds a base of 50 rows, which ``base_rows``
takes).  ``stale_tables`` is that rule, in one query: the engine asks it about the
tables it built on, ``maintain`` about every table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ..core import db
from ..core.errors import DbtuneError
from ..core.retry import set_lock_timeout
from ..core.settings import Target
from ..sqltext.statements import IndexStatement
from .catalog import ident
from .options import OnlineOptions

STALE_FRACTION = 0.1

# reltuples is the table's row count as of its last ANALYZE or VACUUM (-1 before either, PostgreSQL 14+),
# which is what the planner's statistics describe.
_STALE = """
SELECT s.schemaname, s.relname, s.n_mod_since_analyze, greatest(c.reltuples, 0)::bigint,
       s.last_analyze IS NULL AND s.last_autoanalyze IS NULL
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE ({where})
  AND ((s.last_analyze IS NULL AND s.last_autoanalyze IS NULL)
       OR s.n_mod_since_analyze > %(base_rows)s + %(fraction)s * greatest(c.reltuples, 1))
ORDER BY s.schemaname, s.relname
"""


@dataclass(frozen=True)
class StaleTable:
    schema: str
    table: str
    changed: int  # rows inserted, updated or deleted since the last ANALYZE
    rows: int  # as of the last ANALYZE (0 when never analyzed)
    never: bool  # never analyzed, by hand or by autovacuum


def stale_tables(conn: psycopg.Connection, where: str = "true", params: Mapping[str, Any] | None = None, *,
                 fraction: float = STALE_FRACTION, base_rows: int = 0) -> list[StaleTable]:
    """The tables among ``where`` (a condition over pg_stat_user_tables ``s`` and pg_class ``c``,
    with named parameters) whose statistics are stale."""
    query = sql.SQL(_STALE).format(where=sql.SQL(where))  # type: ignore[arg-type]
    rows = conn.execute(query, {**(params or {}), "fraction": fraction, "base_rows": base_rows}).fetchall()
    return [StaleTable(*row) for row in rows]


def has_expression(st: IndexStatement) -> bool:
    """Whether a CREATE INDEX has an expression column (the only kind that needs new statistics)."""
    from pglast import ast, parse_sql
    from pglast.parser import ParseError

    if st.verb != "create":
        return False
    try:
        [raw] = parse_sql(st.sql)
    except (ParseError, ValueError):
        return True  # unsure: analyze, as before
    stmt = raw.stmt
    return isinstance(stmt, ast.IndexStmt) and any(p.expr is not None for p in stmt.indexParams or ())


def analyze_tables(target: Target, tables: list[tuple[str, str, str]], options: OnlineOptions) -> None:
    """ANALYZE the tables that need it, once each, saying why: (schema, table, reason), where
    an empty reason leaves the decision to the table's statistics.

    PostgreSQL's CREATE INDEX documentation: a new index on plain columns uses the
    table's existing column statistics at once; only an expression index needs
    ANALYZE (or autovacuum) to gather statistics for its expression.  So a table is
    analyzed when it got an expression index, or when its statistics are missing or
    stale; the others are left alone, and the output says so.

    Best effort: the indexes are built whatever happens here.  Bounded by
    lock_timeout (ANALYZE's SHARE UPDATE EXCLUSIVE lock only conflicts with DDL
    and VACUUM; if one holds the table we leave it to autovacuum rather than
    queue in front of the application), and free of any statement_timeout the
    role or database sets.
    """
    reasons: dict[tuple[str, str], str] = {}
    for schema, table, reason in tables:
        reasons[(schema, table)] = reasons.get((schema, table)) or reason
    if not reasons:
        return
    try:
        with db.connect(target, purpose="analyze") as conn:
            conn.execute("SET statement_timeout = 0")
            conn.execute(set_lock_timeout(options.lock_timeout_s))
            for (schema, table), reason in reasons.items():
                why = reason or _stale(conn, schema, table)
                if why is None:
                    options.out.info(f"not analyzed {schema}.{table}: its new indexes are on plain columns, "
                                     "which use the table's current statistics")
                    continue
                try:
                    conn.execute(sql.SQL("ANALYZE {}").format(ident(schema, table)))
                    options.out.info(f"analyzed {schema}.{table}: {why}")
                except psycopg.errors.LockNotAvailable:
                    options.out.warn(f"ANALYZE {schema}.{table} skipped: the table is locked "
                                     "(autovacuum will do it)")
    except (DbtuneError, psycopg.Error) as exc:
        options.out.warn(f"ANALYZE of the new indexes' tables did not finish ({exc}); "
                         "run ANALYZE on them, or let autovacuum do it")


def _stale(conn: psycopg.Connection, schema: str, table: str) -> str | None:
    """Why a table's statistics need refreshing, or None when they are current."""
    found = stale_tables(conn, "s.relid = %(table)s::regclass",
                         {"table": sql.Identifier(schema, table).as_string(conn)})
    if not found:
        return None
    if found[0].never:
        return "it has never been analyzed"
    return f"its statistics are stale ({found[0].changed:,} rows changed since its last ANALYZE)"
