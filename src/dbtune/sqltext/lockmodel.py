"""What a statement locks, as the lock-mode reader builds it: the modes, a lock, a statement,
and the walk over pglast's parse tree that the readers of each statement kind share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# The eight table lock modes, weakest first.
MODES = ("ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
         "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")
ACCESS_SHARE, ROW_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE, \
    ACCESS_EXCLUSIVE = MODES

# What each mode waits for and holds up, in the application's terms (conflicts are symmetric:
# the table "Conflicting Lock Modes" of "Explicit Locking").
HOLDS_UP = {
    ACCESS_SHARE: "reads and writes continue; conflicts only with ACCESS EXCLUSIVE",
    ROW_SHARE: "reads and writes continue; conflicts with EXCLUSIVE and ACCESS EXCLUSIVE",
    ROW_EXCLUSIVE: "reads and writes continue; waits for and blocks index builds without CONCURRENTLY",
    SHARE_UPDATE_EXCLUSIVE: "reads and writes continue; waits for other DDL, VACUUM and concurrent builds",
    SHARE: "waits for open writes, then blocks writes",
    SHARE_ROW_EXCLUSIVE: "waits for open writes, then blocks writes",
    EXCLUSIVE: "waits for open writes, then blocks writes; reads continue",
    ACCESS_EXCLUSIVE: "waits for every open transaction on it, reads included, then blocks reads and writes",
}


@dataclass(frozen=True)
class Lock:
    relation: str  # as written in the statement
    mode: str
    scans: bool = False  # reads every row of the table while holding the lock
    rewrites: bool = False  # writes a new copy of the table (and its indexes)

    def describe(self) -> str:
        extra = [HOLDS_UP[self.mode]]
        if self.rewrites:
            extra.append("rewrites the table")
        elif self.scans:
            extra.append("scans the table")
        return f"{self.mode} on {self.relation} ({'; '.join(extra)})"


@dataclass(frozen=True)
class Statement:
    kind: str  # e.g. "ALTER TABLE ADD CONSTRAINT FOREIGN KEY"
    locks: tuple[Lock, ...] = ()
    concurrent: bool = False
    notes: tuple[str, ...] = ()  # what a reviewer should know beyond the locks
    transaction_block: bool = True  # may run inside BEGIN ... COMMIT
    creates: str | None = None  # the table or view the statement creates, as written

    @property
    def strongest(self) -> str | None:
        return max((lock.mode for lock in self.locks), key=MODES.index, default=None)

    def describe(self) -> str:
        if not self.locks:
            text = "no table lock"
        else:
            text = "; ".join(lock.describe() for lock in self.locks)
        return "; ".join((text, *self.notes))


def words(camel: str) -> str:
    """CreateFunction -> CREATE FUNCTION."""
    import re

    return " ".join(re.findall(r"[A-Z][a-z]*", camel)).upper() or camel


def name_of(rangevar) -> str:  # type: ignore[no-untyped-def]
    return ".".join(part for part in (rangevar.schemaname, rangevar.relname) if part)


def walk(node) -> Iterator:  # type: ignore[no-untyped-def]
    """Every node below ``node``, depth first."""
    from pglast import ast

    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            yield item
            stack.extend(getattr(item, slot) for slot in item.__slots__)


@dataclass
class Locks:
    """The strongest lock asked of each relation, in the order first met."""

    by_name: dict[str, Lock] = field(default_factory=dict)

    def add(self, relation: str, mode: str, *, scans: bool = False, rewrites: bool = False) -> None:
        old = self.by_name.get(relation)
        if old is not None:
            mode = max(mode, old.mode, key=MODES.index)
            scans, rewrites = scans or old.scans, rewrites or old.rewrites
        self.by_name[relation] = Lock(relation, mode, scans, rewrites)

    def reads(self, node, skip: frozenset[str] = frozenset()) -> None:  # type: ignore[no-untyped-def]
        """ACCESS SHARE on every relation read below ``node`` (CTE names excepted)."""
        from pglast import ast

        ctes = {n.ctename for n in walk(node) if isinstance(n, ast.CommonTableExpr)}
        for n in walk(node):
            if isinstance(n, ast.RangeVar) and not (n.schemaname is None and n.relname in ctes):
                name = name_of(n)
                if name not in skip:
                    self.add(name, ACCESS_SHARE)

    def result(self) -> tuple[Lock, ...]:
        return tuple(self.by_name.values())
