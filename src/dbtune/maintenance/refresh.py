"""`dbtune refresh`: materialized views refreshed from cron without blocking their readers.

``REFRESH MATERIALIZED VIEW CONCURRENTLY`` takes an EXCLUSIVE lock, which lets
SELECTs go on; the plain form takes ACCESS EXCLUSIVE and every reader waits
for the whole refresh.  CONCURRENTLY needs a populated view and a unique index
on plain columns with no WHERE clause
(https://www.postgresql.org/docs/current/sql-refreshmaterializedview.html), so
dbtune uses it whenever it can, and says why readers will wait when it cannot.

Each view is refreshed under an advisory lock of its own (``core.runlock.run_lock``
with a key derived from the view's name): an overlapping cron run skips a view
that is being refreshed rather than queue behind it.  PostgreSQL does not
record when a view was last refreshed, so dbtune does, in ``dbtune.refresh_history``
(``history``).  Without that table (or the right to write it) the views
are still refreshed, with one warning that history was not recorded.  A hot
standby (or a read-only session) refreshes nothing and says so in one line;
``status`` only reads, so it works there.
"""

from __future__ import annotations

import contextlib
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from typing import Any

import psycopg
from psycopg import sql

from ..core import db
from ..core.errors import ConfigError, DbtuneError, LockBusy
from ..core.output import Output
from ..core.resources import sql_path
from ..core.retry import Backoff, locked, set_lock_timeout
from ..core.runlock import run_lock
from ..core.settings import Target
from ..online.scheduler import Scheduler
from . import history as history

_LOCK_BASE = 0x72656672 << 32  # "refr" in the high half; the view's crc32 in the low half

_VIEWS = """
SELECT c.oid, n.nspname, c.relname, c.relispopulated
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname, c.relname
"""

# The index REFRESH ... CONCURRENTLY can use: unique, valid, plain columns, no WHERE.
_KEY = """
SELECT c.relname,
       array(SELECT a.attname FROM unnest(i.indkey::int2[]) k JOIN pg_attribute a
             ON a.attrelid = i.indrelid AND a.attnum = k)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY c.relname LIMIT 1
"""

# The tables a view reads, through its rewrite rule.
_BASE_TABLES = """
SELECT DISTINCT d.refobjid
FROM pg_rewrite r JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
WHERE r.ev_class = %s AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> %s
"""

@dataclass(frozen=True)
class View:
    oid: int
    schema: str
    name: str
    populated: bool
    key: str | None  # the unique index CONCURRENTLY would use
    key_columns: tuple[str, ...]
    tables: frozenset[int]

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def lock_key(self) -> int:
        return _LOCK_BASE | zlib.crc32(self.label.encode())

    def why_not_concurrently(self) -> str | None:
        if not self.populated:
            return "it has never been populated (CONCURRENTLY needs a populated view)"
        if self.key is None:
            return "it has no unique index on plain columns without a WHERE clause"
        return None


@dataclass
class Result:
    view: str
    outcome: str  # "refreshed", "populated", "skipped", "failed"
    mode: str | None = None  # "concurrently", "plain"
    seconds: float = 0.0
    rows: int | None = None
    message: str = ""
    locked: bool = False  # skipped because another run is refreshing it


@dataclass
class Options:
    no_blocking: bool = False
    if_older_than_s: float | None = None
    timeout_s: float | None = None
    lock_timeout_s: float = 2.0
    jobs: int = 1
    keep: int = 100
    backoff: Backoff = field(default_factory=Backoff)
    record: bool = True  # write dbtune.refresh_history (off when it is missing or not writable)


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``2d`` (a bare number is seconds) in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match:
        raise ConfigError(f"cannot read {text!r} as an age: write 90s, 30m, 1h or 2d")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def own_views() -> list[str]:
    """The views dbtune's migrations create: one file each under sql/views/."""
    return sorted(p.stem for p in sql_path("views").glob("*.sql"))


def find_views(conn: psycopg.Connection, names: list[str] | None, all_views: bool) -> list[View]:
    """The views to work on: named, every one in the database, or dbtune's own."""
    rows = conn.execute(_VIEWS).fetchall()
    by_oid = {r[0]: r for r in rows}
    if names:
        chosen = []
        for name in names:
            found = conn.execute("SELECT c.oid, c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)",
                                 [name]).fetchone()
            if found is None or found[1] != "m":
                raise ConfigError(f"{name} is not a materialized view in this database"
                                  + ("" if found is None else f" (it is a relation of kind {found[1]!r})"))
            chosen.append(by_oid[found[0]])
    elif all_views:
        chosen = rows
    else:
        own = set(own_views())
        chosen = [r for r in rows if r[2] in own]
        if not chosen:
            raise ConfigError("none of dbtune's materialized views is in this database (apply revision 0007 "
                              "first), and no view was named: name views, or pass --all for every one")
    return [_describe(conn, *r) for r in chosen]


def _describe(conn: psycopg.Connection, oid: int, schema: str, name: str, populated: bool) -> View:
    key = conn.execute(_KEY, [oid]).fetchone()
    tables = frozenset(r[0] for r in conn.execute(_BASE_TABLES, [oid, oid]))
    return View(oid, schema, name, populated, key[0] if key else None, tuple(key[1]) if key else (), tables)


def refresh(target: Target, names: list[str] | None = None, *, all_views: bool = False,
            options: Options | None = None, out: Output | None = None) -> list[Result]:
    """Refresh the views; a view another run is refreshing right now is skipped, not waited for.

    Without a history this role may write, the views are still refreshed: the data readers
    see matters more than the record of it, and one warning says how to set history up.
    """
    options = options or Options()
    out = out or Output()
    with db.connect(target, purpose="refresh") as conn:
        history.writable(conn, "refresh the views")
        views = find_views(conn, names, all_views)
        state = history.state(conn)
        if (problem := state.problem(writing=True)) is not None:
            out.warn(f"refresh history not recorded: {problem}")
            options = replace(options, record=False)
        last = history.last(conn, [v.label for v in views]) if state.readable else {}
    results: dict[str, Result] = {}
    todo = []
    for view in views:
        age = last.get(view.label, (None, None, None))[2]
        if options.if_older_than_s is not None and age is not None and age < options.if_older_than_s:
            results[view.label] = Result(view.label, "skipped", message=f"refreshed {_age(age)} ago")
            out.info(f"{view.label}: skipped, refreshed {_age(age)} ago (--if-older-than)")
        else:
            todo.append(view)
    for result in _schedule(target, todo, options, out):
        results[result.view] = result
    return [results[v.label] for v in views]


def _schedule(target: Target, views: list[View], options: Options, out: Output) -> Iterator[Result]:
    """``jobs`` refreshes at once, never two that read a common table (they would compete for it)."""
    def one(view: View) -> Result:
        try:
            return _one(target, view, options, out)
        except Exception as exc:  # noqa: BLE001 - one view's failure never stops the others
            return Result(view.label, "failed", message=str(exc))

    scheduler: Scheduler[View, int, Result] = Scheduler(lambda view: view.tables, jobs=options.jobs,
                                                        name="dbtune-refresh")
    yield from scheduler.run(views, lambda: contextlib.nullcontext(one)).values()


def _one(target: Target, view: View, options: Options, out: Output) -> Result:
    why = view.why_not_concurrently()
    if why is not None and view.populated and options.no_blocking:
        out.warn(f"{view.label}: not refreshed: {why}, so a refresh would block its readers (--no-blocking)")
        return _recorded(target, None, view, Result(view.label, "failed", "plain", message=f"{why} (--no-blocking)"),
                         time.time(), options)
    # One session does it all: holds the view's lock, refreshes, analyzes and records (one login a
    # view, not three). It may: REFRESH, even CONCURRENTLY, waits for no other snapshot (unlike
    # CREATE INDEX CONCURRENTLY, which must never share a session with the lock), and autocommit
    # leaves the session idle outside a transaction between statements.
    session = db.connect(target, purpose=f"refresh {view.name}"[:50])
    try:
        with run_lock(target, key=view.lock_key, what=f"refresh of {view.label}", session=session):
            return _refresh_locked(target, session, view, why, options, out)
    except LockBusy as exc:
        out.info(f"{view.label}: skipped: {exc.message.split(':', 1)[-1].split('. Try', 1)[0].strip()} "
                 "is refreshing it now")
        return Result(view.label, "skipped", message="another run is refreshing it", locked=True)


def _refresh_locked(target: Target, conn: psycopg.Connection, view: View, why: str | None, options: Options,
                    out: Output) -> Result:
    mode = "concurrently" if why is None else "plain"
    if why is not None and view.populated:
        out.warn(f"{view.label}: refreshing without CONCURRENTLY because {why}: its readers wait for the whole "
                 "refresh (add a unique index on plain columns to refresh it concurrently)")
    started_wall, started = time.time(), time.monotonic()
    statement = sql.SQL("REFRESH MATERIALIZED VIEW {}{}").format(
        sql.SQL("CONCURRENTLY " if mode == "concurrently" else ""), view.ident)
    try:
        conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int((options.timeout_s or 0) * 1000)}ms"])
        _with_retries(conn, statement, view, options, out)
        conn.execute(set_lock_timeout(options.lock_timeout_s))
        try:
            conn.execute(sql.SQL("ANALYZE {}").format(view.ident))
        except psycopg.errors.LockNotAvailable:
            out.warn(f"{view.label}: ANALYZE skipped, the view is locked (autovacuum will do it)")
        rows = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s", [view.oid]).fetchone()
    except psycopg.errors.QueryCanceled:
        # Our --timeout, or with none (statement_timeout 0 on this session) a DBA's pg_cancel_backend.
        why = f"after {options.timeout_s:g}s (--timeout)" if options.timeout_s else "by another session"
        result = Result(view.label, "failed", mode, time.monotonic() - started, message=f"cancelled {why}")
        out.warn(f"{view.label}: refresh {result.message}; the view keeps its previous contents")
        return _recorded(target, conn, view, result, started_wall, options)
    except psycopg.Error as exc:
        result = Result(view.label, "failed", mode, time.monotonic() - started, message=db.describe(exc, target))
        out.warn(f"{view.label}: refresh failed: {result.message}; the view keeps its previous contents")
        return _recorded(target, conn, view, result, started_wall, options)
    outcome = "refreshed" if view.populated else "populated"
    result = Result(view.label, outcome, mode, time.monotonic() - started, max(int(rows[0]), 0) if rows else None)
    note = " (first population: plain, since CONCURRENTLY needs a populated view)" if not view.populated else ""
    out.info(f"{view.label}: {outcome} {mode} in {result.seconds:.1f}s, {result.rows} rows{note}")
    return _recorded(target, conn, view, result, started_wall, options)


def _with_retries(conn: psycopg.Connection, statement: sql.Composable, view: View, options: Options,
                  out: Output) -> None:
    """Wait at most lock_timeout for the view's lock (held by DDL, VACUUM or ANALYZE), retrying with backoff."""
    def again(exc: BaseException, attempt: int, delay: float) -> None:
        out.warn(f"{view.label}: could not lock the view within {options.lock_timeout_s:g}s; "
                 f"retrying in {delay:.1f}s")

    locked(conn, statement, options.lock_timeout_s, options.backoff, again)


def _recorded(target: Target, conn: psycopg.Connection | None, view: View, result: Result, started_wall: float,
              options: Options) -> Result:
    """One history row per refresh, and only the newest ``keep`` rows of each view: on the refresh's
    own session, or on a new one where there is none or the refresh lost it."""
    if not options.record:
        return result
    row = (result.view, started_wall, result.seconds, result.rows, result.mode, result.outcome,
           result.message if result.outcome == "failed" else None, _version(), options.keep)
    try:
        if conn is not None and not conn.closed and not conn.broken:
            history.record(conn, *row)
        else:
            with db.connect(target, purpose="refresh history") as fresh:
                history.record(fresh, *row)
    except (DbtuneError, psycopg.Error) as exc:
        result.message += f" (not recorded in {history.SCHEMA}.{history.HISTORY}: {exc})"
    return result

def status(target: Target, names: list[str] | None = None, *, all_views: bool = False,
           out: Output | None = None) -> list[dict[str, Any]]:
    """Each view's last refresh, its age, duration and rows, and whether it can refresh concurrently.

    Reads only (one READ ONLY transaction), so a hot standby answers from its replica of the history.
    """
    out = out or Output()
    with db.connect(target, purpose="refresh status", autocommit=False) as conn:
        conn.read_only = True
        views = find_views(conn, names, all_views)
        state = history.state(conn)
        if (problem := state.problem(writing=False)) is not None:
            out.warn(f"no refresh history: {problem}")
        last = history.last(conn, [v.label for v in views]) if state.readable else {}
        rows = []
        for view in views:
            _, finished, age, duration, count, mode, outcome, _ = last.get(view.label, (None,) * 8)
            warnings = []
            why = view.why_not_concurrently()
            if view.key and view.populated and _nulls_in_key(conn, view):
                warnings.append(f"NULLs in its unique key ({', '.join(view.key_columns)}): rows with a NULL key "
                                "are deleted and inserted again by every concurrent refresh")
            rows.append({"view": view.label, "populated": view.populated,
                         "last_refresh": finished.isoformat(timespec="seconds") if finished else None,
                         "age_s": round(age, 1) if age is not None else None,
                         "duration_s": round(duration / 1000, 3) if duration is not None else None,
                         "rows": count, "mode": mode, "concurrently": why is None, "why_not": why,
                         "unique_key": view.key, "warnings": warnings, "history": state.readable})
        return rows


def _nulls_in_key(conn: psycopg.Connection, view: View) -> bool:
    condition = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in view.key_columns)
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(view.ident, condition)
    return bool(conn.execute(query).fetchone()[0])  # type: ignore[index]


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def age_text(seconds: float | None) -> str:
    return "-" if seconds is None else _age(seconds)


def _version() -> str:
    try:
        return metadata.version("dbtune")
    except metadata.PackageNotFoundError:
        return "unknown"


def as_dict(result: Result) -> dict[str, Any]:
    return asdict(result)
