"""One verb's pass through the project's env.py: the database it binds, the lock, dbtune's own sessions.

Any standard Alembic project works: dbtune runs its env.py through Alembic's
own ``EnvironmentContext``, with the revision steps the verb planned.  Around
that it adds what a DBA needs on a busy server: exactly one database (the one
env.py reaches, checked against the one dbtune was given), one run at a time
per database (an advisory lock held by an idle autocommit session), the
destination worked out only under that lock, and env.py's connection left as
it was found.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from psycopg import sql

from ..core import db
from ..core.errors import ConfigError, ConnectionFailed, DbtuneError, PoolerRefused
from ..core.output import Output
from ..core.runlock import RunLock, run_lock
from ..core.settings import Migrations, Target
from ..online.options import OnlineOptions
from ..online.sessions import Sessions
from . import drivers, session_settings
from .config import RunOptions
from .failures import errors
from .intercept import RunState, intercepted
from .keys import OWN_PIDS_KEY
from .steps import Restart, RevisionTracker

# What a verb runs, given the run and the revisions the database is at (as Alembic read them).
Plan = Callable[["Run", tuple[str, ...]], list[Any] | None]


class Run:
    """One verb's pass through the project's env.py.

    Alembic calls ``steps()`` once env.py has connected and configured its context
    (once per context: a multi-tenant env.py runs one per schema).  Only there does
    dbtune know which database the migrations really reach, so that is where it
    checks that database against its target (or, given none, adopts it), takes the
    run's lock, and only then reads the current revision and works out what to do:
    a run queued behind another computes its destination from what that one left.
    """

    def __init__(self, target: Target, migrations: Migrations, config: Config, script: ScriptDirectory,
                 options: RunOptions, out: Output, plan: Plan, *, lock: bool) -> None:
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
        self.tracker = RevisionTracker(out)
        self.state = RunState(target=lambda: self.bound or self.target, options=options.online, out=out,
                              running=lambda: self.tracker.running)
        if options.online.sessions is None:
            # One control, monitor and build session for the whole run, not per revision.
            options.online.sessions = Sessions()
            self.stack.callback(self._end_sessions, options.online)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stack.close()

    @staticmethod
    def _end_sessions(online: OnlineOptions) -> None:
        online.sessions.close()
        online.sessions = None

    def env(self, *, as_sql: bool = False, starting_rev: str | None = None,
            destination_rev: str | None = None) -> None:
        """Run env.py once, with dbtune's hooks and error mapping."""
        if self.bound is None and self.target.explicit and self.own is None:
            self._own(self.target)  # a clear error before env.py runs
        with errors(self), intercepted(self.state) as flush:
            # dont_mutate: Alembic would create its version table before it knows what will run
            # (as `alembic current` once did); steps() creates it only for a revision to record.
            with EnvironmentContext(self.config, self.script, fn=self.steps, as_sql=as_sql,
                                    starting_rev=starting_rev, destination_rev=destination_rev, dont_mutate=True):
                self.script.run_env()
            flush()

    def steps(self, heads: Any, context: Any) -> Iterable[Any]:
        connection = context.connection
        if connection is None:  # offline (--sql): the dry run's second pass
            return self.plan(self, heads) or []
        self._bind(connection, context)
        if self.want_lock and self.lock is None:
            session, self.own = self.own, None
            if session is not None:  # the preflight's session holds the lock from here: named so for DBAs
                session.execute("SELECT set_config('application_name', %s, false)", [f"{db.APPLICATION} lock"])
            self.lock = self.stack.enter_context(run_lock(self.bound or self.target, wait=self.options.wait_for_lock,
                                                          out=self.out, session=session))
            self.state.lock = self.options.online.lock = self.lock
            self.config.attributes[OWN_PIDS_KEY] = self.lock.pids
            # What the database is at now that we hold the lock: if a run we queued behind
            # moved it, run env.py again (still holding the lock) so that Alembic, too,
            # starts from there.
            if sorted(context.get_current_heads()) != sorted(heads):
                raise Restart()
        if self.before is None:
            self.before = sorted(heads)
        planned = self.plan(self, tuple(heads)) or []
        if planned and not heads:
            # At base, a revision is about to be recorded: only now does the version table
            # appear, so status, a dry run and a refused destination leave none behind.
            context._ensure_version_table()
        return session_settings.restoring(connection, self.tracker.follow(planned))

    def _bind(self, connection: Any, context: Any) -> None:
        """Check (or adopt) the database the migration's connection reached; bound its lock waits."""
        raw = drivers.dbapi(connection)
        theirs = drivers.identity(raw)
        self.migration_target = _masked(connection.engine.url)
        if self.bound is None:  # the first bind of the run: later ones reach the same endpoint
            engine_target = Target.from_engine_url(connection.engine.url, source="env.py's connection")
            if drivers.client_pid(raw) not in (None, theirs.pid):
                self._pooled(engine_target)
            self._check_database(theirs, engine_target)
        own_version_table = _version_table(raw, context)
        if own_version_table not in self.version_tables:
            self.version_tables.append(own_version_table)
        # Every transactional statement waits at most lock_timeout for a lock; the step then
        # rolls back and is retried (see verbs._attempts).  The connection idles while builds
        # run on others: no idle_session_timeout.  Set here, whatever URL env.py connected with,
        # on every bind (a retry's rolled-back transaction took the last set_config with it);
        # what the connection carried before is read once and put back (see session_settings).
        online = self.options.online
        self.saved = session_settings.set_for_run(
            connection, self.stack, lock_timeout_ms=int(online.lock_timeout_s * 1000),
            statement_timeout_ms=None if online.statement_timeout_s is None
            else int(online.statement_timeout_s * 1000))
        if self.want_lock and self.saved.standby:
            raise ConfigError(f"{(self.bound or self.target).masked} is a hot standby (read-only): "
                              "apply and rollback run against the primary; nothing was changed")

    def _check_database(self, theirs: drivers.Identity, engine_target: Target) -> None:
        """The database env.py reached is the one dbtune was given (or, given none, becomes the run's)."""
        candidate = self.target if self.target.explicit else engine_target
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

    def _pooled(self, engine_target: Target) -> None:
        """env.py's connection goes through a pooler: go on only in session pooling (see pooler.py),
        told on a session of dbtune's own to the same address, before anything is set."""
        try:
            db.connect(engine_target, purpose="pooler check").close()
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
