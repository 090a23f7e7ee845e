"""Fixtures for servers and databases (loaded as a plugin from conftest)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from dbtune.core.errors import ServerError
from dbtune.servers.throwaway import find_bindir, throwaway_server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--pg", default=os.environ.get("DBTUNE_TEST_PG", "all"),
                     help="servers to test against: embedded, system, all, or a DSN of an existing server")


def _kinds(config: pytest.Config) -> list[str]:
    choice = config.getoption("--pg")
    if choice != "all":
        return [choice]
    kinds = ["embedded"]
    with contextlib.suppress(ServerError):
        find_bindir("system")
        kinds.append("system")
    return kinds


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pg_server" in metafunc.fixturenames:
        kinds = _kinds(metafunc.config)
        ids = [k if k in ("embedded", "system") else "dsn" for k in kinds]
        metafunc.parametrize("pg_server", kinds, ids=ids, indirect=True, scope="session")


@dataclass
class Server:
    """A server under test: hands out fresh databases on it."""

    admin_dsn: str
    major: int

    def create_database(self) -> str:
        name = f"t_{secrets.token_hex(5)}"
        # FILE_COPY (15+) copies template1's few files after a checkpoint, which costs next to nothing
        # on the suite's servers (fsync off, little dirty data): about 40 ms a database against 115 ms
        # for the default WAL_LOG, which writes the template into the WAL block by block.
        strategy = sql.SQL(" STRATEGY FILE_COPY" if self.major >= 15 else "")
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}{}").format(sql.Identifier(name), strategy))
        return self.dsn(name)

    def drop_database(self, dsn: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def dsn(self, dbname: str) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.admin_dsn)
        params["dbname"] = dbname
        return psycopg.conninfo.make_conninfo(**params) if "://" not in self.admin_dsn else \
            self.admin_dsn.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    kind = request.param
    if kind in ("embedded", "system"):
        with throwaway_server(kind) as server:
            yield _describe(server.dsn())
    else:
        yield _describe(kind)


def _describe(dsn: str) -> Server:
    with psycopg.connect(dsn) as conn:
        major = conn.info.server_version // 10000
    return Server(admin_dsn=dsn, major=major)


@pytest.fixture
def database(pg_server: Server) -> Iterator[str]:
    """A fresh, empty database (a postgresql:// URL); dropped after the test."""
    dsn = pg_server.create_database()
    try:
        yield dsn
    finally:
        pg_server.drop_database(dsn)


@dataclass
class OwnedDatabase:
    """A database owned by a non-superuser role, as most teams migrate: the application's owner.

    ``url`` logs in as that role (no superuser, no pg_read_all_stats, no CREATEROLE);
    ``admin_url`` is the same database as the suite's superuser, for setting the scene
    (other roles' sessions, server settings) and for looking behind dbtune's back.
    """

    url: str
    admin_url: str
    role: str
    password: str
    server: Server

    def other_role(self, *, member_of_owner: bool = False) -> str:
        """A URL for a further login role on this database (a second team member, or the application):
        with ``member_of_owner`` it may act as the owner, else it only reads and writes the owner's tables."""
        name = f"r_{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name),
                                                                           sql.Literal(password)))
            if member_of_owner:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(self.role), sql.Identifier(name)))
            else:
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(name)))
                conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public "
                                     "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}").format(
                    sql.Identifier(self.role), sql.Identifier(name)))
        self._roles.append(name)
        return _with_login(self.admin_url, name, password)

    def __post_init__(self) -> None:
        self._roles: list[str] = []


def _with_login(url: str, user: str, password: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(url)
    host, port, dbname = params.get("host", "127.0.0.1"), params.get("port", "5432"), params["dbname"]
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(dbname, safe='')}"


@pytest.fixture
def owned_database(pg_server: Server) -> Iterator[OwnedDatabase]:
    """A fresh database owned by a fresh non-superuser login role; both dropped after the test."""
    role = f"owner_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
    admin_url = pg_server.create_database()
    dbname = psycopg.conninfo.conninfo_to_dict(admin_url)["dbname"]
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(role)))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # PostgreSQL 15+ gives the public schema to the database's owner; 14 and older to everyone.
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(role)))
    owned = OwnedDatabase(url=_with_login(admin_url, role, password), admin_url=admin_url, role=role,
                          password=password, server=pg_server)
    try:
        yield owned
    finally:
        pg_server.drop_database(admin_url)
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
            for name in [*owned._roles, role]:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
