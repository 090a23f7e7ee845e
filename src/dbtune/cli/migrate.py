"""`dbtune apply`, `rollback` and `status`: the migration runner's verbs (``dbtune.migration``)."""

from __future__ import annotations

from typing import Any

import click

from .options import fleet_options, migration_options, online_options, output_option, target_of, writer


def _run_options(out: Any, jobs: int, max_wait: float | None, maintenance_workers: int, lock_timeout: float,
                 statement_timeout: float | None, wait_for_lock: bool) -> Any:
    from ..migration.config import RunOptions
    from ..online import OnlineOptions

    online = OnlineOptions(jobs=jobs, max_wait=max_wait, maintenance_workers=maintenance_workers,
                           lock_timeout_s=lock_timeout, statement_timeout_s=statement_timeout, out=out)
    return RunOptions(online=online, wait_for_lock=wait_for_lock)


@click.command(epilog="""\b
Examples:
  dbtune apply                       # everything pending, up to head
  dbtune apply --to 0003 --dry-run   # show the SQL and its locks, change nothing
  dbtune apply --jobs 2 --max-wait 60
""")
@click.option("--to", "to", default="head", show_default=True, metavar="REV", help="Revision to upgrade to.")
@online_options
@fleet_options("apply", add_format=True)
def apply(to: str, database_url: str | None, migrations: str | None, dry_run: bool, quiet: bool,
          no_progress: bool, **online: Any) -> None:
    """Upgrade the database to a revision, building indexes without blocking writes."""
    from ..core.settings import resolve_migrations
    from ..migration import verbs
    from . import render

    out = writer(quiet, no_progress)
    options = _run_options(out, **online)
    outcome = verbs.apply(target_of(database_url), resolve_migrations(migrations), to, dry_run=dry_run,
                          options=options, out=out)
    render.dry_run(outcome, out)


@click.command(epilog="""\b
Examples:
  dbtune rollback                # undo the most recent revision
  dbtune rollback --steps 2
  dbtune rollback --to base      # undo everything
""")
@click.option("--steps", type=int, metavar="N", help="Undo the N most recent revisions.")
@click.option("--to", "to", metavar="REV", help="Revision to downgrade to ('base' undoes all).")
@online_options
@fleet_options("rollback", add_format=True)
def rollback(steps: int | None, to: str | None, database_url: str | None, migrations: str | None,
             dry_run: bool, quiet: bool, no_progress: bool, **online: Any) -> None:
    """Downgrade the database; with no option, undo the most recent revision."""
    from ..core.settings import resolve_migrations
    from ..migration import verbs
    from . import render

    out = writer(quiet, no_progress)
    options = _run_options(out, **online)
    outcome = verbs.rollback(target_of(database_url), resolve_migrations(migrations), steps=steps, to=to,
                             dry_run=dry_run, options=options, out=out)
    render.dry_run(outcome, out)


@click.command(epilog="""\b
Examples:
  dbtune status
  dbtune status --format json --database-url postgresql://dba@db1/shop
  dbtune status --format openmetrics --output /var/lib/node_exporter/textfile/dbtune_status.prom
""")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "openmetrics"]), default="table",
              show_default=True)
@output_option
@migration_options
@fleet_options("status")
def status(fmt: str, output: Any, database_url: str | None, migrations: str | None) -> None:
    """Show the server version, current revision and pending revisions."""
    from ..core.settings import resolve_migrations
    from ..migration import verbs
    from ..publish import files
    from . import render

    with files.destination(output, writer()) as sink:
        result = verbs.status(target_of(database_url), resolve_migrations(migrations))
        if fmt == "openmetrics":
            from ..publish import emit  # the page's and the metrics' modules: only for what cron scrapes

            emit.status(result, sink)
        else:
            render.status(result, sink, fmt)
