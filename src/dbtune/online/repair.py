"""Repair around a build: INVALID leftovers dropped, a same-named index compared, another session's build waited for.

A failed or cancelled CREATE INDEX CONCURRENTLY leaves an INVALID index that
``IF NOT EXISTS`` would silently accept and every write keeps maintaining, and a
failed REINDEX CONCURRENTLY leaves ``_ccnew``/``_ccold`` ones: they are dropped
(concurrently) before a build and after a failed one.  An INVALID index is also
what another session's build in progress looks like, so that build is waited for
first.  A valid index of the requested name is kept only if it is the index asked for.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from ..core import db
from ..core.errors import BuildBlocked, DbtuneError
from ..core.retry import set_lock_timeout
from ..core.settings import Target
from ..sqltext.statements import IndexStatement, retarget
from .catalog import cancel, ident, index_info, other_builds, read_blockers, reindex_leftover_of
from .monitor import Monitor
from .options import IndexInfo, OnlineOptions

_INVALID_ON_TABLE = """
SELECT c.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass(%s) AND NOT i.indisvalid
"""


class Repair:
    """The repairs of one engine run: on its options, its own sessions, and its way to open a build connection."""

    def __init__(self, target: Target, options: OnlineOptions, own_pids: set[int],
                 connect: Callable[[], psycopg.Connection]) -> None:
        self.target = target
        self.options = options
        self.out = options.out
        self.own_pids = own_pids
        self.connect = connect

    def after_failure(self, conn: psycopg.Connection, st: IndexStatement, table: tuple[str, str],
                      monitor: Monitor) -> str:
        """Clean up after a failed statement; the words to add to its error message."""
        opened = None
        if conn.closed or conn.broken:
            # The build's session is gone (terminated, or the network): clean up from a new one.
            try:
                conn = opened = self.connect()
            except DbtuneError:
                return "; an INVALID index may be left behind: the next dbtune apply repairs it"
        try:
            if st.verb == "drop":
                info = index_info(conn, st.schema, st.name)
                if info is not None and not info.valid:
                    return (f"; {st.label} is now INVALID (queries no longer use it, writes still maintain it):"
                            " run the rollback again to finish dropping it")
                return ""
            return left_behind(self.cleanup_after_failure(conn, st, table, monitor))
        except psycopg.Error as exc:
            return f"; cleaning up failed too ({db.describe(exc, self.target)}): the next dbtune apply repairs it"
        finally:
            if opened is not None:
                opened.close()

    def leftovers(self, conn: psycopg.Connection, table: tuple[str, str], name: str,
                  include_self: bool) -> list[str]:
        """INVALID indexes on ``table`` left by failed builds of ``name``.

        A failed REINDEX CONCURRENTLY leaves ``<name>_ccnew`` or ``_ccold`` (with a
        number when taken); PostgreSQL shortens ``<name>`` so the whole fits in 63 bytes.
        """
        found = []
        for (candidate,) in conn.execute(_INVALID_ON_TABLE, [ident(*table).as_string(conn)]):
            if include_self and candidate == name:
                found.append(candidate)
                continue
            base = reindex_leftover_of(candidate)
            if base is not None and (base == name or (name.startswith(base) and len(candidate.encode()) >= 62)):
                found.append(candidate)
        return found

    def drop_leftovers(self, conn: psycopg.Connection, table: tuple[str, str], name: str, monitor: Monitor,
                       st: IndexStatement, *, include_self: bool) -> list[str]:
        """Drop INVALID indexes named ``name`` (or its REINDEX CONCURRENTLY leftovers)."""
        schema = table[0]
        invalid = self.leftovers(conn, table, name, include_self)
        if invalid:
            self.wait_for_other_builds(conn, table, st)
            invalid = self.leftovers(conn, table, name, include_self)  # its build may have finished it
        for leftover in invalid:
            self.out.warn(f"{schema}.{leftover} is INVALID (left by a failed build); dropping it concurrently")
            drop = IndexStatement(sql=sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                ident(schema, leftover)).as_string(conn), verb="drop", name=leftover, schema=schema,
                table=None, table_schema=None, concurrently=True, source=st.source)
            monitor.watch(db.pid(conn), drop)
            try:
                conn.execute(drop.sql)  # type: ignore[arg-type]
            except psycopg.errors.QueryCanceled:
                watch = monitor.unwatch(db.pid(conn))
                blockers = watch.cancelled_for if watch and watch.cancelled_for else []
                raise BuildBlocked(f"could not drop the INVALID leftover {schema}.{leftover}: waited "
                                   f"{watch.waited_s if watch else 0:.0f}s for "
                                   f"{'; '.join(b.describe() for b in blockers) or 'another session'}",
                                   index=st.label, blockers=blockers,
                                   waited_s=watch.waited_s if watch else 0.0) from None
            finally:
                monitor.unwatch(db.pid(conn))
        return invalid

    def cleanup_after_failure(self, conn: psycopg.Connection, st: IndexStatement, table: tuple[str, str],
                              monitor: Monitor) -> list[str]:
        """After a failed build, drop what it left; return what could not be dropped."""
        left = []
        for name in self.leftovers(conn, table, st.name, include_self=st.verb == "create"):
            if not self.drop_quietly(conn, table[0], name, monitor, st):
                left.append(f"{table[0]}.{name}")
        return left

    def drop_quietly(self, conn: psycopg.Connection, schema: str, name: str, monitor: Monitor,
                     st: IndexStatement) -> bool:
        """DROP INDEX CONCURRENTLY, bounded by max-wait (or 30 s); True when it is gone."""
        statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(ident(schema, name))
        pid = db.pid(conn)
        bound = self.options.max_wait if self.options.max_wait is not None else 30.0
        monitor.watch(pid, st)
        timer = threading.Timer(bound + 5.0, lambda: cancel(self.target, pid))
        timer.start()
        try:
            conn.execute(statement)
            return True
        except psycopg.errors.QueryCanceled:
            return False
        except psycopg.Error as exc:
            self.out.warn(f"could not drop {schema}.{name}: {db.describe(exc, self.target)}")
            return False
        finally:
            timer.cancel()
            monitor.unwatch(pid)

    def same_index(self, conn: psycopg.Connection, st: IndexStatement, table: tuple[str, str],
                   existing: IndexInfo) -> None:
        """Keep an existing valid index of the requested name only if it is the requested index.

        The server says what each is: the requested definition is built on an empty
        temporary copy of the table (in a transaction that is rolled back, so nothing
        stays; LIKE takes only ACCESS SHARE on the table, bounded by lock_timeout) and
        both are compared as pg_get_indexdef prints them, past the names.
        """
        if (existing.table_schema, existing.table) != table:
            raise DbtuneError(f"{st.label}: an index of that name already exists on "
                              f"{existing.table_schema}.{existing.table}", statement=st.sql)
        have = conn.execute("SELECT pg_get_indexdef(%s)", [existing.oid]).fetchone()[0]  # type: ignore[index]
        try:
            with conn.transaction(force_rollback=True):
                conn.execute(set_lock_timeout(self.options.lock_timeout_s))
                conn.execute(sql.SQL("CREATE TEMPORARY TABLE dbtune_probe (LIKE {}) ON COMMIT DROP").format(
                    ident(*table)))
                probe = retarget(st, "dbtune_probe_index", ("pg_temp", "dbtune_probe"), concurrently=False,
                                 only=False)
                conn.execute(probe.sql)  # type: ignore[arg-type]
                wanted = conn.execute("SELECT pg_get_indexdef('pg_temp.dbtune_probe_index'::regclass)").fetchone()[0]  # type: ignore[index]  # noqa: E501
        except psycopg.Error as exc:
            self.out.warn(f"{st.label} exists and is valid; could not compare it with the migration's definition "
                          f"({db.describe(exc, self.target)}), so it is kept as it is")
            return
        if _definition(have) == _definition(wanted):
            return
        asked = re.sub(r"(?i)^(CREATE (UNIQUE )?INDEX )dbtune_probe_index ON \S+", lambda m: m.group(1) + st.name
                       + f" ON {table[0]}.{table[1]}", wanted)
        words = f"{st.label} already exists with another definition: it is `{have}`, the migration asks for `{asked}`"
        if re.search(r"\bIF\s+NOT\s+EXISTS\b", st.sql, re.IGNORECASE):
            self.out.warn(f"{words}; kept, because the statement says IF NOT EXISTS")
            return
        raise DbtuneError(f"{words}: rename or drop the existing index, or change the migration", statement=st.sql)

    def wait_for_other_builds(self, conn: psycopg.Connection, table: tuple[str, str], st: IndexStatement) -> None:
        """Never drop an INVALID index another session is still building: wait for its build first.

        An INVALID index is also what a build in progress looks like; a second run
        that dropped it would deadlock with (or wait on) the first.  Any build on the
        table counts, since DROP INDEX CONCURRENTLY would wait for it anyway.
        """
        started = time.monotonic()
        announced: set[int] = set()
        while True:
            rows = other_builds(conn, table, self.own_pids)
            if not rows:
                return
            waited = time.monotonic() - started
            blockers = read_blockers(conn, [r[0] for r in rows])
            for pid, command, phase, role in rows:
                if pid not in announced:
                    announced.add(pid)
                    self.out.warn(f"{st.label}: pid {pid} (role {role}) is running {command} on "
                                  f"{table[0]}.{table[1]} ({phase}); waiting for it to finish before touching "
                                  "the INVALID index left there")
            if self.options.max_wait is not None and waited >= self.options.max_wait:
                raise BuildBlocked(f"{st.label}: gave up after waiting {waited:.0f}s (--max-wait) for "
                                   f"{'; '.join(b.describe() for b in blockers)}, which is still building on "
                                   f"{table[0]}.{table[1]}", index=st.label, blockers=blockers, waited_s=waited)
            if self.options.lock is not None:
                self.options.lock.check()
            time.sleep(self.options.poll_interval)


def _definition(indexdef: str) -> tuple[bool, str]:
    """Uniqueness and everything from USING on: what an index is, without its name and table."""
    unique = indexdef.upper().startswith("CREATE UNIQUE")
    return unique, indexdef.split(" USING ", 1)[-1]


def left_behind(left: list[str]) -> str:
    if not left:
        return ""
    return (f"; the INVALID index {', '.join(left)} could not be dropped now (another session holds the table) "
            "and will be removed by the next dbtune apply")
