"""Which code a results file measured, and whether the code has changed since.

Each results file records the commit it ran on and git's object id of every part
of the code it measured (each entry of src/dbtune, bench's modules, sql,
migrations, pyproject.toml), taken from the working tree as it was, uncommitted
changes included.  docs/benchmarks.md then says, part by part, what changed after
the run instead of claiming that the figures come from the code beside them.
The ids come from a temporary index, so git's own index (and anyone's staged
work) is left alone.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# What the figures depend on; bench/results is what they are, not what made them.
LISTED = ("src/dbtune/", "bench/")
WHOLE = ("sql", "migrations", "pyproject.toml")
NOT_CODE = ("bench/results",)


def _git(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def code_ids() -> dict[str, str]:
    """git's id of each part of the code as the working tree holds it now."""
    with tempfile.TemporaryDirectory(prefix="dbtune-bench-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git("read-tree", "HEAD", env=env)
        _git("add", "--all", "--", *LISTED, *WHOLE, env=env)
        tree = _git("write-tree", env=env)
    ids: dict[str, str] = {}
    for folder in LISTED:
        for line in _git("ls-tree", tree, folder).splitlines():
            meta, path = line.split("\t", 1)
            if path not in NOT_CODE:
                ids[path] = meta.split()[2]
    for path in WHOLE:
        ids[path] = _git("rev-parse", f"{tree}:{path}")
    return ids


def snapshot() -> dict[str, Any]:
    """What a results file records: the commit, whether the code differed from it, and the ids."""
    try:
        commit = _git("rev-parse", "HEAD")
        ids = code_ids()
        committed = {path: _git("rev-parse", f"HEAD:{path}") if _exists(path) else "" for path in ids}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "uncommitted": [], "code": {}}  # not a git checkout: nothing to compare
    return {"commit": commit, "uncommitted": sorted(p for p in ids if ids[p] != committed[p]), "code": ids}


def _exists(path: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"HEAD:{path}"], cwd=ROOT, capture_output=True).returncode == 0


def changed_since(recorded: dict[str, Any] | None, now: dict[str, str] | None) -> list[str] | None:
    """The parts of the code that differ now from what a run measured; None when either is unknown."""
    if not recorded or not recorded.get("code") or now is None:
        return None
    then = recorded["code"]
    return sorted(p for p in set(then) | set(now) if then.get(p) != now.get(p))
