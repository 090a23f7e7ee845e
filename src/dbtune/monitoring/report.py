"""`dbtune report`: the monitoring queries read back as findings, each with what to do, and a health grade.

Each section runs the query of one sql/monitoring file (monitoring.py) itself,
rendered for the server, so it needs neither dbtune's views nor any write: it
works on any database, a hot standby included, in one READ ONLY transaction.
It keeps the rows past its thresholds and turns them into findings that carry
a severity, the points they cost the health score and the fix.  ``health`` is
every section at once: 100 points less the deductions, graded A to F, so a DBA
sees in one screen what to fix first.  Rendering is separate (``render``).
The views themselves, for psql and Grafana, are ``install_views``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..core import db
from ..core.errors import ConfigError
from ..core.output import Column, Output, human_bytes, shorten
from ..core.settings import Target
from . import views as monitoring

SECTIONS = ("slow-queries", "index-usage", "bloat", "missing-indexes", "unused-indexes", "duplicate-indexes",
            "invalid-indexes", "cache")
MB = 1024 * 1024
UTILITY = (r"^\s*(create|alter|drop|analyze|vacuum|refresh|reindex|cluster|copy|grant|revoke|comment|set|reset|"
           r"begin|start|commit|rollback|savepoint|release|lock|truncate|checkpoint|do|call|explain)\M")
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


@dataclass
class Report:
    server: str
    database: str
    stats_since: dt.datetime | None
    stats_age_s: float | None
    sections: list[Section]
    health: bool = False  # every section, shown as the graded summary
    standby: bool = False
    notes: list[str] = field(default_factory=list)  # what this role or this server cannot show

    @property
    def findings(self) -> list[Finding]:
        return [f for s in self.sections for f in s.findings]

    @property
    def score(self) -> int:
        return max(0, 100 - sum(f.points for f in self.findings))

    @property
    def grade(self) -> str:
        return next(g for floor, g in ((90, "A"), (80, "B"), (70, "C"), (60, "D"), (0, "F")) if self.score >= floor)

    def worst(self) -> str | None:
        severities = {f.severity for f in self.findings}
        return "crit" if "crit" in severities else "warn" if "warn" in severities else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server, "database": self.database, "standby": self.standby, "notes": self.notes,
            "stats_since": self.stats_since.isoformat() if self.stats_since else None,
            "stats_age_hours": None if self.stats_age_s is None else round(self.stats_age_s / 3600, 1),
            "score": self.score, "grade": self.grade,
            "findings": [asdict(f) for f in self.findings],
            "sections": {s.name: {"title": s.title, "note": s.note, "rows": s.rows} for s in self.sections},
        }


def _capped(findings: list[Finding], cap: int) -> list[Finding]:
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


# -- sections -----------------------------------------------------------------------------------

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
    section.findings = _capped([Finding(
        "slow-queries", "warn", 5,
        f"{shorten(' '.join(str(r['query']).split()), 60)} takes {r['mean_ms']} ms on average over "
        f"{r['calls']:,} call{'s' if r['calls'] != 1 else ''} (queryid {r['queryid']})",
        "EXPLAIN (ANALYZE, BUFFERS) it; an index for it belongs in sql/indexes with a -- verify: check")
        for r in rows], 20)
    return section


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
                   f"{t.bloat_pct:g}% estimated bloat)", columns, rows, _capped(findings, 20))


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
                   "sequential scans)", columns, rows, _capped(findings, 15))


def unused_indexes(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    rows = src.rows("unused_indexes", sql.SQL("size_bytes >= %s"), (t.min_index_mb * MB,), t.limit)
    columns = [Column("table_name", "table"), Column("index_name", "index"), Column("size_bytes", "size", "bytes"),
               Column("definition", "definition", "sql")]
    section = Section("unused-indexes", f"Unused indexes (never scanned, over {t.min_index_mb:g} MB)", columns, rows)
    if stats_age_s is not None and stats_age_s < DAY_S:
        section.note = (f"the statistics are only {stats_age_s / 3600:.1f} hours old: too short to call an index "
                        "unused (wait a day, and a full business cycle, before dropping any)")
        return section
    section.findings = _capped([Finding(
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
    return Section("duplicate-indexes", "Duplicate indexes", columns, rows, _capped(findings, 15))


def invalid_indexes(src: Source, t: Thresholds, stats_age_s: float | None) -> Section:
    rows = src.rows("invalid_indexes", limit=t.limit)
    columns = [Column("table_name", "table"), Column("index_name", "index"), Column("size_bytes", "size", "bytes"),
               Column("definition", "definition", "sql")]
    findings = [Finding("invalid-indexes", "crit", 10,
                        f"{r['schema']}.{r['index_name']} is INVALID: writes maintain it, queries never use it",
                        "dbtune maintain --only reindex rebuilds it concurrently (or dbtune apply, when a pending "
                        "revision builds it)") for r in rows]
    return Section("invalid-indexes", "Invalid indexes (builds running now excluded)", columns, rows,
                   _capped(findings, 30))


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
    return Section("cache", "Cache hit ratio", columns, rows, _capped(findings, 30))


_BUILDERS = {"slow-queries": slow_queries, "index-usage": index_usage, "bloat": bloat,
             "missing-indexes": missing_indexes, "unused-indexes": unused_indexes,
             "duplicate-indexes": duplicate_indexes, "invalid-indexes": invalid_indexes, "cache": cache}


def report(target: Target, names: list[str] | None = None, thresholds: Thresholds | None = None, *,
           exact: bool = False) -> Report:
    """The named sections (all of them for health, or when none is named)."""
    t = thresholds or Thresholds()
    health = not names or "health" in names
    names = list(SECTIONS) if health else list(names)
    unknown = [n for n in names if n not in _BUILDERS]
    if unknown:
        raise ConfigError(f"unknown report {unknown[0]!r}: one of {', '.join(SECTIONS)}, health")
    with db.connect(target, purpose="report", autocommit=False) as conn:
        conn.read_only = True  # reads only, whatever the server: BEGIN READ ONLY
        src = Source(conn, monitoring.facts(_runner(conn)))
        server = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        database, since, age, standby, all_stats = conn.execute(
            "SELECT current_database(), coalesce(stats_reset, pg_postmaster_start_time()), "
            "extract(epoch FROM now() - coalesce(stats_reset, pg_postmaster_start_time()))::float8, "
            "pg_is_in_recovery(), pg_has_role('pg_read_all_stats', 'USAGE') "
            "FROM pg_stat_database WHERE datname = current_database()").fetchone()  # type: ignore[misc]
        sections = []
        for name in names:
            builder = _BUILDERS[name]
            try:
                sections.append(builder(src, t, age, exact=exact) if name == "bloat" else builder(src, t, age))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise ConfigError(f"this role may not read what {name} needs ({db.describe(exc)}): grant it "
                                  "pg_monitor (GRANT pg_monitor TO <role>)") from None
    return Report(server, database, since, age, sections, health, standby, _notes(standby, all_stats))


def _notes(standby: bool, all_stats: bool) -> list[str]:
    notes = []
    if not all_stats:
        # Without pg_read_all_stats other roles' statements show no text, and their index
        # builds no table (the report then judges them from pg_locks).
        notes.append("this role sees only its own statements' text in slow-queries: grant it pg_monitor "
                     "(or pg_read_all_stats) to see every role's")
    if standby:
        notes.append("a hot standby: scans, slow queries and cache hits are this server's own, not the "
                     "primary's (each server keeps its own statistics)")
    return notes


def _runner(conn: psycopg.Connection) -> monitoring.Run:
    def run(query: str) -> list[Any]:
        cur = conn.execute(query)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []
    return run


def install_views(target: Target) -> list[str]:
    """Create (or write again) the views in dbtune_monitor for this server, for psql and Grafana users:
    after a server upgrade, or once pg_stat_statements is preloaded, write them again."""
    with db.connect(target, purpose="report --install-views", autocommit=False) as conn:
        if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
            raise ConfigError("this server is a hot standby: install the views on the primary, from which "
                              "they replicate (dbtune report itself needs no view)")
        run = _runner(conn)
        conn.execute("SET LOCAL lock_timeout = '2s'")
        try:
            names = monitoring.create_views(run, monitoring.facts(run))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigError(f"this role may not create the views in {monitoring.SCHEMA} ({db.describe(exc)}): "
                              "run --install-views as the database owner (dbtune report itself needs no "
                              "view)") from None
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise ConfigError(f"the views cannot be written here ({db.describe(exc)}): this session is "
                              "read-only (default_transaction_read_only)") from None
        conn.commit()
    return names


# -- rendering ------------------------------------------------------------------------------------

def render(result: Report, out: Output, fmt: str = "table") -> None:
    if fmt == "json":
        out.json(result.as_dict())
        return
    age = "unknown" if result.stats_age_s is None else (
        f"{result.stats_age_s / 3600:.1f} hours" if result.stats_age_s < 2 * DAY_S
        else f"{result.stats_age_s / DAY_S:.1f} days")
    since = result.stats_since.strftime("%Y-%m-%d %H:%M %Z") if result.stats_since else "unknown"
    header = (f"PostgreSQL {result.server}{' (hot standby)' if result.standby else ''}, database "
              f"{result.database}: statistics gathered for {age} (since {since})")
    out.result(f"# {header}" if fmt == "markdown" else header)
    for note in result.notes:
        out.result(f"note: {note}")
    for s in [] if result.health else result.sections:
        out.result(f"\n## {s.title}" if fmt == "markdown" else f"\n{s.title}")
        if s.note:
            out.result(f"note: {s.note}")
        if s.rows:
            out.grid(s.rows, s.columns, fmt)
        elif not s.note:
            out.result("(none)")
    if fmt == "csv" and not result.health:
        return
    if result.health:
        for s in result.sections:
            if s.note:
                out.result(f"note ({s.name}): {s.note}")
    findings = sorted(result.findings, key=lambda f: (f.severity != "crit", -f.points))
    title = f"Health: {result.score}/100, grade {result.grade}" + (
        "" if result.health else f" (from {', '.join(s.name for s in result.sections)} only)")
    out.result(f"\n## {title}" if fmt == "markdown" else f"\n{title}")
    if not findings:
        out.result("nothing to fix")
        return
    bullet = "- " if fmt == "markdown" else ""
    for f in findings:
        cost = f"-{f.points}" if f.points else "capped"
        out.result(f"{bullet}[{f.severity} {cost}] {f.section}: {f.what}\n{'  ' if bullet else ''}    fix: {f.fix}")
