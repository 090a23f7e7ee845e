"""The recorded refreshes of each materialized view (dbtune.refresh_history), newest last: the page's
durations over time and the metrics' last outcome.  ``refresh --status`` shows only the last success."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import db
from ..core.settings import Target
from ..maintenance import history

# The newest ``per_view`` rows of each view, oldest first, failures included.
_RUNS = """
SELECT view_name, finished_at, duration_ms, rows_after, mode, outcome
FROM (SELECT *, row_number() OVER (PARTITION BY view_name ORDER BY started_at DESC) AS newest
      FROM dbtune.refresh_history) h
WHERE newest <= %s
ORDER BY view_name, started_at
"""


@dataclass(frozen=True)
class Runs:
    """A database's recorded refreshes, or why there are none to show."""

    views: dict[str, list[dict[str, Any]]] | None  # view -> its refreshes, oldest first; None: none readable
    why_not: str = ""  # with no views: why (no history, or this role may not read it) and what to run


def read(target: Target, per_view: int = 50) -> Runs:
    """Each view's recorded refreshes (JSON-ready).  A history that does not exist, or that this role
    may not read (a cron or monitoring role), is not an error: refreshes run without it, unrecorded."""
    with db.connect(target, purpose="refresh history", autocommit=False) as conn:
        conn.read_only = True
        found = history.state(conn)
        if not found.readable:
            return Runs(None, found.problem(writing=False) or "")
        runs: dict[str, list[dict[str, Any]]] = {}
        for view, finished, ms, rows, mode, outcome in conn.execute(_RUNS, [per_view]):
            runs.setdefault(view, []).append({"finished_at": finished.isoformat(timespec="seconds"),
                                              "duration_s": round(ms / 1000, 3), "rows": rows, "mode": mode,
                                              "outcome": outcome})
        return Runs(runs)
