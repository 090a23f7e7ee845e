"""dbtune.refresh_history: when each materialized view was refreshed, which PostgreSQL does not record.

``setup`` creates the table once, as the database's owner (`dbtune refresh
--setup`), and grants a cron role what recording needs; a refresh run never
creates anything, since PostgreSQL checks the CREATE privilege before it honours
IF NOT EXISTS and a cron role has none.  ``state`` reads from the catalog (which
every role may read) whether the table exists and what this role may do with it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ..core import db, setting_sources
from ..core.errors import ConfigError
from ..core.settings import Target

SCHEMA = "dbtune"
HISTORY = "refresh_history"
_SETUP_LOCK = 0x72656673 << 32  # "refs": two setups at once; apart from refresh's per-view keys ("refr")

_TABLE = """
CREATE TABLE dbtune.refresh_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    view_name       text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    duration_ms     double precision NOT NULL,
    rows_after      bigint,
    mode            text,
    outcome         text NOT NULL,
    error           text,
    dbtune_version  text NOT NULL,
    server_version  text NOT NULL
);
CREATE INDEX refresh_history_view_started ON dbtune.refresh_history (view_name, started_at DESC);
COMMENT ON TABLE dbtune.refresh_history IS 'Every materialized view refresh dbtune ran: PostgreSQL records none';
"""

_LAST = """
SELECT DISTINCT ON (view_name) view_name, finished_at, extract(epoch FROM now() - finished_at)::float8,
       duration_ms, rows_after, mode, outcome, error
FROM dbtune.refresh_history
WHERE view_name = ANY(%s) AND outcome <> 'failed'
ORDER BY view_name, finished_at DESC
"""


@dataclass(frozen=True)
class History:
    """What this role may do with dbtune.refresh_history, read from the catalog (which every role may)."""

    exists: bool
    readable: bool
    writable: bool
    standby: bool
    role: str

    def problem(self, *, writing: bool) -> str | None:
        """One line on why history cannot be read (or written), and how to set it up; None if it can."""
        if not self.exists:
            if self.standby:
                return (f"{SCHEMA}.{HISTORY} is not on this standby: it lives on the primary (created there with "
                        "dbtune refresh --setup) and replicates here")
            return (f"{SCHEMA}.{HISTORY} does not exist: create it once with dbtune refresh --setup "
                    "(as the database owner)")
        if writing and not self.writable:
            return (f"this role ({self.role}) may not write {SCHEMA}.{HISTORY}: its owner can run dbtune refresh "
                    f"--setup --grant {shlex.quote(self.role)}")
        if not self.readable:
            return (f"this role ({self.role}) may not read {SCHEMA}.{HISTORY}: its owner can run dbtune refresh "
                    f"--setup --grant {shlex.quote(self.role)}")
        return None


def state(conn: psycopg.Connection) -> History:
    row = conn.execute(
        "SELECT c.oid IS NOT NULL, "
        "       coalesce(has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'), false), "
        "       coalesce(has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') "
        "                AND has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'DELETE'), false), "
        "       pg_is_in_recovery(), current_user "
        "FROM (SELECT 1) one "
        "LEFT JOIN pg_namespace n ON n.nspname = %s "
        "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = %s AND c.relkind = 'r'",
        [SCHEMA, HISTORY]).fetchone()
    assert row is not None
    return History(*row)


def writable(conn: psycopg.Connection, what: str) -> None:
    """Refuse in one line where nothing can be written: a hot standby, or a read-only session."""
    standby, read_only, source = conn.execute(
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on', "
        "(SELECT source FROM pg_settings WHERE name = 'default_transaction_read_only')").fetchone()  # type: ignore[misc]
    if standby:
        raise ConfigError(f"this server is a hot standby, where nothing is written: {what} on the primary "
                          "(materialized views reach the standbys by replication)")
    if read_only:
        where = setting_sources.describe(source)  # how migrations name it too
        raise ConfigError(f"this session is read-only (default_transaction_read_only is on, set by {where}): "
                          f"{what} from a writable session")


def setup(target: Target, grant: list[str] | None = None) -> list[str]:
    """Create dbtune.refresh_history once (what exists is kept), and let ``grant`` roles record refreshes."""
    done = []
    with db.connect(target, purpose="refresh --setup", autocommit=False) as conn:
        writable(conn, "run dbtune refresh --setup")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_SETUP_LOCK])  # two setups at once
        # Checked first, created without IF NOT EXISTS: the schema may exist, given to this
        # role by CREATE SCHEMA ... AUTHORIZATION, where the database refuses this role CREATE.
        found = state(conn)
        try:
            if conn.execute("SELECT to_regnamespace(%s) IS NULL", [SCHEMA]).fetchone()[0]:  # type: ignore[index]
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
                done.append(f"created schema {SCHEMA}")
            if not found.exists:
                conn.execute(_TABLE)
                done.append(f"created {SCHEMA}.{HISTORY}")
            for role in grant or []:
                ident = sql.Identifier(role)
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(SCHEMA), ident))
                conn.execute(sql.SQL("GRANT SELECT, INSERT, DELETE ON {} TO {}").format(
                    sql.Identifier(SCHEMA, HISTORY), ident))
                done.append(f"{role} may record refreshes in {SCHEMA}.{HISTORY}")
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigError(f"this role may not set up {SCHEMA}.{HISTORY} ({db.describe(exc)}): run dbtune "
                              f"refresh --setup as the database owner, or have it run CREATE SCHEMA {SCHEMA} "
                              "AUTHORIZATION <this role> first") from None
        except psycopg.errors.UndefinedObject as exc:
            raise ConfigError(f"cannot grant: {db.describe(exc)}") from None
        conn.commit()
    return done or [f"{SCHEMA}.{HISTORY} is already set up"]


def last(conn: psycopg.Connection, labels: list[str]) -> dict[str, tuple[Any, ...]]:
    """Each view's last successful refresh: (label, finished, age s, duration ms, rows, mode, outcome, error)."""
    return {r[0]: r for r in conn.execute(_LAST, [labels])}


def record(conn: psycopg.Connection, label: str, started_wall: float, seconds: float, rows: int | None,
           mode: str | None, outcome: str, error: str | None, dbtune_version: str, keep: int) -> None:
    """One row for a refresh, and only the newest ``keep`` rows of the view (``conn`` in autocommit)."""
    conn.execute(
        "INSERT INTO dbtune.refresh_history (view_name, started_at, finished_at, duration_ms, rows_after, "
        "mode, outcome, error, dbtune_version, server_version) VALUES "
        "(%s, to_timestamp(%s), now(), %s, %s, %s, %s, %s, %s, current_setting('server_version'))",
        [label, started_wall, seconds * 1000, rows, mode, outcome, error, dbtune_version])
    conn.execute("DELETE FROM dbtune.refresh_history WHERE view_name = %s AND id NOT IN ("
                 "SELECT id FROM dbtune.refresh_history WHERE view_name = %s "
                 "ORDER BY started_at DESC LIMIT %s)", [label, label, keep])
