"""Where the statements to advise on come from: pg_stat_statements, a ``.sql`` file, a checks directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..core.errors import ConfigError
from ..sqltext.shapes import readable


@dataclass(frozen=True)
class Statement:
    text: str
    origin: str  # where it came from: "queryid 123", "queries.sql #2", a check's name
    calls: int | None = None
    total_ms: float | None = None


def from_stat_statements(conn: psycopg.Connection[Any], limit: int) -> list[Statement]:
    """This database's statements by total time, as `report slow-queries` ranks them (every kind:
    which ones an index can serve is decided afterwards, from each one's parse tree)."""
    from ..monitoring import views
    from ..monitoring.findings import Source

    run = lambda q: conn.execute(q).fetchall()  # noqa: E731
    found = views.facts(run)
    if found.slow_queries_note is not None:
        raise ConfigError(f"no statements to advise on: {found.slow_queries_note}; or give --queries FILE "
                          "or --checks DIR")
    rows = Source(conn, found).rows("slow_queries", sql.SQL("database = current_database() AND query IS NOT NULL"),
                                    limit=limit)
    return [Statement(readable(str(r["query"]).strip()), f"queryid {r['queryid']}", int(r["calls"] or 0),
                      float(r["total_ms"] or 0)) for r in rows]


def from_file(path: Path) -> list[Statement]:
    """Each statement of a ``.sql`` file, in file order (no times: each weighs the same)."""
    import sqlparse

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", path=str(path)) from None
    parts = [sqlparse.format(s, strip_comments=True).strip().rstrip(";").strip() for s in sqlparse.split(text)]
    found = [Statement(p, f"{path.name} #{n}") for n, p in enumerate((p for p in parts if p), start=1)]
    if not found:
        raise ConfigError(f"{path} holds no SQL statement", path=str(path))
    return found


def from_checks(folder: Path) -> list[Statement]:
    """The ``-- verify:`` query of each check file in ``folder``."""
    from ..verify.checks import load_checks

    return [Statement(c.query, c.name) for c in load_checks([folder]) if c.query]
