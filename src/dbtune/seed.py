"""Fill the reference schema with realistic, deterministic test data.

The performance migrations are only worth something if they are tried on data
shaped like production: skewed activity, mostly settled orders with a small
open tail, few overdue payments, searchable product names.  ``seed`` builds
that data inside the server (``INSERT ... SELECT`` over ``generate_series``,
from the files in ``sql/seed``), so a million orders load in seconds rather
than hours of row-by-row inserts.

Every value is derived from its row number by hashing, and the history ends
at a fixed reference date, so the same scale gives the same rows on every run
and on every supported PostgreSQL version: plans and timings measured on one
machine can be reproduced on another.

Scale 1 is about a million orders (see ``sql/seed/00_setup.sql`` for the other
tables' sizes); tests use scales of a few thousandths.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import psycopg
import sqlparse
from psycopg import sql

from .core.errors import ConfigError, DbtuneError
from .core.resources import sql_path

if TYPE_CHECKING:
    from .core.output import Output

# The tables the seed fills, in load order (referenced tables first), with the
# file that fills each.
SEED_FILES: tuple[tuple[str, str], ...] = (
    ("users", "10_users.sql"),
    ("retailers", "20_retailers.sql"),
    ("vendors", "30_vendors.sql"),
    ("products", "40_products.sql"),
    ("vendor_products", "50_vendor_products.sql"),
    ("orders", "60_orders.sql"),
    ("payments", "70_payments.sql"),
    ("credit_ledgers", "80_credit_ledgers.sql"),
    ("whatsapp_messages", "90_whatsapp_messages.sql"),
    ("audit_logs", "95_audit_logs.sql"),
)
SEEDED_TABLES: tuple[str, ...] = tuple(table for table, _ in SEED_FILES)
SETUP_FILE = "00_setup.sql"
FINISH_FILE = "99_finish.sql"


def seed(conn: psycopg.Connection, scale: float = 1.0, *, replace: bool = False,
         out: Output | None = None, lock_timeout_s: float = 5.0) -> dict[str, int]:
    """Seed the reference schema at ``scale``; return the rows loaded per table.

    Refuses (DbtuneError) when any seeded table already holds rows, unless
    ``replace`` is true, in which case they are truncated first.  Loads,
    ANALYZEs and commits in one transaction: on any error nothing is left
    behind.  The tables' foreign keys are set aside during the load and added
    back (so validated) at the end; meanwhile the transaction holds ACCESS
    EXCLUSIVE locks on the seeded tables, so seed a database nobody else uses.
    """
    scale = _check_scale(scale)
    counts: dict[str, int] = {}
    started = time.monotonic()
    try:
        with conn.transaction():
            # The load locks the seeded tables; never queue behind (and in front of)
            # other sessions for long.
            conn.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(lock_timeout_s * 1000)}ms"])
            _check_schema(conn)
            occupied = _occupied_tables(conn)
            if occupied and not replace:
                raise DbtuneError(
                    f"refusing to seed: {', '.join(occupied)} already hold rows. "
                    "The seed never overwrites data by accident: use an empty database, "
                    "or pass --replace to truncate the seeded tables first",
                    tables=occupied)
            if occupied:
                if out:
                    out.info(f"truncating {', '.join(occupied)}")
                # No CASCADE: a table outside the reference schema that
                # references these must make the truncate fail, not be emptied.
                conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in SEEDED_TABLES)))
            foreign_keys = _drop_foreign_keys(conn)
            # The SQL files read the scale from this transaction-local setting.
            conn.execute("SELECT set_config('dbtune.seed_scale', %s, true)", [repr(scale)])
            _run_file(conn, SETUP_FILE)
            for table, name in SEED_FILES:
                t0 = time.monotonic()
                counts[table] = _run_file(conn, name)
                if out:
                    out.info(f"seeded {table}: {counts[table]:,} rows in {time.monotonic() - t0:.1f}s")
            t0 = time.monotonic()
            _run_file(conn, FINISH_FILE)
            if out:
                out.info(f"analyzed the seeded tables in {time.monotonic() - t0:.1f}s")
            t0 = time.monotonic()
            _add_foreign_keys(conn, foreign_keys)
            if out:
                out.info(f"validated {len(foreign_keys)} foreign keys in {time.monotonic() - t0:.1f}s")
        # transaction() only commits what it began: when the caller already had
        # a transaction open, it made a savepoint, and the seed still has to land.
        if not conn.autocommit:
            conn.commit()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise DbtuneError(f"the reference schema is missing or out of date ({_first_line(exc)}); "
                          "run `dbtune apply` first") from exc
    except psycopg.errors.LockNotAvailable as exc:
        raise DbtuneError(f"seeding failed: another session is using the reference tables (no lock within "
                          f"{lock_timeout_s:g}s: {_first_line(exc)}); seed a database nobody else uses",
                          sqlstate=exc.sqlstate) from exc
    except psycopg.Error as exc:
        raise DbtuneError(f"seeding failed: {_first_line(exc)}", sqlstate=exc.sqlstate) from exc
    if out:
        total = sum(counts.values())
        out.info(f"seeded {total:,} rows at scale {scale:g} in {time.monotonic() - started:.1f}s")
    return counts


def _check_scale(scale: float) -> float:
    if isinstance(scale, bool):
        raise ConfigError(f"seed scale must be a number, not {scale!r}")
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ConfigError(f"seed scale must be a number, not {scale!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"seed scale must be greater than 0 (1 = about a million orders), not {scale!r}")
    return value


def _check_schema(conn: psycopg.Connection) -> None:
    missing = [t for t in SEEDED_TABLES
               if conn.execute("SELECT to_regclass(%s) IS NULL", [t]).fetchone()[0]]
    if missing:
        raise DbtuneError(f"the reference schema is missing (no table {', '.join(missing)} "
                          "on the search_path); run `dbtune apply` first", tables=missing)


def _occupied_tables(conn: psycopg.Connection) -> list[str]:
    occupied = []
    for table in SEEDED_TABLES:
        query = sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(table))
        if conn.execute(query).fetchone()[0]:
            occupied.append(table)
    return occupied


def _drop_foreign_keys(conn: psycopg.Connection) -> list[tuple[str, str, str, str]]:
    """Drop the seeded tables' foreign keys; return what it takes to add them back.

    Inside the seed's transaction: if anything fails they are never gone.
    """
    query = sql_path("seed", "foreign_keys.sql").read_text()
    keys = conn.execute(query, {"tables": list(SEEDED_TABLES)}).fetchall()
    for schema, table, name, _ in keys:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(schema, table), sql.Identifier(name)))
    return keys


def _add_foreign_keys(conn: psycopg.Connection, keys: list[tuple[str, str, str, str]]) -> None:
    # The definition is the server's own pg_get_constraintdef() text, so it
    # round-trips exactly (ON DELETE actions, DEFERRABLE, NOT VALID).  Adding
    # a key validates every row: the seed's consistency is checked for free.
    for schema, table, name, definition in keys:
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(schema, table), sql.Identifier(name), sql.SQL(definition)))


def _run_file(conn: psycopg.Connection, name: str) -> int:
    """Run one seed file's statements; return the last one's row count."""
    rowcount = 0
    with conn.cursor() as cur:
        for statement in sqlparse.split(sql_path("seed", name).read_text()):
            if sqlparse.format(statement, strip_comments=True).strip():
                cur.execute(statement)
                rowcount = cur.rowcount
    return rowcount


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    detail = getattr(getattr(exc, "diag", None), "message_detail", None)
    return f"{line} ({detail})" if detail else line
