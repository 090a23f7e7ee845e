"""A database's schema as read from the catalogs, and what differs between two readings.

`dbtune check` reads the schema before a revision's upgrade and again after
its downgrade: anything the downgrade leaves behind, loses or changes is named
("column users.nickname is left behind by the downgrade of b004").  Alembic's
and dbtune's version tables are not part of the schema.
"""

from __future__ import annotations

from typing import Any

import psycopg

_SKIP_SCHEMAS = ("pg_catalog", "information_schema")
_VERSION_TABLES = ("alembic_version", "dbtune_version")
_USER = ("n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
         "AND n.nspname NOT LIKE 'pg_temp%'")

# kind, SQL returning (name, description) rows.  Names are schema-qualified.
_QUERIES = {
    "schema": "SELECT n.nspname, '' FROM pg_namespace n WHERE " + _USER + " AND n.nspname <> 'public'",
    "table": "SELECT n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c "
             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'f') AND " + _USER,
    "column": "SELECT n.nspname || '.' || c.relname || '.' || a.attname, "
              "format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END "
              "|| coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') "
              "|| CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END "
              "|| CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END "
              "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
              "JOIN pg_namespace n ON n.oid = c.relnamespace "
              "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
              "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'v', 'm') AND " + _USER,
    "index": "SELECT n.nspname || '.' || c.relname, pg_get_indexdef(c.oid) "
             "|| CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END "
             "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + _USER,
    "constraint": "SELECT n.nspname || '.' || c.relname || '.' || k.conname, pg_get_constraintdef(k.oid) "
                  "|| CASE WHEN k.convalidated THEN '' ELSE ' (NOT VALID)' END "
                  "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + _USER,
    "view": "SELECT n.nspname || '.' || c.relname, pg_get_viewdef(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'v' AND " + _USER,
    "materialized view": "SELECT n.nspname || '.' || c.relname, pg_get_viewdef(c.oid) FROM pg_class c "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND " + _USER,
    "sequence": "SELECT n.nspname || '.' || c.relname, format_type(s.seqtypid, NULL) || ' increment ' "
                "|| s.seqincrement FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + _USER,
    "type": "SELECT n.nspname || '.' || t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) "
            "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "JOIN pg_enum e ON e.enumtypid = t.oid WHERE " + _USER + " GROUP BY 1",
    "extension": "SELECT extname, '' FROM pg_extension",
}

Snapshot = dict[tuple[str, str], str]


def read(conn: psycopg.Connection[Any]) -> Snapshot:
    """Every object of the user's schemas: (kind, name) -> its definition."""
    found: Snapshot = {}
    for kind, query in _QUERIES.items():
        for name, description in conn.execute(query):  # type: ignore[arg-type]
            if _is_version_table(kind, name):
                continue
            found[(kind, name)] = description or ""
    return found


def _is_version_table(kind: str, name: str) -> bool:
    parts = name.split(".")
    return kind in ("table", "column", "index", "constraint") and len(parts) > 1 and parts[1] in _VERSION_TABLES


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What ``after`` has that ``before`` had not, lost, or changed; one line each, sorted."""
    lines = []
    for key in sorted(after.keys() - before.keys()):
        lines.append(f"{key[0]} {key[1]} is left behind")
    for key in sorted(before.keys() - after.keys()):
        lines.append(f"{key[0]} {key[1]} is missing")
    for key in sorted(before.keys() & after.keys()):
        if before[key] != after[key]:
            lines.append(f"{key[0]} {key[1]} changed: {before[key]!r} became {after[key]!r}")
    return lines
