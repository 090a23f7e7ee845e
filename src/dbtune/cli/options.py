"""Options the verbs share, and what they resolve to: the database, the migrations, the writer.

``fleet_options`` runs a verb over many databases instead (``dbtune.fleet``): each target
as its own single-database run of the same command line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _stack(options: list[Decorator], func: Callable[..., Any]) -> Callable[..., Any]:
    """Apply ``options`` so that --help lists them in the order given."""
    for option in reversed(options):
        func = option(func)
    return func


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--database-url", metavar="URL",
                        help="PostgreSQL URL (postgresql://user:pass@host:port/db) or libpq connection string.")(func)
    return func


def migration_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--migrations", metavar="PATH",
                        help="Alembic migrations directory or its alembic.ini; 'bundled' for dbtune's own.")(func)
    return connection_options(func)


def online_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return migration_options(_stack([
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
    ], func))


def machine_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return _stack([
        click.option("--memory", metavar="SIZE", help="RAM, for example 16GB (default: this machine's, cgroup-aware)."),
        click.option("--cpus", type=int, metavar="N", help="CPUs (default: the ones this process may use)."),
        click.option("--storage", default="ssd", show_default=True, metavar="ssd|hdd|san"),
        click.option("--workload", default="web", show_default=True, metavar="web|oltp|dw|desktop|mixed"),
        click.option("--connections", type=int, metavar="N", help="max_connections (default: by workload)."),
        click.option("--pg-version", type=int, metavar="MAJOR",
                     help="PostgreSQL major version, 13 to 18 (render: 18; diff: the server's)."),
    ], func)


def sandbox_dir(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                        default=Path(".dbtune") / "sandbox", show_default=True,
                        help="Where the sandbox keeps its server.")(func)


def output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                        help="Write the result to FILE atomically (a temporary file beside it, then a rename), "
                             "for node_exporter's textfile collector or a web server.")(func)


def writer(quiet: bool = False, no_progress: bool = False) -> Any:
    from ..core.output import Output

    return Output(quiet=quiet, show_progress=not no_progress)


def target_of(database_url: str | None) -> Any:
    from ..core.settings import resolve_target

    return resolve_target(database_url)


# -- one verb over many databases ----------------------------------------------------------

FLEET_PARAMS = ("targets_file", "services", "all_services", "tags", "only", "exclude", "parallel", "canary",
                "canary_first", "max_failures")


def fleet_options(verb: str, add_format: bool = False) -> Decorator:
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
        return _stack(options, wrapper)
    return decorate


def _child_args(ctx: click.Context, values: dict[str, Any]) -> list[str]:
    """The command line a single-target run of this command gets: every option given, but the fleet's own,
    the database (it reaches the child through its environment) and the summary's format."""
    args: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        if name in FLEET_PARAMS or name in ("database_url", "fmt", "output") or name not in values:
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
    from .. import fleet as f

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
    published = fmt in ("openmetrics", "html")  # built from each target's JSON (dbtune.publish.fleet)
    out = writer(quiet=fmt == "json" or published)
    args = _child_args(click.get_current_context(), values) + (["--format", "json"] if published else [])
    report = f.run(verb, targets, args, migrations=migrations,
                   parallel=fleet["parallel"], canary=canary, max_failures=fleet["max_failures"], out=out)
    if published:
        from ..publish import files
        from ..publish import fleet as publish

        with files.destination(values.get("output"), writer()) as sink:
            publish.publish(verb, report.results, targets, fmt, sink)
    else:
        f.render(report, writer(), fmt)
    if report.exit_code:
        raise click.exceptions.Exit(report.exit_code)
