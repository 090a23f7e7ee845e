"""What a `dbtune check` run is told (CheckOptions) and what it found (a CheckReport of Steps of Cases).

A skipped case or step is never counted as passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.settings import Target

STEPS = ("server", "revisions", "lint", "upgrade", "verify", "round trip", "views")
REASON_WIDTH = 160  # the longest reason shown on a step's own line; the whole one follows below it


@dataclass
class Case:
    """One JUnit test case: a revision, a check, a view.  A skipped case is not passed."""

    name: str
    passed: bool
    message: str = ""
    skipped: bool = False


@dataclass
class Step:
    name: str
    status: str = "passed"  # passed, failed, skipped
    summary: str = ""
    cases: list[Case] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, case: str, message: str) -> None:
        self.cases.append(Case(case, False, message))
        self.status = "failed"

    def skip(self, case: str, message: str) -> None:
        self.cases.append(Case(case, False, message, skipped=True))

    @property
    def failures(self) -> list[Case]:
        return [c for c in self.cases if not c.passed and not c.skipped]

    @property
    def reason(self) -> str:
        """Why the step failed or was skipped, in one line: its first failure, or its summary."""
        if self.status == "failed" and self.failures:
            first = self.failures[0]
            line = f"{first.name}: {first.message.splitlines()[0] if first.message else 'failed'}"
            return line if len(line) <= REASON_WIDTH else line[:REASON_WIDTH - 3] + "..."
        return self.summary


@dataclass
class CheckReport:
    migrations: str
    server: str = ""
    steps: list[Step] = field(default_factory=list)
    kept_dsn: str | None = None

    @property
    def failed(self) -> bool:
        """A step failed (exit 1).  A skipped step is no failure, and no pass either."""
        return any(s.status == "failed" for s in self.steps) or len(self.steps) != len(STEPS)

    @property
    def skipped(self) -> list[Step]:
        return [s for s in self.steps if s.status == "skipped"]

    @property
    def ok(self) -> bool:
        """Every step ran and passed."""
        return not self.failed and not self.skipped

    @property
    def first_failure(self) -> Step | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "result": "failed" if self.failed else "passed" if self.ok else "incomplete",
                "migrations": self.migrations, "server": self.server,
                "failed_step": self.first_failure.name if self.first_failure else None,
                "skipped_steps": [{"name": s.name, "reason": s.summary} for s in self.skipped],
                "steps": [asdict(s) for s in self.steps]}


@dataclass
class CheckOptions:
    server: str = "embedded"  # embedded or system
    pg_bin: Path | None = None
    database_url: Target | None = None
    check_dirs: list[Path] | None = None
    ignore: set[str] = field(default_factory=set)
    keep: bool = False
    # Environment variables env.py reads its database from: name -> "url", or one part of it.
    url_env: dict[str, str] = field(default_factory=dict)
    since: str | None = None  # lint only the revisions after this one
    fail_on_compatibility: bool = False  # squawk's client-compatibility rules fail instead of advising
