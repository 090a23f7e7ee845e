"""The dry run: Alembic's offline SQL from the revision the database is at, each statement annotated.

Each statement says the lock it takes, where it runs (the migration's
transaction, autocommit, or an online build's own connection) and the session
settings in force; one that PostgreSQL refuses inside a transaction block,
outside ``autocommit_block()``, is marked as the error the apply would meet.
"""

from __future__ import annotations

import io

from alembic import command

from ..core.settings import Migrations
from ..sqltext.statements import must_run_outside_transaction, split_sql
from .config import RunOptions, alembic_config
from .failures import errors
from .intercept import capped_lock_timeout
from .results import Outcome
from .revisions import pending_to
from .run import Run


def dry_run_outcome(run: Run, migrations: Migrations, options: RunOptions, direction: str) -> Outcome:
    """Alembic's offline SQL from the current revision "as of now", each statement annotated."""
    current = run.before or []
    destination = run.destination
    if destination is None or (direction == "upgrade" and not pending_to(run.script, current, destination)):
        return Outcome(current, current, sql=f"-- as of now the database is at {', '.join(current) or 'base'}: "
                                             "nothing to do\n")
    buffer = io.StringIO()
    config = alembic_config(run.bound or run.target, migrations, options, stdout=buffer)
    start = ",".join(current) if current else "base"
    span = destination if direction == "upgrade" and start == "base" else f"{start}:{destination}"
    with errors(run):
        getattr(command, direction)(config, span, sql=True)
    header = f"-- as of now the database is at {', '.join(current) or 'base'}; {direction} to {destination}\n"
    text, failing = annotate(buffer.getvalue(), options)
    return Outcome(current, current, sql=header + text, errors=failing)


def annotate(script_text: str, options: RunOptions) -> tuple[str, int]:
    """Each statement with the lock it takes, where it runs and the session settings in force.

    Returns the annotated script and how many statements would fail as written
    (a statement PostgreSQL refuses inside a transaction block, outside
    ``autocommit_block()``): the dry run and the apply agree on those.
    """
    from ..sqltext.lockmodes import describe as lock_label  # pglast's tables: the dry run's, not every run's

    lines: list[str] = []
    failing = 0
    in_tx = False
    ran_in_tx = False  # a statement has run since BEGIN: the server has a transaction open
    cap_ms = int(options.online.lock_timeout_s * 1000)
    lock_timeout = f"lock_timeout={cap_ms / 1000:g}s"
    for statement in split_sql(script_text):
        body = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--")).strip()
        lines.extend(line for line in statement.splitlines() if line.lstrip().startswith("--"))
        if not body:
            continue
        head = body.split(None, 1)[0].upper()
        if head in ("BEGIN", "COMMIT"):
            in_tx, ran_in_tx = head == "BEGIN", False
            lines.append(body + ";")
            continue
        if (capped := capped_lock_timeout(body, cap_ms)) is not None:
            _, asked, effective = capped
            lock_timeout = f"lock_timeout={effective / 1000:g}s" + (
                f" (the migration asks for {'0, no bound' if asked == 0 else f'{asked / 1000:g}s'}; "
                "dbtune keeps its --lock-timeout)" if asked != effective else " (the migration's own)")
        if must_run_outside_transaction(body) and ran_in_tx:
            failing += 1
            lines.append("-- ERROR: this statement cannot run inside a transaction block, so the apply would fail "
                         "here: run it inside op.get_context().autocommit_block()")
        elif must_run_outside_transaction(body):
            session = (f"own autocommit connection; lock_timeout=0, watched (--max-wait "
                       f"{options.online.max_wait if options.online.max_wait is not None else 'none'}); "
                       f"max_parallel_maintenance_workers={options.online.maintenance_workers}")
            extra = "; an INVALID index of the same name is dropped first, indisvalid confirmed after" \
                if body.upper().startswith("CREATE") else ""
            lines.append(f"-- lock: {lock_label(body)} | outside any transaction | {session}{extra}")
        else:
            where = "in transaction" if in_tx else "autocommit"
            lines.append(f"-- lock: {lock_label(body)} | {where} | {lock_timeout}, retried with backoff")
        lines.append(body + ";")
        ran_in_tx = in_tx
    return "\n".join(lines) + "\n", failing
