"""What dbtune does to a migration's statements while Alembic runs them.

SQLAlchemy's cursor events see every statement a migration sends, on any
driver.  Around them dbtune:

* checks, before every statement, that this run still holds its lock;
* hands ``CREATE/DROP/REINDEX INDEX CONCURRENTLY`` that run outside a
  transaction block (``autocommit_block()``, or after ``op.execute("COMMIT")``)
  to the online engine: consecutive ones are queued and built together, ``--jobs``
  at a time, before the next statement of any other kind runs;
* keeps a migration's own ``SET lock_timeout`` within dbtune's bound;
* keeps a journal of what each revision has committed, so that a retry after
  a lock timeout never runs a committed statement twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from sqlalchemy import event
from sqlalchemy.engine import Engine as SAEngine

from ..core.errors import ConfigError, MigrationFailed
from ..core.output import Output
from ..core.retry import set_lock_timeout
from ..core.runlock import RunLock
from ..core.settings import Target
from ..online import Engine, OnlineOptions, build_statement_timeout_ms
from ..sqltext.statements import IndexStatement, must_run_outside_transaction, parse_index_statement, retarget
from . import drivers

# Cheap first look: only statements with one of these words can need the engine.
_MAYBE_OUTSIDE = re.compile(r"CONCURRENTLY|VACUUM|DATABASE|SYSTEM", re.IGNORECASE)
_UNNAMED_CONCURRENT = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(IF\s+NOT\s+EXISTS\s+)?ON\b",
                                 re.IGNORECASE)
# Statements that change nothing a retry must not repeat (and that a new connection must re-run).
_NOT_A_CHANGE = re.compile(r"^\s*(SELECT|SHOW|VALUES|TABLE|EXPLAIN|SET|RESET|BEGIN|START|SAVEPOINT|RELEASE)\b",
                           re.IGNORECASE)
_COMMIT = re.compile(r"^\s*(COMMIT|END)\s*;?\s*$", re.IGNORECASE)
_ROLLBACK = re.compile(r"^\s*(ROLLBACK|ABORT)\s*;?\s*$", re.IGNORECASE)
_SET_LOCK_TIMEOUT = re.compile(
    r"^\s*SET\s+(?P<scope>SESSION\s+|LOCAL\s+)?lock_timeout\s*(?:=|\bTO\b)\s*(?P<value>[^;]+?)\s*;?\s*$",
    re.IGNORECASE)
_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
NO_OP = "SELECT 1"


def timeout_ms(value: str) -> int | None:
    """A lock_timeout value as PostgreSQL reads it (a bare number is milliseconds); None if unreadable."""
    text = value.strip().strip("'\"").strip().lower()
    if text == "default":
        return 0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text)
    if not match or match.group(2) not in ("", *_UNITS_MS):
        return None
    return int(float(match.group(1)) * _UNITS_MS.get(match.group(2), 1))


def capped_lock_timeout(statement: str, cap_ms: int) -> tuple[str, int, int] | None:
    """For a ``SET lock_timeout`` above dbtune's bound (or 0, no bound): (statement, asked, effective)."""
    match = _SET_LOCK_TIMEOUT.match(statement)
    if not match:
        return None
    asked = timeout_ms(match.group("value"))
    if asked is None or (0 < asked <= cap_ms):
        return (statement, asked or 0, asked or 0) if asked else None
    scope = (match.group("scope") or "").strip().upper()
    return f"SET {scope + ' ' if scope else ''}lock_timeout = '{cap_ms}ms'", asked, cap_ms


@dataclass
class Journal:
    """Which statements of each revision have committed (in order), and which are still open.

    A lock timeout rolls back only the open transaction.  When a revision has
    already committed part of itself (``autocommit_block()`` commits what came
    before it), the retry runs the revision again and its committed statements
    are skipped, in order, the same text required; nothing committed runs twice.
    """

    committed: dict[str | None, list[str]] = field(default_factory=dict)
    pending: dict[str | None, list[str]] = field(default_factory=dict)
    rolled_back: dict[str | None, list[str]] = field(default_factory=dict)
    replay: dict[str | None, list[str]] = field(default_factory=dict)

    def retry(self, revision: str | None) -> None:
        """Before another attempt at ``revision``: skip what of it committed."""
        self.replay = {revision: list(self.committed.get(revision, []))}
        self.pending, self.rolled_back = {}, {}

    def skip(self, revision: str | None, statement: str) -> bool:
        queue = self.replay.get(revision)
        if not queue or _NOT_A_CHANGE.match(statement):
            return False
        if " ".join(queue[0].split()) != " ".join(statement.split()):
            raise MigrationFailed(
                f"revision {revision} is partly applied, and on retry it sent {_short(statement)} where it had "
                f"committed {_short(queue[0])}; {self.account(revision)}", revision=None, failed_revision=revision,
                statement=statement)
        queue.pop(0)
        return True

    def executed(self, revision: str | None, statement: str, in_transaction: bool) -> None:
        if _COMMIT.match(statement):
            self.commit()
        elif _ROLLBACK.match(statement):
            self.rollback()
        elif not _NOT_A_CHANGE.match(statement) and statement != NO_OP:
            (self.pending if in_transaction else self.committed).setdefault(revision, []).append(statement)

    def commit(self) -> None:
        for revision, statements in self.pending.items():
            self.committed.setdefault(revision, []).extend(statements)
        self.pending = {}

    def rollback(self) -> None:
        for revision, statements in self.pending.items():
            self.rolled_back.setdefault(revision, []).extend(statements)
        self.pending = {}

    def partly_applied(self, revision: str | None) -> bool:
        return bool(self.committed.get(revision))

    def account(self, revision: str | None) -> str:
        """Which statements of a failed revision are committed and which are not."""
        done = self.committed.get(revision, [])
        undone = self.rolled_back.get(revision, []) + self.pending.get(revision, [])
        return (f"committed ({len(done)}): " + "; ".join(_short(s) for s in done)
                + " | not committed: " + ("; ".join(_short(s) for s in undone) + "; " if undone else "")
                + "the failed statement and the rest of the revision")


def _short(statement: str, width: int = 100) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= width else text[:width - 3] + "..."


@dataclass
class RunState:
    """What the hooks need from the run around them."""

    target: Callable[[], Target]
    options: OnlineOptions
    out: Output
    running: Callable[[], str | None]  # the revision Alembic is running now
    lock: RunLock | None = None
    journal: Journal = field(default_factory=Journal)
    warned_timeouts: set[tuple[str | None, int]] = field(default_factory=set)
    effective_lock_timeout_ms: int = 0
    # The connection's statement_timeout to put back after a statement run like a build.
    statement_timeout_after: str | None = None
    reads_only: bool = False  # status: a setting it caps changes nothing it does, so no warning


@contextlib.contextmanager
def intercepted(state: RunState) -> Iterator[Callable[[], None]]:
    """Install the hooks for one Alembic run; yields ``flush`` (build what is queued now)."""
    # (statement for the engine, the migration's SQLAlchemy connection, the statement as the migration sent it)
    queued: list[tuple[IndexStatement, Any, str]] = []
    cap_ms = int(state.options.lock_timeout_s * 1000)
    state.effective_lock_timeout_ms = cap_ms
    # A statement run like a build that failed never reached ``after``: what it changed on its
    # connection is set again when env.py's next connection is bound (session_settings.set_for_run).
    state.statement_timeout_after = None

    def flush() -> None:
        if not queued:
            return
        batch = list(queued)
        queued.clear()
        connection = batch[0][1]
        raw = drivers.dbapi(connection)
        target = state.target().with_session(search_path=drivers.search_path(raw))
        own = {drivers.backend_pid(connection)} | (state.lock.pids if state.lock else set())
        revision = state.running()
        try:
            Engine(target, state.options, own_pids=own).run([st for st, _, _ in batch])
        except MigrationFailed as exc:
            if state.journal.partly_applied(revision):
                exc.add_note(f"revision {revision} is partly applied: {state.journal.account(revision)}")
            raise
        for _, _, sent in batch:
            state.journal.executed(revision, sent, in_transaction=False)

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> Any:
        if state.lock is not None:
            state.lock.check()
        revision = state.running()
        if state.journal.skip(revision, statement):
            return NO_OP, parameters
        if "lock_timeout" in statement and (capped := capped_lock_timeout(statement, cap_ms)) is not None:
            statement, asked, effective = capped
            state.effective_lock_timeout_ms = effective
            if asked != effective and not state.reads_only and (revision, asked) not in state.warned_timeouts:
                state.warned_timeouts.add((revision, asked))
                # No revision running yet: env.py sent it while setting up its connection.
                source = f"revision {revision}" if revision else "env.py's connection setup"
                state.out.warn(f"{source} sets lock_timeout "
                               f"{'= 0 (no bound)' if asked == 0 else f'to {asked / 1000:g}s'}; dbtune keeps it at "
                               f"{cap_ms / 1000:g}s (--lock-timeout) so that no statement queues in front of the "
                               "application for longer; raise --lock-timeout to allow more")
        if not _MAYBE_OUTSIDE.search(statement):
            flush()
            return statement, parameters
        final = drivers.rendered(statement, parameters, conn.dialect.paramstyle)
        raw = drivers.dbapi(conn)
        if final is None or not must_run_outside_transaction(final) or drivers.in_transaction_block(raw):
            # Inside a transaction block PostgreSQL refuses it, as it would under alembic.
            flush()
            return statement, parameters
        st = parse_index_statement(final)
        if st is None or not st.concurrently:
            flush()
            if _UNNAMED_CONCURRENT.match(final):
                raise ConfigError("dbtune builds concurrent indexes by name, so that a failed build can be "
                                  f"found and repaired: give this index a name [statement: {final}]")
            # REINDEX TABLE/SCHEMA ... CONCURRENTLY, DETACH PARTITION ... CONCURRENTLY, VACUUM: they
            # wait for other transactions like a build does, so no lock_timeout for them, and the
            # build's statement_timeout (none unless --statement-timeout), whatever the role carries.
            cursor.execute("SELECT current_setting('statement_timeout')")
            state.statement_timeout_after = str(cursor.fetchone()[0])
            cursor.execute("SET lock_timeout = 0")
            cursor.execute(sql.SQL("SET statement_timeout = {}").format(
                sql.Literal(f"{build_statement_timeout_ms(state.options)}ms")).as_string())
            return statement, parameters
        queued.append((_resolved(raw, st), conn, statement))
        return NO_OP, parameters

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement == NO_OP:
            return
        in_block = drivers.in_transaction_block(drivers.dbapi(conn))
        state.journal.executed(state.running(), statement, in_transaction=in_block)
        if not in_block and _MAYBE_OUTSIDE.search(statement) and must_run_outside_transaction(
                drivers.rendered(statement, parameters, conn.dialect.paramstyle) or ""):
            cursor.execute(set_lock_timeout(state.effective_lock_timeout_ms / 1000).as_string())
            if state.statement_timeout_after is not None:
                cursor.execute(sql.SQL("SET statement_timeout = {}").format(
                    sql.Literal(state.statement_timeout_after)).as_string())
                state.statement_timeout_after = None

    def committed(conn: Any) -> None:
        flush()
        state.journal.commit()

    def rolled_back(conn: Any) -> None:
        queued.clear()
        state.journal.rollback()

    hooks = [("before_cursor_execute", before, {"retval": True}), ("after_cursor_execute", after, {}),
             ("commit", committed, {}), ("rollback", rolled_back, {})]
    for name, fn, kw in hooks:
        event.listen(SAEngine, name, fn, **kw)
    try:
        yield flush
    finally:
        for name, fn, _ in hooks:
            event.remove(SAEngine, name, fn)


def _resolved(raw: Any, st: IndexStatement) -> IndexStatement:
    """The statement on the relation the migration's own connection means (its search_path)."""
    if st.verb == "create" and st.table is not None:
        table = drivers.relation_of(raw, st.table_schema, st.table)
        if table is None:
            return st
        only = bool(re.search(r"\bON\s+ONLY\b", st.sql, re.IGNORECASE))
        return retarget(st, st.name, table, concurrently=True, only=only)
    found = drivers.relation_of(raw, st.schema, st.name)
    return dataclasses.replace(st, schema=found[0]) if found else st
