"""`dbtune config`: postgresql.conf rendered from pgtune's formulas, and a live server's drift from it.

The expected values below are pgtune's arithmetic worked out by hand for each
machine shape (kB, as pgtune and PostgreSQL count), not computed by the code
under test.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path

import psycopg
import pytest

from dbtune.servers.throwaway import THROWAWAY_SHAPE, throwaway_server
from dbtune.tuning import drift, pgconf
from tests.fix_cli import run_cli
from tests.fix_db import _kinds

GB, MB = 1024 * 1024, 1024


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_kind" in metafunc.fixturenames:
        kinds = [k for k in _kinds(metafunc.config) if k in ("embedded", "system")]
        metafunc.parametrize("server_kind", kinds)


def rendered(*args: str) -> dict[str, str]:
    result = run_cli("config", "render", *args)
    assert result.exit_code == 0, result.output
    return pgconf.rendered_settings(result.stdout)


def test_small_oltp_machine() -> None:
    conf = rendered("--memory", "2GB", "--cpus", "2", "--storage", "ssd", "--workload", "oltp", "--pg-version", "18")
    # RAM 2GB = 2097152 kB. shared_buffers RAM/4 = 512MB; effective_cache_size 3/4 = 1536MB;
    # maintenance_work_mem RAM/16 = 128MB; work_mem (2097152 - 524288) / ((300 + 8) * 3) = 1702 kB,
    # under pgtune's 4MB floor; wal_buffers 3% of 512MB = 15.4MB, rounded up to 16MB.
    assert conf["max_connections"] == "300"
    assert conf["shared_buffers"] == "512MB"
    assert conf["effective_cache_size"] == "1536MB"
    assert conf["maintenance_work_mem"] == "128MB"
    assert conf["work_mem"] == "4MB"
    assert conf["wal_buffers"] == "16MB"
    assert (conf["min_wal_size"], conf["max_wal_size"]) == ("2GB", "8GB")
    assert conf["random_page_cost"] == "1.1" and conf["effective_io_concurrency"] == "200"
    assert conf["huge_pages"] == "off" and conf["jit"] == "off"
    assert "max_worker_processes" not in conf  # fewer than 4 CPUs: the server's defaults
    assert conf["wal_compression"] == "pglz"  # an algorithm from 15 on; lz4 only where the build has it


def test_web_machine_with_8_cpus() -> None:
    conf = rendered("--memory", "16GB", "--cpus", "8", "--storage", "ssd", "--workload", "web", "--pg-version", "18")
    # work_mem: (16777216 - 4194304) / ((200 + 8) * 3) = 20164.3 kB
    assert conf["max_connections"] == "200"
    assert conf["shared_buffers"] == "4GB" and conf["huge_pages"] == "try"
    assert conf["effective_cache_size"] == "12GB"
    assert conf["maintenance_work_mem"] == "1GB"
    assert conf["work_mem"] == "20164kB"
    assert (conf["min_wal_size"], conf["max_wal_size"]) == ("1GB", "4GB")
    assert conf["max_worker_processes"] == "8" and conf["max_parallel_workers"] == "8"
    assert conf["max_parallel_workers_per_gather"] == "4"  # ceil(8 / 2)
    assert conf["max_parallel_maintenance_workers"] == "4"
    assert "autovacuum_max_workers" not in conf


def test_data_warehouse_on_hdd_for_postgresql_13() -> None:
    conf = rendered("--memory", "64GB", "--cpus", "32", "--storage", "hdd", "--workload", "dw", "--pg-version", "13")
    # work_mem: (67108864 - 16777216) / ((40 + 32) * 3) = 233016.9, halved for dw = 116508 kB.
    assert conf["max_connections"] == "40"
    assert conf["shared_buffers"] == "16GB"
    assert conf["effective_cache_size"] == "48GB"
    assert conf["maintenance_work_mem"] == "8GB"  # RAM/8, at pgtune's 8GB cap
    assert conf["autovacuum_work_mem"] == "2GB"
    assert conf["work_mem"] == "116508kB"
    assert conf["default_statistics_target"] == "500"
    assert conf["random_page_cost"] == "4" and conf["effective_io_concurrency"] == "2"
    assert (conf["min_wal_size"], conf["max_wal_size"]) == ("4GB", "16GB")
    assert conf["max_parallel_workers_per_gather"] == "16"  # ceil(32 / 2): not capped for dw
    assert conf["max_parallel_maintenance_workers"] == "4"
    assert conf["autovacuum_max_workers"] == "5"
    assert "jit" not in conf  # left on for analytical queries
    assert conf["wal_compression"] == "on"  # a boolean before PostgreSQL 15


def test_fixed_lines_dbtune_relies_on_are_always_there() -> None:
    conf = rendered("--memory", "4GB", "--cpus", "2")
    assert conf["shared_preload_libraries"] == "pg_stat_statements"
    assert conf["pg_stat_statements.track"] == "all"
    assert conf["track_io_timing"] == "on" and conf["log_lock_waits"] == "on"
    assert "log_min_duration_statement" in conf and "log_autovacuum_min_duration" in conf


def test_memory_and_cpus_default_to_this_machine() -> None:
    conf = rendered("--workload", "web")
    expected_kb = pgconf.detect_memory_kb() // 4
    assert pgconf.parse_memory(conf["shared_buffers"]) == pytest.approx(expected_kb, rel=0.001)


def test_cgroup_limits_cap_the_detected_machine(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal:       65536000 kB\nMemFree: 1 kB\n")
    (tmp_path / "sys/fs/cgroup").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/memory.max").write_text(str(4 * 1024 ** 3) + "\n")
    (tmp_path / "sys/fs/cgroup/cpu.max").write_text("150000 100000\n")
    assert pgconf.detect_memory_kb(tmp_path) == 4 * GB
    assert pgconf.detect_cpus(tmp_path) <= 2  # 1.5 CPUs of quota, rounded up


@pytest.mark.parametrize(("args", "message"), [
    (["--memory", "0"], "memory must be more than 0"),
    (["--memory", "lots"], "memory must be a size"),
    (["--storage", "tape"], "unknown storage 'tape'"),
    (["--workload", "games"], "unknown workload 'games'"),
    (["--pg-version", "12"], "PostgreSQL 12 is not supported"),
    (["--memory", "1GB", "--connections", "100000"], "100000 connections need at least"),
])
def test_impossible_machines_are_one_line_errors(args: list[str], message: str) -> None:
    result = run_cli("config", "render", "--cpus", "2", *args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_output_file_is_never_overwritten_without_force(tmp_path: Path) -> None:
    target = tmp_path / "tuned.conf"
    first = run_cli("config", "render", "--memory", "8GB", "--cpus", "4", "--output", str(target))
    assert first.exit_code == 0 and "shared_buffers = 2GB" in target.read_text()
    again = run_cli("config", "render", "--memory", "16GB", "--cpus", "4", "--output", str(target))
    assert again.exit_code == 2 and "--force" in again.stderr
    assert "shared_buffers = 2GB" in target.read_text()
    forced = run_cli("config", "render", "--memory", "16GB", "--cpus", "4", "--output", str(target), "--force")
    assert forced.exit_code == 0 and "shared_buffers = 4GB" in target.read_text()


@pytest.mark.parametrize("version", [13, 18])
def test_rendered_files_for_big_machines_parse_as_postgresql_conf(version: int) -> None:
    """Each setting of every shape is one a PostgreSQL of that version knows (checked on the real servers below)."""
    for memory, cpus, workload in (("2GB", 2, "oltp"), ("16GB", 8, "web"), ("64GB", 32, "dw"), ("8GB", 4, "desktop")):
        conf = pgconf.rendered_settings(pgconf.render(pgconf.machine(memory, cpus, "ssd", workload, None, version)))
        assert conf and all(value for value in conf.values())


def settings_of(dsn: str, names: list[str]) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}  # type: ignore[index]


def test_the_test_servers_run_on_the_rendered_template(pg_server) -> None:  # type: ignore[no-untyped-def]
    """Every server of the suite starts from the template rendered small: the server accepted every line."""
    shape = pgconf.machine(**THROWAWAY_SHAPE, pg_version=pg_server.major)  # type: ignore[arg-type]
    conf = pgconf.rendered_settings(pgconf.render(shape))
    live = settings_of(pg_server.admin_dsn, ["shared_buffers", "work_mem", "jit", "autovacuum_naptime",
                                             "shared_preload_libraries", "random_page_cost"])
    assert live["shared_buffers"] == conf["shared_buffers"] == "512MB"
    # (2097152 - 524288) / ((100 + 8) * 3) = 4854.5 kB
    assert live["work_mem"] == conf["work_mem"] == "4854kB"
    assert live["jit"] == "off" and live["autovacuum_naptime"] == "30s"
    assert live["shared_preload_libraries"] == "pg_stat_statements"


def test_diff_names_exactly_the_settings_that_differ(server_kind: str) -> None:
    """A server started from the rendered file, then two settings changed: one by reload, one needing a restart."""
    with throwaway_server(server_kind) as server:
        dsn = server.dsn()
        shape = ["--memory", THROWAWAY_SHAPE["memory"], "--cpus", str(THROWAWAY_SHAPE["cpus"]),
                 "--connections", str(THROWAWAY_SHAPE["connections"])]
        clean = run_cli("config", "diff", *shape, "--format", "json", "--database-url", dsn)
        assert clean.exit_code == 0, clean.output
        # The throwaway server keeps a bigger max_wal_size than the template's (its own override).
        assert [s["name"] for s in json.loads(clean.stdout)["settings"] if not s["matches"]] == ["max_wal_size"]

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET work_mem = '8MB'")
            conn.execute("ALTER SYSTEM SET shared_buffers = '128MB'")
        server.stop()
        server.start()
        result = run_cli("config", "diff", *shape, "--format", "json", "--database-url", dsn)
        drifted = {s["name"]: s for s in json.loads(result.stdout)["settings"] if not s["matches"]}
        assert set(drifted) == {"max_wal_size", "work_mem", "shared_buffers"}
        assert (drifted["work_mem"]["current"], drifted["work_mem"]["recommended"]) == ("8MB", "4854kB")
        assert drifted["work_mem"]["restart"] is False
        assert "postgresql.auto.conf" in drifted["work_mem"]["source"]
        assert (drifted["shared_buffers"]["current"], drifted["shared_buffers"]["recommended"]) == ("128MB", "512MB")
        assert drifted["shared_buffers"]["restart"] is True

        failing = run_cli("config", "diff", *shape, "--fail-on-drift", "--database-url", dsn)
        assert failing.exit_code == 1
        assert "work_mem" in failing.stdout and "DRIFT" in failing.stdout

        alter = run_cli("config", "diff", *shape, "--emit-alter-system", "--database-url", dsn)
        assert "ALTER SYSTEM SET \"work_mem\" = '4854kB';  -- then SELECT pg_reload_conf()" in alter.stdout
        assert "ALTER SYSTEM SET \"shared_buffers\" = '512MB';  -- then restart the server" in alter.stdout
        assert settings_of(dsn, ["work_mem"])["work_mem"] == "8MB"  # dbtune never runs them


def test_values_compare_in_their_units() -> None:
    assert drift.in_unit("512MB", "8kB") == 65536
    assert drift.in_unit("1s", "ms") == 1000
    assert drift.in_unit("30s", "s") == 30
    assert drift.in_unit("1GB", "MB") == 1024
    assert drift.human("16384", "8kB") == "128MB"
    assert drift.human("600000", "ms") == "10min"
    assert drift.human("-1", "kB") == "-1"
    row = {"name": "log_lock_waits", "vartype": "bool", "setting": "on", "unit": None}
    assert all(drift._same(spelling, row) for spelling in ("on", "true", "yes", "1", "ON"))
    assert not drift._same("off", row)


class Relay:
    """A TCP relay on loopback in front of the server: what an SSH tunnel or a port forward looks like
    to both ends (the server sees the relay's address as its client's)."""

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target = port
        self.sockets: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target))
                self.sockets += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    self.threads.append(threading.Thread(target=self._pipe, args=(a, b), daemon=True))
                    self.threads[-1].start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone may not, on Linux)
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self.threads:
            thread.join(timeout=10)


def _direct(pg_server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    params = psycopg.conninfo.conninfo_to_dict(pg_server.admin_dsn)
    if params.get("host") != "127.0.0.1":
        pytest.skip("needs a server the suite started on this machine")
    return params  # type: ignore[return-value]


def test_diff_sizes_by_this_machine_only_when_the_server_runs_here(pg_server) -> None:  # type: ignore[no-untyped-def]
    params = _direct(pg_server)
    direct = run_cli("config", "diff", "--database-url", pg_server.admin_dsn)
    assert direct.exit_code == 0, direct.output
    assert "the figures of this machine, where the server runs" in direct.stderr + direct.stdout
    with psycopg.connect(pg_server.admin_dsn) as conn:
        socket_dir = conn.execute("SHOW unix_socket_directories").fetchone()[0].split(",")[0]  # type: ignore[index]
    by_socket = psycopg.conninfo.make_conninfo(host=socket_dir, port=params["port"], user=params["user"],
                                               dbname=params["dbname"])
    local = run_cli("config", "diff", "--format", "json", "--database-url", by_socket)
    assert local.exit_code == 0, local.output
    assert json.loads(local.stdout)["sized_for"] == "this machine, where the server runs"

    relay = Relay(int(params["port"]))
    try:
        relayed = psycopg.conninfo.make_conninfo(**{**params, "port": str(relay.port)})
        refused = run_cli("config", "diff", "--cpus", "2", "--database-url", relayed)
        assert refused.exit_code == 2, refused.output
        [line] = refused.stderr.strip().splitlines()
        assert "not provably on this machine" in line and "pass --memory of the database server" in line
        assert params["password"] not in line  # type: ignore[operator]
        given = run_cli("config", "diff", "--memory", "64GB", "--cpus", "16", "--emit-alter-system",
                        "--database-url", relayed)
        assert given.exit_code == 0, given.output
        assert given.stdout.startswith("-- recommended for 64GB RAM, 16 CPUs") and "the machine given" in given.stdout
        assert "ALTER SYSTEM SET \"shared_buffers\" = '16GB';" in given.stdout
    finally:
        relay.close()
