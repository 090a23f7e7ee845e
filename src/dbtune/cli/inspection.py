"""`dbtune verify`, `report` and `config`: verbs that look at a database (or a machine) and say what they find."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.errors import EXIT_FAILED
from .options import connection_options, fleet_options, machine_options, target_of, writer


@click.command(epilog="""\b
Examples:
  dbtune verify                              # every shipped index serves its query
  dbtune verify --can-use                    # usable at all (CI, nearly empty database)
  dbtune verify --checks my_checks/          # your own queries and indexes
  dbtune verify --analyze --save-baseline before.json
  dbtune verify --analyze --baseline before.json --max-regression 2
  dbtune verify --analyze --compare before.json   # before/after times side by side
""")
@click.option("--checks", "check_dirs", multiple=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory of .sql check files (repeatable); replaces the shipped checks unless --shipped.")
@click.option("--shipped", is_flag=True, help="Also run dbtune's shipped index checks along with --checks.")
@click.option("--can-use", is_flag=True, help="Discourage seq scans for the check: is the index usable at all?")
@click.option("--analyze", is_flag=True, help="Run the queries (EXPLAIN ANALYZE, BUFFERS): times and buffers.")
@click.option("--save-baseline", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Record each check's plan, cost and time.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Fail a check whose plan left its index or whose time grew past --max-regression.")
@click.option("--compare", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Show each check's time against a saved baseline, with the speed-up.")
@click.option("--max-regression", type=click.FloatRange(min=1.0, min_open=True), default=2.0, show_default=True,
              metavar="RATIO", help="With --baseline: fail a check whose time grew more than this many times.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@connection_options
@fleet_options("verify")
def verify(check_dirs: tuple[Path, ...], shipped: bool, can_use: bool, analyze: bool, save_baseline: Path | None,
           baseline: Path | None, compare: Path | None, max_regression: float, fmt: str,
           database_url: str | None) -> None:
    """Prove with EXPLAIN that each index serves its query. Exit 1 if any check fails."""
    from .. import verify as v
    from ..verify.checks import default_check_dirs

    dirs = list(check_dirs) + (default_check_dirs() if shipped or not check_dirs else [])
    out = writer()
    gate = v.load_baseline(baseline) if baseline else None
    before = v.load_baseline(compare) if compare else None
    report = v.verify(target_of(database_url), dirs, can_use=can_use, analyze=analyze, baseline=gate,
                      max_regression=max_regression)
    if before is not None:
        v.render_comparison(before, report, out, fmt)
    else:
        v.render(report, out, fmt)
    if save_baseline:
        v.save_baseline(report, save_baseline)
    if not report.ok:
        raise click.exceptions.Exit(1)


@click.command(epilog="""\b
Reports: slow-queries, index-usage, bloat, missing-indexes, unused-indexes,
duplicate-indexes, invalid-indexes, cache, health (all of them, graded A to F).
Examples:
  dbtune report health
  dbtune report slow-queries --slow-ms 250 --limit 10
  dbtune report bloat --exact
  dbtune report --format markdown > health.md
  dbtune report health --fail-on crit      # a monitoring check: exit 1 on a critical finding
  dbtune report --install-views            # the same queries as views, for psql and Grafana
""")
@click.argument("names", nargs=-1, metavar="[REPORT]...")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]), default="table",
              show_default=True)
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="Rows per report.")
@click.option("--slow-ms", type=click.FloatRange(min=0), default=100.0, show_default=True,
              help="Mean time that makes a query slow.")
@click.option("--min-table-mb", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Smallest table worth a missing-index finding.")
@click.option("--min-index-mb", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Smallest index worth an unused-index finding.")
@click.option("--dead-pct", type=click.FloatRange(0, 100), default=20.0, show_default=True,
              help="Dead tuples that make a table bloated.")
@click.option("--bloat-pct", type=click.FloatRange(0, 100), default=30.0, show_default=True,
              help="Estimated bloat that makes a table bloated.")
@click.option("--bloat-min-mb", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Smallest table worth a bloat finding.")
@click.option("--exact", is_flag=True, help="bloat: measure with pgstattuple_approx instead of estimating.")
@click.option("--fail-on", type=click.Choice(["warn", "crit"]),
              help="Exit 1 when a finding is at least this severe (for CI or a monitoring check).")
@click.option("--install-views", "--repair-views", "install_views", is_flag=True,
              help="Create the dbtune_monitor views for psql and Grafana, or write them again (after a server "
                   "upgrade, or once pg_stat_statements is preloaded). The report itself needs none.")
@connection_options
@fleet_options("report")
def report(names: tuple[str, ...], fmt: str, limit: int, slow_ms: float, min_table_mb: float, min_index_mb: float,
           dead_pct: float, bloat_pct: float, bloat_min_mb: float, exact: bool, fail_on: str | None,
           install_views: bool, database_url: str | None) -> None:
    """Slow queries, index usage, bloat, missing, unused, duplicate and invalid indexes, and a health grade."""
    from ..monitoring import render as rendering
    from ..monitoring import report as r

    out = writer()
    target = target_of(database_url)
    if install_views:
        written = r.install_views(target)
        click.echo(f"monitoring views written in dbtune_monitor: {', '.join(written)}", err=True)
        if not names:
            return
    thresholds = r.Thresholds(slow_mean_ms=slow_ms, min_table_mb=min_table_mb, min_index_mb=min_index_mb,
                              dead_pct=dead_pct, bloat_pct=bloat_pct, bloat_min_mb=bloat_min_mb, limit=limit)
    result = r.report(target, list(names), thresholds, exact=exact)
    rendering.render(result, out, fmt)
    worst = result.worst()
    if fail_on and worst and (fail_on == "warn" or worst == "crit"):
        raise click.exceptions.Exit(EXIT_FAILED)


@click.group(epilog="""\b
Examples:
  dbtune config render --memory 16GB --cpus 8 --storage ssd --workload web
  dbtune config render --output /etc/postgresql/18/main/conf.d/dbtune.conf
  dbtune config diff --memory 64GB --cpus 32 --fail-on-drift
""")
def config() -> None:
    """postgresql.conf tuned for a machine (pgtune's formulas), and a live server's drift from it."""


@config.command("render")
@machine_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the file here instead of printing it.")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
def config_render(memory: str | None, cpus: int | None, storage: str, workload: str, connections: int | None,
                  pg_version: int | None, output: Path | None, force: bool) -> None:
    """Print postgresql.conf.template filled in for the machine."""
    from ..tuning import pgconf

    shape = pgconf.machine(memory, cpus, storage, workload, connections, pg_version)
    text = pgconf.render(shape)
    if output is None:
        click.echo(text, nl=False)
        return
    pgconf.write(output, text, force=force)
    click.echo(f"wrote {output} for {shape.describe()}", err=True)


@config.command("diff")
@machine_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when any setting differs from the recommendation.")
@click.option("--emit-alter-system", is_flag=True,
              help="Print the ALTER SYSTEM statements that would close the drift (never runs them).")
@connection_options
def config_diff(memory: str | None, cpus: int | None, storage: str, workload: str, connections: int | None,
                pg_version: int | None, fmt: str, fail_on_drift: bool, emit_alter_system: bool,
                database_url: str | None) -> None:
    """Compare a running server's settings with the recommended ones, in each setting's unit."""
    from ..tuning import drift
    from . import render

    report = drift.drift(target_of(database_url), memory, cpus, storage, workload, connections, pg_version)
    render.config_diff(report, writer(), fmt, emit_alter_system)
    if fail_on_drift and report.drifted:
        raise click.exceptions.Exit(EXIT_FAILED)
