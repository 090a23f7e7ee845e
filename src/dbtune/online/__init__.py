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

from .builder import Engine
from .catalog import PRIVILEGE_HINT
from .options import BuildResult, OnlineOptions, build_statement_timeout_ms
from .scheduler import Scheduler, next_build
from .statistics import STALE_FRACTION, analyze_tables, has_expression, stale_tables

__all__ = ["PRIVILEGE_HINT", "STALE_FRACTION", "BuildResult", "Engine", "OnlineOptions",
           "Scheduler", "analyze_tables", "build_statement_timeout_ms", "has_expression", "next_build",
           "stale_tables"]
