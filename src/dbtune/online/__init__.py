"""The online index engine: concurrent builds, repair of leftovers, blockers named, progress, ANALYZE.

Holds ``options`` (what a run is told and reports), ``catalog`` (what it reads of indexes,
builds and sessions), ``scheduler`` (jobs at once, never two on one key: builds here, and
refresh's views), ``builder`` (``Engine``: one statement on its own connection),
``repair`` (leftovers, same-named indexes, another session's build), ``partitioned``
(a partitioned table's index, partition by partition), ``monitor`` (progress, blockers,
max-wait) and ``statistics`` (ANALYZE after builds, and the one staleness rule).

Used by the migration runner, by ``dbtune.ops`` (what revisions call) and by
``maintenance``.  May import ``core`` and ``sqltext``.
"""

from importlib import import_module
from typing import Any

# Each name loads its module on first use (PEP 562): refresh needs the scheduler alone, and a cron run
# should not pay for importing the builder, repair and monitor it never calls.
_HOMES = {"Engine": "builder", "PRIVILEGE_HINT": "catalog", "BuildResult": "options", "OnlineOptions": "options",
          "build_statement_timeout_ms": "options", "Scheduler": "scheduler", "next_build": "scheduler",
          "STALE_FRACTION": "statistics", "analyze_tables": "statistics", "has_expression": "statistics",
          "stale_tables": "statistics"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["PRIVILEGE_HINT", "STALE_FRACTION", "BuildResult", "Engine", "OnlineOptions",
           "Scheduler", "analyze_tables", "build_statement_timeout_ms", "has_expression", "next_build",
           "stale_tables"]
