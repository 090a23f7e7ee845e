"""`dbtune maintain`: the daily chores, one cron-safe command.

* ANALYZE the tables whose statistics are stale: never analyzed, or more rows
  changed since the last analyze than a fraction of the table (the planner's
  estimates drift with them): the online engine's one rule (``online.statistics``).
* Rebuild INVALID indexes and bloated btree indexes with ``REINDEX INDEX
  CONCURRENTLY`` through the online engine (progress, blockers named,
  ``--max-wait``, ``_ccnew``/``_ccold`` leftovers cleaned); drop the leftovers of
  a failed REINDEX CONCURRENTLY whose index is valid.  An INVALID index on a
  table some session is building an index on right now is that build: left alone.

Never VACUUM FULL, never CLUSTER: nothing here holds ACCESS EXCLUSIVE for the
length of a rewrite.  Per-table autovacuum settings are schema, not chores: a
migration sets them (0008).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ..core import db
from ..core.output import Output
from ..core.runlock import run_lock
from ..core.settings import Target
from ..monitoring.views import invalid_indexes_sql
from ..online import STALE_FRACTION, Engine, OnlineOptions, analyze_tables, stale_tables
from ..online.catalog import reindex_leftover_of
from ..sqltext.statements import parse_index_statement

LOCK_KEY = 0x6D61696E74 << 16  # "maint": maintain runs never overlap with each other

# Which tables maintain asks the staleness rule about: every user table but dbtune's own, and of
# the never analyzed ones only those with rows to sample.
_TABLES = """s.schemaname <> 'dbtune'
  AND (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL OR s.n_live_tup + s.n_mod_since_analyze > 0)"""

_INVALID = f"""
SELECT schema, index_name, table_name, being_built FROM ({invalid_indexes_sql()}) AS invalid
WHERE NOT partitioned
"""

# A btree index's expected size from its row count and the average width of its
# key columns (pg_stats), against its actual size: the usual estimate of bloat
# (index tuple header 8 bytes, line pointer 4, page header 24, btree special 16,
# leaf pages filled to fillfactor).  Indexes whose columns have no statistics are
# not estimated.
_BLOAT = """
WITH idx AS (
    SELECT n.nspname AS schema, c.relname AS name, tn.nspname AS table_schema, t.relname AS table_name,
           c.relpages::float8 AS pages, greatest(c.reltuples, 0)::float8 AS tuples,
           coalesce((SELECT (regexp_match(o, 'fillfactor=(\\d+)'))[1]::int FROM unnest(c.reloptions) o
                     WHERE o LIKE 'fillfactor=%%'), 90) AS fillfactor,
           current_setting('block_size')::float8 AS bs,
           (SELECT sum(s.avg_width) FROM unnest(i.indkey::int2[]) k
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k
              JOIN pg_stats s ON s.schemaname = tn.nspname AND s.tablename = t.relname AND s.attname = a.attname)
              AS width,
           (SELECT count(*) FROM unnest(i.indkey::int2[]) k WHERE k = 0) AS expressions
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_am am ON am.oid = c.relam
    JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
    WHERE am.amname = 'btree' AND i.indisvalid AND c.relkind = 'i'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
), est AS (
    SELECT *, ceil(tuples * (8 + 4 + ceil(width / 8.0) * 8) / ((bs - 24 - 16) * fillfactor / 100.0)) + 1 AS expected
    FROM idx WHERE width IS NOT NULL AND expressions = 0 AND pages > 1
)
SELECT schema, name, table_schema, table_name, pages * bs AS bytes,
       greatest(pages - expected, 0) * bs AS bloat_bytes,
       100.0 * greatest(pages - expected, 0) / pages AS bloat_pct
FROM est
WHERE greatest(pages - expected, 0) * bs >= %s AND 100.0 * greatest(pages - expected, 0) / pages >= %s
ORDER BY bloat_bytes DESC
"""


@dataclass
class Options:
    only: str | None = None  # "analyze" or "reindex"
    stale_fraction: float = STALE_FRACTION
    bloat_pct: float = 30.0
    bloat_min_bytes: int = 100 * 1024 * 1024
    online: OnlineOptions = field(default_factory=OnlineOptions)


@dataclass(frozen=True)
class Step:
    action: str  # "analyze", "reindex", "drop leftover", "leave alone"
    relation: str  # schema.name of the table or index
    reason: str
    table: tuple[str, str] | None = None

    def describe(self) -> str:
        return f"{self.action} {self.relation}: {self.reason}"


def plan(target: Target, options: Options | None = None) -> list[Step]:
    """What a run would do now, in order, with the reason for each step."""
    options = options or Options()
    steps: list[Step] = []
    with db.connect(target, purpose="maintain plan") as conn:
        if options.only in (None, "analyze"):
            steps += _stale(conn, options)
        if options.only in (None, "reindex"):
            steps += _indexes(conn, options)
    return steps


def _stale(conn: psycopg.Connection, options: Options) -> list[Step]:
    steps = []
    for stale in stale_tables(conn, _TABLES, fraction=options.stale_fraction):
        reason = ("never analyzed" if stale.never else f"{stale.changed:,} rows changed since the last analyze, "
                  f"{stale.changed / max(stale.rows, 1):.0%} of {stale.rows:,}")
        steps.append(Step("analyze", f"{stale.schema}.{stale.table}", reason, (stale.schema, stale.table)))
    return steps


def _indexes(conn: psycopg.Connection, options: Options) -> list[Step]:
    steps = []
    valid = {(r[0], r[1]) for r in conn.execute(
        "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indisvalid")}
    for schema, name, table, building in conn.execute(_INVALID):
        # An index lives in its table's schema.
        label, owner = f"{schema}.{name}", (schema, table)
        if building:
            steps.append(Step("leave alone", label, f"INVALID, but an index build on {schema}.{table} is "
                              "running now: this may be it", owner))
            continue
        base = reindex_leftover_of(name)
        if base is not None and (schema, base) in valid:
            steps.append(Step("drop leftover", label, f"left by a failed REINDEX CONCURRENTLY of "
                              f"{schema}.{base}, which is valid", owner))
        else:
            steps.append(Step("reindex", label, "INVALID: queries do not use it, writes still maintain it", owner))
    for schema, name, table_schema, table, size, bloat, pct in conn.execute(
            _BLOAT, [options.bloat_min_bytes, options.bloat_pct]):
        steps.append(Step("reindex", f"{schema}.{name}", f"about {pct:.0f}% bloat ({_mb(bloat)} of {_mb(size)})",
                          (table_schema, table)))
    return steps


def maintain(target: Target, options: Options | None = None, out: Output | None = None) -> list[Step]:
    """Run the plan under maintain's own lock (another maintain run: LockBusy, exit 4)."""
    options = options or Options()
    out = out or options.online.out
    with run_lock(target, key=LOCK_KEY, what="maintenance lock", out=out) as lock:
        steps = plan(target, options)
        for step in steps:
            out.info(step.describe() if step.action != "leave alone" else f"left alone: {step.describe()}")
        analyze = [(*s.table, s.reason) for s in steps if s.action == "analyze" and s.table]
        analyze_tables(target, analyze, options.online)
        statements = []
        for step in steps:
            schema, name = step.relation.split(".", 1)
            ident = sql.Identifier(schema, name).as_string()
            if step.action == "reindex":
                statements.append(parse_index_statement(f"REINDEX INDEX CONCURRENTLY {ident}"))
            elif step.action == "drop leftover":
                statements.append(parse_index_statement(f"DROP INDEX CONCURRENTLY IF EXISTS {ident}"))
        options.online.lock = lock
        try:
            Engine(target, options.online, own_pids=set(lock.pids)).run([s for s in statements if s is not None])
        finally:
            options.online.lock = None
    if not steps:
        out.info("nothing to do: statistics are fresh and every index is valid and lean")
    return steps


def _mb(value: float) -> str:
    return f"{value / 1024 / 1024:,.1f} MB"
