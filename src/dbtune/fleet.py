"""Fleet runs: one verb (apply, rollback, status, verify, refresh) over many databases.

Each target runs exactly as a single-target run does, in a worker `dbtune`
process that runs one target after another (Alembic's ``context`` and ``op`` are
process-wide, so two migrations cannot share one at once), ``parallel`` workers
at a time: its own advisory lock, online engine, ``--max-wait`` and ``--jobs``.
Around them, this module reads the targets (a TOML file, or libpq's service
file), selects them (tags, --only, --exclude), refuses two names for one
database, runs a canary first if asked, runs the rest ``parallel`` at a time,
stops starting new ones after ``max_failures`` failures, and returns a verdict
per target. Running the same command again is idempotent: targets already at the
destination do nothing, the others continue from where they are.

Passwords never need to be in the targets file: each worker's libpq reads
``~/.pgpass`` (or PGPASSFILE) and PGPASSWORD as usual.  The URL reaches the worker
through a pipe and the command through its environment, never a command line
(which `ps` shows).
"""

from __future__ import annotations

import json
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .core import conninfo
from .core.conninfo import scrub
from .core.errors import EXIT_FAILED, EXIT_UNREACHABLE, ConfigError
from .core.output import Output
from .core.settings import Target
from .fleetworkers import Worker, Workers


@dataclass(frozen=True)
class FleetTarget:
    name: str
    dsn: str  # a URL or a libpq connection string; may name a service
    tags: tuple[str, ...] = ()

    @property
    def target(self) -> Target:
        return Target.parse(self.dsn, f"target {self.name}")


@dataclass
class TargetResult:
    name: str
    outcome: str = "not started"  # done, failed, not started
    exit_code: int | None = None
    server: str = ""
    before: str = ""
    after: str = ""
    seconds: float = 0.0
    error: str = ""
    output: str = field(default="", repr=False)  # what the child printed, for --format openmetrics/html


@dataclass
class FleetReport:
    verb: str
    results: list[TargetResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every selected target succeeded, else the highest exit code among them (5 > 4 > 3 > 2 > 1)."""
        codes = [r.exit_code if r.exit_code is not None else EXIT_FAILED for r in self.results
                 if r.outcome != "done"]
        return max(codes, default=0)

    def as_dict(self) -> dict[str, Any]:
        targets = [{k: v for k, v in asdict(r).items() if k != "output"} for r in self.results]
        return {"verb": self.verb, "exit_code": self.exit_code, "targets": targets}


# -- targets -------------------------------------------------------------------------------------

def load_targets_file(path: Path) -> list[FleetTarget]:
    """``[targets.NAME]`` tables with ``url`` (or ``dsn``/``service``) and optional ``tags``."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"targets file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"targets file {path}: {exc}") from None
    tables = data.get("targets")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"targets file {path} has no [targets.NAME] tables")
    found = []
    for name, entry in tables.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"targets file {path}: targets.{name} must be a table with a url")
        if "service" in entry:
            dsn = f"service={entry['service']}"
        else:
            dsn = entry.get("url") or entry.get("dsn")
        if not isinstance(dsn, str) or not dsn:
            raise ConfigError(f"targets file {path}: targets.{name} has no url")
        tags = entry.get("tags", [])
        if isinstance(tags, str):
            tags = [tags]
        found.append(FleetTarget(name, dsn, tuple(tags)))
    return found


def load_services(names: list[str], all_services: bool) -> list[FleetTarget]:
    services = conninfo.services()
    if all_services:
        names = list(services)
    missing = [n for n in names if n not in services]
    if missing:
        where = ", ".join(str(f) for f in conninfo.service_files()) or \
            "no service file found (PGSERVICEFILE, ~/.pg_service.conf)"
        raise ConfigError(f"unknown service {missing[0]!r} (looked in {where})")
    return [FleetTarget(n, f"service={n}") for n in names]


def select(targets: list[FleetTarget], tags: list[str], only: list[str], exclude: list[str]) -> list[FleetTarget]:
    names = {t.name for t in targets}
    for name in [*only, *exclude]:
        if name not in names:
            raise ConfigError(f"no target named {name!r} (targets: {', '.join(sorted(names))})")
    chosen = [t for t in targets if (not tags or set(tags) & set(t.tags)) and (not only or t.name in only)
              and t.name not in exclude]
    if not chosen:
        raise ConfigError("no target left after --tag/--only/--exclude")
    return chosen


def _address(t: FleetTarget, services: dict[str, dict[str, str]]) -> tuple[str, str, str]:
    """host, port, database as libpq would resolve them (service entries expanded)."""
    params = conninfo.resolved(t.target.connect_kwargs(), services)
    host = params.get("host") or "localhost"
    if host in ("127.0.0.1", "::1"):
        host = "localhost"
    return host, params["port"], params["dbname"]


def refuse_duplicates(targets: list[FleetTarget]) -> None:
    """Two names for one host, port and database would run two migrations on one database."""
    seen: dict[tuple[str, str, str], str] = {}
    names: set[str] = set()
    services = conninfo.services()
    for t in targets:
        if t.name in names:
            raise ConfigError(f"two targets are named {t.name!r}")
        names.add(t.name)
        address = _address(t, services)
        if address in seen:
            raise ConfigError(f"targets {seen[address]!r} and {t.name!r} are the same database "
                              f"({address[0]}:{address[1]}/{address[2]}): keep one")
        seen[address] = t.name


# -- running -------------------------------------------------------------------------------------

def _status(worker: Worker, t: FleetTarget, migrations: list[str]) -> tuple[int, dict[str, Any]]:
    code, lines = worker.command(t.dsn, ["status", "--format", "json", *migrations])
    out = "\n".join(lines)
    try:
        return code, json.loads(out[out.index("{"):]) if code == 0 else {"error": out}
    except ValueError:
        return code, {"error": out}


def _last_error(lines: list[str]) -> str:
    errors = [line for line in lines if line.startswith("error:")]
    return (errors[-1] if errors else (lines[-1] if lines else "")).removeprefix("error: ").strip()


def run_one(t: FleetTarget, verb: str, args: list[str], migrations: list[str], out: Output,
            worker: Worker) -> TargetResult:
    result = TargetResult(t.name)
    started = time.monotonic()
    out.info(f"[{t.name}] running {verb}")
    if verb in ("apply", "rollback", "status"):
        code, status = _status(worker, t, migrations)
        if code != 0:
            result.outcome, result.exit_code = "failed", code
            result.error = scrub(_last_error(status.get("error", "").splitlines()), t.target.password)
            result.seconds = round(time.monotonic() - started, 2)
            out.warn(f"[{t.name}] failed: {result.error}")
            return result
        result.server = str(status.get("server_version", ""))
        result.before = ", ".join(status.get("current") or []) or "base"
        result.output = json.dumps(status)
    lines: list[str] = []
    if verb != "status":
        code, lines = worker.command(t.dsn, [verb, *args], lambda line: out.info(f"[{t.name}] {line}"))
        result.output = "\n".join(lines)
    else:
        code = 0
    result.exit_code = code
    if verb in ("apply", "rollback") and code != EXIT_UNREACHABLE:
        after_code, after = _status(worker, t, migrations)
        result.after = (", ".join(after.get("current") or []) or "base") if after_code == 0 else "?"
    elif verb == "status":
        result.after = result.before
    result.outcome = "done" if code == 0 else "failed"
    if code != 0:
        result.error = scrub(_last_error(lines), t.target.password)
        out.warn(f"[{t.name}] failed (exit {code}): {result.error}")
    else:
        out.info(f"[{t.name}] done" + (f": {result.before} -> {result.after}" if verb in ("apply", "rollback")
                                        else ""))
    result.seconds = round(time.monotonic() - started, 2)
    return result


def run(verb: str, targets: list[FleetTarget], args: list[str], *, migrations: list[str] | None = None,
        parallel: int = 1, canary: str | None = None, max_failures: int = 1,
        out: Output | None = None) -> FleetReport:
    """``dbtune VERB ARGS`` on each target; see the module's docstring."""
    out = out or Output()
    migrations = migrations or []
    report = FleetReport(verb, [TargetResult(t.name) for t in targets])
    slot = {t.name: i for i, t in enumerate(targets)}  # each result keeps its target's place
    order = list(targets)
    if canary is not None and not any(t.name == canary for t in targets):
        raise ConfigError(f"--canary {canary}: no such target")
    workers = Workers(min(max(1, parallel), len(targets)), verb)
    try:
        if canary is not None:
            first = next(t for t in targets if t.name == canary)
            report.results[slot[first.name]] = _on_worker(workers, first, verb, args, migrations, out)
            if report.results[slot[first.name]].outcome != "done":
                out.warn(f"canary {first.name} failed: no other target was started")
                return report
            order = [t for t in targets if t.name != canary]
        _run_rest(report, order, slot, verb, args, migrations, parallel, max_failures, out, workers)
    finally:
        workers.close()
    return report


def _on_worker(workers: Workers, t: FleetTarget, verb: str, args: list[str], migrations: list[str],
               out: Output) -> TargetResult:
    worker = workers.get()
    try:
        return run_one(t, verb, args, migrations, out, worker)
    finally:
        workers.put(worker)


def _run_rest(report: FleetReport, order: list[FleetTarget], slot: dict[str, int], verb: str, args: list[str],
              migrations: list[str], parallel: int, max_failures: int, out: Output, workers: Workers) -> None:
    failures = 0
    lock = threading.Lock()

    def one(t: FleetTarget) -> None:
        nonlocal failures
        with lock:
            if failures >= max_failures:
                return
        result = _on_worker(workers, t, verb, args, migrations, out)
        with lock:
            report.results[slot[t.name]] = result
            if result.outcome != "done":
                failures += 1

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        # Every target is queued; each checks the failures so far before it starts.
        for future in [pool.submit(one, t) for t in order]:
            future.result()
    skipped = [r.name for r in report.results if r.outcome == "not started"]
    if skipped:
        out.warn(f"not started after {failures} failure(s) (--max-failures {max_failures}): {', '.join(skipped)}")


def render(report: FleetReport, out: Output, fmt: str = "table") -> None:
    if fmt == "json":
        out.json(report.as_dict())
        return
    from .core.output import Column

    out.grid([asdict(r) for r in report.results],
             [Column("name", "target"), Column("server", "server"), Column("before", "before"),
              Column("after", "after"), Column("seconds", "seconds", "float"), Column("outcome", "outcome"),
              Column("error", "error", "sql")])
