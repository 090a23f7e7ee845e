"""The steps of `dbtune check` after the server: revisions, lint, upgrade, verify, round trip, views.

Each takes the Step it fills in with its cases and summary; a failure is a failed
case, never an exception, unless the step cannot go on at all.
"""

from __future__ import annotations

import ast
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..core.errors import ConfigError, DbtuneError
from ..core.output import Output
from ..core.settings import Migrations, Target
from .results import Case, CheckOptions, Step

SEED_SCALE = 0.01  # 10,000 orders: seconds to load


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

    from ..migration.config import alembic_config
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
    from ..migration.config import RunOptions
    from ..online import OnlineOptions

    return RunOptions(online=OnlineOptions(out=_silent(), max_wait=120))


def _silent() -> Output:
    """A writer for the steps' own runs: check reports their outcome, not their lines."""
    return Output(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True, show_progress=False)


def upgrade_step(step: Step, target: Target, migrations: Migrations) -> bool:
    from ..core import db
    from ..migration.verbs import apply
    from ..monitoring.views import invalid_indexes_sql

    try:
        apply(target, migrations, "head", options=_quiet_options())
    except DbtuneError as exc:
        step.fail("upgrade to head", str(exc))
        return False
    with db.connect(target, purpose="check") as conn:
        invalid = [r[0] for r in conn.execute(
            f"SELECT format('%I.%I', schema, index_name) FROM ({invalid_indexes_sql()}) AS invalid")]
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
            seed(conn, SEED_SCALE, out=_silent())
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
    from ..migration.verbs import apply, rollback
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

    quiet = _silent()
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
