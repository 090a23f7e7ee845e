"""The report's sections other than slow queries: index usage, bloat, missing, unused, duplicate
and invalid indexes, and cache hits; and the table of every section by name."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ..core.errors import ConfigError
from ..core.output import Column, human_bytes
from .findings import DAY_S, MB, Finding, Section, Source, Thresholds, capped
from .slow_queries import slow_queries

SECTIONS = ("slow-queries", "index-usage", "bloat", "missing-indexes", "unused-indexes", "duplicate-indexes",
            "invalid-indexes", "cache")


def index_usage(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    rows = src.rows("index_usage_stats", limit=t.limit * 5)
    columns = [Column("table_name", "table"), Column("index_name", "index"), Column("scans", "scans", "int"),
               Column("tuples_read", "tuples read", "int"), Column("size_bytes", "size", "bytes"),
               Column("is_unique", "unique"), Column("backs_constraint", "constraint"),
               Column("is_valid", "valid"), Column("last_used", "last used", "when")]
    return Section("index-usage", "Index usage (least used first)", columns, rows)


def bloat(src: Source, t: Thresholds, stats_age_s: float | None, *, exact: bool = False) -> Section:
    rows = src.rows("table_bloat_stats",
                 sql.SQL("total_bytes >= %s AND (dead_pct >= %s OR bloat_pct >= %s OR statistics = 'no statistics')"),
                 (t.bloat_min_mb * MB, t.dead_pct, t.bloat_pct), t.limit)
    columns = [Column("table_name", "table"), Column("live_tuples", "live", "int"),
               Column("dead_tuples", "dead", "int"),
               Column("dead_pct", "dead", "pct"), Column("bloat_bytes", "bloat", "bytes"),
               Column("bloat_pct", "bloat", "pct"), Column("statistics", "statistics"),
               Column("total_bytes", "size", "bytes"), Column("last_autovacuum", "last autovacuum", "when")]
    if exact:
        _measure_exactly(src.conn, rows)
        columns[6] = Column("statistics", "measured")
    findings = []
    for r in rows:
        if r["statistics"] == "no statistics":
            findings.append(Finding("bloat", "warn", 3, f"{r['schema']}.{r['table_name']} has no statistics "
                                    "(never analyzed): the planner guesses its row counts",
                                    "dbtune maintain --only analyze"))
            continue
        crit = (r["dead_pct"] or 0) >= 50 or (r["bloat_pct"] or 0) >= 60
        findings.append(Finding(
            "bloat", "crit" if crit else "warn", 8 if crit else 4,
            f"{r['schema']}.{r['table_name']}: {r['dead_pct'] or 0}% dead tuples, "
            f"{'?' if r['bloat_bytes'] is None else human_bytes(r['bloat_bytes'])} estimated bloat",
            "dbtune maintain (ANALYZE, index rebuilds); VACUUM the table, and look for long transactions "
            "that keep autovacuum from cleaning it"))
    return Section("bloat", f"Bloat (tables over {t.bloat_min_mb:g} MB with {t.dead_pct:g}% dead tuples or "
                   f"{t.bloat_pct:g}% estimated bloat)", columns, rows, capped(findings, 20))


def _measure_exactly(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> None:
    """pgstattuple_approx instead of the estimate: reads the table's visibility map and free space map."""
    found = conn.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                         "WHERE e.extname = 'pgstattuple'").fetchone()
    if found is None:
        raise ConfigError("--exact needs the pgstattuple extension: CREATE EXTENSION pgstattuple (as a superuser)")
    for r in rows:
        table = sql.Identifier(r["schema"], r["table_name"]).as_string(conn)
        query = sql.SQL("SELECT table_len, approx_free_space, dead_tuple_len FROM {}.pgstattuple_approx({}::regclass)"
                        ).format(sql.Identifier(found[0]), sql.Literal(table))
        table_len, free, dead = conn.execute(query).fetchone()  # type: ignore[misc]
        r["bloat_bytes"] = free + dead
        r["bloat_pct"] = round(100.0 * (free + dead) / table_len, 1) if table_len else 0.0
        r["statistics"] = "pgstattuple_approx"


def missing_indexes(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    rows = src.rows("missing_indexes", sql.SQL("size_bytes >= %s AND rows_per_seq_scan >= 1000"),
                 (t.min_table_mb * MB,), t.limit)
    columns = [Column("table_name", "table"), Column("seq_scan", "seq scans", "int"),
               Column("seq_tup_read", "rows read by seq scans", "int"), Column("idx_scan", "index scans", "int"),
               Column("seq_scan_pct", "seq", "pct"), Column("size_bytes", "size", "bytes")]
    findings = [Finding("missing-indexes", "warn", 5,
                        f"{r['schema']}.{r['table_name']} ({human_bytes(r['size_bytes'])}) is read by sequential "
                        f"scans {r['seq_scan_pct']}% of the time, {r['rows_per_seq_scan']:,} rows a scan",
                        "find its queries in slow-queries and index them (a sql/indexes file with a -- verify: "
                        "check proves the index serves them)") for r in rows]
    return Section("missing-indexes", f"Missing indexes (tables over {t.min_table_mb:g} MB read mostly by "
                   "sequential scans)", columns, rows, capped(findings, 15))


def unused_indexes(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    rows = src.rows("unused_indexes", sql.SQL("size_bytes >= %s"), (t.min_index_mb * MB,), t.limit)
    columns = [Column("table_name", "table"), Column("index_name", "index"), Column("size_bytes", "size", "bytes"),
               Column("definition", "definition", "sql")]
    section = Section("unused-indexes", f"Unused indexes (never scanned, over {t.min_index_mb:g} MB)", columns, rows)
    if stats_age_s is not None and stats_age_s < DAY_S:
        section.note = (f"the statistics are only {stats_age_s / 3600:.1f} hours old: too short to call an index "
                        "unused (wait a day, and a full business cycle, before dropping any)")
        return section
    section.findings = capped([Finding(
        "unused-indexes", "warn", 3,
        f"{r['schema']}.{r['index_name']} ({human_bytes(r['size_bytes'])}) has never been scanned",
        f"{r['fix']} (check replicas first: each keeps its own statistics)") for r in rows], 15)
    return section


def duplicate_indexes(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    rows = src.rows("duplicate_indexes", limit=t.limit)
    columns = [Column("table_name", "table"), Column("redundant_index", "redundant index"),
               Column("covered_by", "covered by"), Column("reason", "why"),
               Column("redundant_bytes", "size", "bytes"), Column("fix", "fix", "sql")]
    findings = [Finding("duplicate-indexes", "warn", 5,
                        f"{r['redundant_index']} is {'identical to' if r['reason'] == 'identical' else 'a prefix of'} "
                        f"{r['covered_by']}", r["fix"]) for r in rows]
    return Section("duplicate-indexes", "Duplicate indexes", columns, rows, capped(findings, 15))


def invalid_indexes(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    rows = src.rows("invalid_indexes", limit=t.limit)
    columns = [Column("table_name", "table"), Column("index_name", "index"), Column("size_bytes", "size", "bytes"),
               Column("definition", "definition", "sql")]
    findings = [Finding("invalid-indexes", "crit", 10,
                        f"{r['schema']}.{r['index_name']} is INVALID: writes maintain it, queries never use it",
                        "dbtune maintain --only reindex rebuilds it concurrently (or dbtune apply, when a pending "
                        "revision builds it)") for r in rows]
    return Section("invalid-indexes", "Invalid indexes (builds running now excluded)", columns, rows,
                   capped(findings, 30))


def cache(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    rows = src.rows("cache_hit_ratio")
    columns = [Column("kind", "reads of"), Column("hits", "hits", "int"), Column("reads", "disk reads", "int"),
               Column("ratio", "hit ratio", "ratio")]
    findings = []
    for r in rows:
        if r["ratio"] is None or (r["hits"] or 0) + (r["reads"] or 0) < 10_000:
            continue  # too few reads to judge
        if r["ratio"] < t.cache_crit:
            findings.append(Finding("cache", "crit", 20, f"{r['kind']}: only {r['ratio']:.2%} of reads hit "
                                    "shared_buffers", "the working set does not fit: raise shared_buffers (dbtune "
                                    "config diff shows the recommendation) or add memory"))
        elif r["ratio"] < t.cache_warn:
            findings.append(Finding("cache", "warn", 10, f"{r['kind']}: {r['ratio']:.2%} of reads hit "
                                    "shared_buffers (under 99%)", "check shared_buffers with dbtune config diff"))
    return Section("cache", "Cache hit ratio", columns, rows, capped(findings, 30))


BUILDERS = {"slow-queries": slow_queries, "index-usage": index_usage, "bloat": bloat,
             "missing-indexes": missing_indexes, "unused-indexes": unused_indexes,
             "duplicate-indexes": duplicate_indexes, "invalid-indexes": invalid_indexes, "cache": cache}
