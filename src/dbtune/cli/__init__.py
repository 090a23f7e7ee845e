"""The `dbtune` command line: parse options, call one library function, map errors to exit codes.

One module per group of verbs (``migrate``: apply, rollback, status; ``cron``: refresh,
maintain; ``inspection``: verify, report, config; ``tools``: check, seed, sandbox), the
options they share in ``options`` (with the fleet's: one verb over many databases), and
what the commands print in ``render``.  Heavy imports (SQLAlchemy, Alembic, psycopg)
happen inside the commands so that `dbtune --help` stays fast.  May import every other
package of dbtune; nothing imports it.
"""

from __future__ import annotations

import os
from typing import Any

import click

from ..core.errors import EXIT_BLOCKED, EXIT_BUSY, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, DbtuneError
from . import cron, inspection, migrate, tools

EXIT_CODES = f"""\b
Exit codes:
  0  success
  {EXIT_FAILED}  the operation failed (a migration, a check)
  {EXIT_USAGE}  bad usage or configuration (nothing was changed)
  {EXIT_UNREACHABLE}  the database could not be reached or refused the login
  {EXIT_BUSY}  another dbtune run holds this database's lock (try again, or --wait)
  {EXIT_BLOCKED}  an index build waited past --max-wait on another session
"""


class DbtuneGroup(click.Group):
    """Prints a DbtuneError as one line on stderr and exits with its code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DbtuneError as exc:
            if _debug(ctx):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted: the database stays at its last completed revision; an index build "
                       "cut short leaves an INVALID index that the next dbtune apply repairs", err=True)
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: one line, the traceback with --debug
            if _debug(ctx):
                raise
            from ..core.settings import scrub

            click.echo(f"error: unexpected {type(exc).__name__}: {scrub(str(exc)).splitlines()[0] if str(exc) else ''}"
                       " (run again with --debug for the traceback, and report it)", err=True)
            ctx.exit(EXIT_FAILED)


def _debug(ctx: click.Context) -> bool:
    return bool(os.environ.get("DBTUNE_DEBUG") or (ctx.obj or {}).get("debug"))


@click.group(cls=DbtuneGroup, epilog=EXIT_CODES)
@click.version_option(package_name="dbtune")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error (also DBTUNE_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Put PostgreSQL performance work into production safely.

    \b
    Connection: --database-url, else DBTUNE_DATABASE_URL, else DATABASE_URL;
    with none, apply/rollback/status use the database the project's env.py
    connects to (other commands: libpq's PGHOST/PGPORT/PGUSER/PGDATABASE).
    Migrations, looked up as alembic does: --migrations (or DBTUNE_MIGRATIONS),
    else [tool.dbtune] migrations in pyproject.toml, else ALEMBIC_CONFIG,
    else ./alembic.ini.  `--migrations bundled` runs dbtune's reference migrations.
    """
    ctx.obj = {"debug": debug}


for _command in (migrate.apply, migrate.rollback, migrate.status, cron.refresh, cron.maintain, inspection.verify,
                 inspection.report, inspection.config, inspection.advise, tools.check, tools.seed, tools.sandbox):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="dbtune")
