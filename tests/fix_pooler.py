"""A real PgBouncer in front of the server under test (Debian's ``pgbouncer`` package).

Started on demand, once per server, pool mode and pool settings, and stopped by
its pid at the end of the session.  Clients authenticate with SCRAM against the
server's own passwords (``auth_query`` as the suite's superuser), as a production
PgBouncer is usually set up; no password file of the test roles is needed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from dbtune.servers.throwaway import _free_port, _run_as
from tests.fix_db import Server

PACKAGE_HINT = "PgBouncer is not installed: install Debian's pgbouncer package (apt-get install pgbouncer)"


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None)


@dataclass
class Bouncer:
    """A running PgBouncer: ``url(server_url)`` is the same login and database, through the pooler."""

    port: int
    mode: str
    pid: int
    base: Path

    def url(self, server_url: str) -> str:
        parts = urlsplit(server_url)
        netloc = parts.netloc.rsplit("@", 1)
        login = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunsplit((parts.scheme, f"{login}127.0.0.1:{self.port}", parts.path, parts.query, ""))

    def stop(self) -> None:
        self.signal()
        self.wait()

    def signal(self) -> None:
        """Ask it to stop (SIGTERM: PgBouncer's immediate shutdown), without waiting."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)

    def wait(self) -> None:
        """Wait for it to be gone (about a second: it acts on the signal at its next tick), then remove its files."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        shutil.rmtree(self.base, ignore_errors=True)


def start_bouncer(server: Server, mode: str, *, pool_size: int, reset_query: str | None = None) -> Bouncer:
    binary = find_pgbouncer()
    if binary is None:
        pytest.skip(PACKAGE_HINT)
    admin = psycopg.conninfo.conninfo_to_dict(server.admin_dsn)
    base = Path(tempfile.mkdtemp(prefix="dbtune-pgbouncer-"))
    port = _free_port()
    user = _run_as()
    lines = [
        "[databases]",
        f"* = host={admin.get('host', '127.0.0.1')} port={admin.get('port', 5432)}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = scram-sha-256",
        f"auth_file = {base / 'users.txt'}",
        f"auth_user = {admin['user']}",
        f"pool_mode = {mode}",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 200",
        "server_round_robin = 0",
        "ignore_startup_parameters = extra_float_digits,options",
        f"logfile = {base / 'pgbouncer.log'}",
        f"pidfile = {base / 'pgbouncer.pid'}",
    ]
    if reset_query is not None:
        lines.append(f"server_reset_query = {reset_query}")
    (base / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
    # Only the auth_user's password is on file; every other login is checked against pg_shadow.
    (base / "users.txt").write_text(f'"{admin["user"]}" "{admin.get("password", "")}"\n')
    args = [binary, "-d", "-q", str(base / "pgbouncer.ini")]
    if user is not None:  # PgBouncer refuses root, as PostgreSQL does
        entry = pwd.getpwnam(user)
        for path in (base, *base.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        args[1:1] = ["-u", user]
    subprocess.run(args, check=True, timeout=30)
    pidfile, deadline = base / "pgbouncer.pid", time.monotonic() + 10
    while not (pidfile.is_file() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    bouncer = Bouncer(port=port, mode=mode, pid=int(pidfile.read_text().strip()), base=base)
    try:
        with psycopg.connect(bouncer.url(_url(server.admin_dsn)), connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except BaseException:
        log = (base / "pgbouncer.log").read_text() if (base / "pgbouncer.log").exists() else ""
        bouncer.stop()
        raise RuntimeError(f"PgBouncer did not come up: {log[-500:]}") from None
    return bouncer


def _url(dsn: str) -> str:
    if "://" in dsn:
        return dsn
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    return (f"postgresql://{quote(params['user'], safe='')}:{quote(params.get('password', ''), safe='')}"
            f"@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{params.get('dbname', 'postgres')}")


@pytest.fixture(scope="session")
def pgbouncers() -> Iterator[dict[tuple[object, ...], Bouncer]]:
    started: dict[tuple[object, ...], Bouncer] = {}
    yield started
    for bouncer in started.values():  # all signalled first: each takes about a second to go
        bouncer.signal()
    for bouncer in started.values():
        bouncer.wait()


@pytest.fixture
def pgbouncer(pg_server: Server, pgbouncers: dict[tuple[object, ...], Bouncer]):
    """``pgbouncer(mode, pool_size=..., reset_query=...)``: a PgBouncer in front of this test's server."""
    def get(mode: str, *, pool_size: int = 20, reset_query: str | None = None) -> Bouncer:
        key = (pg_server.admin_dsn, mode, pool_size, reset_query)
        if key not in started:
            started[key] = start_bouncer(pg_server, mode, pool_size=pool_size, reset_query=reset_query)
        return started[key]

    started = pgbouncers
    return get
