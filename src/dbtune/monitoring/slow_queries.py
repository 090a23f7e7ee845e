"""The slow-queries section: pg_stat_statements' application statements past a mean time."""

from __future__ import annotations

from psycopg import sql

from ..core.output import Column, shorten
from .findings import Finding, Section, Source, Thresholds, capped

UTILITY = (r"^\s*(create|alter|drop|analyze|vacuum|refresh|reindex|cluster|copy|grant|revoke|comment|set|reset|"
           r"begin|start|commit|rollback|savepoint|release|lock|truncate|checkpoint|do|call|explain)\M")


def slow_queries(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    # Application statements only: DDL and maintenance (a migration's CREATE INDEX, ANALYZE,
    # REFRESH) are slow by nature and not a query to fix.
    rows = src.rows("slow_queries", sql.SQL("(mean_ms >= %s AND database = current_database() AND query !~* %s) "
                                               "OR note IS NOT NULL"), (t.slow_mean_ms, UTILITY), t.limit)
    columns = [Column("queryid", "queryid"), Column("calls", "calls", "int"), Column("total_ms", "total", "ms"),
               Column("mean_ms", "mean", "ms"), Column("hit_ratio", "hit ratio", "ratio"),
               Column("temp_blks_written", "temp blocks", "int"), Column("query", "query", "sql")]
    section = Section("slow-queries", f"Slow queries (mean over {t.slow_mean_ms:g} ms)", columns, rows)
    note = next((r["note"] for r in rows if r.get("note")), None)
    if note:
        section.rows, section.note = [], note
        section.findings = [Finding("slow-queries", "warn", 5, "slow queries cannot be seen: pg_stat_statements "
                                    "does not answer", note)]
        return section
    section.findings = capped([Finding(
        "slow-queries", "warn", 5,
        f"{shorten(' '.join(str(r['query']).split()), 60)} takes {r['mean_ms']} ms on average over "
        f"{r['calls']:,} call{'s' if r['calls'] != 1 else ''} (queryid {r['queryid']})",
        "EXPLAIN (ANALYZE, BUFFERS) it; an index for it belongs in sql/indexes with a -- verify: check")
        for r in rows], 20)
    return section
