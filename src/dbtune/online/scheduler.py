"""Jobs at once, never two on one key: the one scheduler of index builds and of view refreshes.

Each job holds keys while it runs (the table an index is built on, the tables a
materialized view reads); a job starts only when none of its keys is held, so two
builds never deadlock on one table and two refreshes never compete for one.
Which free job goes first is the caller's choice (``next_build`` for builds).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)
K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

# What a worker gets once, for all the jobs it runs: a function that runs one job (holding, say,
# a connection of its own that it reuses), and releases it when the worker is done.
Worker = Callable[[], contextlib.AbstractContextManager[Callable[[T], R]]]


def next_build(pending: list[T], busy: set[K], key: Callable[[T], K], sizes: dict[K, int]) -> T | None:
    """The build to start next: never on a busy table; among the free ones, the table with the most work
    left (its size times its pending builds), so that no long table's builds trail alone at the end.
    max() keeps the first of equals: revision order when sizes tie (and with --jobs 1, no sizes)."""
    free = [s for s in pending if key(s) not in busy]
    if not free:
        return None
    return max(free, key=lambda st: sum(sizes.get(key(s), 0) for s in pending if key(s) == key(st)))


def first_free(keys: Callable[[T], Collection[K]]) -> Callable[[list[T], set[K]], T | None]:
    """The first pending job none of whose keys is held."""
    return lambda pending, busy: next((job for job in pending if not busy.intersection(keys(job))), None)


class Scheduler(Generic[T, K, R]):
    """Runs ``jobs`` of the given jobs at once on worker threads, never two that share a key.

    A job that raises stops the others from starting (the running ones finish) and
    is raised once every worker has stopped; a job that must not stop the others
    returns its failure instead.  With one worker the jobs run on the calling thread.
    """

    def __init__(self, keys: Callable[[T], Collection[K]], *, jobs: int, name: str,
                 choose: Callable[[list[T], set[K]], T | None] | None = None,
                 on_interrupt: Callable[[], None] | None = None) -> None:
        self.keys = keys
        self.jobs = jobs
        self.name = name
        self.choose = choose or first_free(keys)
        # Called on Ctrl-C (or any exception in the waiting thread) to stop the jobs running now,
        # which are then waited for; without it they are left to end with the process.
        self.on_interrupt = on_interrupt
        self._cond = threading.Condition()

    def run(self, jobs: list[T], worker: Worker[T, R]) -> dict[T, R]:
        """Each job's result, once all have run; the first error raised by a job, once every worker stopped."""
        self._pending: list[T] = list(jobs)
        self._busy: set[K] = set()
        self._results: dict[T, R] = {}
        self._errors: list[BaseException] = []
        count = max(1, min(self.jobs, len(jobs)))
        if count == 1:
            self._work(worker)
        else:
            self._threads(count, worker)
        if self._errors:
            raise self._errors[0]
        return self._results

    def _threads(self, count: int, worker: Worker[T, R]) -> None:
        threads = [threading.Thread(target=self._work, args=(worker,), name=f"{self.name}-{i}", daemon=True)
                   for i in range(count)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except BaseException as exc:  # Ctrl-C: stop taking work, stop the running jobs
            with self._cond:
                self._errors.append(exc)
            if self.on_interrupt is None:
                raise
            self.on_interrupt()
            for thread in threads:
                thread.join(timeout=60)
            raise

    def _next(self) -> T | None:
        """The next job to run, once its keys are free; None when there is none left (or a job failed)."""
        with self._cond:
            while True:
                if self._errors or not self._pending:
                    return None
                pick = self.choose(self._pending, self._busy)
                if pick is not None:
                    self._pending.remove(pick)
                    self._busy.update(self.keys(pick))
                    return pick
                self._cond.wait()

    def _work(self, worker: Worker[T, R]) -> None:
        with worker() as run_one:
            while (job := self._next()) is not None:
                try:
                    result = run_one(job)
                    with self._cond:
                        self._results[job] = result
                except BaseException as exc:  # noqa: BLE001 - raised by run(), after the others stop
                    with self._cond:
                        self._errors.append(exc)
                finally:
                    with self._cond:
                        self._busy.difference_update(self.keys(job))
                        self._cond.notify_all()
