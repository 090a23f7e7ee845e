"""The verbs that move a database between revisions: apply, rollback, status.

Each is one pass (or, after a lock_timeout, a few) through the project's env.py
(see run.py) with a plan of its own: status reads and changes nothing, a dry
run reads the current revision and prints what would run, apply and rollback
work out their destination under the run's lock and run Alembic's own steps.
A short ``lock_timeout`` with retries never repeats what committed, and the
tables that got new indexes are analyzed once at the end, even after a failure.
"""

from __future__ import annotations

from typing import Any

from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError

from ..core import db
from ..core.errors import ConfigError, MigrationFailed
from ..core.output import Output
from ..core.retry import hit_lock_timeout, retry
from ..core.settings import Migrations, Target
from ..monitoring.views import invalid_indexes_sql
from ..online import analyze_tables
from . import revisions
from .config import RunOptions, alembic_config, script_directory
from .dryrun import dry_run_outcome
from .failures import unknown_revision
from .results import Outcome, Status
from .run import Run
from .steps import Restart

_INVALID_INDEXES = f"""
SELECT format('%I.%I on %I.%I', schema, index_name, schema, table_name)
FROM ({invalid_indexes_sql()}) AS invalid
ORDER BY 1
"""


def status(target: Target, migrations: Migrations) -> Status:
    config = alembic_config(target, migrations)
    script = script_directory(config, migrations)
    with Run(target, migrations, config, script, RunOptions(), Output(quiet=True), lambda run, heads: [],
             lock=False) as run:
        run.state.reads_only = True
        run.env()
        assert run.bound is not None
        with run.session() as conn:
            version = db.server_version(conn)
            invalid = [row[0] for row in conn.execute(_INVALID_INDEXES)]
    current = run.before or []
    try:
        pending = revisions.pending(script, current)
    except (CommandError, RevisionError) as exc:
        raise unknown_revision(run, exc) from None
    return Status(target=run.bound.masked, target_source=run.bound.source,
                  migrations=str(migrations.script_location), migrations_source=migrations.source,
                  server_version=version, current=current, heads=sorted(script.get_heads()),
                  pending=pending, invalid_indexes=invalid)


def apply(target: Target, migrations: Migrations, to: str = "head", *, dry_run: bool = False,
          options: RunOptions | None = None, out: Output | None = None) -> Outcome:
    """Upgrade to ``to`` (default: head)."""
    options = options or RunOptions()
    out = out or options.online.out
    return _move(target, migrations, "upgrade", to, dry_run=dry_run, options=options, out=out)


def rollback(target: Target, migrations: Migrations, *, steps: int | None = None, to: str | None = None,
             dry_run: bool = False, options: RunOptions | None = None, out: Output | None = None) -> Outcome:
    """Downgrade ``steps`` revisions (default 1) or to revision ``to`` (``base`` undoes all)."""
    if steps is not None and to is not None:
        raise ConfigError("give --steps or --to, not both")
    if steps is not None and steps < 1:
        raise ConfigError("--steps must be at least 1")
    options = options or RunOptions()
    out = out or options.online.out
    return _move(target, migrations, "downgrade", to, steps=steps or 1, dry_run=dry_run,
                 options=options, out=out)


def _move(target: Target, migrations: Migrations, direction: str, to: str | None, *, steps: int = 1,
          dry_run: bool, options: RunOptions, out: Output) -> Outcome:
    config = alembic_config(target, migrations, options)
    script = script_directory(config, migrations)

    def plan(run: Run, heads: tuple[str, ...]) -> list[Any]:
        # Names are resolved only here, as Alembic's own commands do: env.py may have placed
        # the versions itself (context.script.version_locations), and a dry run or a refusal
        # writes nothing (see Run.steps).
        if to is not None:
            revisions.known(script, to)
        current = sorted(heads)
        if direction == "downgrade" and not current:
            return []
        destination = run.destination = revisions.destination(script, direction, to, steps, current)
        if direction == "upgrade" and revisions.past(script, current, destination):
            raise ConfigError(f"the database is at {', '.join(current)}, past {destination}: apply never "
                              f"downgrades; `dbtune rollback --to {destination}` does. Nothing was changed")
        if direction == "upgrade" and not revisions.pending_to(script, current, destination):
            return []
        if dry_run:
            return []
        if direction == "upgrade":
            return script._upgrade_revs(destination, heads)  # what alembic's command.upgrade runs
        return script._downgrade_revs(destination, heads)

    with Run(target, migrations, config, script, options, out, plan, lock=not dry_run) as run:
        out.info(f"migrations: {migrations.script_location} ({migrations.source})")
        if dry_run:
            run.env()  # read the current revision, change nothing
            return dry_run_outcome(run, migrations, options, direction)
        options.online.analyze_queue = []
        try:
            _attempts(run)
        finally:
            options.online.lock = None
            # Each table once, after all of its new indexes, even when a later step failed.
            queued, options.online.analyze_queue = options.online.analyze_queue, None
            if run.bound is not None:
                analyze_tables(run.bound, queued, options.online)
        before = run.before or []
        if run.destination is None or (not run.tracker.ran and before == (run.versions() or before)):
            if direction == "downgrade" and not before:
                out.info("nothing to roll back: the database is at base")
            else:
                out.info(f"already at {run.destination or ', '.join(before) or 'base'}: nothing to apply")
            return Outcome(before, before)
        after = run.versions() or []
        out.info(f"database is at {', '.join(after) or 'base'}")
        return Outcome(before, after)


def _attempts(run: Run) -> None:
    """Run Alembic; after a lock_timeout, back off (exponentially, with jitter) and try again.

    Nothing committed is run twice: a revision that had committed part of itself
    (before its autocommit_block) replays only what did not commit (see intercept.Journal).
    """
    journal = run.state.journal

    def once() -> None:
        while True:
            try:
                run.env()
                return
            except Restart:  # the database moved while we queued: Alembic starts over from there
                run.before = None

    def retrying(exc: BaseException, attempt: int, delay: float) -> None:
        failed = exc.failed_revision  # type: ignore[attr-defined]
        run.out.warn(f"{failed or 'a migration'} could not get a lock within "
                     f"{run.state.effective_lock_timeout_ms / 1000:g}s; retrying in {delay:.1f}s "
                     f"(attempt {attempt} of {run.options.online.backoff.retries})"
                     + (" without the statements it has committed" if journal.partly_applied(failed) else ""))
        journal.retry(failed)
        run.tracker.running = None

    try:
        retry(once, run.options.online.backoff, retrying,
              retryable=lambda exc: isinstance(exc, MigrationFailed) and hit_lock_timeout(exc))
    except MigrationFailed as exc:
        # A lock_timeout after the last retry: say what of the revision had committed.
        if exc.sqlstate == "55P03" and journal.partly_applied(exc.failed_revision):
            exc.add_note(f"revision {exc.failed_revision} is partly applied: {journal.account(exc.failed_revision)}")
        raise
