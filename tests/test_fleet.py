"""Fleet runs: one command over many databases, each with its own verdict, resumable."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dbtune.core.errors import EXIT_FAILED
from dbtune.fleetworkers import Workers
from dbtune.servers.throwaway import throwaway_server
from tests.fix_cli import run_cli, scalar
from tests.fix_db import _kinds

ROOT = Path(__file__).resolve().parent.parent
OWN = ["--migrations", str(ROOT / "examples" / "own-migrations" / "alembic.ini")]


def revision(dsn: str) -> str | None:
    if not scalar(dsn, "SELECT to_regclass('alembic_version') IS NOT NULL"):
        return None
    return scalar(dsn, "SELECT version_num FROM alembic_version")  # type: ignore[no-any-return]


def targets_file(tmp_path: Path, targets: dict[str, str], tags: dict[str, list[str]] | None = None) -> Path:
    lines = []
    for name, dsn in targets.items():
        lines += [f"[targets.{name}]", f"url = {json.dumps(dsn)}"]
        if tags and name in tags:
            lines.append(f"tags = {json.dumps(tags[name])}")
    path = tmp_path / "fleet.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def fleet(*args: str) -> tuple[int, dict[str, dict[str, object]], str]:
    result = run_cli(*args, "--format", "json")
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    return result.exit_code, {t["name"]: t for t in report["targets"]}, result.stderr


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Every server kind the suite tests against, each started for this test (their admin DSNs)."""
    kinds = [k for k in _kinds(request.config) if k in ("embedded", "system")]
    with throwaway_server(kinds[0]) as first:
        if len(kinds) > 1:
            with throwaway_server(kinds[1]) as second:
                yield [first.dsn(), second.dsn()]
        else:
            yield [first.dsn()]


def databases(admin: str, *names: str) -> list[str]:
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    return [admin.rsplit("/", 1)[0] + "/" + name for name in names]


def test_a_fleet_apply_reports_each_target_and_a_second_run_completes_the_rest(
        servers: list[str], tmp_path: Path) -> None:
    dsns: dict[str, str] = {}
    for n, admin in enumerate(servers):
        ok_a, ok_b, failing, blocked = databases(admin, "shop_a", "shop_b", "shop_failing", "shop_blocked")
        dsns |= {f"a{n}": ok_a, f"b{n}": ok_b}
        if n == 0:
            dsns |= {"failing": failing, "blocked": blocked}
    dsns["unreachable"] = "postgresql://nobody:secret@127.0.0.1:1/nothing"
    # A migration that fails: a1 creates customers, which this database already has.
    with psycopg.connect(dsns["failing"], autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int)")
    # One held past --max-wait: a1 then a2's concurrent build, which waits for an open write on customers.
    assert run_cli("apply", "--to", "a1", *OWN, "--database-url", dsns["blocked"]).exit_code == 0
    holder = psycopg.connect(dsns["blocked"])
    holder.execute("INSERT INTO customers (email, country) VALUES ('held@x.test', 'NL')")
    try:
        code, results, stderr = fleet("apply", *OWN, "--targets", str(targets_file(tmp_path, dsns)),
                                      "--max-failures", "10", "--max-wait", "1", "--parallel", "2")
    finally:
        holder.rollback()
        holder.close()
    assert code == 5  # the worst: blocked (5) over unreachable (3) and failed (1)
    healthy = [name for name in dsns if name[0] in "ab" and name[1:].isdigit()]
    assert len(healthy) == 2 * len(servers)
    for name in healthy:
        assert results[name]["outcome"] == "done" and results[name]["after"] == "a3", results[name]
        assert revision(dsns[name]) == "a3"
    assert results["unreachable"]["exit_code"] == 3 and "secret" not in json.dumps(results)
    assert results["failing"]["exit_code"] == 1 and "customers" in str(results["failing"]["error"])
    assert revision(dsns["failing"]) is None  # nothing half-applied: it stays at base
    assert results["blocked"]["exit_code"] == 5 and revision(dsns["blocked"]) == "a1"
    assert "[blocked] failed (exit 5)" in stderr

    with psycopg.connect(dsns["failing"], autocommit=True) as conn:
        conn.execute("DROP TABLE customers")
    del dsns["unreachable"]
    code, again, _ = fleet("apply", *OWN, "--targets", str(targets_file(tmp_path, dsns)), "--max-failures", "10")
    assert code == 0
    assert {name: r["after"] for name, r in again.items()} == dict.fromkeys(dsns, "a3")
    assert again["a0"]["before"] == "a3" and again["blocked"]["before"] == "a1"  # resumed where it stopped


def test_the_first_failure_stops_the_rest_and_a_canary_stops_the_fleet(database: str, tmp_path: Path) -> None:
    admin = database.rsplit("/", 1)[0] + "/postgres"
    good, bad = databases(admin, f"{database.rsplit('/', 1)[1]}_good", f"{database.rsplit('/', 1)[1]}_bad")
    with psycopg.connect(bad, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int)")
    path = targets_file(tmp_path, {"bad": bad, "good": good})
    code, results, _ = fleet("apply", *OWN, "--targets", str(path))
    assert code == 1 and results["bad"]["outcome"] == "failed" and results["good"]["outcome"] == "not started"
    assert revision(good) is None
    code, results, _ = fleet("apply", *OWN, "--targets", str(path), "--canary", "bad", "--max-failures", "5")
    assert code == 1 and results["good"]["outcome"] == "not started"
    code, results, _ = fleet("apply", *OWN, "--targets", str(path), "--exclude", "bad")
    assert code == 0 and set(results) == {"good"} and revision(good) == "a3"


def test_a_libpq_service_file_and_pgpass_supply_the_targets(database: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    url = psycopg.conninfo.conninfo_to_dict(psycopg.conninfo.make_conninfo(database))
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[shop]\nhost={url['host']}\nport={url['port']}\ndbname={url['dbname']}\n"
                        f"user={url['user']}\n")
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{url['host']}:{url['port']}:*:{url['user']}:{url['password']}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    code, results, _ = fleet("apply", *OWN, "--service", "shop")
    assert code == 0 and results["shop"]["after"] == "a3"
    assert revision(database) == "a3"
    code, results, _ = fleet("status", *OWN, "--all-services")
    assert code == 0 and results["shop"]["before"] == "a3"
    unknown = run_cli("apply", *OWN, "--service", "nope")
    assert unknown.exit_code == 2 and "unknown service 'nope'" in unknown.stderr
    assert unknown.stderr.count("\n") == 1


def test_bad_target_files_and_two_names_for_one_database_are_refused(database: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[targets.a]\nurl = 'postgresql://x@h/db'\n[targets.a]\nurl = 'postgresql://x@h/db2'\n")
    result = run_cli("apply", *OWN, "--targets", str(broken))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "broken.toml" in result.stderr
    same = targets_file(tmp_path, {"one": database, "two": database.replace("127.0.0.1", "localhost")})
    result = run_cli("apply", *OWN, "--targets", str(same))
    assert result.exit_code == 2 and "'one' and 'two' are the same database" in result.stderr
    assert revision(database) is None
    tagged = targets_file(tmp_path, {"one": database}, {"one": ["staging"]})
    result = run_cli("apply", *OWN, "--targets", str(tagged), "--tag", "prod")
    assert result.exit_code == 2 and "no target left" in result.stderr


STATUS = ["refresh", "--status", "--all", "--format", "json"]  # a quick read of the target: no views, "[]"


def reads(worker, database: str) -> bool:  # type: ignore[no-untyped-def]
    code, lines = worker.command(database, STATUS)
    return code == 0 and lines[-1] == "[]"


def test_a_worker_that_dies_fails_its_target_and_the_next_gets_one_started_afresh(database: str) -> None:
    """A worker killed mid-fleet (the OOM killer, a DBA's kill): its target fails in one line, and the
    fleet goes on with a worker started afresh.  Workers are forked only from a process running no
    other thread."""
    forked = threading.active_count() == 1
    workers = Workers(1, "refresh")
    try:
        first = workers.get()
        assert (first.proc is None) == forked  # forked from this process, or started afresh
        assert reads(first, database)
        os.kill(first.pid, signal.SIGKILL)
        code, lines = first.command(database, STATUS)
        assert code == EXIT_FAILED and lines[-1] == "error: the fleet's worker process ended", lines
        workers.put(first)
        second = workers.get()
        assert second is not first and second.proc is not None
        assert reads(second, database)
    finally:
        workers.close()


def test_a_process_running_threads_starts_its_workers_afresh(database: str) -> None:
    """Never a fork while another thread runs: a lock it held at that moment would stay held in the copy."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        workers = Workers(2, "refresh")
        try:
            worker = workers.get()
            assert worker.proc is not None and reads(worker, database)
        finally:
            workers.close()
    finally:
        stop.set()
        other.join()
