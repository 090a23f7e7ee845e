"""`dbtune report`: the monitoring queries read back as findings, each with what to do, and a health grade.

Each section runs the query of one sql/monitoring file (``views``) itself,
rendered for the server, so it needs neither dbtune's views nor any write: it
works on any database, a hot standby included, in one READ ONLY transaction.
It keeps the rows past its thresholds and turns them into findings that carry
a severity, the points they cost the health score and the fix.  ``health`` is
every section at once: 100 points less the deductions, graded A to F, so a DBA
sees in one screen what to fix first.  Rendering is ``render``; the sections are ``sections`` and ``slow_queries``.
The views themselves, for psql and Grafana, are ``install_views``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from ..core import db
from ..core.errors import ConfigError
from ..core.settings import Target
from . import views as monitoring
from .findings import Finding, Section, Source, Thresholds
from .sections import BUILDERS, SECTIONS

__all__ = ["SECTIONS", "Report", "Thresholds", "install_views", "report"]


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


def report(target: Target, names: list[str] | None = None, thresholds: Thresholds | None = None, *,
           exact: bool = False) -> Report:
    """The named sections (all of them for health, or when none is named)."""
    t = thresholds or Thresholds()
    health = not names or "health" in names
    names = list(SECTIONS) if health else list(names)
    unknown = [n for n in names if n not in BUILDERS]
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
            builder = BUILDERS[name]
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
