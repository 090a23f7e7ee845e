"""`dbtune sandbox`: one throwaway PostgreSQL kept under ``.dbtune/`` for trying dbtune by hand.

``state.json`` in the sandbox's directory says how to reach the server.  The
server's data sits beside it, unless the server's user cannot enter that
directory (as root in a private checkout): then it sits in a directory of its
own in the temporary directory, recorded in the state as ``home``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ServerError
from .throwaway import LocalServer, find_bindir, server_home, server_version

STATE_DIR = Path(".dbtune") / "sandbox"


@dataclass
class SandboxInfo:
    url: str
    version: str
    started: bool  # False when it was already running
    elsewhere: str = ""  # where the data is, and why, when it is not in the sandbox's directory


def _load(base: Path) -> LocalServer | None:
    state = base / "state.json"
    if not state.is_file():
        return None
    data = json.loads(state.read_text())
    return LocalServer(bindir=Path(data["bindir"]), base=Path(data.get("home", base.resolve())),
                       port=int(data["port"]), password=data.get("password", ""))


def _create(kind: str, base: Path) -> tuple[LocalServer, str]:
    bindir = find_bindir(kind)
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    server: LocalServer | None = None
    try:
        home, why = server_home(base.resolve(), prefix="dbtune-sandbox-")
        server = LocalServer(bindir=bindir, base=home)
        server.init()
    except BaseException:  # leave nothing half made for the next start to trip over
        if server is not None:
            server.remove()
        shutil.rmtree(base, ignore_errors=True)
        raise
    state = {"bindir": str(server.bindir), "port": server.port, "password": server.password}
    if why:  # recorded only then, so that a sandbox beside its state survives the checkout moving
        state["home"] = str(home)
    (base / "state.json").write_text(json.dumps(state))
    (base / "state.json").chmod(0o600)  # it holds the sandbox's password
    return server, why


def _elsewhere(server: LocalServer, base: Path, why: str = "") -> str:
    if server.base == base.resolve():
        return ""
    return f"its data is in {server.base}" + (f" ({why})" if why else "") + "; `dbtune sandbox stop` removes it"


def start(kind: str = "embedded", base: Path = STATE_DIR) -> SandboxInfo:
    """Start the sandbox server (creating it on first use); a no-op when it already runs."""
    server, why = _load(base), ""
    if server is not None and not server.datadir.is_dir():
        server = None  # its data went away (a temporary directory emptied at boot): start afresh
    if server is not None and server.is_running():
        return SandboxInfo(server.dsn(), server_version(server.bindir), False, _elsewhere(server, base))
    if server is None:
        server, why = _create(kind, base)
    server.start()
    return SandboxInfo(server.dsn(), server_version(server.bindir), True, _elsewhere(server, base, why))


def url(base: Path = STATE_DIR) -> str:
    server = _load(base)
    if server is None or not server.datadir.is_dir() or not server.is_running():
        raise ServerError("no sandbox is running here: start one with `dbtune sandbox start`")
    return server.dsn()


def stop(base: Path = STATE_DIR) -> bool:
    """Stop the sandbox and remove its data and its state; False when there was none."""
    server = _load(base)
    if server is None:
        return False
    if server.datadir.is_dir():
        server.stop(discard=True)
    server.remove()
    shutil.rmtree(base, ignore_errors=True)
    return True
