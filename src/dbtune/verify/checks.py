"""Check files: which query must use which index, read from a directory of ``.sql`` files.

A check file is any ``.sql`` file.  Its SQL comments carry the checks::

    -- verify: SELECT id FROM orders WHERE customer_id = 42
    -- verify: SELECT count(*) FROM orders WHERE customer_id = 7
    -- verify-index: orders_customer_idx      (default: the index the file creates)
    -- expect-node: Index Only Scan           (that node type, not just any index scan)
    -- max-ms: 5                               (only checked with EXPLAIN ANALYZE)
    CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);

Each ``-- verify:`` line is one check.  The shipped index migrations
(``sql/indexes``) are check files, and so is any directory a DBA writes with
only comments in it.  Nothing here touches a database: parsing problems become
a ``problem`` on the check (reported as a failed check, so the other checks
still run); only a missing or empty directory is a ConfigError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import sqlparse

from ..core.errors import ConfigError
from ..core.resources import sql_path
from ..sqltext.identifiers import qualified, split_identifiers

# Node types that read an index; EXPLAIN names the index in their "Index Name".
INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")

_HEADER = re.compile(r"^\s*--\s*(verify|verify-index|expect-node|max-ms)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_QUALIFIED = qualified(3)  # [database.][schema.]name, read as PostgreSQL reads identifiers
_CREATE_INDEX = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?"
    rf"(?:(?P<ine>IF\s+NOT\s+EXISTS)\s+)?(?P<name>{_QUALIFIED}\s+)?"
    rf"ON\s+(?:ONLY\s+)?(?P<table>{_QUALIFIED})",
    re.IGNORECASE)
_CREATE_INDEX_START = re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\b", re.IGNORECASE)


@dataclass(frozen=True)
class IndexName:
    """An index as a check names it; ``schema`` is None when it follows the search_path."""

    name: str
    schema: str | None = None

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class Check:
    """One query of one check file, and what its plan must show."""

    name: str  # file stem, plus "#n" when the file has several queries
    file: Path
    query: str | None
    index: IndexName | None
    expect_node: str | None = None
    max_ms: float | None = None
    # Why this check cannot run at all (no query, an unreadable header); a failed check.
    problem: str | None = None


def default_check_dirs() -> list[Path]:
    """The shipped checks: dbtune's own index migrations."""
    return [sql_path("indexes")]


def load_checks(dirs: Sequence[str | PathLike[str]] | None = None) -> list[Check]:
    """Every check in ``dirs`` (default: the shipped ones), in directory then file order.

    Raises ConfigError for a directory that does not exist or holds no ``.sql``
    file, and for two files with the same name in different directories (a
    check's name must identify it, in reports and in baselines).
    """
    paths = [Path(d) for d in dirs] if dirs else default_check_dirs()
    seen_dirs: set[Path] = set()
    by_name: dict[str, Path] = {}
    checks: list[Check] = []
    for folder in paths:
        if not folder.is_dir():
            raise ConfigError(f"checks directory {folder} does not exist", path=str(folder))
        if folder.resolve() in seen_dirs:
            continue
        seen_dirs.add(folder.resolve())
        files = sorted(p for p in folder.glob("*.sql") if p.is_file())
        if not files:
            raise ConfigError(f"checks directory {folder} has no .sql files", path=str(folder))
        for path in files:
            if path.stem in by_name:
                raise ConfigError(f"two check files are named {path.name}: in {by_name[path.stem].parent} "
                                  f"and in {folder}; rename one", path=str(path))
            by_name[path.stem] = path
            checks.extend(parse_check_file(path))
    return checks


def parse_check_file(path: Path, text: str | None = None) -> list[Check]:
    """The checks of one file; a file with no usable check gives one check carrying a ``problem``."""
    if text is None:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            return [Check(name=path.stem, file=path, query=None, index=None, problem=f"cannot read the file: {exc}")]
    headers = parse_headers(text)
    problems: list[str] = []

    index: IndexName | None = None
    if headers["verify-index"]:
        if len(set(headers["verify-index"])) > 1:
            problems.append("several different -- verify-index: lines")
        index = parse_index_name(headers["verify-index"][0])
        if index is None:
            problems.append(f"-- verify-index: {headers['verify-index'][0]!r} is not an index name")
    else:
        try:
            index = created_index(text)
        except ValueError as exc:
            problems.append(str(exc))
        else:
            if index is None:
                problems.append("no expected index: add a -- verify-index: NAME line or a CREATE INDEX statement")

    expect_node: str | None = None
    if headers["expect-node"]:
        expect_node = " ".join(headers["expect-node"][-1].split())
        canonical = {n.lower(): n for n in INDEX_NODES}
        if expect_node.lower() not in canonical:
            problems.append(f"-- expect-node: {expect_node!r} is not one of {', '.join(INDEX_NODES)}")
        else:
            expect_node = canonical[expect_node.lower()]

    max_ms: float | None = None
    if headers["max-ms"]:
        try:
            max_ms = float(headers["max-ms"][-1])
            if max_ms <= 0:
                raise ValueError
        except ValueError:
            problems.append(f"-- max-ms: {headers['max-ms'][-1]!r} is not a positive number of milliseconds")
            max_ms = None

    queries = [_clean_query(q) for q in headers["verify"]]
    if not queries:
        return [Check(name=path.stem, file=path, query=None, index=index, expect_node=expect_node,
                      max_ms=max_ms, problem="; ".join(["no -- verify: line", *problems]))]
    several = len(queries) > 1
    return [
        Check(name=f"{path.stem}#{n}" if several else path.stem, file=path, query=query or None, index=index,
              expect_node=expect_node, max_ms=max_ms, problem=_query_problem(query, problems))
        for n, query in enumerate(queries, start=1)
    ]


def _query_problem(query: str, problems: list[str]) -> str | None:
    if not query:
        problems = ["empty -- verify: line", *problems]
    elif len(sqlparse.split(query)) > 1:
        problems = ["the -- verify: line holds several statements; a check is one query", *problems]
    return "; ".join(problems) or None


def parse_headers(text: str) -> dict[str, list[str]]:
    """The ``-- key: value`` lines of a file, keys lower-cased, in file order."""
    found: dict[str, list[str]] = {"verify": [], "verify-index": [], "expect-node": [], "max-ms": []}
    for line in text.splitlines():
        if match := _HEADER.match(line):
            found[match.group(1).lower()].append(match.group(2))
    return found


def created_index(text: str) -> IndexName | None:
    """The index the file's CREATE INDEX statement creates, or None when there is none.

    Raises ValueError when that cannot be told: several CREATE INDEX statements,
    or one without a name (PostgreSQL then invents one).
    """
    # Comments out first: a header like "-- verify: ... CREATE INDEX ..." is not a statement.
    statements = [s for s in sqlparse.split(sqlparse.format(text, strip_comments=True))
                  if _CREATE_INDEX_START.search(s)]
    if not statements:
        return None
    if len(statements) > 1:
        raise ValueError("several CREATE INDEX statements: name the expected one with -- verify-index: NAME")
    match = _CREATE_INDEX.search(statements[0])
    if match is None:
        raise ValueError("cannot read the CREATE INDEX statement's index name: add -- verify-index: NAME")
    if not match.group("name"):
        raise ValueError("the CREATE INDEX statement has no index name: add -- verify-index: NAME")
    index = parse_index_name(match.group("name").strip())
    if index is None:  # pragma: no cover - the regex only admits identifiers
        raise ValueError("cannot read the CREATE INDEX statement's index name: add -- verify-index: NAME")
    if index.schema is None:
        # An index always lives in its table's schema (CREATE INDEX takes no schema for the index).
        table = split_identifiers(match.group("table"))
        if table and len(table) >= 2:
            index = IndexName(name=index.name, schema=table[-2])
    return index


def parse_index_name(text: str) -> IndexName | None:
    """``name``, ``schema.name`` or their quoted forms, as PostgreSQL would resolve the case."""
    parts = split_identifiers(text.strip().rstrip(";").strip())
    if not parts or len(parts) > 2:
        return None
    return IndexName(name=parts[-1], schema=parts[0] if len(parts) == 2 else None)


def _clean_query(query: str) -> str:
    # A trailing ";" is natural to write but would make "EXPLAIN ... ;" two statements.
    return query.strip().rstrip(";").strip()


def describe(checks: Iterable[Check]) -> list[str]:
    """One line per check, for listings (``dbtune verify --list``)."""
    return [f"{c.name}: {c.index or '?'}" + (f" [{c.expect_node}]" if c.expect_node else "") for c in checks]
