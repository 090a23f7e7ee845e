"""What the commands print that no library module renders: status, a dry run, refresh --status,
config diff, seed's counts, maintain's plan.  Every table goes through ``Output.grid``, the one
table style; these tables are shown whole (``width=None``): their values are URLs, paths and
reasons a DBA copies.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import DbtuneError
from ..core.output import Column, Output

PAIRS = [Column("name", ""), Column("value", "")]


def status(result: Any, out: Output, fmt: str) -> None:
    """``dbtune status``: where, which server, which revisions; an INVALID index as a warning."""
    if fmt == "json":
        out.json(result.as_dict())
        return
    pairs = [
        ("database", f"{result.target}  (from {result.target_source})"),
        ("server", f"PostgreSQL {result.server_version}"),
        ("migrations", f"{result.migrations}  ({result.migrations_source})"),
        ("current", ", ".join(result.current) or "base (nothing applied)"),
        ("head", ", ".join(result.heads) or "-"),
        ("pending", f"{len(result.pending)}" if result.pending else "0 (up to date)"),
    ]
    out.grid([{"name": name, "value": value} for name, value in pairs], PAIRS, width=None)
    for rev, message in result.pending:
        out.result(f"  pending {rev}: {message}")
    for index in result.invalid_indexes:
        out.warn(f"INVALID index {index}: queries do not use it, writes still maintain it. If a pending "
                 "revision builds it, dbtune apply repairs it; otherwise drop it with DROP INDEX CONCURRENTLY")


def dry_run(outcome: Any, out: Output) -> None:
    """The annotated script of ``apply/rollback --dry-run``; a statement that would fail fails the command."""
    if outcome.sql is None:
        return
    out.result(outcome.sql.rstrip())
    if outcome.errors:
        raise DbtuneError(f"the dry run found {outcome.errors} statement(s) that would fail as written "
                          "(marked ERROR above); nothing was changed")


REFRESH_STATUS = [Column("view", "view"), Column("populated", "populated"), Column("last_refresh", "last refresh"),
                  Column("age", "age"), Column("took", "took"), Column("rows", "rows"),
                  Column("concurrently", "concurrently")]


def refresh_status(rows: list[dict[str, Any]], out: Output, fmt: str) -> None:
    """``dbtune refresh --status``: each view's last refresh, and whether it can refresh concurrently."""
    from ..maintenance.refresh import age_text

    if fmt == "json":
        out.json(rows)
        return
    out.grid([{"view": row["view"], "populated": "yes" if row["populated"] else "no",
               "last_refresh": row["last_refresh"] or ("never" if row["history"] else "unknown"),
               "age": age_text(row["age_s"]), "took": None if row["duration_s"] is None else f"{row['duration_s']:g}s",
               "rows": None if row["rows"] is None else f"{row['rows']:,}",
               "concurrently": "yes" if row["concurrently"] else f"no: {row['why_not']}"} for row in rows],
             REFRESH_STATUS, width=None)
    for row in rows:
        for warning in row["warnings"]:
            out.warn(f"{row['view']}: {warning}")


DRIFT = [Column("name", "setting"), Column("current", "current"), Column("recommended", "recommended"),
         Column("same", "same"), Column("source", "source"), Column("to_change", "to change"),
         Column("pending", "pending restart")]


def config_diff(report: Any, out: Output, fmt: str, emit_alter_system: bool) -> None:
    """``dbtune config diff``: each setting against the recommendation, or the ALTER SYSTEM that closes the drift."""
    from ..tuning import drift

    if fmt == "json":
        out.json(report.as_dict())
        return
    if emit_alter_system:
        lines = drift.alter_system(report.drifted)
        out.result(f"-- recommended for {report.shape.describe()}: the figures of {report.sized_for}")
        out.result("\n".join(lines) if lines else "-- no drift: nothing to change")
        return
    out.info(f"PostgreSQL {report.server}; recommended for {report.shape.describe()}: the figures of "
             f"{report.sized_for}")
    out.grid([{"name": d.name, "current": d.current, "recommended": d.recommended,
               "same": "yes" if d.matches else "DRIFT", "source": d.source,
               "to_change": "restart" if d.restart else "reload", "pending": "yes" if d.pending_restart else ""}
              for d in report.settings], DRIFT, width=None)
    out.info(f"{len(report.drifted)} of {len(report.settings)} settings differ")


def seeded(counts: dict[str, int], out: Output) -> None:
    """``dbtune seed``: the rows each reference table holds."""
    out.grid([{"table": table, "rows": f"{rows:,}"} for table, rows in counts.items()],
             [Column("table", "table"), Column("rows", "rows")], width=None)


def maintain_plan(steps: list[Any], out: Output) -> None:
    """``dbtune maintain --dry-run``: each step it would take, and why."""
    for step in steps:
        out.result(f"would {step.describe()}" if step.action != "leave alone" else f"would leave alone "
                   f"{step.relation}: {step.reason}")
    if not steps:
        out.result("nothing to do: statistics are fresh and every index is valid and lean")
