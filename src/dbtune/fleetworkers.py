"""The fleet's worker processes: each runs one target's `dbtune` command after another.

A fleet run (``dbtune.fleet``) hands each target's commands to a worker instead
of starting a `dbtune` process for each: the worker runs the command line in
itself, exactly as a single-target process runs it, and answers with the output
and the exit code.  See ``Worker`` for why, and ``Workers`` for how many.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from typing import Any

from .core.errors import EXIT_FAILED

_EXIT = "\x1edbtune-fleet-exit "  # ends each command's output in a worker's stream, before its exit code


class Worker:
    """A worker process that runs one target's command after another, each exactly as a single-target
    `dbtune` process runs it (its own pass through env.py, lock and engine).  Importing Python's, Click's,
    Alembic's and SQLAlchemy's modules is most of a no-op run's cost: a worker forked from the fleet's own
    process (which imported them once, before any thread started) pays none of it, and one started afresh
    (where fork is missing, or to replace a worker that died) pays it once, not two or three times per
    target.  The URL reaches it through a pipe, never a command line (which `ps` shows)."""

    _parent_ends: set[int] = set()  # every worker's pipe ends in this process: a forked worker closes them

    def __init__(self, forked: bool) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self._ends: tuple[int, ...] = ()
        self._gone = False  # its pipe broke or ended: gone, even before the process is reaped
        if forked:
            self.pid, self.requests, self.replies = self._fork()
            return
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DBTUNE_DATABASE_URL")}
        # -u: the command's stdout and stderr reach the pipe in the order they were written.
        self.proc = subprocess.Popen([sys.executable, "-u", "-m", "dbtune.fleetworkers"], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.pid, self.requests, self.replies = self.proc.pid, self.proc.stdin, self.proc.stdout

    def _fork(self) -> tuple[int, Any, Any]:
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the fleet's code
            code = EXIT_FAILED
            try:
                for fd in (request_w, reply_r, *self._parent_ends):
                    os.close(fd)
                for fd in (1, 2):
                    os.dup2(reply_w, fd)
                os.close(reply_w)
                sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the worker's own
                sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
                os.environ.pop("DATABASE_URL", None)
                serve(os.fdopen(request_r))
                code = 0
            finally:
                os._exit(code)
        os.close(request_r)
        os.close(reply_w)
        self._ends = (request_w, reply_r)
        self._parent_ends.update(self._ends)
        return pid, os.fdopen(request_w, "w"), os.fdopen(reply_r)

    @property
    def alive(self) -> bool:
        if self._gone:
            return False
        if self.proc is not None:
            return self.proc.poll() is None
        try:
            return os.waitpid(self.pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def command(self, dsn: str, args: list[str], each_line: Any = None) -> tuple[int, list[str]]:
        """`dbtune ARGS` on ``dsn``: its exit code and its output lines (passed to ``each_line`` as they come)."""
        lines: list[str] = []
        try:
            self.requests.write(json.dumps({"dsn": dsn, "args": args}) + "\n")
            self.requests.flush()
        except BrokenPipeError:
            self._gone = True
            return EXIT_FAILED, ["error: the fleet's worker process ended"]
        for line in self.replies:
            # The marker may follow output that did not end its line.
            text, marker, code = line.rstrip("\n").partition(_EXIT)
            if text or not marker:
                lines.append(text)
                if each_line:
                    each_line(text)
            if marker:
                return int(code), lines
        # It died mid-command: that target failed, and the next one gets another worker.  Its pipe
        # closes as it exits, a moment before the process can be reaped, so "alive" is not asked.
        self._gone = True
        return EXIT_FAILED, [*lines, "error: the fleet's worker process ended"]

    def end(self) -> None:
        """No more requests: the worker finishes its loop and exits."""
        with contextlib.suppress(OSError):
            self.requests.close()

    def wait(self) -> None:
        if self.proc is not None:
            self.proc.wait()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self.replies.close()
        self._parent_ends.difference_update(self._ends)


class Workers:
    """``count`` workers forked before any thread starts, each handed to one target at a time.  A process
    that runs threads is never forked (a thread holding a lock at that moment would leave it held in the
    copy forever): there, and to replace a worker that died, a worker is started afresh."""

    def __init__(self, count: int, verb: str) -> None:
        self._all: list[Worker] = []
        self._free: list[Worker] = []
        self._lock = threading.Lock()
        if hasattr(os, "fork") and count > 0 and threading.active_count() == 1:
            _preload(verb)
            self._all = [Worker(forked=True) for _ in range(count)]
            self._free = list(self._all)

    def get(self) -> Worker:
        with self._lock:
            while self._free:
                worker = self._free.pop()
                if worker.alive:
                    return worker
            worker = Worker(forked=False)
            self._all.append(worker)
            return worker

    def put(self, worker: Worker) -> None:
        with self._lock:
            self._free.append(worker)

    def close(self) -> None:
        # Every worker told first, then waited for: a worker forked later holds copies of the earlier
        # ones' pipes until it exits.
        for worker in self._all:
            worker.end()
        for worker in self._all:
            worker.wait()


def _preload(verb: str) -> None:
    """What every worker will import, imported once here so that the forked workers share it."""
    import psycopg  # noqa: F401

    from .cli import cli  # noqa: F401

    if verb in ("apply", "rollback", "status"):
        import sqlalchemy.dialects.postgresql  # noqa: F401

        from .migration import verbs  # noqa: F401


def serve(requests: Any = None) -> None:
    """The worker's loop: one JSON request a line ({"dsn", "args"}; stdin when started afresh), the
    command's output on stdout, then the marker and its exit code."""
    if requests is None:
        requests = os.fdopen(os.dup(0))
    # The commands, and any program they start, get an empty stdin: the requests are the worker's alone.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - for the life of the worker
    from .cli import cli

    for request in requests:
        job = json.loads(request)
        os.environ["DBTUNE_DATABASE_URL"] = job["dsn"]
        try:
            cli.main(args=job["args"], prog_name="dbtune")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        sys.stderr.flush()
        sys.stdout.write(f"{_EXIT}{code}\n")
        sys.stdout.flush()


if __name__ == "__main__":  # a worker started afresh (Worker(forked=False))
    serve()
