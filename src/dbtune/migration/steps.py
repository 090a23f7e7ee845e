"""Alembic's steps as a run follows them: which revision is running, and a restart.

Alembic pulls the steps one at a time from the function env.py's context was
given and runs each before pulling the next, so following that iterator tells
which revision is running without reading log lines (an env.py's fileConfig
may silence those).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..core.output import Output


class Restart(Exception):
    """The database moved while we queued for the lock: start env.py over, lock held."""


class RevisionTracker:
    """Which revision Alembic is running: set as Alembic takes each step."""

    def __init__(self, out: Output | None) -> None:
        self.running: str | None = None
        self.ran = False
        self.out = out

    def follow(self, steps: list[Any]) -> Iterator[Any]:
        for step in steps:
            script = step.revision
            self.running, self.ran = script.revision, True
            if self.out is not None:
                doc = (script.doc or "").splitlines()[0] if script.doc else ""
                self.out.info(f"{'applying' if step.is_upgrade else 'rolling back'} {script.revision}: {doc}")
            yield step
