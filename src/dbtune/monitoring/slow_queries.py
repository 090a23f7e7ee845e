"""The slow-queries section: pg_stat_statements' statements past a mean time, by total time.

Each row says what kind of statement it is, read from its parse tree (``sqltext.shapes``), and
what may make it faster: for a query, an UPDATE or a DELETE, the index `dbtune advise` would
cost for it, or why none helps.  A bulk load (INSERT ... SELECT, COPY) is shown but is no
finding: it is one-off work no index shortens.  DDL and maintenance (a migration's CREATE
INDEX, ANALYZE, REFRESH) are slow by nature and left out.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from ..core.output import Column, shorten
from ..sqltext import shapes
from .findings import Finding, Section, Source, Thresholds, capped

LEFT_OUT = ("ddl", "maintenance", "session", "other")
NO_FINDING = ("bulk load",)


def slow_queries(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    # Every statement past the mean is read (no LIMIT in SQL): the ones left out by kind must
    # not take the places of the ones shown.
    rows = src.rows("slow_queries", sql.SQL("(mean_ms >= %s AND database = current_database()) "
                                               "OR note IS NOT NULL"), (t.slow_mean_ms,))
    columns = [Column("queryid", "queryid"), Column("calls", "calls", "int"), Column("total_ms", "total", "ms"),
               Column("mean_ms", "mean", "ms"), Column("hit_ratio", "hit ratio", "ratio"),
               Column("temp_blks_written", "temp blocks", "int"), Column("kind", "kind"),
               Column("query", "query", "sql")]  # the advice is each finding's fix (and a JSON field)
    section = Section("slow-queries", f"Slow queries (mean over {t.slow_mean_ms:g} ms), by total time", columns,
                      rows)
    note = next((r["note"] for r in rows if r.get("note")), None)
    if note:
        section.rows, section.note = [], note
        section.findings = [Finding("slow-queries", "warn", 5, "slow queries cannot be seen: pg_stat_statements "
                                    "does not answer", note)]
        return section
    section.rows = sorted((r for r in map(_read, rows) if r["kind"] not in LEFT_OUT),
                          key=lambda r: -float(r["total_ms"] or 0))[:t.limit]
    section.findings = capped([_finding(r) for r in section.rows if r["kind"] not in NO_FINDING], 20)
    return section


def _read(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its kind and the advice that fits it."""
    text = str(row["query"])
    found = shapes.outlines(text)
    row["kind"] = shapes.kind(text)
    row["index_may_help"] = bool(found)
    row["advice"] = (f"{' and '.join(map(str, found))} may serve it: dbtune advise --write-revision proves "
                     "it with the planner and writes it" if found else shapes.no_index(text))
    return row


def _finding(r: dict[str, Any]) -> Finding:
    calls = f"{r['calls']:,} call{'s' if r['calls'] != 1 else ''}"
    fix = r["advice"] if r["index_may_help"] else \
        f"{r['advice']}; EXPLAIN (ANALYZE, BUFFERS) it to see where the time goes"
    return Finding("slow-queries", "warn", 5,
                   f"{shorten(' '.join(str(r['query']).split()), 60)} ({shapes.KINDS[r['kind']]}) takes "
                   f"{r['mean_ms']} ms on average over {calls}, {r['total_ms']} ms in all (queryid {r['queryid']})",
                   fix)
