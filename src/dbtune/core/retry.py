"""Waiting for a lock without queueing in front of the application: lock_timeout, then retry with backoff.

A statement that needs a strong lock waits at most ``lock_timeout`` for it (a
statement queued behind a long transaction blocks every later one on the same
table), and is tried again after a pause.  ``retry`` is the one loop that does
it, for a single statement (``locked``) or for any larger step whose failure
says it met a lock_timeout (a whole migration, say).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg import sql

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How long to pause before retrying a statement that hit lock_timeout.

    Exponential with "full jitter": several waiting runs do not retry in step
    and queue in front of the application together.
    """

    retries: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0.1, min(self.cap_s, self.base_s * 2 ** attempt))


def set_lock_timeout(seconds: float) -> sql.Composed:
    return sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{int(seconds * 1000)}ms"))


def hit_lock_timeout(exc: BaseException) -> bool:
    """Whether a failure is a lock_timeout (SQLSTATE 55P03), directly or carried by a DbtuneError."""
    return isinstance(exc, psycopg.errors.LockNotAvailable) or getattr(exc, "sqlstate", None) == "55P03"


def retry(action: Callable[[], T], backoff: Backoff, on_retry: Callable[[BaseException, int, float], None], *,
          retryable: Callable[[BaseException], bool] = hit_lock_timeout) -> T:
    """``action()``, tried again after ``backoff`` while it fails with a retryable error.

    Before each pause ``on_retry(error, attempt, delay)`` is told the failure, the
    number of the attempt about to come (1 to ``backoff.retries``) and the pause in
    seconds, to say so and to undo what the failed attempt left.  The last failure
    is raised as it is.
    """
    attempt = 0
    while True:
        try:
            return action()
        except Exception as exc:
            if not retryable(exc) or attempt >= backoff.retries:
                raise
            delay = backoff.delay(attempt)
            attempt += 1
            on_retry(exc, attempt, delay)
            time.sleep(delay)


def locked(conn: psycopg.Connection, statement: str | sql.Composable, lock_timeout_s: float, backoff: Backoff,
           on_retry: Callable[[BaseException, int, float], None]) -> None:
    """A statement that needs a strong lock: wait at most lock_timeout for it, retry with backoff and jitter.

    The connection keeps that lock_timeout afterwards; LockNotAvailable once the retries are spent.
    """
    def attempt() -> None:
        conn.execute(set_lock_timeout(lock_timeout_s))
        conn.execute(statement)  # type: ignore[arg-type]

    retry(attempt, backoff, on_retry)
