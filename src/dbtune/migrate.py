"""The verbs that move a database between revisions: apply, rollback, status.

Any standard Alembic directory works: dbtune builds an Alembic ``Config`` for
it, hands the connection URL in (with a short ``lock_timeout`` so no statement
queues in front of the application for long), and runs Alembic's own
``command.upgrade``/``downgrade``.  Around that it adds what a DBA needs on a
busy server: one run at a time per database (an advisory lock held by an idle
autocommit session), retries with backoff when a lock is not granted in time,
concurrent index statements handed to the online engine, and errors that name
the revision and the statement.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import event
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.exc import DBAPIError

from . import db
from .errors import ConfigError, DbtuneError, MigrationFailed
from .locking import run_lock, set_lock_timeout
from .online import Engine, OnlineOptions, analyze_tables
from .ops import OPTIONS_KEY, OWN_PIDS_KEY
from .output import Output
from .settings import Migrations, Target
from .statements import lock_for, must_run_outside_transaction, parse_index_statement, split_sql, strip_comments


@dataclass
class RunOptions:
    online: OnlineOptions = field(default_factory=OnlineOptions)
    wait_for_lock: bool = False


@dataclass
class Status:
    target: str
    target_source: str
    migrations: str
    migrations_source: str
    server_version: str
    current: list[str]
    heads: list[str]
    pending: list[tuple[str, str]]  # (revision, message), oldest first
    invalid_indexes: list[str] = field(default_factory=list)  # left by failed concurrent builds

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "target_source": self.target_source,
            "migrations": self.migrations, "migrations_source": self.migrations_source,
            "server_version": self.server_version, "current": self.current, "heads": self.heads,
            "pending": [{"revision": r, "message": m} for r, m in self.pending],
            "invalid_indexes": self.invalid_indexes,
        }


@dataclass
class Outcome:
    before: list[str]
    after: list[str]
    sql: str | None = None  # the annotated script of a dry run


# -- configuration ------------------------------------------------------------

def alembic_config(target: Target, migrations: Migrations, options: RunOptions | None = None,
                   stdout: io.StringIO | None = None, server_version: int = 0) -> Config:
    options = options or RunOptions()
    config = Config(file_=str(migrations.ini) if migrations.ini else None,
                    stdout=stdout or io.StringIO(), output_buffer=stdout)
    config.set_main_option("script_location", str(migrations.script_location))
    # Every transactional statement waits at most this long for a lock; on timeout
    # the step rolls back and we retry after a pause (see apply).  The connection
    # idles while builds run on others: no idle_session_timeout (PostgreSQL 14+).
    settings = [f"-c lock_timeout={int(options.online.lock_timeout_s * 1000)}"]
    if server_version >= 140000:
        settings.append("-c idle_session_timeout=0")
    user_options = target.url.query.get("options")  # e.g. a search_path: keep it
    url = target.url.update_query_dict({
        "application_name": "dbtune migrate",
        "options": " ".join([*([str(user_options)] if user_options else []), *settings]),
    })
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    config.attributes[OPTIONS_KEY] = options.online
    return config


def _script(config: Config, migrations: Migrations) -> ScriptDirectory:
    try:
        return ScriptDirectory.from_config(config)
    except CommandError as exc:
        raise ConfigError(f"{migrations.script_location}: {exc}") from None


def _current(config: Config, script: ScriptDirectory, target: Target) -> list[str]:
    """The database's current revisions, read through the directory's own env.py."""
    heads: list[str] = []

    def read(rev: Any, context: Any) -> list[Any]:
        heads.extend(context.get_current_heads())
        return []

    with _errors(target, config, None):
        with EnvironmentContext(config, script, fn=read, dont_mutate=True):
            script.run_env()
    return sorted(heads)


# -- verbs ----------------------------------------------------------------------

_INVALID_INDEXES = """
SELECT format('%I.%I on %I.%I', n.nspname, c.relname, tn.nspname, t.relname)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE NOT i.indisvalid
ORDER BY 1
"""

def status(target: Target, migrations: Migrations) -> Status:
    with db.connect(target, purpose="status") as conn:
        version = db.server_version(conn)
        invalid = [row[0] for row in conn.execute(_INVALID_INDEXES)]
    config = alembic_config(target, migrations)
    script = _script(config, migrations)
    current = _current(config, script, target)
    return Status(target=target.masked, target_source=target.source,
                  migrations=str(migrations.script_location), migrations_source=migrations.source,
                  server_version=version, current=current, heads=sorted(script.get_heads()),
                  pending=_pending(script, current), invalid_indexes=invalid)


def _pending(script: ScriptDirectory, current: list[str]) -> list[tuple[str, str]]:
    lower = current if current else "base"
    revs = list(script.iterate_revisions("heads", lower))
    revs = [r for r in revs if r.revision not in current]
    return [(r.revision, (r.doc or "").splitlines()[0] if r.doc else "") for r in reversed(revs)]


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
    with db.connect(target, purpose="preflight") as conn:
        # A clear error for an unreachable server or a wrong password, before Alembic.
        version = conn.info.server_version
    config = alembic_config(target, migrations, options, server_version=version)
    script = _script(config, migrations)
    before = _current(config, script, target)
    if direction == "downgrade" and not before:
        if to is not None:
            _known(script, to)  # an unknown revision is a usage error even here
        out.info("nothing to roll back: the database is at base")
        return Outcome(before, before)
    destination = _destination(script, direction, to, steps, before)
    if direction == "upgrade" and not _pending_to(script, before, destination):
        if dry_run:
            return Outcome(before, before, sql=f"-- already at {destination}: nothing to apply\n")
        out.info(f"already at {destination}: nothing to apply")
        return Outcome(before, before)
    if dry_run:
        return Outcome(before, before, sql=_dry_run(target, migrations, options, direction, before, destination))
    with run_lock(target, wait=options.wait_for_lock, out=out) as lock_pid:
        own = {lock_pid}
        config.attributes[OWN_PIDS_KEY] = own
        options.online.analyze_queue = []
        try:
            _run_with_retries(target, config, script, direction, destination, options, out, own)
        finally:
            # Each table once, after all of its new indexes, even when a later step failed.
            queued, options.online.analyze_queue = options.online.analyze_queue, None
            analyze_tables(target, queued, options.online)
    after = _current(config, script, target)
    out.info(f"database is at {', '.join(after) or 'base'}")
    return Outcome(before, after)


def _run_with_retries(target: Target, config: Config, script: ScriptDirectory, direction: str, destination: str,
                      options: RunOptions, out: Output, own: set[int]) -> None:
    """Run Alembic; after a lock_timeout, back off (exponentially, with jitter) and try again."""
    attempt = 0
    while True:
        try:
            with _errors(target, config, script, out) as tracker, \
                    _intercept_concurrent(target, options.online, own, tracker):
                getattr(command, direction)(config, destination)
            break
        except MigrationFailed as exc:
            backoff = options.online.backoff
            if exc.sqlstate != "55P03" or attempt >= backoff.retries:
                raise
            delay = backoff.delay(attempt)
            attempt += 1
            out.warn(f"{exc.failed_revision or 'a migration'} could not get a lock within "
                     f"{options.online.lock_timeout_s:g}s; retrying in {delay:.1f}s "
                     f"(attempt {attempt} of {backoff.retries})")
            time.sleep(delay)


def _destination(script: ScriptDirectory, direction: str, to: str | None, steps: int,
                 current: list[str]) -> str:
    if direction == "upgrade":
        to = to or "head"
        _known(script, to)
        return to
    if to is not None:
        _known(script, to)
        return to
    # N steps down from the current revision, along down_revision.
    if len(current) > 1:
        raise ConfigError("the database has several heads; roll back with --to REV")
    rev = current[0] if current else None
    for _ in range(steps):
        if rev is None:
            raise ConfigError(f"cannot roll back {steps} step(s): the history is shorter")
        down = script.get_revision(rev).down_revision  # type: ignore[union-attr]
        if isinstance(down, tuple):
            raise ConfigError(f"{rev} is a merge point; roll back with --to REV")
        rev = down
    return rev or "base"


def _known(script: ScriptDirectory, rev: str) -> None:
    if rev in ("base", "head", "heads"):
        return
    try:
        if script.get_revision(rev) is None:
            raise CommandError(rev)
    except CommandError:
        raise ConfigError(f"unknown revision {rev!r} (see `dbtune status` for the known ones)") from None


def _pending_to(script: ScriptDirectory, current: list[str], destination: str) -> bool:
    try:
        revs = list(script.iterate_revisions(destination, current or "base"))
    except CommandError:
        return True  # let Alembic explain, e.g. a destination below the current revision
    return any(r.revision not in current for r in revs)


# -- failure handling -----------------------------------------------------------

class _RevisionTracker(logging.Handler):
    """Remembers which revision Alembic is running, from its own log lines."""

    _RUNNING = re.compile(r"Running (?:upgrade|downgrade) (?P<frm>[^ ]*) -> (?P<to>[^ ,]*)")

    def __init__(self, out: Output | None) -> None:
        super().__init__(logging.INFO)
        self.running: str | None = None
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        match = self._RUNNING.search(record.getMessage())
        if match:
            upgrade = "upgrade" in record.getMessage()
            self.running = match.group("to") if upgrade else match.group("frm")
            if self.out is not None:
                message = record.getMessage().split(" -> ", 1)[-1]
                self.out.info(("applying " if upgrade else "rolling back ") + f"{self.running}: "
                              + (message.split(", ", 1)[1] if ", " in message else ""))


@contextlib.contextmanager
def _errors(target: Target, config: Config, script: ScriptDirectory | None,
            out: Output | None = None) -> Iterator[_RevisionTracker]:
    """Turn what Alembic, SQLAlchemy and psycopg raise into DbtuneErrors naming the revision."""
    logger = logging.getLogger("alembic.runtime.migration")
    tracker = _RevisionTracker(out)
    saved = logger.level, logger.propagate
    logger.addHandler(tracker)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield tracker
    except CommandError as exc:
        raise ConfigError(target.scrub(str(exc))) from None
    except MigrationFailed as exc:
        raise _failed(target, config, script, tracker.running, exc.message, exc.statement, exc.sqlstate) from None
    except (DBAPIError, psycopg.Error) as exc:
        # Through SQLAlchemy (Alembic's connection) the psycopg error comes wrapped;
        # from dbtune's own connections (dbtune.ops) it comes as it is.
        wrapped = isinstance(exc, DBAPIError)
        orig = exc.orig if wrapped else exc
        if (wrapped and exc.connection_invalidated) or (
                isinstance(orig, psycopg.OperationalError) and orig.sqlstate is None):
            raise MigrationFailed(f"lost the connection to {target.masked}"
                                  + (f" while running {tracker.running}" if tracker.running else "")
                                  + f": {db.describe(orig, target)}",
                                  revision=None, failed_revision=tracker.running) from None
        raise _failed(target, config, script, tracker.running, db.describe(orig, target),
                      exc.statement if wrapped else None, getattr(orig, "sqlstate", None)) from None
    except DbtuneError as exc:
        if tracker.running and not exc.message.startswith("revision "):
            exc.message = f"revision {tracker.running}: {exc.message}"
            exc.args = (exc.message,)
        raise
    finally:
        logger.removeHandler(tracker)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _failed(target: Target, config: Config, script: ScriptDirectory | None, running: str | None,
            reason: str, statement: str | None, sqlstate: str | None) -> MigrationFailed:
    now: list[str] | None = None
    if script is not None:
        with contextlib.suppress(DbtuneError):
            now = _current(config, script, target)
    where = f"revision {running} failed" if running else "migration failed"
    stmt = " ".join((statement or "").split())
    if len(stmt) > 160:
        stmt = stmt[:157] + "..."
    at = "" if now is None else f"; the database stays at {', '.join(now) or 'base'}"
    message = f"{where}: {reason}" + (f" [statement: {stmt}]" if stmt else "") + at
    return MigrationFailed(message, revision=", ".join(now) if now else None, failed_revision=running,
                           statement=statement, sqlstate=sqlstate)


# -- a user's own concurrent index statements ------------------------------------

@contextlib.contextmanager
def _intercept_concurrent(target: Target, options: OnlineOptions, own: set[int],
                          tracker: _RevisionTracker) -> Iterator[None]:
    """Route a plain Alembic migration's CREATE/DROP/REINDEX ... CONCURRENTLY through the engine.

    ``op.create_index(..., postgresql_concurrently=True)`` inside
    ``autocommit_block()`` reaches the database as one statement on Alembic's
    connection; here it gets the same repair, blocker reporting, max-wait and
    validity check as dbtune's own SQL files.  The engine runs it on its own
    connection and Alembic's cursor runs a no-op in its place.  Outside an
    autocommit block the statement is left alone, and PostgreSQL refuses it.
    """
    committed: dict[str | None, int] = {}  # statements each revision ran in its transaction

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> Any:
        raw = conn.connection.dbapi_connection
        if not getattr(raw, "autocommit", False):
            committed[tracker.running] = committed.get(tracker.running, 0) + 1
            return statement, parameters
        if not must_run_outside_transaction(statement):
            return statement, parameters
        # SQLAlchemy doubled every % for psycopg's placeholders: render the statement the
        # server would have received.
        final = psycopg.ClientCursor(raw).mogrify(statement, parameters) if parameters is not None else statement
        st = parse_index_statement(final)
        if st is None or not st.concurrently:
            if re.match(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(IF\s+NOT\s+EXISTS\s+)?ON\b",
                        strip_comments(final), re.IGNORECASE):
                raise ConfigError("dbtune builds concurrent indexes by name, so that a failed build can be "
                                  f"found and repaired: give this index a name [statement: {final}]")
            # REINDEX TABLE/SCHEMA ... CONCURRENTLY, DETACH PARTITION ... CONCURRENTLY: they wait
            # for other transactions like a build does, so no lock_timeout for them.
            cursor.execute("SET lock_timeout = 0")
            return statement, parameters
        pid = raw.info.backend_pid
        try:
            Engine(target, options, own_pids=own | {pid}).run([st])
        except DbtuneError as exc:
            if committed.get(tracker.running):
                exc.add_note(f"revision {tracker.running} had run {committed[tracker.running]} statement(s) "
                             "before its autocommit_block(), which committed them: it is partly applied")
            raise
        return "SELECT 1", ()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement is not None and must_run_outside_transaction(statement):
            cursor.execute(set_lock_timeout(options.lock_timeout_s))

    event.listen(SAEngine, "before_cursor_execute", before, retval=True)
    event.listen(SAEngine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(SAEngine, "before_cursor_execute", before)
        event.remove(SAEngine, "after_cursor_execute", after)


# -- dry run ------------------------------------------------------------------------

def _dry_run(target: Target, migrations: Migrations, options: RunOptions, direction: str,
             current: list[str], destination: str) -> str:
    buffer = io.StringIO()
    config = alembic_config(target, migrations, options, stdout=buffer)
    start = ",".join(current) if current else "base"
    if direction == "upgrade" and start == "base":
        span = destination
    else:
        span = f"{start}:{destination}"
    with _errors(target, config, None):
        getattr(command, direction)(config, span, sql=True)
    return annotate(buffer.getvalue(), options)


def annotate(script_text: str, options: RunOptions) -> str:
    """Each statement with the lock it takes, its transaction and its session settings."""
    lines: list[str] = []
    in_tx = False
    for statement in split_sql(script_text):
        body = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--")).strip()
        comments = [line for line in statement.splitlines() if line.lstrip().startswith("--")]
        lines.extend(comments)
        if not body:
            continue
        head = body.split(None, 1)[0].upper()
        if head in ("BEGIN", "COMMIT"):
            in_tx = head == "BEGIN"
            lines.append(body + ";")
            continue
        if must_run_outside_transaction(body):
            session = (f"own autocommit connection; lock_timeout=0, watched (--max-wait "
                       f"{options.online.max_wait if options.online.max_wait is not None else 'none'}); "
                       f"max_parallel_maintenance_workers={options.online.maintenance_workers}")
            where = "outside any transaction"
            extra = "; an INVALID index of the same name is dropped first, indisvalid confirmed after" \
                if body.upper().startswith("CREATE") else ""
        else:
            session = f"lock_timeout={options.online.lock_timeout_s:g}s, retried with backoff"
            where = "in transaction" if in_tx else "autocommit"
            extra = ""
        lines.append(f"-- lock: {lock_for(body)} | {where} | {session}{extra}")
        lines.append(body + ";")
    return "\n".join(lines) + "\n"
