"""Through a real PgBouncer: refused in transaction and statement pooling, at home in session pooling,
and no setting or lock left behind on a server connection the application gets next."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from dbtune.core import pooler
from tests.fix_cli import run_cli, scalar
from tests.fix_db import OwnedDatabase
from tests.test_online import Blocker
from tests.test_own_migrations import project

TABLE_AND_INDEX = ('op.execute("CREATE TABLE people (id int PRIMARY KEY, email text)")',
                   'op.execute("INSERT INTO people SELECT g, g::text FROM generate_series(1, 20000) g")',
                   """
    with op.get_context().autocommit_block():
        op.create_index("ix_people_email", "people", ["email"], postgresql_concurrently=True)
""")


# What the role carries (ALTER ROLE ... SET), as teams' application roles often do: a setting of
# dbtune's left on a pooled server connection would show as a difference from these.
ROLE_SETTINGS = {("5s", "30s", "1h", "0")}


@pytest.fixture(autouse=True)
def _probe_each_time() -> None:
    pooler.forget()  # each test brings a PgBouncer of its own


def env_py_through(root: Path, url: str) -> Path:
    """The project's env.py connects to ``url`` (the pooler) whatever dbtune is given."""
    env_py = root / "env.py"
    env_py.write_text(env_py.read_text().replace('config.get_main_option("sqlalchemy.url"), poolclass',
                                                 f'{url!r}, poolclass'))
    return root


def carry_settings(owned: OwnedDatabase) -> None:
    with psycopg.connect(owned.admin_url, autocommit=True) as conn:
        for name, value in (("lock_timeout", "5s"), ("statement_timeout", "30s"), ("idle_session_timeout", "1h")):
            conn.execute(f'ALTER ROLE "{owned.role}" SET {name} = {value!r}')


def settings_of_every_server_connection(url: str, pool_size: int) -> set[tuple[str, ...]]:
    """What each of the pool's server connections carries now: as many clients at once as the pool
    has servers, each in a transaction (so each holds a server connection of its own)."""
    conns = [psycopg.connect(url) for _ in range(pool_size)]
    try:
        return {tuple(str(v) for v in conn.execute(
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), "
            "current_setting('idle_session_timeout'), "
            "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())").fetchone())
            for conn in conns}
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.parametrize("mode", ["transaction", "statement"])
def test_a_transaction_or_statement_pooler_is_refused_before_anything_changes(
        owned_database: OwnedDatabase, pgbouncer, tmp_path: Path, mode: str) -> None:
    # One server connection: whatever dbtune sent through the pooler, the next client would inherit.
    carry_settings(owned_database)
    bouncer = pgbouncer(mode, pool_size=1)
    url = bouncer.url(owned_database.url)
    root = project(tmp_path, *TABLE_AND_INDEX)
    for args in (["apply"], ["rollback", "--to", "base"], ["status"], ["apply", "--dry-run"]):
        result = run_cli(*args, "--database-url", url, "--migrations", str(root))
        assert result.exit_code == 2, result.output
        line = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(line) == 1, result.stderr
        assert f"connection pooler in {mode} pooling mode" in line[0]
        assert "session mode" in line[0] and "nothing was changed" in line[0]
        assert owned_database.password not in result.output
    # Nothing changed: no version table, no table, no setting on the pooled server connection.
    assert scalar(owned_database.admin_url, "SELECT to_regclass('alembic_version') IS NULL "
                                            "AND to_regclass('people') IS NULL")
    if mode == "transaction":
        assert settings_of_every_server_connection(url, 1) == ROLE_SETTINGS


def test_env_py_connecting_through_a_transaction_pooler_is_refused(
        owned_database: OwnedDatabase, pgbouncer, tmp_path: Path) -> None:
    """dbtune given the server directly, while the project's env.py goes through the pooler."""
    carry_settings(owned_database)
    # Two servers: env.py's open transaction holds one, dbtune's probe takes the other.
    bouncer = pgbouncer("transaction", pool_size=2)
    root = env_py_through(project(tmp_path, *TABLE_AND_INDEX), bouncer.url(owned_database.url))
    result = run_cli("apply", "--database-url", owned_database.url, "--migrations", str(root))
    assert result.exit_code == 2, result.output
    assert "transaction pooling mode" in result.stderr
    assert scalar(owned_database.admin_url, "SELECT to_regclass('people') IS NULL")
    assert settings_of_every_server_connection(bouncer.url(owned_database.url), 2) == ROLE_SETTINGS


def test_session_pooling_works_as_a_direct_connection_and_leaves_nothing_behind(
        owned_database: OwnedDatabase, pgbouncer, tmp_path: Path) -> None:
    # No server_reset_query: only what dbtune itself resets protects the next client.
    carry_settings(owned_database)
    bouncer = pgbouncer("session", pool_size=8, reset_query="")
    url = bouncer.url(owned_database.url)
    root = project(tmp_path, *TABLE_AND_INDEX)
    assert run_cli("apply", "--to", "r2", "--database-url", url, "--migrations", str(root)).exit_code == 0

    # A blocker of the application's, through the same pooler: named by its server pid, --max-wait honoured.
    app = owned_database.other_role()
    with psycopg.connect(owned_database.admin_url, autocommit=True) as conn:
        conn.execute(f"GRANT SELECT, INSERT ON people TO {psycopg.conninfo.conninfo_to_dict(app)['user']}")
    blocker = Blocker(bouncer.url(app), "write", write="INSERT INTO people VALUES (-1, 'x')")
    server_pid = blocker.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert server_pid != blocker.conn.info.backend_pid  # the pooler's own pid, as the suite expects
    try:
        result = run_cli("apply", "--database-url", url, "--migrations", str(root), "--max-wait", "2")
    finally:
        blocker.release()
    assert result.exit_code == 5, result.output
    assert f"pid {server_pid}" in result.stderr
    assert run_cli("apply", "--database-url", url, "--migrations", str(root)).exit_code == 0
    assert scalar(owned_database.admin_url,
                  "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_people_email'::regclass")
    assert settings_of_every_server_connection(url, 8) == ROLE_SETTINGS


def test_env_pys_connection_is_put_back_as_it_was_after_success_and_failure(
        owned_database: OwnedDatabase, pgbouncer, tmp_path: Path) -> None:
    """Revisions that open no connection of dbtune's after them: only the restore of env.py's own
    connection can leave its server connection as the role left it."""
    carry_settings(owned_database)
    bouncer = pgbouncer("session", pool_size=8, reset_query="")
    url = bouncer.url(owned_database.url)
    root = project(tmp_path, 'op.execute("CREATE TABLE t1 (id int)")', 'op.execute("SELECT 1 / 0")')
    assert run_cli("apply", "--to", "r1", "--database-url", url, "--migrations", str(root)).exit_code == 0
    assert settings_of_every_server_connection(url, 8) == ROLE_SETTINGS
    failed = run_cli("apply", "--database-url", url, "--migrations", str(root))
    assert failed.exit_code == 1 and "division by zero" in failed.stderr, failed.output
    assert settings_of_every_server_connection(url, 8) == ROLE_SETTINGS


def test_prepared_statements_never_reach_the_next_client(owned_database: OwnedDatabase, pgbouncer) -> None:
    from dbtune.core import db
    from dbtune.core.settings import Target

    bouncer = pgbouncer("session", pool_size=2, reset_query="")
    url = bouncer.url(owned_database.url)
    with db.connect(Target.parse(url, "test")) as conn:
        for _ in range(6):  # psycopg prepares a query on its fifth run
            conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s", ["x"])
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] > 0
    # The application's next clients, on every server connection of the pool.
    apps = [psycopg.connect(url) for _ in range(2)]
    try:
        assert [app.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] for app in apps] == [0, 0]
    finally:
        for app in apps:
            app.close()


def test_a_full_pool_is_reported_as_such_not_as_a_pooling_mode(
        owned_database: OwnedDatabase, pgbouncer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pooler, "PROBE_WAIT_S", 1.0)
    # Two servers: the application holds one, dbtune's first session takes the other, and the
    # probe's second client finds none free.
    bouncer = pgbouncer("session", pool_size=2)
    url = bouncer.url(owned_database.url)
    with psycopg.connect(url) as app:
        app.execute("SELECT 1")
        result = run_cli("report", "cache", "--database-url", url)
    assert result.exit_code == 3, result.output
    assert "no free server connection within 1s" in result.stderr
    assert "pooling mode" in result.stderr and "statement pooling" not in result.stderr


def test_env_py_through_a_pooler_dbtune_cannot_probe_is_refused(
        owned_database: OwnedDatabase, pgbouncer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """env.py holds one of the pool's two servers, dbtune's check takes the other, and the probe's
    second client finds none free: dbtune cannot tell the mode, so it stops before setting anything."""
    monkeypatch.setattr(pooler, "PROBE_WAIT_S", 1.0)
    bouncer = pgbouncer("session", pool_size=2)
    root = env_py_through(project(tmp_path, *TABLE_AND_INDEX), bouncer.url(owned_database.url))
    result = run_cli("apply", "--database-url", owned_database.url, "--migrations", str(root))
    assert result.exit_code == 2, result.output
    line = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(line) == 1 and "cannot open a session there to tell its pooling mode" in line[0], result.stderr
    assert owned_database.password not in result.output
    assert scalar(owned_database.admin_url, "SELECT to_regclass('people') IS NULL")


def test_cron_verbs_as_the_owner_through_session_pooling_leave_nothing_behind(
        owned_database: OwnedDatabase, pgbouncer, tmp_path: Path) -> None:
    """refresh (each view's one session holds its lock, sets its timeouts and records), refresh --status
    and report, as the owner role through session pooling with no reset query: they work as directly,
    and no setting or advisory lock stays on a server connection the application gets next.
    Transaction pooling is refused for them too, before anything is done."""
    carry_settings(owned_database)
    with psycopg.connect(owned_database.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE readings (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO readings SELECT i, 1 + i % 7 FROM generate_series(1, 1000) i")
        conn.execute("CREATE MATERIALIZED VIEW keyed AS SELECT v, count(*) AS n FROM readings GROUP BY v")
        conn.execute("CREATE UNIQUE INDEX keyed_v ON keyed (v)")
    bouncer = pgbouncer("session", pool_size=4, reset_query="")
    url = bouncer.url(owned_database.url)
    for args in (["--setup"], ["--all", "--timeout", "60"], ["--all"]):
        refreshed = run_cli("refresh", *args, "--database-url", url)
        assert refreshed.exit_code == 0, refreshed.output
    assert "public.keyed: refreshed concurrently" in refreshed.stdout
    status = run_cli("refresh", "--status", "--all", "--format", "json", "--database-url", url)
    assert status.exit_code == 0 and json.loads(status.stdout)[0]["rows"] == 7, status.output
    page = run_cli("report", "--format", "html", "-o", str(tmp_path / "page.html"), "--database-url", url)
    assert page.exit_code == 0 and 'data-section="refreshes"' in (tmp_path / "page.html").read_text(), page.output
    assert scalar(owned_database.admin_url, "SELECT count(*) FROM dbtune.refresh_history") == 2
    assert settings_of_every_server_connection(url, 4) == ROLE_SETTINGS

    through = pgbouncer("transaction", pool_size=1).url(owned_database.url)
    for args in (["refresh", "--all"], ["maintain"], ["report"]):
        refused = run_cli(*args, "--database-url", through)
        assert refused.exit_code == 2 and "transaction pooling mode" in refused.stderr, (args, refused.output)
    assert scalar(owned_database.admin_url, "SELECT count(*) FROM dbtune.refresh_history") == 2
    assert settings_of_every_server_connection(through, 1) == ROLE_SETTINGS
