"""What a report section is made of: thresholds, findings, sections, and the source they read.

A section runs the query of one sql/monitoring file (``views``) itself, rendered for the
server, keeps the rows past its thresholds and turns them into findings that carry a
severity, the points they cost the health score and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..core.output import Column
from . import views as monitoring

MB = 1024 * 1024
DAY_S = 86400.0


@dataclass
class Thresholds:
    slow_mean_ms: float = 100.0
    min_table_mb: float = 10.0
    min_index_mb: float = 1.0
    dead_pct: float = 20.0
    bloat_pct: float = 30.0
    bloat_min_mb: float = 10.0
    cache_warn: float = 0.99
    cache_crit: float = 0.95
    limit: int = 20


@dataclass
class Finding:
    section: str
    severity: str  # "warn" or "crit"
    points: int  # taken off the health score
    what: str
    fix: str


@dataclass
class Section:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    findings: list[Finding] = field(default_factory=list)
    note: str | None = None


def capped(findings: list[Finding], cap: int) -> list[Finding]:
    """At most ``cap`` points from one section: ten unused indexes are not ten times one."""
    left = cap
    for f in findings:
        f.points = min(f.points, left)
        left -= f.points
    return findings


_ALL = sql.SQL("true")


@dataclass
class Source:
    """The connection, and what the server offers (the queries are rendered for it)."""

    conn: psycopg.Connection
    found: monitoring.Facts

    def rows(self, name: str, where: sql.Composable = _ALL, params: tuple[Any, ...] = (),
             limit: int | None = None) -> list[dict[str, Any]]:
        # The file's own query, not the view: the same rows, with no view to install.  Its
        # literal % (LIKE 'pg_toast%') is doubled, since the query takes parameters.
        body = monitoring.query_sql(name, self.found).replace("%", "%%")
        query = sql.SQL("SELECT * FROM ({}) AS {} WHERE {}").format(sql.SQL(body), sql.Identifier(name), where)
        if limit is not None:
            query += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()
