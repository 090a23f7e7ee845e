"""Fixtures for servers and databases (loaded as a plugin from conftest)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from dbtune.errors import ServerError
from dbtune.server import find_bindir, throwaway_server


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
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
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
