"""Fixtures and helpers for running the `dbtune` command, in process and as a real process."""

from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from dbtune.cli import cli

ROOT = Path(__file__).resolve().parent.parent
OWN_MIGRATIONS = ROOT / "examples" / "own-migrations"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pauses of 50 ms between lock retries instead of the backoff's seconds: for tests of what a run
    does once its retries run out, which the pauses' lengths do not change (their jitter is tested apart)."""
    from dbtune.core.retry import Backoff

    monkeypatch.setattr(Backoff, "delay", lambda self, attempt: 0.05)


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `dbtune ARGS` in this process (fast); stdout and stderr apart."""
    # click 8.1 (the floor) mixes stderr into stdout unless told not to; 8.2 dropped the option.
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in inspect.signature(CliRunner).parameters else CliRunner()
    clean = {"DBTUNE_DATABASE_URL": None, "DATABASE_URL": None, "DBTUNE_DEBUG": None, **(env or {})}
    result = runner.invoke(cli, list(args), env=clean, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def dbtune_process(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen[str]:
    """`dbtune ARGS` as a separate process, for signals and true concurrency."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("DBTUNE_DATABASE_URL", "DATABASE_URL")}
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "dbtune.cli", *args], env=full_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]


def scalar(dsn: str, query: str, params: object = None) -> object:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


@contextlib.contextmanager
def released_after(seconds: float, release: Callable[[], object]) -> Iterator[None]:
    """Run the block while something is held; ``release`` it after ``seconds``, from a timer."""
    timer = threading.Timer(seconds, release)
    timer.start()
    try:
        yield
    finally:
        timer.join()
