"""The floors pyproject.toml declares are the versions CI's second run installs (.ci/floors.txt)."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.fix_cli import ROOT


def pinned() -> dict[str, str]:
    lines = (ROOT / ".ci" / "floors.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {canonicalize_name(name.strip()): version.strip() for name, version in pins}


def test_every_dependency_floor_is_the_version_the_floors_run_installs() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = pinned()
    for requirement in map(Requirement, declared):
        name = canonicalize_name(requirement.name)
        floors = [s.version for s in requirement.specifier if s.operator == ">="]
        assert len(floors) == 1, f"{requirement}: one >= floor, which the floors run can install"
        assert pins.get(name) is not None, f"{name} has no line in .ci/floors.txt"
        assert Version(pins[name]) == Version(floors[0]), (requirement, pins[name])
        for extra in requirement.extras:  # psycopg[binary] brings psycopg-binary of the same release
            assert pins.get(canonicalize_name(f"{name}-{extra}")) == pins[name], (requirement, extra)
    assert set(pins) <= {canonicalize_name(Requirement(r).name) for r in declared} | {
        canonicalize_name(f"{Requirement(r).name}-{e}") for r in declared for e in Requirement(r).extras}
