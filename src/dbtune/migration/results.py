"""What the verbs return: a status report, and the outcome of apply or rollback."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Status:
    target: str
    target_source: str
    migrations: str
    migrations_source: str
    server_version: str
    current: list[str]
    heads: list[str]
    pending: list[tuple[str, str]]  # (revision, message), oldest first
    invalid_indexes: list[str] = field(default_factory=list)  # left by failed concurrent builds

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "target_source": self.target_source,
            "migrations": self.migrations, "migrations_source": self.migrations_source,
            "server_version": self.server_version, "current": self.current, "heads": self.heads,
            "pending": [{"revision": r, "message": m} for r, m in self.pending],
            "invalid_indexes": self.invalid_indexes,
        }


@dataclass
class Outcome:
    before: list[str]
    after: list[str]
    sql: str | None = None  # the annotated script of a dry run
    errors: int = 0  # statements of the dry run that would fail as written
