"""The package map in docs/design.md is the code's: every import between packages is one it allows.

No server is needed: the modules are read as source (ast), never imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from dbtune.online import catalog

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "dbtune"
NAME = re.compile(r"`(\w+)`")


def allowed() -> dict[str, set[str] | None]:
    """Each row of the map: its name, and what it may import (None: everything)."""
    rows: dict[str, set[str] | None] = {}
    for line in (ROOT / "docs" / "design.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        name = NAME.match(cells[0]).group(1)  # type: ignore[union-attr]
        may = cells[2]
        rows[name] = None if may.startswith("everything") else set() if may.startswith("nothing") \
            else set(NAME.findall(may))
    return rows


def unit_of(path: Path) -> str:
    """The package (or top-level module) a source file belongs to."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def imported(path: Path) -> set[str]:
    """The dbtune packages and top-level modules ``path`` imports, its own excepted."""
    parts = ["dbtune", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
        parts.append("__init__")  # a package's relative imports resolve from the package itself
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = parts[:-node.level] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n.split(".")[1] for n in names if n.startswith("dbtune.") and n.count(".") >= 1)
    return found - {unit_of(path)}


def test_every_import_between_packages_is_one_the_map_allows() -> None:
    rows = allowed()
    sources = [p for p in PACKAGE.rglob("*.py") if unit_of(p) != "__init__"]
    units = {unit_of(p) for p in sources}
    assert units - set(rows) == set(), "a package or top-level module docs/design.md's map does not list"
    assert set(rows) - units == set(), "the map lists a package that does not exist"
    wrong = sorted(f"{p.relative_to(PACKAGE)} imports {other}" for p in sources
                   for other in imported(p) if rows[unit_of(p)] is not None
                   and other not in rows[unit_of(p)])  # type: ignore[operator]
    assert wrong == []


def test_no_two_packages_import_each_other() -> None:
    rows = allowed()
    pairs = sorted((a, b) for a, may in rows.items() for b in may or () if a in (rows.get(b) or ()))
    assert pairs == []


def test_the_view_of_invalid_indexes_and_the_engine_tell_a_build_in_progress_the_same_way() -> None:
    # Two texts of one condition (the engine's names the pids; the view's is a flag): kept the same.
    def words(text: str) -> str:
        return " ".join(text.split())
    condition = words(catalog.BUILDING_ON.split("WHERE", 1)[1]).replace("{table}", "i.indrelid")
    view = words((ROOT / "sql" / "monitoring" / "invalid_indexes.sql").read_text())
    assert condition in view
