"""The verbs that move a database between revisions: apply, rollback, status.

Any standard Alembic project works: dbtune runs its env.py through Alembic's
own ``EnvironmentContext`` and the same revision steps ``command.upgrade`` and
``downgrade`` run.  Around that it adds what a DBA needs on a busy server:
exactly one database (the one env.py reaches, checked against the one dbtune
was given), one run at a time per database (an advisory lock held by an idle
autocommit session), the destination worked out only under that lock, a short
``lock_timeout`` with retries that never repeat what committed, concurrent index
statements handed to the online engine, and errors that name the file or the
revision and the revision the database stays at.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError, RevisionError
from alembic.util.exc import CommandError
from psycopg import sql
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, PendingRollbackError

from ..core import db
from ..core.errors import ConfigError, ConnectionFailed, DbtuneError, MigrationFailed, PoolerRefused
from ..core.output import Output
from ..core.runlock import RunLock, run_lock
from ..core.settings import Migrations, Target
from ..online.engine import OnlineOptions, analyze_tables
from ..ops import OPTIONS_KEY, OWN_PIDS_KEY
from ..sqltext.statements import must_run_outside_transaction, split_sql
from . import drivers, session_settings
from .intercept import RunState, capped_lock_timeout, intercepted


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
    errors: int = 0  # statements of the dry run that would fail as written


# -- configuration ------------------------------------------------------------

# Drivers whose URL takes libpq's own query arguments (application_name, options).
_LIBPQ_DRIVERS = ("postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+psycopg2cffi")


def alembic_config(target: Target, migrations: Migrations, options: RunOptions | None = None,
                   stdout: io.StringIO | None = None) -> Config:
    """Alembic's Config for the project, with dbtune's target as ``sqlalchemy.url``.

    Handed in only when the DBA named a database: otherwise env.py's own choice (its
    alembic.ini, the application's settings) stands, as under alembic.  The driver
    the project's alembic.ini names is kept, so an env.py on psycopg2 or asyncpg gets
    a URL for its driver.
    """
    options = options or RunOptions()
    config = Config(file_=str(migrations.ini) if migrations.ini else None,
                    stdout=stdout or io.StringIO(), output_buffer=stdout)
    if migrations.ini is None:
        config.set_main_option("script_location", str(migrations.script_location))
    if target.explicit:
        url = target.url.set(drivername=_project_driver(config))
        if url.drivername in _LIBPQ_DRIVERS:
            url = url.update_query_dict({"application_name": "dbtune migrate"})
        # ConfigParser interpolation: a literal % in a password must be doubled.
        config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    config.attributes[OPTIONS_KEY] = options.online
    return config


def _project_driver(config: Config) -> str:
    try:
        named = config.get_main_option("sqlalchemy.url")
        driver = make_url(named).drivername if named else ""
    except (ArgumentError, ValueError, KeyError):
        driver = ""
    return driver if driver.startswith("postgresql") else "postgresql+psycopg"


def _script(config: Config, migrations: Migrations) -> ScriptDirectory:
    try:
        return ScriptDirectory.from_config(config)
    except CommandError as exc:
        raise ConfigError(f"{migrations.script_location}: {exc}") from None


# -- one Alembic run ------------------------------------------------------------

class _Restart(Exception):
    """The database moved while we queued for the lock: start env.py over, lock held."""


class _Run:
    """One verb's pass through the project's env.py.

    Alembic calls ``steps()`` once env.py has connected and configured its context
    (once per context: a multi-tenant env.py runs one per schema).  Only there does
    dbtune know which database the migrations really reach, so that is where it
    checks that database against its target (or, given none, adopts it), takes the
    run's lock, and only then reads the current revision and works out what to do:
    a run queued behind another computes its destination from what that one left.
    """

    def __init__(self, target: Target, migrations: Migrations, config: Config, script: ScriptDirectory,
                 options: RunOptions, out: Output, plan: Any, *, lock: bool) -> None:
        self.target, self.migrations, self.config, self.script = target, migrations, config, script
        self.options, self.out, self.plan, self.want_lock = options, out, plan, lock
        self.bound: Target | None = None
        self.migration_target: str = ""
        self.lock: RunLock | None = None
        # dbtune's own session on the target: opened by the preflight, it checks the
        # database env.py reached and then becomes the lock's session (see _own).
        self.own: psycopg.Connection | None = None
        self.stack = contextlib.ExitStack()
        self.before: list[str] | None = None
        self.destination: str | None = None
        self.version_tables: list[tuple[str, str]] = []
        self.saved: session_settings.Saved | None = None  # what dbtune changed on env.py's connection
        self.tracker = _RevisionTracker(out)
        self.state = RunState(target=lambda: self.bound or self.target, options=options.online, out=out,
                              running=lambda: self.tracker.running)

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stack.close()

    def env(self, *, as_sql: bool = False, starting_rev: str | None = None,
            destination_rev: str | None = None) -> None:
        """Run env.py once, with dbtune's hooks and error mapping."""
        if self.bound is None and self.target.explicit and self.own is None:
            self._own(self.target)  # a clear error before env.py runs
        with _errors(self), intercepted(self.state) as flush:
            # dont_mutate: Alembic would create its version table before it knows what will run
            # (as `alembic current` once did); steps() creates it only for a revision to record.
            with EnvironmentContext(self.config, self.script, fn=self.steps, as_sql=as_sql,
                                    starting_rev=starting_rev, destination_rev=destination_rev, dont_mutate=True):
                self.script.run_env()
            flush()

    def steps(self, heads: Any, context: Any) -> list[Any]:
        connection = context.connection
        if connection is None:  # offline (--sql): the dry run's second pass
            return self.plan(self, heads) or []
        self._bind(connection, context)
        if self.want_lock and self.lock is None:
            session, self.own = self.own, None
            self.lock = self.stack.enter_context(run_lock(self.bound or self.target, wait=self.options.wait_for_lock,
                                                          out=self.out, session=session))
            self.state.lock = self.options.online.lock = self.lock
            self.config.attributes[OWN_PIDS_KEY] = self.lock.pids
            # What the database is at now that we hold the lock: if a run we queued behind
            # moved it, run env.py again (still holding the lock) so that Alembic, too,
            # starts from there.
            if sorted(context.get_current_heads()) != sorted(heads):
                raise _Restart()
        if self.before is None:
            self.before = sorted(heads)
        planned = self.plan(self, tuple(heads)) or []
        if planned and not heads:
            # At base, a revision is about to be recorded: only now does the version table
            # appear, so status, a dry run and a refused destination leave none behind.
            context._ensure_version_table()
        return self._restoring(connection, self.tracker.follow(planned))

    def _bind(self, connection: Any, context: Any) -> None:
        """Check (or adopt) the database the migration's connection reached; bound its lock waits."""
        raw = drivers.dbapi(connection)
        theirs = drivers.identity(raw)
        self.migration_target = _masked(connection.engine.url)
        if drivers.client_pid(raw) not in (None, theirs.pid):
            self._pooled(connection)
        if self.bound is None:
            candidate = self.target if self.target.explicit else Target.from_engine_url(
                connection.engine.url, source="env.py's connection")
            try:
                ours = drivers.identity(self.own if self.own is not None and candidate is self.target
                                        else self._own(candidate))
            except ConnectionFailed as exc:
                if self.target.explicit:
                    raise
                raise ConfigError(f"env.py connects to {self.migration_target}, but dbtune cannot open its own "
                                  f"sessions there ({exc}): pass --database-url with the same database") from None
            if not ours.same_database(theirs):
                raise ConfigError(
                    f"env.py connected to {self.migration_target} ({theirs.describe()}), but dbtune was given "
                    f"{candidate.masked} from {candidate.source} ({ours.describe()}): nothing was changed. Point "
                    "the application's database setting at the target, or let env.py use the URL dbtune passes "
                    "(config.get_main_option('sqlalchemy.url'))")
            self.bound = candidate
            self.out.info(f"database: {candidate.masked} (from {candidate.source})")
        own_version_table = _version_table(raw, context)
        if own_version_table not in self.version_tables:
            self.version_tables.append(own_version_table)
        # Every transactional statement waits at most lock_timeout for a lock; the step then
        # rolls back and is retried (see _attempts).  The connection idles while builds run
        # on others: no idle_session_timeout.  Set here, whatever URL env.py connected with,
        # on every bind (a retry's rolled-back transaction took the last set_config with it);
        # what the connection carried before is read once and put back (see _restoring).
        info = connection.connection.info  # lives as long as the DBAPI connection
        online = self.options.online
        if _SAVED_KEY not in info:
            info[_SAVED_KEY] = session_settings.read(
                raw, statement_timeout_ms=None if online.statement_timeout_s is None
                else int(online.statement_timeout_s * 1000))
            self._restore_on_checkin(connection)
        self.saved = info[_SAVED_KEY]
        session_settings.apply(raw, self.saved, lock_timeout_ms=int(online.lock_timeout_s * 1000))
        _commit_unless_in_transaction(connection)
        if self.want_lock and self.saved.standby:
            raise ConfigError(f"{(self.bound or self.target).masked} is a hot standby (read-only): "
                              "apply and rollback run against the primary; nothing was changed")

    def _restoring(self, connection: Any, steps: Iterator[Any]) -> Iterator[Any]:
        """The steps, then env.py's connection as it was: it may go back to a pool of the application's.

        Alembic pulls the steps one at a time and runs each before pulling the next, so the
        code after the last one runs once every revision has run.  After a failed revision
        the transaction is aborted and env.py drops the connection; a pooled one is put back
        by the pool's checkin (see _restore_on_checkin)."""
        yield from steps
        saved = connection.connection.info.pop(_SAVED_KEY, None)
        if saved is not None and not connection.closed:
            session_settings.restore(drivers.dbapi(connection), saved)
            _commit_unless_in_transaction(connection)

    def _restore_on_checkin(self, connection: Any) -> None:
        """Put the connection's settings back when it returns to its pool with them still changed (a
        failed run): after the pool's own rollback, before another checkout.  Best effort: a
        connection that cannot take a statement then is one the pool discards."""
        pool = connection.engine.pool

        def checkin(dbapi_connection: Any, record: Any) -> None:
            saved = record.info.pop(_SAVED_KEY, None)
            if saved is None or dbapi_connection is None:
                return
            with contextlib.suppress(Exception):  # any driver's error: nothing to do but let it go
                session_settings.restore(dbapi_connection, saved)
                dbapi_connection.commit()

        if not event.contains(pool, "checkin", checkin):
            event.listen(pool, "checkin", checkin)
            self.stack.callback(event.remove, pool, "checkin", checkin)

    def _pooled(self, connection: Any) -> None:
        """env.py's connection goes through a pooler: go on only in session pooling (see pooler.py),
        told on a session of dbtune's own to the same address, before anything is set."""
        theirs = Target.from_engine_url(connection.engine.url, source="env.py's connection")
        try:
            db.connect(theirs, purpose="pooler check").close()
        except PoolerRefused as exc:
            raise PoolerRefused(f"env.py's connection to {exc}", mode=exc.data["mode"],
                                endpoint=exc.data["endpoint"]) from None
        except ConnectionFailed as exc:
            raise ConfigError(f"env.py connects to {self.migration_target} through a connection pooler, and dbtune "
                              f"cannot open a session there to tell its pooling mode ({exc}): nothing was changed. "
                              "Point the migration at PostgreSQL directly, or at a pool in session mode") from None

    def _own(self, target: Target) -> psycopg.Connection:
        if self.own is not None:
            self.own.close()
        self.own = db.connect(target, purpose="preflight")
        self.stack.callback(self.own.close)
        return self.own

    def session(self) -> contextlib.AbstractContextManager[psycopg.Connection]:
        """A session of dbtune's own on the bound database: the lock's or the preflight's, else a new one."""
        assert self.bound is not None
        if self.lock is not None:
            return self.lock.borrowed()
        if self.own is not None and not self.own.closed:
            return contextlib.nullcontext(self.own)
        return db.connect(self.bound, purpose="status")

    def versions(self) -> list[str] | None:
        """The revisions the database is at, read on a session of dbtune's own (None if unknown)."""
        if self.bound is None:
            return None
        found: list[str] = []
        try:
            with self.session() as conn:
                for schema, table in self.version_tables:
                    try:
                        found += [r[0] for r in conn.execute(sql.SQL("SELECT version_num FROM {}").format(
                            sql.Identifier(schema, table)))]
                    except psycopg.errors.UndefinedTable:
                        pass
        except (DbtuneError, psycopg.Error):
            return None
        return sorted(found)


_SAVED_KEY = "dbtune.saved_settings"


def _commit_unless_in_transaction(connection: Any) -> None:
    if not connection.in_transaction():
        # SQLAlchemy has no transaction open: end the one the driver began for our statements.
        drivers.dbapi(connection).commit()


def _version_table(raw: Any, context: Any) -> tuple[str, str]:
    """Where this context keeps its revision: the schema Alembic finds (or will create) it in."""
    table = context._version.name
    schema = context._version.schema
    found = drivers.relation_of(raw, schema, table)
    if found:
        return found
    if schema:
        return schema, table
    row = drivers.query_one(raw, "SELECT current_schema()")
    return (str(row[0]) if row and row[0] else "public"), table


def _masked(url: Any) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


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
    config = alembic_config(target, migrations)
    script = _script(config, migrations)
    with _Run(target, migrations, config, script, RunOptions(), Output(quiet=True), lambda run, heads: [],
              lock=False) as run:
        run.state.reads_only = True
        run.env()
        assert run.bound is not None
        with run.session() as conn:
            version = db.server_version(conn)
            invalid = [row[0] for row in conn.execute(_INVALID_INDEXES)]
    current = run.before or []
    try:
        pending = _pending(script, current)
    except (CommandError, RevisionError) as exc:
        raise _unknown_revision(run, exc) from None
    return Status(target=run.bound.masked, target_source=run.bound.source,
                  migrations=str(migrations.script_location), migrations_source=migrations.source,
                  server_version=version, current=current, heads=sorted(script.get_heads()),
                  pending=pending, invalid_indexes=invalid)


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
    config = alembic_config(target, migrations, options)
    script = _script(config, migrations)

    def plan(run: _Run, heads: tuple[str, ...]) -> list[Any]:
        # Names are resolved only here, as Alembic's own commands do: env.py may have placed
        # the versions itself (context.script.version_locations), and a dry run or a refusal
        # writes nothing (see _Run.steps).
        if to is not None:
            _known(script, to)
        current = sorted(heads)
        if direction == "downgrade" and not current:
            return []
        destination = run.destination = _destination(script, direction, to, steps, current)
        if direction == "upgrade" and _past(script, current, destination):
            raise ConfigError(f"the database is at {', '.join(current)}, past {destination}: apply never "
                              f"downgrades; `dbtune rollback --to {destination}` does. Nothing was changed")
        if direction == "upgrade" and not _pending_to(script, current, destination):
            return []
        if dry_run:
            return []
        if direction == "upgrade":
            return script._upgrade_revs(destination, heads)  # what alembic's command.upgrade runs
        return script._downgrade_revs(destination, heads)

    with _Run(target, migrations, config, script, options, out, plan, lock=not dry_run) as run:
        out.info(f"migrations: {migrations.script_location} ({migrations.source})")
        if dry_run:
            run.env()  # read the current revision, change nothing
            return _dry_run_outcome(run, migrations, options, direction)
        options.online.analyze_queue = []
        try:
            _attempts(run, direction)
        finally:
            options.online.lock = None
            # Each table once, after all of its new indexes, even when a later step failed.
            queued, options.online.analyze_queue = options.online.analyze_queue, None
            if run.bound is not None:
                analyze_tables(run.bound, queued, options.online)
        before = run.before or []
        if run.destination is None or (not _moved(run) and before == (run.versions() or before)):
            if direction == "downgrade" and not before:
                out.info("nothing to roll back: the database is at base")
            else:
                out.info(f"already at {run.destination or ', '.join(before) or 'base'}: nothing to apply")
            return Outcome(before, before)
        after = run.versions() or []
        out.info(f"database is at {', '.join(after) or 'base'}")
        return Outcome(before, after)


def _moved(run: _Run) -> bool:
    return run.tracker.ran


def _attempts(run: _Run, direction: str) -> None:
    """Run Alembic; after a lock_timeout, back off (exponentially, with jitter) and try again.

    Nothing committed is run twice: a revision that had committed part of itself
    (before its autocommit_block) replays only what did not commit (see Journal).
    """
    attempt = 0
    while True:
        try:
            run.env()
            return
        except _Restart:
            run.before = None
            continue
        except MigrationFailed as exc:
            backoff = run.options.online.backoff
            journal = run.state.journal
            if exc.sqlstate != "55P03" or attempt >= backoff.retries:
                if exc.sqlstate == "55P03" and journal.partly_applied(exc.failed_revision):
                    exc.add_note(f"revision {exc.failed_revision} is partly applied: "
                                 f"{journal.account(exc.failed_revision)}")
                raise
            delay = backoff.delay(attempt)
            attempt += 1
            run.out.warn(f"{exc.failed_revision or 'a migration'} could not get a lock within "
                         f"{run.state.effective_lock_timeout_ms / 1000:g}s; retrying in {delay:.1f}s "
                         f"(attempt {attempt} of {backoff.retries})"
                         + (" without the statements it has committed" if journal.partly_applied(
                             exc.failed_revision) else ""))
            journal.retry(exc.failed_revision)
            run.tracker.running = None
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
    # Alembic's relative forms name a revision too: REV@-1 (one step down REV's own branch), REV+2.
    relative = re.sub(r"(@[+-]?\d+|[+-]\d+)$", "", rev)
    for name in dict.fromkeys([rev, relative]):
        try:
            if name and script.get_revision(name) is not None:
                return
        except (CommandError, RevisionError):
            pass
    raise ConfigError(f"unknown revision {rev!r} (see `dbtune status` for the known ones)")


def _past(script: ScriptDirectory, current: list[str], destination: str) -> bool:
    """Whether the database has gone beyond ``destination``: all of it applied, and more on top."""
    if not current:
        return False
    try:
        wanted = {r.revision for r in script.iterate_revisions(destination, "base")}
        tops = {r.revision for r in script.get_revisions(destination) if r is not None}
        applied = {r.revision for r in script.iterate_revisions(tuple(current), "base")}
    except (CommandError, RevisionError):
        return False  # a relative form (REV@-1): Alembic's own reading of it follows
    return wanted <= applied and not tops <= set(current)


def _pending_to(script: ScriptDirectory, current: list[str], destination: str) -> bool:
    try:
        revs = list(script.iterate_revisions(destination, current or "base"))
    except (CommandError, RevisionError):
        return True  # let Alembic explain, e.g. a destination below the current revision
    return any(r.revision not in current for r in revs)


# -- failure handling -----------------------------------------------------------

class _RevisionTracker:
    """Which revision Alembic is running: set as Alembic takes each step from ``steps()``.

    Alembic pulls the steps one at a time and runs each before pulling the next,
    so this needs no log lines (an env.py's fileConfig may silence those).
    """

    def __init__(self, out: Output | None) -> None:
        self.running: str | None = None
        self.ran = False
        self.out = out

    def follow(self, steps: list[Any]) -> Iterator[Any]:
        for step in steps:
            script = step.revision
            self.running, self.ran = script.revision, True
            if self.out is not None:
                doc = (script.doc or "").splitlines()[0] if script.doc else ""
                self.out.info(f"{'applying' if step.is_upgrade else 'rolling back'} {script.revision}: {doc}")
            yield step


@contextlib.contextmanager
def _errors(run: _Run) -> Iterator[_RevisionTracker]:
    """Turn what env.py, a revision, Alembic, SQLAlchemy or a driver raises into one DbtuneError.

    Each names the file and line or the revision, and says which revision the
    database stays at; the traceback only with --debug (DBTUNE_DEBUG=1).
    """
    tracker = run.tracker
    target = run.bound or run.target
    try:
        yield tracker
    except _Restart:
        raise
    except DbtuneError as exc:
        raise _located(run, exc) from None
    except (DBAPIError, psycopg.Error) as exc:
        # Through SQLAlchemy (Alembic's connection) the driver's error comes wrapped;
        # from dbtune's own connections (dbtune.ops) it comes as it is.
        wrapped = isinstance(exc, DBAPIError)
        orig = exc.orig if wrapped else exc
        code = db.sqlstate(orig)
        if run.bound is None and code is None and _disconnect(orig):
            # env.py could not connect at all.
            raise ConnectionFailed(f"cannot connect to {target.masked if target.explicit else 'the database'}"
                                   f" that env.py uses: {db.describe(orig, target)}") from None
        if (wrapped and exc.connection_invalidated) or (code is None and _disconnect(orig)):
            raise _located(run, MigrationFailed(
                f"lost the connection to {target.masked}: {db.describe(orig, target)}", revision=None,
                failed_revision=tracker.running)) from None
        reason = db.describe(orig, target)
        if code == "57014" and (note := session_settings.statement_timeout_note(run.saved)):
            reason += "; " + note
        if code == "25006" and (note := session_settings.read_only_note(run.saved)):  # read_only_sql_transaction
            reason += "; " + note
        if code == "25001":  # active_sql_transaction: a concurrent statement inside a transaction
            reason += ("; run it inside op.get_context().autocommit_block(), as Alembic documents for "
                       "statements that cannot run in a transaction")
        raise _located(run, MigrationFailed(reason, revision=None, failed_revision=tracker.running,
                                            statement=exc.statement if wrapped else None, sqlstate=code)) from None
    except PendingRollbackError as exc:
        raise _located(run, MigrationFailed(
            f"lost the connection to {target.masked} ({str(exc).splitlines()[0]})", revision=None,
            failed_revision=tracker.running)) from None
    except (CommandError, RevisionError) as exc:
        raise _located(run, _unknown_revision(run, exc)) from None
    except Exception as exc:  # noqa: BLE001 - the project's own code: env.py, a revision, its imports
        raise _located(run, _project_error(run, exc)) from None


def _unknown_revision(run: _Run, exc: Exception) -> ConfigError:
    text = (run.bound or run.target).scrub(str(exc))
    if isinstance(exc, ResolutionError) or "Can't locate revision" in text:
        text += (f"; the database records a revision that {run.migrations.script_location} does not have: "
                 "is this the right migrations directory for this database?")
    return ConfigError(text)


def _disconnect(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, psycopg.OperationalError) or "connection" in text and "closed" in text


def _project_error(run: _Run, exc: BaseException) -> DbtuneError:
    """An exception from the project's Python: where it was raised, and whether a revision was running."""
    where = _where(run.migrations, exc)
    kind = type(exc).__name__
    message = f"{kind}: {run.target.scrub(str(exc)).splitlines()[0] if str(exc) else kind}"
    if run.tracker.running and not isinstance(exc, SyntaxError):
        return MigrationFailed(f"{where}: {message}", revision=None, failed_revision=run.tracker.running)
    return ConfigError(f"{where}: {message}; nothing was run")


def _where(migrations: Migrations, exc: BaseException) -> str:
    """The deepest place in the project's files (else the deepest frame) the exception passed."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_relative(migrations, exc.filename)} line {exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    root = migrations.script_location.resolve()
    mine = [f for f in frames if _inside(f.filename, root)]
    theirs = [f for f in frames if "site-packages" not in f.filename and not _inside(f.filename, _PACKAGE)]
    frame = (mine or theirs or frames or [None])[-1]
    if frame is None:
        return str(migrations.script_location)
    return f"{_relative(migrations, frame.filename)} line {frame.lineno}"


_PACKAGE = Path(__file__).resolve().parent.parent  # the dbtune package


def _inside(filename: str, root: Path) -> bool:
    try:
        Path(filename).resolve().relative_to(root)
        return True
    except (ValueError, OSError):
        return False


def _relative(migrations: Migrations, filename: str) -> str:
    """A path as the DBA knows it: from the project's alembic.ini (else the migrations' parent)."""
    base = migrations.ini.parent if migrations.ini else migrations.script_location.parent
    try:
        return str(Path(filename).resolve().relative_to(base.resolve()))
    except (ValueError, OSError):
        return filename


def _located(run: _Run, exc: DbtuneError) -> DbtuneError:
    """Name the failed revision and say where the database stays (read on our own session)."""
    if getattr(exc, "_located", False):
        return exc
    running = run.tracker.running
    if running and not exc.message.startswith("revision "):
        failed = "revision {} failed: ".format(running) if isinstance(exc, MigrationFailed) else f"revision {running}: "
        exc.message = failed + exc.message
    statement = getattr(exc, "statement", None)
    if isinstance(exc, MigrationFailed) and statement and "[statement:" not in exc.message:
        stmt = " ".join(statement.split())
        exc.message += f" [statement: {stmt[:157] + '...' if len(stmt) > 160 else stmt}]"
    if not isinstance(exc, ConfigError) or running:
        now = run.versions()
        if now is not None:
            exc.message += f"; the database stays at {', '.join(now) or 'base'}"
            if isinstance(exc, MigrationFailed):
                exc.revision = ", ".join(now) or None
    exc.args = (exc.message,)
    exc._located = True  # type: ignore[attr-defined]
    return exc


# -- dry run ------------------------------------------------------------------------

def _dry_run_outcome(run: _Run, migrations: Migrations, options: RunOptions, direction: str) -> Outcome:
    """Alembic's offline SQL from the current revision "as of now", each statement annotated."""
    current = run.before or []
    destination = run.destination
    if destination is None or (direction == "upgrade" and not _pending_to(run.script, current, destination)):
        return Outcome(current, current, sql=f"-- as of now the database is at {', '.join(current) or 'base'}: "
                                             "nothing to do\n")
    buffer = io.StringIO()
    config = alembic_config(run.bound or run.target, migrations, options, stdout=buffer)
    start = ",".join(current) if current else "base"
    span = destination if direction == "upgrade" and start == "base" else f"{start}:{destination}"
    with _errors(run):
        getattr(command, direction)(config, span, sql=True)
    header = f"-- as of now the database is at {', '.join(current) or 'base'}; {direction} to {destination}\n"
    text, errors = annotate(buffer.getvalue(), options)
    return Outcome(current, current, sql=header + text, errors=errors)


def annotate(script_text: str, options: RunOptions) -> tuple[str, int]:
    """Each statement with the lock it takes, where it runs and the session settings in force.

    Returns the annotated script and how many statements would fail as written
    (a statement PostgreSQL refuses inside a transaction block, outside
    ``autocommit_block()``): the dry run and the apply agree on those.
    """
    from ..sqltext.lockmodes import describe as lock_label  # pglast's tables: the dry run's, not every run's

    lines: list[str] = []
    errors = 0
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
            errors += 1
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
    return "\n".join(lines) + "\n", errors
