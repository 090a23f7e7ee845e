"""A team's own Alembic migrations under dbtune: what plain Alembic would do, made safe."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import OWN_MIGRATIONS, SCENARIOS, released_after, run_cli, scalar

OWN = ["--migrations", str(OWN_MIGRATIONS)]


def project(tmp_path: Path, *revisions: str) -> Path:
    """An Alembic directory with these migration bodies, chained r1 -> r2 -> ..."""
    root = tmp_path / "migrations"
    (root / "versions").mkdir(parents=True)
    shutil.copy(SCENARIOS / "broken" / "env.py", root / "env.py")
    shutil.copy(SCENARIOS / "broken" / "script.py.mako", root / "script.py.mako")
    for n, body in enumerate(revisions, start=1):
        down = f'"r{n - 1}"' if n > 1 else "None"
        (root / "versions" / f"r{n}.py").write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f'revision = "r{n}"\ndown_revision = {down}\n\n\n'
            "def upgrade() -> None:\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n\n\n"
            "def downgrade() -> None:\n    pass\n")
    return root


def test_a_percent_in_an_index_predicate_reaches_the_server_intact(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, 'op.execute("CREATE TABLE people (email text)")', """
        with op.get_context().autocommit_block():
            op.create_index("ix_people_test_mail", "people", ["email"], postgresql_concurrently=True,
                            postgresql_where=sa.text("email LIKE '%@x.test'"))
    """)
    result = run_cli("apply", "--database-url", database, "--migrations", str(root))
    assert result.exit_code == 0, result.output
    definition = scalar(database, "SELECT pg_get_indexdef('ix_people_test_mail'::regclass)")
    assert "'%@x.test'" in definition and "%%" not in definition


def test_an_unnamed_concurrent_index_is_refused_before_it_runs(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, 'op.execute("CREATE TABLE people (email text)")', """
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ON people (email)")
    """)
    result = run_cli("apply", "--database-url", database, "--migrations", str(root))
    assert result.exit_code == 2, result.output
    assert "give this index a name" in result.stderr and "revision r2" in result.stderr
    assert scalar(database, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                            "WHERE c.relname = 'people'") == 0


def test_a_revision_half_committed_by_its_autocommit_block_says_so(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, 'op.execute("CREATE TABLE people (email text)")', """
        op.add_column("people", sa.Column("note", sa.Text))
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ix_people_bad ON people (no_such_column)")
    """)
    result = run_cli("apply", "--database-url", database, "--migrations", str(root))
    assert result.exit_code == 1, result.output
    assert "revision r2 failed" in result.stderr and "no_such_column" in result.stderr
    assert "revision r2 is partly applied: committed (1): ALTER TABLE people ADD COLUMN note TEXT | not committed: " \
        "the failed statement and the rest of the revision" in result.stderr
    assert scalar(database, "SELECT count(*) FROM alembic_version") == 1


def test_the_urls_own_options_are_kept(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shop")
    url = f"{database}?options=-csearch_path%3Dshop"
    result = run_cli("apply", "--database-url", url, *OWN)
    assert result.exit_code == 0, result.output
    assert scalar(database, "SELECT to_regclass('shop.customers')") is not None
    assert scalar(database, "SELECT to_regclass('public.customers')") is None
    assert scalar(database, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            "to_regclass('shop.ix_customers_country')") is True


def test_database_timeouts_do_not_break_an_apply(database: str) -> None:
    """statement_timeout and idle_session_timeout (PostgreSQL 14+) set on the database, as busy servers do."""
    name = database.rsplit("/", 1)[1]
    assert run_cli("apply", "--database-url", database, *OWN, "--to", "a1").exit_code == 0
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO customers (email, country) SELECT 'c' || i, 'NL' FROM generate_series(1, 300000) i")
        conn.execute("CREATE TABLE notes (id int)")
        conn.execute(f'ALTER DATABASE "{name}" SET statement_timeout = \'50ms\'')
        conn.execute(f'ALTER DATABASE "{name}" SET idle_session_timeout = \'1s\'')
    # A reader holds the build for 3 s, longer than the idle timeout of our idle sessions.
    reader = psycopg.connect(database, options="-c statement_timeout=0")
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    reader.execute("SELECT count(*) FROM notes")
    with released_after(3.0, reader.rollback):
        result = run_cli("apply", "--database-url", database, *OWN, "--to", "a2")
    reader.close()
    assert result.exit_code == 0, result.output
    assert "database is at a2" in result.stdout
    assert scalar(database, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_customers_country'::regclass")
    assert "analyzed public.customers" in result.stdout


@pytest.mark.parametrize("statement", ["REINDEX TABLE CONCURRENTLY people", "REINDEX (CONCURRENTLY) INDEX ix_p"])
def test_other_concurrent_statements_wait_without_a_lock_timeout(database: str, tmp_path: Path,
                                                                 statement: str) -> None:
    root = project(tmp_path, 'op.execute("CREATE TABLE people (email text); CREATE INDEX ix_p ON people (email)")',
                   f"""
        with op.get_context().autocommit_block():
            op.execute("{statement}")
    """)
    assert run_cli("apply", "--database-url", database, "--migrations", str(root), "--to", "r1").exit_code == 0
    writer = psycopg.connect(database)
    writer.execute("INSERT INTO people VALUES ('w@x.test')")  # an open write: the rebuild must wait for it
    with released_after(1.5, writer.commit):
        result = run_cli("apply", "--database-url", database, "--migrations", str(root), "--lock-timeout", "0.2")
    writer.close()
    assert result.exit_code == 0, result.output
    assert "retrying" not in result.stderr
    assert scalar(database, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
