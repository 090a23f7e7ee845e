"""What a run of the online engine is told (OnlineOptions) and what it reports (BuildResult, IndexInfo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.output import Output
from ..core.retry import Backoff
from ..sqltext.statements import IndexStatement


@dataclass
class OnlineOptions:
    jobs: int = 1
    # Longest a build may wait on other sessions before we cancel it (None: forever).
    max_wait: float | None = None
    # Parallel maintenance workers per build (PostgreSQL's max_parallel_maintenance_workers).
    # 0 by default: on a small server the workers compete with the application for CPU.
    maintenance_workers: int = 0
    poll_interval: float = 0.5
    # Warn about transactions older than this before building (they stall the build).
    old_transaction_s: float = 30.0
    # Bound on any strong lock dbtune waits for (a transactional migration step,
    # ANALYZE, a partitioned index's ON ONLY/ATTACH/DROP), and the retries after it.
    lock_timeout_s: float = 2.0
    # statement_timeout for the run (--statement-timeout): None leaves the migration's own statements
    # the server's, and runs builds (and what is treated like one) with none, watched by max_wait.
    statement_timeout_s: float | None = None
    backoff: Backoff = field(default_factory=Backoff)
    # When a list, the tables that got new indexes are queued here (schema, table, and
    # why it must be analyzed: an expression index; "" to decide by its statistics) for
    # the caller to analyze once at the end of a whole run (`dbtune apply` does).
    analyze_queue: list[tuple[str, str, str]] | None = None
    out: Output = field(default_factory=Output)
    # The run's lock (a runlock.RunLock), checked before every build and while builds
    # are polled; None under plain `alembic upgrade`.
    lock: Any = None
    # Sessions already warned about as stalling builds: once per run, not per statement.
    warned: set[int] = field(default_factory=set)
    # Notes already given once this run (what a missing privilege hides).
    notes: set[str] = field(default_factory=set)
    # The engine's connections kept from one revision's builds to the next (a sessions.Sessions,
    # which the run closes at its end); None: opened and closed around each revision's builds.
    sessions: Any = None


def build_statement_timeout_ms(options: OnlineOptions) -> int:
    """statement_timeout for a build, and for what runs like one (REINDEX/DETACH CONCURRENTLY, VACUUM)."""
    return int((options.statement_timeout_s or 0) * 1000)


@dataclass
class BuildResult:
    statement: IndexStatement
    outcome: str  # "built", "present", "dropped", "absent", "reindexed"
    seconds: float = 0.0
    repaired: list[str] = field(default_factory=list)


@dataclass
class IndexInfo:
    oid: int
    schema: str
    name: str
    valid: bool
    table_schema: str
    table: str
    backs_constraint: str | None
    partitioned: bool
