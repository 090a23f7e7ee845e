"""What dbtune needs from a migration's own connection, whatever its driver.

Teams' env.py files connect through SQLAlchemy with psycopg 3, psycopg2 or
asyncpg.  dbtune's own sessions are psycopg 3; what it must know about the
migration's connection (its backend pid, its database, its search_path, how a
name resolves there) it asks the server in SQL through the driver's plain
DBAPI cursor, and the connection parameters come from the SQLAlchemy engine
URL, never from a driver's internals.  The queries here take no parameters
and contain no ``%``, so every paramstyle passes them through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

_PID_KEY = "dbtune.backend_pid"

# Which server and database a session reached.  The postmaster's start time and
# port tell two servers apart even on one host (inet_server_addr() is NULL over a
# Unix socket); nothing here needs a privilege.
IDENTITY = ("SELECT current_database(), pg_postmaster_start_time()::text, current_setting('port'), "
            "current_setting('search_path'), pg_backend_pid(), coalesce(inet_server_addr()::text, 'local')")


@dataclass(frozen=True)
class Identity:
    database: str
    started: str
    port: str
    search_path: str
    pid: int
    address: str

    def same_database(self, other: Identity) -> bool:
        return (self.database, self.started, self.port) == (other.database, other.started, other.port)

    def describe(self) -> str:
        return f"database {self.database} on the server at {self.address} port {self.port}"


def dbapi(connection: Any) -> Any:
    """The DBAPI connection under a SQLAlchemy Connection."""
    return connection.connection.dbapi_connection


def query_all(raw: Any, statement: str) -> list[tuple[Any, ...]]:
    """Run a parameterless statement on a DBAPI connection of any driver; its rows (none for a
    statement that returns none, such as RESET)."""
    cursor = raw.cursor()
    try:
        cursor.execute(statement)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description is not None else []
    finally:
        cursor.close()


def query_one(raw: Any, statement: str) -> tuple[Any, ...] | None:
    """Run a parameterless query on a DBAPI connection of any driver; its first row."""
    rows = query_all(raw, statement)
    return rows[0] if rows else None


def identity(raw: Any) -> Identity:
    row = query_one(raw, IDENTITY)
    assert row is not None
    return Identity(str(row[0]), str(row[1]), str(row[2]), str(row[3]), int(row[4]), str(row[5]))


def backend_pid(connection: Any) -> int:
    """The backend pid of a SQLAlchemy Connection, asked once per DBAPI connection."""
    info = connection.connection.info  # lives as long as the DBAPI connection
    if _PID_KEY not in info:
        row = query_one(dbapi(connection), "SELECT pg_backend_pid()")
        assert row is not None
        info[_PID_KEY] = int(row[0])
    return int(info[_PID_KEY])


def client_pid(raw: Any) -> int | None:
    """The backend pid the driver was told at start-up: the server's own on a direct connection,
    a number of the pooler's behind one (see pooler.py).  None when the driver does not say."""
    info = getattr(raw, "info", None)
    if isinstance(getattr(info, "backend_pid", None), int):  # psycopg 3
        return int(info.backend_pid)
    if callable(get := getattr(raw, "get_backend_pid", None)):  # psycopg2
        return int(get())
    driver = getattr(raw, "driver_connection", None)  # asyncpg, under SQLAlchemy's adapter
    if callable(get := getattr(driver, "get_server_pid", None)):
        return int(get())
    return None


def in_transaction_block(raw: Any) -> bool:
    """Is a transaction open on the server for this DBAPI connection?

    What the server sees decides, not the driver's mode: a migration that
    committed on its own (``op.execute("COMMIT")``, ``op.get_bind().commit()``)
    has no transaction open even though the connection is not in autocommit.
    libpq's transaction status (psycopg 3 and psycopg2 expose it as
    ``info.transaction_status``) and asyncpg's ``is_in_transaction()`` tell.
    """
    if getattr(raw, "autocommit", False):
        return False
    status = getattr(getattr(raw, "info", None), "transaction_status", None)
    if status is not None:
        return int(status) != 0  # PQTRANS_IDLE is 0: anything else is a block (or an error in one)
    driver = getattr(raw, "driver_connection", None)
    if driver is not None and hasattr(driver, "is_in_transaction"):
        return bool(driver.is_in_transaction())
    return True


def rendered(statement: str, parameters: Any, paramstyle: str) -> str | None:
    """The statement as the server receives it; None when it has bind parameters.

    For psycopg and psycopg2 (``format``/``pyformat``) SQLAlchemy doubles every ``%``
    of a statement it executes with (empty) parameters; the driver undoes that.
    """
    if parameters:
        return None
    if parameters is not None and paramstyle in ("format", "pyformat"):
        return statement.replace("%%", "%")
    return statement


def relation_of(raw: Any, schema: str | None, name: str) -> tuple[str, str] | None:
    """(schema, name) of a relation as the migration's connection resolves it (its search_path)."""
    regclass = sql.Literal((sql.Identifier(schema, name) if schema else sql.Identifier(name)).as_string())
    query = sql.SQL("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.oid = to_regclass({})").format(regclass).as_string()
    row = query_one(raw, query)
    return (str(row[0]), str(row[1])) if row else None


def search_path(raw: Any) -> str:
    row = query_one(raw, "SELECT current_setting('search_path')")
    return str(row[0]) if row else "public"
