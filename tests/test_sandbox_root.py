"""`dbtune sandbox` and the demo's steps, as root, in a clone only root can enter.

As root the server runs as another user ('postgres' or 'nobody'), who cannot
enter a mode-700 directory such as root's home or a `mktemp -d` one.  The
sandbox then keeps its data in a private directory of the temporary directory,
records it in its state, and `sandbox url` and `sandbox stop` find it there.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbtune.servers.sandbox import _load
from tests.fix_cli import ROOT, Result, scalar
from tests.fix_db import _kinds

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root hands the server to another user, who may not enter root's directories")

DIR = Path(".dbtune") / "demo"  # where examples/demo.sh keeps its sandbox


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_kind" in metafunc.fixturenames:
        metafunc.parametrize("server_kind", [k for k in _kinds(metafunc.config) if k in ("embedded", "system")])


@pytest.fixture(scope="module")
def clone() -> Iterator[Path]:
    """A clone of this repository in a directory only root can enter, as `git clone` in root's home makes."""
    top = Path(tempfile.mkdtemp(prefix="dbtune-private-"))
    top.chmod(0o700)
    try:
        subprocess.run(["git", "-c", "safe.directory=*", "clone", "--quiet", str(ROOT), str(top / "dbtune")],
                       check=True, capture_output=True)
        yield top / "dbtune"
    finally:
        shutil.rmtree(top)


def dbtune(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """`dbtune ARGS` as its own process in ``cwd``, as a shell runs it: stdout and stderr apart."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DBTUNE_DATABASE_URL", "DATABASE_URL")}
    done = subprocess.run([sys.executable, "-m", "dbtune.cli", *args], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=300)
    return Result(done.returncode, done.stdout, done.stderr)


def home_of(clone: Path) -> Path:
    return Path(json.loads((clone / DIR / "state.json").read_text())["home"])


def test_the_demos_steps_run_in_a_clone_only_root_can_enter(clone: Path, server_kind: str) -> None:
    started = dbtune(clone, "sandbox", "start", "--server", server_kind, "--dir", str(DIR))
    try:
        assert started.exit_code == 0, started.output
        [url] = started.stdout.splitlines()  # `$(dbtune sandbox start)` captures the URL alone
        home = home_of(clone)
        assert f"its data is in {home}" in started.stderr and f"cannot enter {clone.parent}" in started.stderr
        assert not home.is_relative_to(clone.parent)
        owner = home.stat()
        assert pwd.getpwuid(owner.st_uid).pw_name in ("postgres", "nobody")
        assert stat.S_IMODE(owner.st_mode) == 0o700
        assert scalar(url, "SHOW data_directory") == str(home / "data")

        assert dbtune(clone, "sandbox", "url", "--dir", str(DIR)).stdout.strip() == url
        env = {"DBTUNE_DATABASE_URL": url, "DBTUNE_MIGRATIONS": "bundled"}
        applied = dbtune(clone, "apply", "--to", "0002", "--no-progress", env=env)
        assert applied.exit_code == 0, applied.output
        assert scalar(url, "SELECT to_regclass('orders') IS NOT NULL") is True
        status = dbtune(clone, "status", "--format", "json", env=env)
        assert status.exit_code == 0, status.output
        assert json.loads(status.stdout)["current"] == ["0002"]
    finally:
        stopped = dbtune(clone, "sandbox", "stop", "--dir", str(DIR))
    assert stopped.exit_code == 0 and "stopped and removed" in stopped.stderr
    assert not home.exists() and not (clone / DIR).exists()
    gone = dbtune(clone, "sandbox", "url", "--dir", str(DIR))
    assert gone.exit_code == 2 and "no sandbox" in gone.stderr


def test_a_sandbox_whose_data_went_away_starts_afresh(clone: Path) -> None:
    """A temporary directory emptied at boot takes the data with it; the state must not point at nothing."""
    assert dbtune(clone, "sandbox", "start", "--dir", str(DIR)).exit_code == 0
    first = home_of(clone)
    server = _load(clone / DIR)
    assert server is not None
    server.stop()
    server.remove()
    try:
        gone = dbtune(clone, "sandbox", "url", "--dir", str(DIR))
        assert gone.exit_code == 2 and "no sandbox" in gone.stderr
        again = dbtune(clone, "sandbox", "start", "--dir", str(DIR))
        assert again.exit_code == 0 and again.stderr.startswith("started"), again.output
        assert home_of(clone) != first and scalar(again.stdout.strip(), "SELECT 1") == 1
    finally:
        assert dbtune(clone, "sandbox", "stop", "--dir", str(DIR)).exit_code == 0
    assert not first.exists() and not (clone / DIR).exists()


def test_with_no_place_the_server_user_can_reach_it_is_a_one_line_error(clone: Path, tmp_path: Path) -> None:
    closed = tmp_path / "tmp"
    closed.mkdir(mode=0o700)
    result = dbtune(clone, "sandbox", "start", "--dir", str(DIR), env={"TMPDIR": str(closed)})
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "cannot enter" in result.stderr and "Traceback" not in result.stderr
    assert not any(closed.iterdir()) and not (clone / DIR).exists()
