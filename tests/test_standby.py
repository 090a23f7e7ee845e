"""A real hot standby (pg_basebackup -R of a throwaway primary): `report` and `refresh --status` read it,
`refresh`, `refresh --setup` and `report --install-views` refuse it in one line, exit 2."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from dbtune.servers.throwaway import LocalServer, _free_port, _run_as, server_home, throwaway_server
from tests.fix_cli import OWN_MIGRATIONS, run_cli, scalar
from tests.fix_db import _kinds
from tests.test_online import wait_until

DB = "shop"
WATCHER, WATCHER_PASSWORD = "watcher", "watcher-pw"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pair" in metafunc.fixturenames:
        kinds = [k for k in _kinds(metafunc.config) if k in ("embedded", "system")]
        metafunc.parametrize("pair", kinds, indirect=True, scope="module")


@dataclass
class Pair:
    primary: LocalServer
    standby: LocalServer

    def url(self, server: LocalServer, user: str = "postgres", password: str | None = None) -> str:
        return f"postgresql://{user}:{password or server.password}@127.0.0.1:{server.port}/{DB}"

    def replayed(self) -> None:
        """Wait until the standby has replayed everything the primary wrote so far."""
        # The insert position: with synchronous_commit off (a throwaway server's), commits reach
        # the written WAL, and so the standby, a little later.
        lsn = scalar(self.url(self.primary), "SELECT pg_current_wal_insert_lsn()::text")
        wait_until(lambda: scalar(self.url(self.standby), "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]),
                   what="the standby to replay the primary's WAL")


@contextlib.contextmanager
def standby_of(primary: LocalServer) -> Iterator[LocalServer]:
    """A streaming hot standby of ``primary`` on its own port, copied over the primary's local socket."""
    base, _ = server_home(prefix="dbtune-standby-")
    standby = LocalServer(bindir=primary.bindir, base=base, port=_free_port(), password=primary.password)
    try:
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o700)
        standby.datadir.mkdir(mode=0o700)
        standby.logfile.touch()
        if user := _run_as():
            entry = pwd.getpwnam(user)
            for path in (base, standby.datadir, standby.logfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        standby._run(str(primary.bindir / "pg_basebackup"), "-h", str(primary.datadir), "-p", str(primary.port),
                     "-U", "postgres", "-D", str(standby.datadir), "-R", "-X", "stream", "--checkpoint=fast",
                     "--no-sync",
                     timeout=120)
        # The copy carries the primary's port and socket directory; later lines win.
        with (standby.datadir / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"\n# standby\nport = {standby.port}\nunix_socket_directories = '{standby.datadir}'\n")
        standby.start()
        yield standby
    finally:
        with contextlib.suppress(Exception):
            standby.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    with throwaway_server(request.param) as primary:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(WATCHER),
                                                                          sql.Literal(WATCHER_PASSWORD)))
        with standby_of(primary) as standby:
            both = Pair(primary, standby)
            with psycopg.connect(both.url(primary), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION pg_stat_statements")
                conn.execute("CREATE TABLE items (id int PRIMARY KEY, kind int)")
                conn.execute("INSERT INTO items SELECT g, g % 5 FROM generate_series(1, 1000) g")
                conn.execute('CREATE INDEX "Ix_Kind" ON items (kind)')
                conn.execute("CREATE INDEX ix_kind_again ON items (kind)")
                conn.execute("CREATE MATERIALIZED VIEW kinds AS SELECT kind, count(*) AS n FROM items GROUP BY kind")
                conn.execute("CREATE UNIQUE INDEX kinds_kind ON kinds (kind)")
            yield both


def test_the_report_reads_a_standby_without_views(pair: Pair) -> None:
    pair.replayed()
    url = pair.url(pair.standby)
    assert scalar(url, "SELECT pg_is_in_recovery()")
    result = run_cli("report", "health", "--format", "json", "--database-url", url)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["standby"] is True and any("hot standby" in note for note in found["notes"])
    assert {f["fix"] for f in found["findings"] if f["section"] == "duplicate-indexes"} == {
        "DROP INDEX CONCURRENTLY public.ix_kind_again"}
    text = run_cli("report", "--database-url", url)
    assert text.exit_code == 0 and "(hot standby)" in text.stdout.splitlines()[0], text.output
    # A role with no privilege at all reads it too, and is told what it misses.
    watcher = run_cli("report", "health", "--format", "json", "--database-url",
                      pair.url(pair.standby, WATCHER, WATCHER_PASSWORD))
    assert watcher.exit_code == 0, watcher.output
    assert any("grant it pg_monitor" in note for note in json.loads(watcher.stdout)["notes"])


def test_the_views_are_installed_on_the_primary_not_the_standby(pair: Pair) -> None:
    refused = run_cli("report", "--install-views", "--database-url", pair.url(pair.standby))
    assert refused.exit_code == 2, refused.output
    [line] = refused.stderr.strip().splitlines()
    assert "hot standby" in line and "primary" in line


def test_refresh_status_on_a_standby_says_where_history_lives_then_reads_it(pair: Pair) -> None:
    standby = pair.url(pair.standby)
    assert scalar(pair.url(pair.primary), "SELECT to_regclass('dbtune.refresh_history') IS NULL")
    pair.replayed()
    before = run_cli("refresh", "kinds", "--status", "--database-url", standby)
    assert before.exit_code == 0, before.output
    [line] = before.stderr.strip().splitlines()
    assert "lives on the primary" in line and "unknown" in before.stdout

    for args in (["kinds"], ["--setup"]):
        refused = run_cli("refresh", *args, "--database-url", standby)
        assert refused.exit_code == 2, refused.output
        [line] = refused.stderr.strip().splitlines()
        assert "hot standby" in line and "on the primary" in line and "Traceback" not in refused.output

    primary = pair.url(pair.primary)
    assert run_cli("refresh", "--setup", "--database-url", primary).exit_code == 0
    assert run_cli("refresh", "kinds", "--database-url", primary).exit_code == 0
    pair.replayed()
    after = run_cli("refresh", "kinds", "--status", "--format", "json", "--database-url", standby)
    assert after.exit_code == 0 and after.stderr == "", after.output
    [row] = json.loads(after.stdout)
    assert row["last_refresh"] is not None and row["rows"] == 5 and row["concurrently"] is True


def test_a_standby_is_read_by_status_and_refused_by_apply_and_rollback(pair: Pair) -> None:
    standby = pair.url(pair.standby)
    project = ["--database-url", standby, "--migrations", str(OWN_MIGRATIONS)]
    status = run_cli("status", "--format", "json", *project)
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["current"] == []
    for verb in (["apply"], ["rollback", "--to", "base"]):
        refused = run_cli(*verb, *project)
        assert refused.exit_code == 2, refused.output
        [line] = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert "is a hot standby" in line and "primary" in line and "nothing was changed" in line
