"""Settings the role or the database carries (ALTER ROLE/DATABASE ... SET) reach dbtune's sessions and
env.py's connection: dbtune's own sessions set what they need, the migration's statements keep the
server's statement_timeout unless --statement-timeout says otherwise, and a statement stopped by
one of them says which setting and where it comes from."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg

from tests.fix_cli import run_cli, scalar
from tests.fix_db import OwnedDatabase
from tests.test_hardening import PEOPLE, error_line
from tests.test_online import Blocker, index_state
from tests.test_own_migrations import project


def carry(owned: OwnedDatabase, scope: str, **settings: str) -> None:
    """ALTER ROLE (scope "role") or ALTER DATABASE (scope "database") ... SET, as a DBA would."""
    dbname = psycopg.conninfo.conninfo_to_dict(owned.admin_url)["dbname"]
    target = f'ROLE "{owned.role}"' if scope == "role" else f'DATABASE "{dbname}"'
    with psycopg.connect(owned.admin_url, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(f"ALTER {target} SET {name} = {value!r}")  # type: ignore[arg-type]


def apply(owned: OwnedDatabase, root: Path, *args: str):
    return run_cli("apply", "--database-url", owned.url, "--migrations", str(root), "--no-progress", *args)


def test_a_statement_stopped_by_the_roles_statement_timeout_says_so_and_the_option_lifts_it(
        owned_database: OwnedDatabase, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE, 'op.execute("SELECT pg_sleep(1)")\nop.execute("CREATE TABLE later (id int)")')
    assert apply(owned_database, root, "--to", "r1").exit_code == 0
    carry(owned_database, "role", statement_timeout="300ms")
    result = apply(owned_database, root)
    assert result.exit_code == 1, result.output
    line = error_line(result.stderr)
    assert "statement_timeout is 300ms on this connection, set by the role (ALTER ROLE ... SET)" in line
    assert "--statement-timeout" in line and "stays at r1" in line
    assert scalar(owned_database.admin_url, "SELECT to_regclass('later') IS NULL")

    result = apply(owned_database, root, "--statement-timeout", "0")
    assert result.exit_code == 0, result.output
    assert scalar(owned_database.admin_url, "SELECT version_num FROM alembic_version") == "r2"


def test_the_databases_statement_timeout_is_named_as_the_databases(owned_database: OwnedDatabase,
                                                                    tmp_path: Path) -> None:
    root = project(tmp_path, 'op.execute("SELECT pg_sleep(1)")')
    carry(owned_database, "database", statement_timeout="300ms")
    result = apply(owned_database, root)
    assert result.exit_code == 1, result.output
    assert "set by the database (ALTER DATABASE ... SET)" in error_line(result.stderr)


def test_builds_and_the_lock_session_outlast_the_roles_timeouts(owned_database: OwnedDatabase,
                                                                 tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE + '\nop.execute("CREATE TABLE notes (id int)")', """
        with op.get_context().autocommit_block():
            op.create_index("ix_people_email", "people", ["email"], postgresql_concurrently=True)
            op.execute("VACUUM people")
    """)
    app = owned_database.other_role()  # the application's role, which carries none of them
    assert apply(owned_database, root, "--to", "r1").exit_code == 0
    carry(owned_database, "role", statement_timeout="500ms", idle_session_timeout="500ms",
          idle_in_transaction_session_timeout="500ms")
    # The build waits about 2 s for an old snapshot: longer than every timeout the role carries.
    blocker = Blocker(app, "snapshot")
    timer = threading.Timer(2.0, blocker.release)
    timer.start()
    try:
        result = apply(owned_database, root)
    finally:
        timer.join()
    assert result.exit_code == 0, result.output
    assert index_state(owned_database.admin_url, "ix_people_email") == (True, True)
    assert "was ended by someone else" not in result.stderr  # the idle lock session was never cut


def test_a_read_only_role_is_told_why_nothing_was_written(owned_database: OwnedDatabase, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE)
    carry(owned_database, "role", default_transaction_read_only="on")
    result = apply(owned_database, root)
    assert result.exit_code == 1, result.output  # the revision failed; the database stays at base
    line = error_line(result.stderr)
    assert "default_transaction_read_only is on for this connection, set by the role" in line
    assert scalar(owned_database.admin_url, "SELECT to_regclass('people') IS NULL")


def test_every_retry_on_the_applications_pooled_engine_is_bounded_by_lock_timeout(
        owned_database: OwnedDatabase, tmp_path: Path, short_pauses: None) -> None:
    """env.py takes the application's engine (its own pool, kept across dbtune's attempts): the retry
    after a lock timeout gets the same connection back, whose rolled-back transaction took dbtune's
    lock_timeout with it.  Every attempt must still give up within --lock-timeout."""
    import sys

    root = project(tmp_path, PEOPLE, 'op.execute("ALTER TABLE people ADD COLUMN nick text")')
    module = f"app_db_{abs(hash(str(tmp_path)))}"
    url = owned_database.url.replace("postgresql://", "postgresql+psycopg://")
    (root / f"{module}.py").write_text(f"from sqlalchemy import create_engine\nengine = create_engine({url!r})\n")
    env_py = root / "env.py"
    env_py.write_text(env_py.read_text().replace(
        'engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)',
        "import sys, pathlib\n    sys.path.insert(0, str(pathlib.Path(__file__).parent))\n"
        f"    from {module} import engine"))
    try:
        assert apply(owned_database, root, "--to", "r1").exit_code == 0
        reader = psycopg.connect(owned_database.url)
        reader.execute("SELECT count(*) FROM people")  # ACCESS SHARE, held in an open transaction
        # Should an attempt wait unbounded, the reader lets go after a minute and the ALTER succeeds.
        timer = threading.Timer(60.0, reader.rollback)
        timer.start()
        try:
            result = apply(owned_database, root, "--lock-timeout", "0.2")
        finally:
            timer.cancel()
            reader.close()
        assert result.exit_code == 1, result.output
        assert "attempt 5 of 5" in result.stderr and "could not get a lock" in result.stderr
        assert scalar(owned_database.admin_url, "SELECT version_num FROM alembic_version") == "r1"
    finally:
        if module in sys.modules:
            sys.modules[module].engine.dispose()
            del sys.modules[module]
