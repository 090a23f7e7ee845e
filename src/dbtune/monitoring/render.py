"""`dbtune report`'s text, markdown, csv and json: the sections' tables, then the graded findings."""

from __future__ import annotations

from ..core.output import Output
from .findings import DAY_S
from .report import Report


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
