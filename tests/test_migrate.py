"""apply / rollback / status against real PostgreSQL, on our migrations and on a team's own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from dbtune.core.retry import Backoff
from dbtune.core.runlock import LOCK_KEY
from tests.fix_cli import OWN_MIGRATIONS, ROOT, SCENARIOS, released_after, run_cli, scalar

OWN = ["--migrations", str(OWN_MIGRATIONS)]


def current(dsn: str, table: str = "alembic_version") -> str | None:
    return scalar(dsn, f"SELECT string_agg(version_num, ',') FROM {table}")  # type: ignore[return-value]


def test_own_migrations_apply_rollback_apply(database: str) -> None:
    first = run_cli("apply", "--database-url", database, *OWN)
    assert first.exit_code == 0, first.output
    assert "applying a2" in first.stdout
    assert current(database) == "a3"
    assert scalar(database, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_customers_country'::regclass")
    assert scalar(database, "SELECT count(*) FROM information_schema.columns "
                            "WHERE table_name = 'customers' AND column_name = 'name'") == 1

    down = run_cli("rollback", "--database-url", database, *OWN, "--to", "base")
    assert down.exit_code == 0, down.output
    assert current(database) is None
    assert scalar(database, "SELECT to_regclass('customers')") is None

    again = run_cli("apply", "--database-url", database, *OWN)
    assert again.exit_code == 0, again.output
    assert current(database) == "a3"


def test_reference_migrations_apply_rollback_apply(database: str) -> None:
    up = run_cli("apply", "--database-url", database)
    assert up.exit_code == 0, up.output
    assert scalar(database, "SELECT to_regclass('orders')") is not None
    # Each table is analyzed once, after all of its new indexes (orders gets them in three revisions).
    assert up.stdout.count("analyzed public.orders") == 1
    assert scalar(database, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                            "WHERE c.relname LIKE 'ix\\_%%' AND i.indisvalid") == \
        len(list((ROOT / "sql" / "indexes").glob("*.sql")))
    head = current(database, "dbtune_version")
    status = run_cli("status", "--database-url", database, "--format", "json")
    assert json.loads(status.stdout)["current"] == [head]
    assert json.loads(status.stdout)["pending"] == []

    down = run_cli("rollback", "--database-url", database, "--to", "base")
    assert down.exit_code == 0, down.output
    assert current(database, "dbtune_version") is None
    assert scalar(database, "SELECT to_regclass('orders')") is None

    up_again = run_cli("apply", "--database-url", database)
    assert up_again.exit_code == 0, up_again.output
    assert current(database, "dbtune_version") == head


def test_rollback_defaults_to_one_step_and_steps_counts(database: str) -> None:
    assert run_cli("apply", "--database-url", database, *OWN).exit_code == 0
    assert run_cli("rollback", "--database-url", database, *OWN).exit_code == 0
    assert current(database) == "a2"
    assert run_cli("rollback", "--database-url", database, *OWN, "--steps", "2").exit_code == 0
    assert current(database) is None
    result = run_cli("rollback", "--database-url", database, *OWN)
    assert result.exit_code == 0 and "nothing to roll back" in result.stdout


def test_apply_to_a_revision_and_status_lists_pending(database: str) -> None:
    assert run_cli("apply", "--database-url", database, *OWN, "--to", "a1").exit_code == 0
    status = run_cli("status", "--database-url", database, *OWN)
    assert status.exit_code == 0, status.output
    assert "a1" in status.stdout
    assert "pending a2: index customers by country" in status.stdout
    assert "pending a3" in status.stdout
    assert "PostgreSQL 1" in status.stdout


def test_status_masks_the_password(database: str) -> None:
    password = psycopg.conninfo.conninfo_to_dict(database)["password"]
    result = run_cli("status", "--database-url", database)
    assert result.exit_code == 0, result.output
    assert password not in result.output
    assert "postgres:***@" in result.stdout


def test_database_url_from_environment_in_order(database: str) -> None:
    via_env = run_cli("status", "--format", "json", env={"DATABASE_URL": database})
    assert json.loads(via_env.stdout)["target_source"] == "DATABASE_URL"
    both = run_cli("status", "--format", "json",
                   env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x", "DBTUNE_DATABASE_URL": database})
    assert json.loads(both.stdout)["target_source"] == "DBTUNE_DATABASE_URL"


def test_dry_run_prints_sql_with_locks_and_changes_nothing(database: str) -> None:
    result = run_cli("apply", "--database-url", database, *OWN, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_customers_country" in result.stdout
    assert "-- lock: SHARE UPDATE EXCLUSIVE on customers (reads and writes continue" in result.stdout
    assert "| outside any transaction" in result.stdout
    assert "-- lock: ACCESS EXCLUSIVE on customers (waits for every open transaction" in result.stdout  # a3's ALTER
    assert current_or_none(database) is None


def current_or_none(dsn: str) -> str | None:
    if scalar(dsn, "SELECT to_regclass('alembic_version')") is None:
        return None
    return current(dsn)


def test_dry_run_of_our_index_migrations(database: str) -> None:
    assert run_cli("apply", "--database-url", database, "--to", "0002").exit_code == 0
    result = run_cli("apply", "--database-url", database, "--dry-run", "--maintenance-workers", "2",
                     "--max-wait", "30")
    assert result.exit_code == 0, result.output
    builds = [line for line in result.stdout.splitlines() if line.startswith("CREATE INDEX CONCURRENTLY")]
    assert len(builds) == len(list((ROOT / "sql" / "indexes").glob("*.sql")))
    assert "outside any transaction | own autocommit connection; lock_timeout=0, watched (--max-wait 30.0); " \
           "max_parallel_maintenance_workers=2" in result.stdout
    assert "-- Running upgrade 0005 -> 0006" in result.stdout
    assert current(database, "dbtune_version") == "0002"
    assert scalar(database, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'ix\\_%%'") == 0


def test_dry_run_of_a_rollback(database: str) -> None:
    assert run_cli("apply", "--database-url", database, *OWN).exit_code == 0
    result = run_cli("rollback", "--database-url", database, *OWN, "--steps", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "ALTER TABLE customers DROP COLUMN name" in result.stdout
    assert "DROP INDEX CONCURRENTLY" in result.stdout
    assert current(database) == "a3"


def test_failing_migration_names_revision_and_statement_and_keeps_revision(database: str) -> None:
    result = run_cli("apply", "--database-url", database, "--migrations", str(SCENARIOS / "broken"))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    line = result.stderr.strip()
    assert line.count("\n") == 0, line
    assert "revision b2 failed" in line
    assert "missing_column" in line and "UPDATE widgets SET colour" in line
    assert "stays at b1" in line
    assert current(database) == "b1"
    # b2's first statement rolled back with it.
    assert scalar(database, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'colour'") == 0


@pytest.mark.parametrize("mutate, code, words", [
    (lambda dsn: re.sub(r"://([^:]+):[^@]*@", r"://\1:wrong-pw@", dsn), 3, "password authentication failed"),
    (lambda dsn: dsn.rsplit("/", 1)[0] + "/no_such_db", 3, "does not exist"),
    (lambda dsn: "postgresql://postgres:secret-pw@127.0.0.1:1/postgres", 3, "cannot connect"),
    (lambda dsn: "mysql://root:secret-pw@localhost/db", 2, "not a PostgreSQL URL"),
])
def test_bad_connections_are_one_clear_line(database: str, mutate, code: int, words: str) -> None:
    url = mutate(database)
    for command in (["status"], ["apply"], ["rollback"]):
        result = run_cli(*command, "--database-url", url)
        assert result.exit_code == code, result.output
        assert words in result.stderr
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1
        assert "wrong-pw" not in result.output and "secret-pw" not in result.output


def test_unknown_revision_is_a_usage_error(database: str) -> None:
    for command in (["apply", "--to", "nope"], ["rollback", "--to", "nope"], ["rollback", "--to", "nope@-1"]):
        result = run_cli(*command, "--database-url", database, *OWN)
        assert result.exit_code == 2, result.output
        assert f"unknown revision '{command[-1]}'" in result.stderr


def test_migrations_path_that_is_not_alembic(database: str, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    for path in (tmp_path, tmp_path / "missing"):
        result = run_cli("apply", "--database-url", database, "--migrations", str(path))
        assert result.exit_code == 2, result.output
        assert "Alembic" in result.stderr or "does not exist" in result.stderr
        assert "Traceback" not in result.output


def test_migrations_from_pyproject(database: str, tmp_path, monkeypatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.dbtune]\nmigrations = "{OWN_MIGRATIONS.as_posix()}"\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("status", "--database-url", database, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["migrations_source"].startswith("[tool.dbtune]")
    assert data["heads"] == ["a3"]


def test_second_run_exits_at_once_while_the_lock_is_held(database: str) -> None:
    with psycopg.connect(database, autocommit=True, application_name="other dbtune") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        result = run_cli("apply", "--database-url", database, *OWN)
        assert result.exit_code == 4, result.output
        assert "another dbtune run" in result.stderr and "other dbtune" in result.stderr
    assert current_or_none(database) is None


def test_wait_flag_waits_for_the_lock(database: str) -> None:
    holder = psycopg.connect(database, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    with released_after(1.5, holder.close):
        result = run_cli("apply", "--database-url", database, *OWN, "--wait")
    assert result.exit_code == 0, result.output
    assert "waiting for another dbtune run" in result.stdout
    assert current(database) == "a3"


def test_lock_timeout_retries_with_backoff(database: str) -> None:
    assert run_cli("apply", "--database-url", database, *OWN, "--to", "a2").exit_code == 0
    # A reader holds ACCESS SHARE on customers; a3's ALTER TABLE needs ACCESS EXCLUSIVE.
    reader = psycopg.connect(database)
    reader.execute("SELECT count(*) FROM customers")
    with released_after(2.0, reader.rollback):
        result = run_cli("apply", "--database-url", database, *OWN, "--lock-timeout", "0.2")
    reader.close()
    assert result.exit_code == 0, result.output
    assert "could not get a lock within 0.2s; retrying" in result.stderr
    assert current(database) == "a3"


def test_backoff_pauses_grow_to_their_cap_with_full_jitter() -> None:
    """Each pause is drawn between 0.1 s and base x 2^attempt (at most the cap): waiting runs spread out
    instead of retrying in step, and a later attempt may wait longer."""
    backoff = Backoff(retries=5, base_s=0.5, cap_s=3.0)
    for attempt, bound in ((1, 1.0), (2, 2.0), (3, 3.0), (6, 3.0)):
        pauses = [backoff.delay(attempt) for _ in range(400)]
        assert all(0.1 <= p <= bound for p in pauses), (attempt, min(pauses), max(pauses))
        assert max(pauses) > 0.8 * bound and len(set(pauses)) > 300  # the whole range, not one value


def test_lock_timeout_gives_up_after_retries(database: str) -> None:
    assert run_cli("apply", "--database-url", database, *OWN, "--to", "a2").exit_code == 0
    with psycopg.connect(database) as reader:
        reader.execute("SELECT count(*) FROM customers")
        from dbtune.core.output import Output
        from dbtune.core.settings import resolve_migrations, resolve_target
        from dbtune.migration import verbs as migrate
        from dbtune.online import OnlineOptions

        options = migrate.RunOptions(online=OnlineOptions(out=Output(quiet=True), lock_timeout_s=0.1,
                                                          backoff=Backoff(retries=2, base_s=0.05)))
        with pytest.raises(migrate.MigrationFailed) as failure:
            migrate.apply(resolve_target(database), resolve_migrations(str(OWN_MIGRATIONS)), options=options)
    assert failure.value.sqlstate == "55P03"
    assert failure.value.failed_revision == "a3"
    assert current(database) == "a2"


def test_plain_alembic_still_runs_our_migrations(database: str) -> None:
    env = {**os.environ, "DBTUNE_DATABASE_URL": database}
    subprocess.run([sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
                   check=True, env=env, capture_output=True, cwd=ROOT)
    assert scalar(database, "SELECT to_regclass('orders')") is not None
    subprocess.run([sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "downgrade", "base"],
                   check=True, env=env, capture_output=True, cwd=ROOT)
    assert scalar(database, "SELECT to_regclass('orders')") is None


def test_every_command_has_help_with_an_example() -> None:
    for command in (["apply"], ["rollback"], ["status"], ["seed"], ["verify"], ["sandbox"], ["sandbox", "start"],
                    ["sandbox", "url"], ["sandbox", "stop"]):
        result = run_cli(*command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.stdout, command
    top = run_cli("--help")
    assert "Exit codes" in top.stdout and "another dbtune run holds" in top.stdout


def test_sandbox_start_url_stop() -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="dbtune-test-"))
    tmp_path.chmod(0o755)  # the server runs as an unprivileged user when we are root
    directory = str(tmp_path / "sb")
    started = run_cli("sandbox", "start", "--dir", directory)
    try:
        assert started.exit_code == 0, started.output
        url = started.stdout.strip()
        assert url.startswith("postgresql://postgres:") and "@127.0.0.1:" in url
        again = run_cli("sandbox", "start", "--dir", directory)
        assert again.stdout.strip() == url and "already running" in again.stderr
        assert run_cli("sandbox", "url", "--dir", directory).stdout.strip() == url
        assert scalar(url, "SHOW shared_preload_libraries") == "pg_stat_statements"
        assert scalar(url, "SHOW listen_addresses") == "127.0.0.1"
    finally:
        stopped = run_cli("sandbox", "stop", "--dir", directory)
    assert stopped.exit_code == 0
    assert not (tmp_path / "sb").exists()
    gone = run_cli("sandbox", "url", "--dir", directory)
    assert gone.exit_code == 2 and "no sandbox" in gone.stderr
    tmp_path.rmdir()


def test_a_role_that_may_not_create_an_extension_is_told_what_to_do(database: str) -> None:
    role = "app_" + database.rsplit("/", 1)[1]
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD \'app-secret\'')
        conn.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')
        conn.execute(f'GRANT CREATE ON DATABASE "{database.rsplit("/", 1)[1]}" TO "{role}"')
    as_app = re.sub(r"://[^@]*@", f"://{role}:app-secret@", database)
    try:
        result = run_cli("apply", "--database-url", as_app)
        assert result.exit_code == 1, result.output
        assert "revision 0002" in result.stderr
        assert "may not create the pg_stat_statements extension" in result.stderr
        assert "app-secret" not in result.output
        assert current(database, "dbtune_version") == "0001"
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}" CASCADE')
        with psycopg.connect(database.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')


def test_a_password_with_url_special_characters(database: str) -> None:
    role, password = "odd_" + database.rsplit("/", 1)[1], "p@ss%w/rd:1"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
    url = re.sub(r"://[^@]*@", f"://{role}:{quote(password, safe='')}@", database)
    try:
        result = run_cli("apply", "--database-url", url, *OWN)
        assert result.exit_code == 0, result.output
        assert password not in result.output and quote(password, safe="") not in result.output
        status = run_cli("status", "--database-url", url)
        assert f"{role}:***@" in status.stdout
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(database.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
