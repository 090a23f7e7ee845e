"""`dbtune sandbox`: one throwaway PostgreSQL kept under ``.dbtune/`` for trying dbtune by hand."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import ServerError
from .server import LocalServer, find_bindir, server_version

STATE_DIR = Path(".dbtune") / "sandbox"


@dataclass
class SandboxInfo:
    url: str
    version: str
    started: bool  # False when it was already running


def _load(base: Path) -> LocalServer | None:
    state = base / "state.json"
    if not state.is_file():
        return None
    data = json.loads(state.read_text())
    return LocalServer(bindir=Path(data["bindir"]), base=base.resolve(), port=int(data["port"]),
                       password=data.get("password", ""))


def start(kind: str = "embedded", base: Path = STATE_DIR) -> SandboxInfo:
    """Start the sandbox server (creating it on first use); a no-op when it already runs."""
    server = _load(base)
    if server is not None and server.is_running():
        return SandboxInfo(server.dsn(), server_version(server.bindir), started=False)
    if server is None:
        if base.exists():
            shutil.rmtree(base)
        server = LocalServer(bindir=find_bindir(kind), base=base.resolve())
        server.init()
        state = base / "state.json"
        state.write_text(json.dumps({"bindir": str(server.bindir), "port": server.port,
                                     "password": server.password}))
        state.chmod(0o600)  # it holds the sandbox's password
    server.start()
    return SandboxInfo(server.dsn(), server_version(server.bindir), started=True)


def url(base: Path = STATE_DIR) -> str:
    server = _load(base)
    if server is None or not server.is_running():
        raise ServerError("no sandbox is running here: start one with `dbtune sandbox start`")
    return server.dsn()


def stop(base: Path = STATE_DIR) -> bool:
    """Stop the sandbox and remove its data; False when there was none."""
    server = _load(base)
    if server is None:
        return False
    server.stop()
    server.remove()
    return True
