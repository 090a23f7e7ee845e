"""`dbtune refresh` and `maintain`: the verbs cron runs (``dbtune.maintenance``)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import connection_options, fleet_options, output_option, target_of, writer


@click.command(epilog="""\b
Examples:
  dbtune refresh                          # dbtune's materialized views
  dbtune refresh --all --jobs 2           # every materialized view in the database
  dbtune refresh daily_revenue_summary --if-older-than 1h --quiet
  dbtune refresh --status
  dbtune refresh --status --format openmetrics --output /var/lib/node_exporter/textfile/dbtune_refresh.prom
  dbtune refresh --setup --grant cron_role   # once, as the database owner: the refresh history
\b
From cron (quiet on success; exit 1 if a view failed, 4 if another run held them all):
  */15 * * * *  dbtune refresh --quiet --if-older-than 10m
""")
@click.argument("views", nargs=-1, metavar="[VIEW]...")
@click.option("--all", "all_views", is_flag=True, help="Every materialized view in the database, a team's own too.")
@click.option("--no-blocking", is_flag=True,
              help="Fail a view that can only be refreshed in a way that blocks its readers, instead of doing it.")
@click.option("--if-older-than", metavar="AGE", help="Skip views refreshed more recently (90s, 30m, 1h, 2d).")
@click.option("--timeout", type=click.FloatRange(min=0.1), metavar="SECONDS", help="Cancel a refresh that runs longer.")
@click.option("--jobs", "-j", type=click.IntRange(1, 32), default=1, show_default=True,
              help="Refreshes at once, of views that read no table in common.")
@click.option("--keep", type=click.IntRange(1), default=100, show_default=True,
              help="History rows kept per view in dbtune.refresh_history.")
@click.option("--status", "show_status", is_flag=True, help="Show each view's last refresh instead of refreshing.")
@click.option("--setup", is_flag=True, help="Create the refresh history (dbtune.refresh_history) once, as the "
              "database owner; refreshes run without it, unrecorded.")
@click.option("--grant", multiple=True, metavar="ROLE", help="With --setup: let ROLE (a cron role) record refreshes.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "openmetrics"]), default="table",
              show_default=True, help="openmetrics: with --status.")
@output_option
@click.option("--quiet", "-q", is_flag=True, help="Nothing on success; warnings and errors on stderr.")
@connection_options
@fleet_options("refresh")
def refresh(views: tuple[str, ...], all_views: bool, no_blocking: bool, if_older_than: str | None,
            timeout: float | None, jobs: int, keep: int, show_status: bool, setup: bool, grant: tuple[str, ...],
            fmt: str, output: Path | None, quiet: bool, database_url: str | None) -> None:
    """Refresh materialized views, CONCURRENTLY whenever possible, from cron or by hand."""
    from ..core.errors import ConfigError, DbtuneError, LockBusy
    from ..maintenance import refresh as r
    from . import render

    out = writer(quiet)
    target = target_of(database_url)
    if grant and not setup:
        raise ConfigError("--grant goes with --setup")
    if setup:
        from ..maintenance.history import setup as setup_history

        for line in setup_history(target, list(grant)):
            out.info(line)
        return
    if (fmt == "openmetrics" or output) and not show_status:
        raise ConfigError("--format openmetrics and --output go with --status")
    if show_status:
        from ..publish import files

        with files.destination(output, out) as sink:
            rows = r.status(target, list(views) or None, all_views=all_views, out=out)
            if fmt == "openmetrics":
                from ..publish import emit  # the page's and the metrics' modules: only for what cron scrapes

                emit.refresh_status(rows, target, sink)
            else:
                render.refresh_status(rows, sink, fmt)
        return
    options = r.Options(no_blocking=no_blocking, if_older_than_s=r.parse_age(if_older_than) if if_older_than
                        else None, timeout_s=timeout, jobs=jobs, keep=keep)
    results = r.refresh(target, list(views) or None, all_views=all_views, options=options, out=out)
    if fmt == "json":
        out.json([r.as_dict(x) for x in results])
    failed = [x for x in results if x.outcome == "failed"]
    if failed:
        raise DbtuneError(f"{len(failed)} of {len(results)} view(s) not refreshed: "
                          + "; ".join(f"{x.view}: {x.message}" for x in failed))
    if results and all(x.locked for x in results):
        raise LockBusy("every view is being refreshed by another run; nothing done")


@click.command(epilog="""\b
Examples:
  dbtune maintain --dry-run            # what would be done now, and why
  dbtune maintain --quiet              # from cron: nothing on success
  dbtune maintain --only reindex --bloat-pct 40 --bloat-min-mb 500 --max-wait 300
""")
@click.option("--dry-run", is_flag=True, help="List each step and its reason; change nothing.")
@click.option("--only", type=click.Choice(["analyze", "reindex"]), help="Run one kind of step.")
@click.option("--stale-fraction", type=click.FloatRange(0, 1, min_open=True), default=0.1, show_default=True,
              help="ANALYZE a table once this fraction of its rows changed since the last analyze.")
@click.option("--bloat-pct", type=click.FloatRange(0, 100), default=30.0, show_default=True,
              help="Rebuild a btree index whose estimated bloat is at least this share of it...")
@click.option("--bloat-min-mb", type=click.FloatRange(min=0), default=100.0, show_default=True,
              help="...and at least this large.")
@click.option("--max-wait", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Give up a rebuild that waits this long on another session (default: wait).")
@click.option("--lock-timeout", type=click.FloatRange(min=0.05), default=2.0, show_default=True, metavar="SECONDS",
              help="Longest wait for ANALYZE's lock; a table that stays locked is left to autovacuum.")
@click.option("--no-progress", is_flag=True, help="No progress lines for index rebuilds.")
@click.option("--quiet", "-q", is_flag=True, help="Nothing on success; warnings and errors on stderr.")
@connection_options
def maintain(dry_run: bool, only: str | None, stale_fraction: float, bloat_pct: float, bloat_min_mb: float,
             max_wait: float | None, lock_timeout: float, no_progress: bool, quiet: bool,
             database_url: str | None) -> None:
    """ANALYZE stale tables, rebuild INVALID and bloated indexes concurrently; never VACUUM FULL or CLUSTER."""
    from ..maintenance import maintain as m
    from ..online import OnlineOptions
    from . import render

    out = writer(quiet, no_progress)
    options = m.Options(only=only, stale_fraction=stale_fraction, bloat_pct=bloat_pct,
                        bloat_min_bytes=int(bloat_min_mb * 1024 * 1024),
                        online=OnlineOptions(max_wait=max_wait, lock_timeout_s=lock_timeout, out=out))
    target = target_of(database_url)
    if dry_run:
        render.maintain_plan(m.plan(target, options), out)
        return
    m.maintain(target, options, out)
