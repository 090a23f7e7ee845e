"""`dbtune check`: prove a migrations directory safe against a throwaway PostgreSQL, for CI.

The steps, in order, each reported as it runs:

1. server: a throwaway PostgreSQL (the embedded one, local binaries), or a
   scratch database on a server given by URL, dropped afterwards even on failure;
2. revisions: one head, and a downgrade that does something wherever the upgrade does;
3. lint: the rendered SQL of every revision (lint.py: squawk plus dbtune's rules);
4. upgrade: base to head through dbtune's online engine, no INVALID index after;
5. verify: the project's checks with --can-use;
6. round trip: each revision downgraded and upgraded again, the schema after the
   downgrade compared with the schema before the upgrade (schema.py);
7. views: every materialized view refreshes, every monitoring view answers.

The scratch database reaches env.py as ``sqlalchemy.url`` and as ``DATABASE_URL``
(and ``DBTUNE_DATABASE_URL``); a project whose env.py reads other variables
(the application's ``POSTGRES_*`` settings) names them with ``--url-env``.
Before any step, dbtune makes sure env.py connects to the scratch database and
nowhere else.

A step passes, fails, or is skipped with its reason; a skipped step (or a
revision that could not be linted) is never counted as passed.  The library
function returns a CheckReport; rendering (text, JSON, JUnit) is separate, in
report.py.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..core.errors import ConfigError, DbtuneError
from ..core.output import Output
from ..core.settings import Migrations, Target

STEPS = ("server", "revisions", "lint", "upgrade", "verify", "round trip", "views")
SEED_SCALE = 0.01  # 10,000 orders: seconds to load
REASON_WIDTH = 160  # the longest reason shown on a step's own line; the whole one follows below it


@dataclass
class Case:
    """One JUnit test case: a revision, a check, a view.  A skipped case is not passed."""

    name: str
    passed: bool
    message: str = ""
    skipped: bool = False


@dataclass
class Step:
    name: str
    status: str = "passed"  # passed, failed, skipped
    summary: str = ""
    cases: list[Case] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, case: str, message: str) -> None:
        self.cases.append(Case(case, False, message))
        self.status = "failed"

    def skip(self, case: str, message: str) -> None:
        self.cases.append(Case(case, False, message, skipped=True))

    @property
    def failures(self) -> list[Case]:
        return [c for c in self.cases if not c.passed and not c.skipped]

    @property
    def reason(self) -> str:
        """Why the step failed or was skipped, in one line: its first failure, or its summary."""
        if self.status == "failed" and self.failures:
            first = self.failures[0]
            line = f"{first.name}: {first.message.splitlines()[0] if first.message else 'failed'}"
            return line if len(line) <= REASON_WIDTH else line[:REASON_WIDTH - 3] + "..."
        return self.summary


@dataclass
class CheckReport:
    migrations: str
    server: str = ""
    steps: list[Step] = field(default_factory=list)
    kept_dsn: str | None = None

    @property
    def failed(self) -> bool:
        """A step failed (exit 1).  A skipped step is no failure, and no pass either."""
        return any(s.status == "failed" for s in self.steps) or len(self.steps) != len(STEPS)

    @property
    def skipped(self) -> list[Step]:
        return [s for s in self.steps if s.status == "skipped"]

    @property
    def ok(self) -> bool:
        """Every step ran and passed."""
        return not self.failed and not self.skipped

    @property
    def first_failure(self) -> Step | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "result": "failed" if self.failed else "passed" if self.ok else "incomplete",
                "migrations": self.migrations, "server": self.server,
                "failed_step": self.first_failure.name if self.first_failure else None,
                "skipped_steps": [{"name": s.name, "reason": s.summary} for s in self.skipped],
                "steps": [asdict(s) for s in self.steps]}


@dataclass
class CheckOptions:
    server: str = "embedded"  # embedded or system
    pg_bin: Path | None = None
    database_url: Target | None = None
    check_dirs: list[Path] | None = None
    ignore: set[str] = field(default_factory=set)
    keep: bool = False
    # Environment variables env.py reads its database from: name -> "url", or one part of it.
    url_env: dict[str, str] = field(default_factory=dict)
    since: str | None = None  # lint only the revisions after this one
    fail_on_compatibility: bool = False  # squawk's client-compatibility rules fail instead of advising


# -- the server --------------------------------------------------------------------------------

@contextlib.contextmanager
def _database(options: CheckOptions, report: CheckReport, out: Output) -> Iterator[Target]:
    """A database to check on, removed afterwards (unless --keep)."""
    from ..core import db
    from ..servers.throwaway import find_bindir, throwaway_server

    if options.database_url is not None:
        admin = options.database_url
        name = f"dbtune_check_{secrets.token_hex(4)}"
        with db.connect(admin, purpose="check") as conn:
            report.server = f"PostgreSQL {conn.info.parameter_status('server_version')} at {admin.masked}"
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        scratch = Target(admin.url.set(database=name), "scratch database")
        try:
            yield scratch
        finally:
            if options.keep:
                # The password is the user's own server's: masked, as every other line masks it.
                report.kept_dsn = scratch.masked
            else:
                with db.connect(admin, purpose="check") as conn:
                    force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force))
        return
    bindir = options.pg_bin if options.pg_bin is not None else find_bindir(options.server)
    if not (bindir / "initdb").exists() or not (bindir / "postgres").exists():
        raise ConfigError(f"{bindir} has no PostgreSQL server binaries (initdb, postgres)")
    with throwaway_server(bindir=bindir, keep=options.keep) as server:
        with psycopg.connect(server.dsn()) as conn:
            report.server = f"PostgreSQL {conn.info.parameter_status('server_version')} (throwaway)"
        try:
            yield Target.parse(server.dsn(), "throwaway server")
        finally:
            if options.keep and server.is_running():
                report.kept_dsn = server.dsn()


URL_PARTS = ("url", "host", "port", "user", "password", "dbname")
_ALWAYS = {"DATABASE_URL": "url", "DBTUNE_DATABASE_URL": "url"}


def parse_url_env(items: list[str] | tuple[str, ...] | dict[str, str]) -> dict[str, str]:
    """``NAME`` (the whole URL) or ``NAME=PART`` (host, port, user, password, dbname), as --url-env takes them;
    ``[tool.dbtune] check.url-env`` may also be a table of NAME = PART."""
    if isinstance(items, dict):
        items = [f"{name}={part}" for name, part in items.items()]
    found: dict[str, str] = {}
    for item in items:
        name, _, part = item.partition("=")
        name, part = name.strip(), (part.strip() or "url")
        if not name.replace("_", "").isalnum() or name[0].isdigit():
            raise ConfigError(f"--url-env {item}: {name!r} is not an environment variable name")
        if part not in URL_PARTS:
            raise ConfigError(f"--url-env {item}: {part!r} is not one of {', '.join(URL_PARTS)}")
        found[name] = part
    return found


def _env_value(target: Target, part: str, current: str | None) -> str:
    url = target.url
    if part == "url":
        # Keep the driver the variable names now (an application on asyncpg keeps asyncpg).
        from sqlalchemy.engine import make_url

        try:
            driver = make_url(current).drivername if current else ""
        except Exception:  # noqa: BLE001 - any unparsable value: use dbtune's own driver
            driver = ""
        if driver.startswith("postgresql"):
            url = url.set(drivername=driver)
        return url.render_as_string(hide_password=False)
    value = {"host": url.host, "port": url.port, "user": url.username, "password": url.password,
             "dbname": url.database}[part]
    return "" if value is None else str(value)


@contextlib.contextmanager
def _pointing_at(target: Target, url_env: dict[str, str]) -> Iterator[None]:
    """env.py files read DATABASE_URL and friends: during the check they name the scratch database."""
    wanted = {**_ALWAYS, **url_env}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update({k: _env_value(target, part, saved[k]) for k, part in wanted.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Reached(Exception):
    """Raised from inside env.py's migration context: where its connection went (nothing is changed)."""

    def __init__(self, identity: Any, where: str) -> None:
        super().__init__(where)
        self.identity, self.where = identity, where


def _env_py_reaches(target: Target, migrations: Migrations) -> None:
    """Refuse in one line, before any step, when env.py connects elsewhere than the scratch database.

    env.py runs once with a migration function that reports its connection and aborts,
    so its transaction rolls back and no database is touched.  An env.py that fails in
    its own way is left to the steps, which report it as they report every failure.
    """
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy.exc import OperationalError

    from ..core import db
    from ..migration import drivers
    from ..migration.runner import alembic_config

    def reached(heads: Any, context: Any) -> list[Any]:
        raw = drivers.dbapi(context.connection)
        where = Target.from_engine_url(context.connection.engine.url, "env.py").masked
        raise _Reached(drivers.identity(raw), where)

    config = alembic_config(target, migrations)
    try:
        script = _script(target, migrations)
        with EnvironmentContext(config, script, fn=reached):
            script.run_env()
    except _Reached as found:
        with db.connect(target, purpose="check") as conn:
            ours = drivers.identity(conn)
        if not ours.same_database(found.identity):
            raise _elsewhere(f"env.py connects to {found.where} ({found.identity.describe()}), not to the scratch "
                             f"database dbtune made ({ours.describe()})") from None
    except OperationalError as exc:
        # The scratch database was just reached with the same URL: env.py is going somewhere else.
        with db.connect(target, purpose="check") as conn:
            ours = drivers.identity(conn)
        reason = target.scrub(str(exc.orig or exc).splitlines()[0])
        raise _elsewhere(f"env.py does not connect to the scratch database dbtune made ({ours.describe()}): it "
                         f"tried another one and failed ({reason})") from None
    except Exception:  # noqa: BLE001 - env.py's own failure: the steps report it
        return


def _elsewhere(what: str) -> ConfigError:
    return ConfigError(
        f"{what}: nothing was checked. "
        "Name the variables env.py builds its URL from: --url-env NAME for a URL, --url-env NAME=PART for "
        "host, port, user, password, dbname (or [tool.dbtune] check.url-env)")


# -- the steps ----------------------------------------------------------------------------------

def _script(target: Target, migrations: Migrations) -> Any:
    from alembic.script import ScriptDirectory

    from ..migration.runner import alembic_config

    return ScriptDirectory.from_config(alembic_config(target, migrations))


def _empty(function: ast.FunctionDef | None) -> bool:
    """A function whose body does nothing: pass, ..., a docstring."""
    if function is None:
        return True
    for node in function.body:
        if isinstance(node, ast.Pass):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        return False
    return True


def revisions_step(step: Step, script: Any) -> list[Any]:
    heads = script.get_heads()
    if not heads:  # a project with no revisions yet: nothing to check, and nothing wrong
        step.cases.append(Case("single head", True))
        step.summary = "no revisions yet"
        return []
    if len(heads) != 1:
        step.fail("single head", f"{len(heads)} heads ({', '.join(sorted(heads))}): merge them "
                  "(alembic merge) so that every database reaches one head")
    else:
        step.cases.append(Case("single head", True))
    ordered = list(reversed(list(script.walk_revisions())))
    for rev in ordered:
        path = Path(rev.path)
        text = path.read_text(errors="replace")
        tree = ast.parse(text)
        functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        if not _empty(functions.get("upgrade")) and _empty(functions.get("downgrade")):
            if "dbtune: ignore[empty-downgrade]" in text:
                step.notes.append(f"{rev.revision}: empty downgrade, silenced in {path.name}")
                continue
            step.fail(rev.revision, f"{path.name}: the upgrade does something but the downgrade does nothing "
                      "(write it, or mark the revision with # dbtune: ignore[empty-downgrade])")
        else:
            step.cases.append(Case(rev.revision, True))
    step.summary = f"{len(heads)} head, {len(ordered)} revisions" if len(heads) == 1 else \
        f"{len(heads)} heads"
    return ordered


def newer_than(script: Any, revisions: list[Any], since: str | None) -> list[Any]:
    """The revisions after ``since`` (all of them without it): the ones the lint step reads."""
    if since is None:
        return revisions
    from alembic.util import CommandError

    try:
        base = script.get_revision(since)
    except CommandError as exc:
        raise ConfigError(f"--since {since}: {exc}") from None
    if base is None:
        return revisions
    older = {r.revision for r in script.iterate_revisions(base.revision, "base")}
    return [r for r in revisions if r.revision not in older]


def lint_step(step: Step, target: Target, migrations: Migrations, revisions: list[Any],
              options: CheckOptions, linted: list[Any]) -> None:
    from alembic import command

    from ..migration.runner import alembic_config
    from . import lint

    def render(span: str) -> str:
        buffer = io.StringIO()
        command.upgrade(alembic_config(target, migrations, stdout=buffer), span, sql=True)
        return buffer.getvalue()

    unrendered: dict[str, str] = {}
    older = [r for r in revisions if r not in linted]
    try:
        text = render(f"{options.since}:head" if older else "head") if linted else ""
    except Exception:  # noqa: BLE001 - a project's offline mode may fail in its own way
        # Usually a data migration that reads the database (op.get_bind().execute(...).fetchall()),
        # which --sql cannot do: render each revision alone, lint those that render, and name the rest.
        parts = []
        for rev in linted:
            down = rev.down_revision
            if isinstance(down, (tuple, list)):
                unrendered[rev.revision] = "a merge point cannot be rendered alone"
                continue
            try:
                parts.append(render(f"{down}:{rev.revision}" if down else rev.revision))
            except Exception as exc:  # noqa: BLE001
                unrendered[rev.revision] = f"alembic upgrade --sql failed: {type(exc).__name__}: {exc}"
        text = "".join(parts)
    rendered = lint.split_rendered(text)
    findings = lint.lint(rendered, options.ignore, lint.revision_ignores({r.revision: Path(r.path) for r in linted}),
                         fail_on_compatibility=options.fail_on_compatibility)
    by_revision: dict[str, list[lint.Finding]] = {}
    for f in findings:
        by_revision.setdefault(f.revision, []).append(f)
    for rev in older:
        # Not linted is not passed: JUnit shows these as skipped.
        step.skip(rev.revision, f"not linted: {options.since} and older are not linted (--since)")
    for rev in linted:
        if rev.revision in unrendered:
            # Not a failure of the migrations: offline rendering is not what they are written for.
            step.notes.append(f"{rev.revision}: not linted, {unrendered[rev.revision]}")
            step.skip(rev.revision, f"not linted: {unrendered[rev.revision]}")
            continue
        errors = [f for f in by_revision.get(rev.revision, []) if f.level == "error"]
        for f in by_revision.get(rev.revision, []):
            if f.level != "error":
                step.notes.append(f"{f.revision} line {f.line}: {f.rule} ({f.source}): {f.message}")
        if errors:
            step.fail(rev.revision, "; ".join(f"line {f.line}: {f.rule} ({f.source}): {f.message} [{f.statement}]"
                                              for f in errors))
        else:
            step.cases.append(Case(rev.revision, True))
    errors = sum(1 for f in findings if f.level == "error")
    step.summary = f"{errors} finding{'s' if errors != 1 else ''}, {len(findings) - errors} advice" + (
        f", {_revisions(len(unrendered))} not renderable offline" if unrendered else "") + (
        f", {_revisions(len(older))} not linted ({options.since} and older, --since)" if older else "")


def _revisions(n: int) -> str:
    return f"{n} revision{'s' if n != 1 else ''}"


def _quiet_options() -> Any:
    from ..migration.runner import RunOptions
    from ..online.engine import OnlineOptions

    return RunOptions(online=OnlineOptions(out=Output(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True,
                                                      show_progress=False), max_wait=120))


def upgrade_step(step: Step, target: Target, migrations: Migrations) -> bool:
    from ..core import db
    from ..migration.runner import apply

    try:
        apply(target, migrations, "head", options=_quiet_options())
    except DbtuneError as exc:
        step.fail("upgrade to head", str(exc))
        return False
    with db.connect(target, purpose="check") as conn:
        invalid = [r[0] for r in conn.execute(
            "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE NOT i.indisvalid")]
    if invalid:
        step.fail("no INVALID index", f"INVALID after the upgrade: {', '.join(invalid)}")
        return False
    step.cases += [Case("upgrade to head", True), Case("no INVALID index", True)]
    step.summary = "base to head, no INVALID index"
    return True


def verify_step(step: Step, target: Target, migrations: Migrations, dirs: list[Path] | None) -> None:
    from ..verify import verify
    from ..verify.checks import default_check_dirs

    if dirs is None:
        if not migrations.bundled:
            step.status, step.summary = "skipped", "no checks declared (--checks, or [tool.dbtune] checks)"
            return
        dirs = default_check_dirs()
    if migrations.bundled:
        # On empty tables every index costs the same and the planner picks any; a few
        # thousand rows of the reference data (and their statistics) make the choice real.
        from ..core import db
        from ..seed import seed

        with db.connect(target, purpose="check", autocommit=False) as conn:
            seed(conn, SEED_SCALE, out=Output(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True))
        with db.connect(target, purpose="check") as conn:
            conn.execute("ANALYZE")
    result = verify(target, dirs, can_use=True)
    for c in result.checks:
        if c.passed:
            step.cases.append(Case(c.name, True))
        else:
            step.fail(c.name, f"{c.reason}" + (f" ({c.hint})" if c.hint else ""))
    step.summary = f"{len(result.passed)} of {len(result.checks)} checks can use their index"


def round_trip_step(step: Step, target: Target, migrations: Migrations, revisions: list[Any],
                    progress: Callable[[str], None]) -> None:
    from ..core import db
    from ..migration.runner import apply, rollback
    from .schema import differences, read

    def snapshot() -> dict[tuple[str, str], str]:
        with db.connect(target, purpose="check") as conn:
            return read(conn)

    options = _quiet_options()
    try:
        rollback(target, migrations, to="base", options=options)
    except DbtuneError as exc:
        step.fail("downgrade to base", str(exc))
        return
    for n, rev in enumerate(revisions, start=1):
        progress(f"round trip {n}/{len(revisions)}: {rev.revision}")
        before = snapshot()
        # Down exactly this revision, whatever other branches are applied: REV@-1 walks REV's
        # own branch; a merge point is undone by going down to either parent (Alembic unmerges).
        down = rev.down_revision
        back = down[0] if isinstance(down, (tuple, list)) else f"{rev.revision}@-1"
        try:
            apply(target, migrations, rev.revision, options=options)
            rollback(target, migrations, to=back, options=options)
        except DbtuneError as exc:
            step.fail(rev.revision, str(exc))
            return
        left = differences(before, snapshot())
        if left:
            # The schema is no longer what the next revisions expect: stop here.
            step.fail(rev.revision, "; ".join(f"{d} by the downgrade of {rev.revision}" for d in left))
            step.summary = f"the downgrade of {rev.revision} does not undo its upgrade"
            return
        else:
            step.cases.append(Case(rev.revision, True))
        try:
            apply(target, migrations, rev.revision, options=options)
        except DbtuneError as exc:
            step.fail(rev.revision, f"upgrade again after its downgrade: {exc}")
            return
    step.summary = f"{len(revisions)} revisions down and up again"


def views_step(step: Step, target: Target) -> None:
    from ..core import db
    from ..maintenance.refresh import Options, refresh
    from ..monitoring import views as monitoring

    quiet = Output(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True, show_progress=False)
    try:
        results = refresh(target, all_views=True, options=Options(timeout_s=300), out=quiet)
    except DbtuneError as exc:
        step.fail("refresh", str(exc))
        return
    for r in results:
        if r.outcome == "failed":
            step.fail(f"refresh {r.view}", r.message)
        else:
            step.cases.append(Case(f"refresh {r.view}", True))
    with db.connect(target, purpose="check") as conn:
        views = [r[0] for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = %s ORDER BY 1",
                                            [monitoring.SCHEMA])]
        for view in views:
            try:
                conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(monitoring.SCHEMA, view)))
                step.cases.append(Case(f"query {view}", True))
            except psycopg.Error as exc:
                step.fail(f"query {view}", str(exc).splitlines()[0])
    step.summary = f"{len(results)} materialized views refreshed, {len(views)} monitoring views answer"


# -- the run ------------------------------------------------------------------------------------

def check(migrations: Migrations, options: CheckOptions | None = None, out: Output | None = None) -> CheckReport:
    options = options or CheckOptions()
    out = out or Output()
    report = CheckReport(migrations=str(migrations.ini or migrations.script_location))

    def run(name: str, body: Callable[[Step], object]) -> Step:
        step = Step(name)
        out.info(f"[{len(report.steps) + 1}/{len(STEPS)}] {name} ...")
        started = time.monotonic()
        try:
            body(step)
        except DbtuneError as exc:
            step.fail(name, str(exc))
        except psycopg.Error as exc:
            from ..core.db import describe

            step.fail(name, describe(exc))
        step.seconds = round(time.monotonic() - started, 2)
        report.steps.append(step)
        mark = {"passed": "ok", "failed": "FAILED", "skipped": "skipped"}[step.status]
        out.info(f"      {mark}: {(step.reason if step.status == 'failed' else step.summary) or ''}".rstrip(": "))
        return step

    def skip_rest(reason: str) -> None:  # the steps that cannot run after a failure
        for name in STEPS[len(report.steps):]:
            report.steps.append(Step(name, "skipped", f"not run: {reason}"))

    with contextlib.ExitStack() as stack:
        server_step = Step("server")
        out.info(f"[1/{len(STEPS)}] server ...")
        started = time.monotonic()
        # No server is not a finding about the migrations: its error (exit 2 or 3) ends the run.
        target = stack.enter_context(_database(options, report, out))
        stack.enter_context(_pointing_at(target, options.url_env))
        _env_py_reaches(target, migrations)
        server_step.summary = report.server
        server_step.cases.append(Case("server", True))
        server_step.seconds = round(time.monotonic() - started, 2)
        report.steps.append(server_step)
        out.info(f"      ok: {report.server}")

        script = _script(target, migrations)
        newer_than(script, [], options.since)  # an unknown --since is a usage error before any step
        revisions: list[Any] = []
        revisions_ok = run("revisions", lambda s: revisions.extend(revisions_step(s, script))).status == "passed"
        linted = newer_than(script, revisions, options.since)
        run("lint", lambda s: lint_step(s, target, migrations, revisions, options, linted))
        if not revisions_ok and len(script.get_heads()) != 1:
            skip_rest("the migrations have more than one head")
            return report
        upgraded = run("upgrade", lambda s: upgrade_step(s, target, migrations)).status == "passed"
        if not upgraded:
            skip_rest("the upgrade failed")
            return report
        run("verify", lambda s: verify_step(s, target, migrations, options.check_dirs))
        run("round trip", lambda s: round_trip_step(s, target, migrations, revisions, out.info))
        run("views", lambda s: views_step(s, target))
    return report
