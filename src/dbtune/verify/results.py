"""What `dbtune verify` found: one CheckResult per check, gathered in a VerifyReport.

Plain data that the run fills in (``run.py``, ``diagnosis.py``), a baseline compares
(``baselines.py``) and rendering draws (``render.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CheckResult:
    """What one check's EXPLAIN showed, and why it failed if it did."""

    name: str
    file: str
    query: str | None
    expected_index: str | None
    passed: bool
    node: str | None = None  # the plan node that decided: the one on the index, else the scan it lost to
    plan_summary: str | None = None  # e.g. "Index Only Scan using orders_customer_idx on orders"
    indexes_used: list[str] = field(default_factory=list)
    shape: list[dict[str, str | None]] = field(default_factory=list)  # every node: type, index, relation
    cost: float | None = None  # the planner's estimated total cost
    ms: float | None = None  # actual execution time (analyze only)
    shared_hit: int | None = None
    shared_read: int | None = None
    expect_node: str | None = None
    max_ms: float | None = None
    reason: str | None = None
    hint: str | None = None
    sqlstate: str | None = None
    plan: str | None = None  # text rendering of the plan
    stale_tables: list[str] = field(default_factory=list)
    # Against a baseline, when one was given.
    baseline_ms: float | None = None
    baseline_cost: float | None = None
    baseline_plan: str | None = None
    plan_change: str | None = None

    def fail(self, reason: str, hint: str | None = None) -> None:
        self.passed = False
        self.reason = f"{self.reason}; {reason}" if self.reason else reason
        if hint:
            self.hint = f"{self.hint}; {hint}" if self.hint else hint

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerifyReport:
    checks: list[CheckResult]
    can_use: bool = False
    analyze: bool = False
    database: str = ""
    server_version: int | None = None
    baseline: str | None = None  # where the compared baseline came from

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def passed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.passed]

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def get(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "mode": mode(self), "can_use": self.can_use, "analyze": self.analyze,
                "database": self.database, "server_version": self.server_version, "baseline": self.baseline,
                "passed": len(self.passed), "failed": len(self.failed),
                "checks": [c.to_dict() for c in self.checks]}


def mode(report: VerifyReport) -> str:
    """How the plans were obtained: the planner's choice or can-use, EXPLAIN or EXPLAIN ANALYZE."""
    how = "can-use (enable_seqscan off)" if report.can_use else "planner's choice"
    return how + (", EXPLAIN ANALYZE" if report.analyze else ", EXPLAIN")

