"""The monitoring views: sql/monitoring/ files, filled in for the server they are created on.

The views answer a DBA's questions after the indexes land (slow queries, index
usage, bloat, missing, unused, duplicate and invalid indexes, cache hits) in
plain SQL any client can query.  They live in their own schema, readable by
pg_monitor and nobody else: query text can carry data.

Each file is one query under a ``CREATE VIEW`` line: `dbtune report` runs the
query itself (``query_sql``), so it needs no view and works on any database, a
hot standby included; the views are for psql and Grafana, created by migration
0009 or `dbtune report --install-views` (``view_sql``).

What differs between servers is decided when the query is rendered: the columns
pg_stat_statements has (PostgreSQL 13 to 18), whether it is installed and
preloaded at all, whether pg_stat_user_indexes has last_idx_scan (16+), and
whether the role that runs the query (the views' owner, for a view) may read
pg_statistic.  Every statement runs through a ``run(sql) -> rows`` callable, so
the same code serves a migration's connection and dbtune's own.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from ..core.errors import DbtuneError
from ..core.resources import sql_path

SCHEMA = "dbtune_monitor"
VIEWS = ("slow_queries", "index_usage_stats", "table_bloat_stats", "missing_indexes", "unused_indexes",
         "duplicate_indexes", "invalid_indexes", "cache_hit_ratio")
# Marks the views dbtune made: one without it is somebody else's, never replaced.
MARK = "dbtune monitoring view"
READER_ROLE = "pg_monitor"

Run = Callable[[str], Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class Facts:
    """What the server offers, read once before the views are written."""

    pgss_schema: str | None  # where pg_stat_statements is installed, None if not in this database
    pgss_loaded: bool  # in shared_preload_libraries
    pgss_columns: frozenset[str]
    has_last_idx_scan: bool
    reads_pg_statistic: bool

    @property
    def slow_queries_note(self) -> str | None:
        if self.pgss_schema is None:
            return ("pg_stat_statements is not installed in this database: run CREATE EXTENSION "
                    "pg_stat_statements (and add it to shared_preload_libraries, then restart)")
        if not self.pgss_loaded:
            return ("pg_stat_statements is installed but not preloaded: add it to shared_preload_libraries "
                    "in postgresql.conf and restart PostgreSQL")
        return None

    @property
    def view_note(self) -> str | None:
        """The note a view keeps: a view is rendered once, so it says how to write it again."""
        note = self.slow_queries_note
        return None if note is None else f"{note}, then run dbtune report --install-views"


# What offline mode (`--sql`, the dry run) assumes: the newest server, fully configured.
NEWEST = Facts("public", True, frozenset({"total_plan_time", "shared_blk_read_time"}), True, True)


def quote(name: str) -> str:
    return sql.Identifier(name).as_string()


def literal(value: str) -> str:
    return sql.Literal(value).as_string()


def facts(run: Run) -> Facts:
    row = run("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
              "WHERE e.extname = 'pg_stat_statements'")
    pgss_schema = row[0][0] if row else None
    # Preloaded, pg_stat_statements defines its settings; a placeholder of the same name (set in
    # postgresql.conf, library not loaded) is not in pg_settings.  Every role sees these rows,
    # where shared_preload_libraries itself needs pg_read_all_settings.
    loaded = bool(run("SELECT 1 FROM pg_settings WHERE name = 'pg_stat_statements.max'"))
    columns: frozenset[str] = frozenset()
    if pgss_schema is not None:
        columns = frozenset(r[0] for r in run(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE c.relname = 'pg_stat_statements' AND n.nspname = {literal(pgss_schema)} AND a.attnum > 0"))
    last_idx = bool(run("SELECT 1 FROM pg_attribute WHERE attrelid = 'pg_catalog.pg_stat_user_indexes'::regclass "
                        "AND attname = 'last_idx_scan'"))
    statistic = bool(run("SELECT has_table_privilege('pg_catalog.pg_statistic', 'SELECT')")[0][0])
    return Facts(pgss_schema, loaded, columns, last_idx, statistic)


# Every file starts (after its comments) with this line; the query follows it.
_HEADER = re.compile(r"^CREATE VIEW \$\{schema\}\.(\w+) AS[ \t]*\n", re.MULTILINE)


def view_sql(name: str, found: Facts) -> str:
    """The CREATE VIEW statement of ``name`` for a server with ``found``."""
    return f"CREATE VIEW {quote(SCHEMA)}.{quote(name)} AS\n{query_sql(name, found, note=found.view_note)}"


def query_sql(name: str, found: Facts, *, note: str | None = None) -> str:
    """The query of view ``name`` for a server with ``found``, to run as it is (no view needed)."""
    values: dict[str, str] = {}
    file = name
    if name == "slow_queries":
        unavailable = found.slow_queries_note
        if unavailable is not None:
            file, values["note"] = "slow_queries_unavailable", literal(note or unavailable)
        else:
            assert found.pgss_schema is not None
            values["pgss"] = quote(found.pgss_schema)
            values["plan_ms"] = "s.total_plan_time" if "total_plan_time" in found.pgss_columns else "0"
            values["read_ms"] = ("s.shared_blk_read_time" if "shared_blk_read_time" in found.pgss_columns
                                 else "s.blk_read_time")
    elif name == "invalid_indexes":
        values["building"] = "NOT being_built"
    elif name == "index_usage_stats":
        values["last_used"] = "s.last_idx_scan" if found.has_last_idx_scan else "NULL::timestamptz"
    elif name == "table_bloat_stats":
        values["widths"] = (
            "SELECT starelid AS relid, sum(stawidth) + 24 AS row_width FROM pg_catalog.pg_statistic "
            "WHERE NOT stainherit GROUP BY starelid" if found.reads_pg_statistic else
            "SELECT (quote_ident(schemaname) || '.' || quote_ident(tablename))::regclass AS relid, "
            "sum(avg_width) + 24 AS row_width FROM pg_catalog.pg_stats WHERE NOT inherited "
            "GROUP BY schemaname, tablename")
    return _render(file, name, values)


def invalid_indexes_sql() -> str:
    """Every INVALID index, those being built included (``being_built``), for maintain, status and check:
    the view's query, which needs no facts about the server."""
    return _render("invalid_indexes", "invalid_indexes", {"building": "true"})


def _render(file: str, name: str, values: dict[str, str]) -> str:
    text = sql_path("monitoring", f"{file}.sql").read_text()
    header = _HEADER.search(text)
    if header is None or header.group(1) != name:
        raise DbtuneError(f"sql/monitoring/{file}.sql does not start with CREATE VIEW ${{schema}}.{name} AS")
    return string.Template(text[header.end():]).substitute(values).strip().rstrip(";")


def _owned(run: Run) -> dict[str, bool]:
    """Each monitoring name that exists in the schema: True when dbtune made it."""
    rows = run("SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '') FROM pg_class c "
               f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {literal(SCHEMA)}")
    return {name: comment.startswith(MARK) for name, comment in rows if name in VIEWS}


def create_views(run: Run, found: Facts, *, check: bool = True, replace: bool = True) -> list[str]:
    """Create (or re-create) every view; refuse before changing anything if a name is somebody else's.

    ``replace`` drops dbtune's own earlier views first; offline (``--sql``) there are none to drop.
    """
    if check:
        foreign = [name for name, ours in _owned(run).items() if not ours]
        if foreign:
            raise DbtuneError(f"{SCHEMA}.{foreign[0]} exists and dbtune did not create it: rename or drop it "
                              "(nothing was changed)")
    schema = quote(SCHEMA)
    run(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    run(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
    run(f"GRANT USAGE ON SCHEMA {schema} TO {quote(READER_ROLE)}")
    for name in VIEWS:
        # DROP and CREATE, not CREATE OR REPLACE: after a server upgrade the columns may differ.
        if replace:
            run(f"DROP VIEW IF EXISTS {schema}.{quote(name)}")
        run(view_sql(name, found))
        run(f"COMMENT ON VIEW {schema}.{quote(name)} IS {literal(MARK + ' (' + name + ')')}")
        run(f"REVOKE ALL ON {schema}.{quote(name)} FROM PUBLIC")
        run(f"GRANT SELECT ON {schema}.{quote(name)} TO {quote(READER_ROLE)}")
    return list(VIEWS)


def drop_views(run: Run) -> None:
    """Drop dbtune's views (never somebody else's), and the schema once it is empty."""
    schema = quote(SCHEMA)
    for name, ours in _owned(run).items():
        if ours:
            run(f"DROP VIEW IF EXISTS {schema}.{quote(name)}")
    left = run(f"SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
               f"WHERE n.nspname = {literal(SCHEMA)}")
    if left and left[0][0] == 0:
        run(f"DROP SCHEMA IF EXISTS {schema}")

