"""`dbtune verify`, `report` and `config`: verbs that look at a database (or a machine) and say what they find."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.errors import EXIT_FAILED
from .options import connection_options, fleet_options, machine_options, output_option, target_of, writer


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
  dbtune report --format html --output report.html          # one self-contained page
  dbtune report --format openmetrics --output /var/lib/node_exporter/textfile/dbtune.prom
""")
@click.argument("names", nargs=-1, metavar="[REPORT]...")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown", "openmetrics", "html"]),
              default="table", show_default=True)
@output_option
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
def report(names: tuple[str, ...], fmt: str, output: Path | None, limit: int, slow_ms: float, min_table_mb: float,
           min_index_mb: float, dead_pct: float, bloat_pct: float, bloat_min_mb: float, exact: bool,
           fail_on: str | None, install_views: bool, database_url: str | None) -> None:
    """Slow queries, index usage, bloat, missing, unused, duplicate and invalid indexes, and a health grade."""
    from ..monitoring import report as r
    from ..publish import emit, files

    out = writer()
    target = target_of(database_url)
    if install_views:
        written = r.install_views(target)
        click.echo(f"monitoring views written in dbtune_monitor: {', '.join(written)}", err=True)
        if not names:
            return
    thresholds = r.Thresholds(slow_mean_ms=slow_ms, min_table_mb=min_table_mb, min_index_mb=min_index_mb,
                              dead_pct=dead_pct, bloat_pct=bloat_pct, bloat_min_mb=bloat_min_mb, limit=limit)
    with files.destination(output, out) as sink:
        result = r.report(target, list(names), thresholds, exact=exact)
        emit.report(result, target, fmt, sink)
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


@click.command(epilog="""\b
Examples:
  dbtune advise                                  # from pg_stat_statements, by total time
  dbtune advise --queries slow.sql --min-gain 0.7
  dbtune advise --write-revision --migrations db/migrations   # a revision and a check file per index
""")
@click.option("--queries", type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="FILE",
              help="Advise on the statements of this .sql file instead of pg_stat_statements.")
@click.option("--checks", type=click.Path(file_okay=False, exists=True, path_type=Path), metavar="DIR",
              help="Advise on the -- verify: queries of a checks directory.")
@click.option("--min-gain", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="Keep an index only when it cuts a query's plan cost by at least this share.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True,
              help="pg_stat_statements' statements to read, by total time.")
@click.option("--sample-rows", type=click.IntRange(100), default=50_000, show_default=True,
              help="Without hypopg: rows per table copied to the scratch server.")
@click.option("--no-hypopg", is_flag=True, help="Plan on a sample in a scratch server even where hypopg is there.")
@click.option("--write-revision", is_flag=True, help="Write an Alembic revision and a verify check per index.")
@click.option("--checks-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Where --write-revision puts the check files (default: checks/ in the migrations directory).")
@click.option("--migrations", metavar="PATH", help="The Alembic project --write-revision writes into.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="Only the table and warnings.")
@connection_options
def advise(queries: Path | None, checks: Path | None, min_gain: float, limit: int, sample_rows: int,
           no_hypopg: bool, write_revision: bool, checks_dir: Path | None, migrations: str | None, fmt: str,
           quiet: bool, database_url: str | None) -> None:
    """Propose the indexes the planner proves worth building, from the slow queries; never builds them."""
    from ..advise import revision, run
    from ..advise.render import render
    from ..core.errors import ConfigError
    from ..core.settings import resolve_migrations

    if queries and checks:
        raise ConfigError("give --queries or --checks, not both")
    out, target = writer(quiet=quiet or fmt == "json"), target_of(database_url)
    advice = run.advise(target, queries=queries, checks=checks, min_gain=min_gain, limit=limit,
                        sample_rows=sample_rows, use_hypopg=not no_hypopg, out=out)
    render(advice, out, fmt)
    if write_revision:
        written = revision.write(advice, target, resolve_migrations(migrations), checks_dir)
        click.echo(f"wrote revision {written.revision}: {written.path}", err=True)
        for path in written.checks:
            click.echo(f"wrote check {path}", err=True)
