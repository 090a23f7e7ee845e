"""What the engine reads from the server: an index's facts, who builds on a table, who stalls a build.

Reads only, from what every role can see; where a missing privilege hides detail
(another role's session state, age and query), the reading says so once a run
(PRIVILEGE_HINT) and still decides on what it can see.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from ..core import db
from ..core.errors import Blocker, DbtuneError
from ..core.settings import Target
from ..sqltext.statements import IndexStatement
from .options import IndexInfo, OnlineOptions

_INDEX_INFO = """
SELECT c.oid, n.nspname, c.relname, i.indisvalid, tn.nspname, t.relname,
       (SELECT conname FROM pg_constraint WHERE conindid = c.oid LIMIT 1), c.relkind = 'I'
FROM pg_class c
JOIN pg_index i ON i.indexrelid = c.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE c.oid = to_regclass(%s)
"""

# Sessions building an index on a table (CREATE INDEX and REINDEX, concurrent or not), from
# what every role can see: pg_stat_progress_create_index shows another role's build only as a
# pid (its table, command and phase need pg_read_all_stats), but pg_locks shows the lock a build
# holds on its table for its whole length (SHARE UPDATE EXCLUSIVE for a concurrent build, held at
# session level between its transactions; SHARE for a plain one).  BUILDING_ON is that
# condition on a table oid; sql/monitoring/invalid_indexes.sql's being_built is the same test.
BUILDING_ON = """
SELECT l.pid FROM pg_locks l JOIN pg_stat_progress_create_index p ON p.pid = l.pid
WHERE l.locktype = 'relation' AND l.relation = {table} AND l.granted
  AND l.mode IN ('ShareUpdateExclusiveLock', 'ShareLock')
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.pid <> pg_backend_pid()
"""

_OTHER_BUILDS = f"""
SELECT p.pid, coalesce(p.command, 'an index build'), coalesce(p.phase, 'its phase hidden'),
       coalesce(a.usename, '?')
FROM pg_stat_progress_create_index p LEFT JOIN pg_stat_activity a ON a.pid = p.pid
WHERE p.pid IN ({BUILDING_ON.format(table="to_regclass(%s)")}) AND NOT p.pid = ANY(%s)
"""

# Whether this role may see a session's state, transaction age and query: its own role's (and
# those it inherits), or everyone's with pg_read_all_stats (PostgreSQL's HAS_PGSTAT_PERMISSIONS).
# Without it pg_stat_activity shows only the pid, the role and the database.
_HIDDEN = ("NOT (coalesce(pg_has_role(usesysid, 'USAGE'), false) "
           "OR pg_has_role('pg_read_all_stats', 'USAGE'))")

_SESSION_COLUMNS = f"""pid, coalesce(application_name, ''), coalesce(state, ''),
       extract(epoch FROM now() - xact_start)::float8, coalesce(query, ''), coalesce(usename, ''), {_HIDDEN}"""

_SESSIONS = f"""
SELECT {_SESSION_COLUMNS}
FROM pg_stat_activity
WHERE pid = ANY(%s)
"""

# Sessions that stall a concurrent build: idle in transaction, or holding a snapshot
# for long (CREATE INDEX CONCURRENTLY waits for every older snapshot in the database).
# Another role's session whose age this role cannot see counts when it has a transaction
# open (its virtualxid lock, which pg_locks shows to everyone).
_STALLERS = f"""
SELECT {_SESSION_COLUMNS}
FROM pg_stat_activity a
WHERE datname = current_database()
  AND pid <> pg_backend_pid() AND NOT pid = ANY(%s)
  AND ((xact_start IS NOT NULL
        AND (state LIKE 'idle in transaction%%' OR now() - xact_start > make_interval(secs => %s)))
       OR ({_HIDDEN} AND usesysid IS NOT NULL  -- background workers (autovacuum) hold no snapshot a build waits for
           AND EXISTS (SELECT 1 FROM pg_locks l
                       WHERE l.pid = a.pid AND l.locktype = 'virtualxid' AND l.granted)))
ORDER BY xact_start
"""

PRIVILEGE_HINT = ("this role cannot see other roles' sessions in full (their state, transaction age and query): "
                  "grant it pg_read_all_stats to see them; blockers are still found and named by pid and role")


_REINDEX_LEFTOVER = re.compile(r"^(?P<base>.*)_cc(new|old)\d*$")


def reindex_leftover_of(name: str) -> str | None:
    """The index a failed REINDEX CONCURRENTLY was rebuilding, when ``name`` is one of its leftovers
    (``<base>_ccnew`` or ``_ccold``, with a number when taken; PostgreSQL shortens ``<base>`` so the
    whole fits in 63 bytes)."""
    m = _REINDEX_LEFTOVER.match(name)
    return m.group("base") if m else None


def ident(schema: str | None, name: str) -> sql.Composable:
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)


def index_info(conn: psycopg.Connection, schema: str | None, name: str) -> IndexInfo | None:
    regclass = ident(schema, name).as_string(conn)
    row = conn.execute(_INDEX_INFO, [regclass]).fetchone()
    return IndexInfo(*row) if row else None


def table_of(conn: psycopg.Connection, st: IndexStatement) -> tuple[str, str] | None:
    """The table a statement works on, schema-qualified as the server resolves it; None when absent."""
    if st.verb == "create":
        assert st.table is not None
        row = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(%s)", [ident(st.table_schema, st.table).as_string(conn)]).fetchone()
    else:
        info = index_info(conn, st.schema, st.name)
        row = (info.table_schema, info.table) if info else None
    return (row[0], row[1]) if row else None


def is_partitioned(conn: psycopg.Connection, table: tuple[str, str]) -> bool:
    row = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
                       [ident(*table).as_string(conn)]).fetchone()
    return bool(row and row[0] == "p")


def read_blockers(conn: psycopg.Connection, pids: list[int]) -> list[Blocker]:
    return [_blocker(r) for r in conn.execute(_SESSIONS, [pids]).fetchall()]


def _blocker(row: tuple[Any, ...]) -> Blocker:
    return Blocker(pid=row[0], application=row[1], state=row[2], xact_age_s=row[3], query=row[4], role=row[5],
                   hidden=bool(row[6]))


def other_builds(conn: psycopg.Connection, table: tuple[str, str],
                 own_pids: set[int]) -> list[tuple[int, str, str, str]]:
    """Other sessions' index builds on ``table``: (pid, command, phase, role), what this role may see of them."""
    return conn.execute(_OTHER_BUILDS, [ident(*table).as_string(conn), list(own_pids)]).fetchall()


def note_hidden(options: OnlineOptions, blockers: list[Blocker]) -> None:
    """Say once per run what a missing privilege hides (it costs detail, never a decision)."""
    if any(b.hidden for b in blockers) and PRIVILEGE_HINT not in options.notes:
        options.notes.add(PRIVILEGE_HINT)
        options.out.warn(PRIVILEGE_HINT)


def warn_before_builds(conn: psycopg.Connection, options: OnlineOptions, own_pids: set[int]) -> None:
    """Before builds start: a server version known to build bad indexes, and sessions that will stall them."""
    out = options.out
    version = conn.info.server_version
    if 140000 <= version < 140004:
        out.warn("PostgreSQL 14.0 to 14.3 can build concurrent indexes that miss rows "
                 "(fixed in 14.4): upgrade, or REINDEX the indexes built on this server")
    rows = conn.execute(_STALLERS, [list(own_pids), options.old_transaction_s]).fetchall()
    stallers = [_blocker(r) for r in rows if r[0] not in options.warned]
    for blocker in stallers:
        options.warned.add(blocker.pid)
        if not blocker.hidden:
            out.warn(f"a concurrent build waits for every older transaction; this one may stall it: "
                     f"{blocker.describe()}")
    if hidden := [b for b in stallers if b.hidden]:
        out.warn(f"a concurrent build waits for every older transaction; {len(hidden)} session(s) of "
                 "other roles have one open now, of an age this role cannot see: "
                 + "; ".join(b.describe() for b in hidden[:5]) + ("; ..." if len(hidden) > 5 else ""))
        note_hidden(options, hidden)


def cancel(target: Target, pid: int) -> None:
    """Cancel one of our own statements from a new session, best effort."""
    try:
        with db.connect(target, purpose="cancel") as conn:
            conn.execute("SELECT pg_cancel_backend(%s)", [pid])
    except (DbtuneError, psycopg.Error):
        pass
