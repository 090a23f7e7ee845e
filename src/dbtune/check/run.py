"""`dbtune check`: the seven steps in order, each reported as it runs, on a database made for the run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import psycopg

from ..core.errors import DbtuneError
from ..core.output import Output
from ..core.settings import Migrations, Target
from .project import env_py_reaches, pointing_at, script_directory
from .results import STEPS, Case, CheckOptions, CheckReport, Step
from .server import scratch_database
from .steps import lint_step, newer_than, revisions_step, round_trip_step, upgrade_step, verify_step, views_step


def check(migrations: Migrations, options: CheckOptions | None = None, out: Output | None = None) -> CheckReport:
    """Every step of `dbtune check` on ``migrations``, reported on ``out`` as it runs; the CheckReport."""
    options = options or CheckOptions()
    out = out or Output()
    report = CheckReport(migrations=str(migrations.ini or migrations.script_location))
    with contextlib.ExitStack() as stack:
        target = _server(stack, migrations, options, report, out)
        _steps(target, migrations, options, report, out)
    return report


def _server(stack: contextlib.ExitStack, migrations: Migrations, options: CheckOptions, report: CheckReport,
            out: Output) -> Target:
    """The first step: the scratch database, env.py pointed at it and proved to reach it."""
    server_step = Step("server")
    out.info(f"[1/{len(STEPS)}] server ...")
    started = time.monotonic()
    # No server is not a finding about the migrations: its error (exit 2 or 3) ends the run.
    target = stack.enter_context(scratch_database(options, report, out))
    stack.enter_context(pointing_at(target, options.url_env))
    env_py_reaches(target, migrations)
    server_step.summary = report.server
    server_step.cases.append(Case("server", True))
    server_step.seconds = round(time.monotonic() - started, 2)
    report.steps.append(server_step)
    out.info(f"      ok: {report.server}")
    return target


def _steps(target: Target, migrations: Migrations, options: CheckOptions, report: CheckReport, out: Output) -> None:
    def run(name: str, body: Callable[[Step], object]) -> Step:
        return _run_step(report, out, name, body)

    script = script_directory(target, migrations)
    newer_than(script, [], options.since)  # an unknown --since is a usage error before any step
    revisions: list[Any] = []
    revisions_ok = run("revisions", lambda s: revisions.extend(revisions_step(s, script))).status == "passed"
    linted = newer_than(script, revisions, options.since)
    run("lint", lambda s: lint_step(s, target, migrations, revisions, options, linted))
    if not revisions_ok and len(script.get_heads()) != 1:
        _skip_rest(report, "the migrations have more than one head")
        return
    upgraded = run("upgrade", lambda s: upgrade_step(s, target, migrations)).status == "passed"
    if not upgraded:
        _skip_rest(report, "the upgrade failed")
        return
    run("verify", lambda s: verify_step(s, target, migrations, options.check_dirs))
    run("round trip", lambda s: round_trip_step(s, target, migrations, revisions, out.info))
    run("views", lambda s: views_step(s, target))


def _run_step(report: CheckReport, out: Output, name: str, body: Callable[[Step], object]) -> Step:
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


def _skip_rest(report: CheckReport, reason: str) -> None:
    """The steps that cannot run after a failure, skipped with its reason."""
    for name in STEPS[len(report.steps):]:
        report.steps.append(Step(name, "skipped", f"not run: {reason}"))
