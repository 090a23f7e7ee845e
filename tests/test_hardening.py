"""Teams' own migrations lose no data, touch only the target, and never show a traceback."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dbtune.core.runlock import LOCK_KEY
from tests.fix_cli import dbtune_process, released_after, run_cli, scalar
from tests.test_online import Blocker, build_in_progress, index_state, wait_until
from tests.test_own_migrations import project

PEOPLE = 'op.execute("CREATE TABLE people (id int PRIMARY KEY, email text, full_name text, is_active bool)")'


def execute(database: str, statement: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def apply(database: str, root: Path, *args: str):
    return run_cli("apply", "--database-url", database, "--migrations", str(root), *args)


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


# -- an index of the same name, but another index ---------------------------------

def test_an_existing_index_with_another_definition_is_not_taken_for_the_requested_one(
        database: str, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE, """
        with op.get_context().autocommit_block():
            op.create_index("idx_people_login", "people", ["email"], unique=True, postgresql_concurrently=True,
                            postgresql_include=["full_name"], postgresql_where=sa.text("is_active"))
    """)
    assert apply(database, root, "--to", "r1").exit_code == 0
    execute(database, "CREATE INDEX idx_people_login ON people (full_name)")  # made by hand, long ago
    result = apply(database, root)
    assert result.exit_code == 1, result.output
    line = error_line(result.stderr)
    assert "already exists with another definition" in line
    assert "USING btree (full_name)" in line and "USING btree (email) INCLUDE (full_name) WHERE is_active" in line
    assert "stays at r1" in line
    assert scalar(database, "SELECT pg_get_indexdef('idx_people_login'::regclass)").endswith("(full_name)")

    # The same index, written differently, is kept as it is.
    execute(database, "DROP INDEX idx_people_login")
    execute(database, "CREATE UNIQUE INDEX idx_people_login ON public.people USING btree (email) "
                      "INCLUDE (full_name) WHERE (is_active)")
    result = apply(database, root)
    assert result.exit_code == 0, result.output
    assert "already valid, kept" in result.stdout


def test_if_not_exists_keeps_another_definition_with_a_warning(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE, """
        with op.get_context().autocommit_block():
            op.execute("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_people_login ON people (email)")
    """)
    assert apply(database, root, "--to", "r1").exit_code == 0
    execute(database, "CREATE INDEX idx_people_login ON people (full_name)")
    result = apply(database, root)
    assert result.exit_code == 0, result.output
    assert "already exists with another definition" in result.stderr and "kept" in result.stderr
    assert "(full_name)" in result.stderr and "(email)" in result.stderr


# -- the run's lock session ------------------------------------------------------------

def lock_pid(database: str) -> object:
    return scalar(database, "SELECT pid FROM pg_stat_activity WHERE application_name = 'dbtune lock'")


def blocked_build_project(tmp_path: Path, database: str) -> tuple[Path, Blocker]:
    """A project at r1 whose r2 build will wait for a reader's old snapshot."""
    root = project(tmp_path, PEOPLE + '\nop.execute("CREATE TABLE notes (id int)")', """
        with op.get_context().autocommit_block():
            op.create_index("ix_people_email", "people", ["email"], postgresql_concurrently=True)
            op.create_index("ix_people_name", "people", ["full_name"], postgresql_concurrently=True)
    """)
    assert apply(database, root, "--to", "r1").exit_code == 0
    return root, Blocker(database, "snapshot")


def test_a_lock_session_ended_under_a_run_is_taken_again(database: str, tmp_path: Path) -> None:
    root, blocker = blocked_build_project(tmp_path, database)
    run = dbtune_process("apply", "--database-url", database, "--migrations", str(root), "--no-progress")
    try:
        first = wait_until(lambda: lock_pid(database), what="the run's lock")
        wait_until(lambda: scalar(database, "SELECT count(*) FROM pg_stat_progress_create_index"), what="a build")
        scalar(database, "SELECT pg_terminate_backend(%s)", [first])  # an idle-session killer
    finally:
        blocker.release()
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    assert f"(pid {first}) was ended by someone else; took the lock again" in err
    assert index_state(database, "ix_people_email") == (True, True)
    assert index_state(database, "ix_people_name") == (True, True)


def test_a_run_whose_lock_another_run_took_stops_at_a_safe_point(database: str, tmp_path: Path) -> None:
    root, blocker = blocked_build_project(tmp_path, database)
    run = dbtune_process("apply", "--database-url", database, "--migrations", str(root), "--no-progress")
    thief = psycopg.connect(database, autocommit=True)
    try:
        first = wait_until(lambda: lock_pid(database), what="the run's lock")
        wait_until(lambda: scalar(database, "SELECT count(*) FROM pg_stat_progress_create_index"), what="a build")
        scalar(database, "SELECT pg_terminate_backend(%s)", [first])
        wait_until(lambda: thief.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0],
                   what="the other run to take the lock")
        blocker.release()
        out, err = run.communicate(timeout=120)
    finally:
        thief.close()
    assert run.returncode == 4, out + err
    line = error_line(err)
    assert f"(pid {first}) was ended by someone else" in line and "stopped here" in line
    assert "stays at r1" in line
    # The build that was running finished; the next one never started.
    assert index_state(database, "ix_people_email") == (True, True)
    assert index_state(database, "ix_people_name") is None


def test_a_build_another_session_is_running_is_never_dropped(database: str, tmp_path: Path) -> None:
    root, blocker = blocked_build_project(tmp_path, database)
    with build_in_progress(database, "ix_people_email", "CREATE INDEX CONCURRENTLY ix_people_email ON people (email)",
                           blocker, "other-run"):
        result = apply(database, root, "--max-wait", "1")
    assert result.exit_code == 5, result.output
    line = error_line(result.stderr)
    assert "other-run" in line and "still building" in line and "stays at r1" in line
    assert index_state(database, "ix_people_email") == (True, True)  # the other run's build finished


# A revision that commits a column, builds an index concurrently, then needs a lock on barbers.
NICKNAMES_AROUND_A_BUILD = """
    op.add_column("users", sa.Column("nickname", sa.Text))
    with op.get_context().autocommit_block():
        op.create_index("ix_users_email", "users", ["email"], postgresql_concurrently=True)
    op.add_column("barbers", sa.Column("nickname", sa.Text))
"""

# -- a lock timeout in a revision that has committed part of itself -------------------

def test_a_retry_never_reruns_what_a_revision_committed(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, """
        op.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
        op.execute("CREATE TABLE barbers (id int PRIMARY KEY)")
    """, NICKNAMES_AROUND_A_BUILD)
    assert apply(database, root, "--to", "r1").exit_code == 0
    holder = psycopg.connect(database)
    holder.execute("SELECT * FROM barbers")  # holds ACCESS SHARE on barbers for 4 s
    with released_after(4.0, holder.rollback):
        result = apply(database, root, "--lock-timeout", "0.5")
    holder.close()
    assert result.exit_code == 0, result.output
    assert "retrying" in result.stderr and "without the statements it has committed" in result.stderr
    assert scalar(database, "SELECT version_num FROM alembic_version") == "r2"
    assert scalar(database, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'nickname'") == 2


def test_retries_run_out_listing_what_committed(database: str, tmp_path: Path, short_pauses: None) -> None:
    root = project(tmp_path, 'op.execute("CREATE TABLE users (id int, email text); CREATE TABLE barbers (id int)")',
                   NICKNAMES_AROUND_A_BUILD)
    assert apply(database, root, "--to", "r1").exit_code == 0
    holder = psycopg.connect(database)
    holder.execute("SELECT * FROM barbers")
    try:
        result = apply(database, root, "--lock-timeout", "0.1")
    finally:
        holder.close()
    assert result.exit_code == 1, result.output
    line = error_line(result.stderr)
    assert "revision r2 is partly applied: committed (2): ALTER TABLE users ADD COLUMN nickname TEXT; " \
           "CREATE INDEX CONCURRENTLY ix_users_email ON users (email)" in line, line
    assert "not committed: " in line and "stays at r1" in line


# -- a partitioned index that failed part way ------------------------------------------

def test_a_partitioned_index_that_failed_part_way_is_finished_by_the_next_run(database: str,
                                                                              tmp_path: Path) -> None:
    root = project(tmp_path, """
        op.execute("CREATE TABLE visits (id int, day date NOT NULL, email text) PARTITION BY RANGE (day)")
        op.execute("CREATE TABLE visits_2025 PARTITION OF visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')")
        op.execute("CREATE TABLE visits_2026 PARTITION OF visits FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')")
    """, """
        with op.get_context().autocommit_block():
            op.create_index("ix_visits_email", "visits", ["email", "day"], unique=True, postgresql_concurrently=True)
    """)
    assert apply(database, root, "--to", "r1").exit_code == 0
    execute(database, "INSERT INTO visits VALUES (1, '2026-03-01', 'a@x.test'), (2, '2026-03-01', 'a@x.test')")
    failed = apply(database, root)
    assert failed.exit_code == 1, failed.output
    assert "is duplicated" in failed.stderr  # PostgreSQL's DETAIL, as psql shows it
    assert index_state(database, "ix_visits_email") == (False, True)  # the ON ONLY parent, INVALID
    execute(database, "DELETE FROM visits WHERE id = 2")
    again = apply(database, root)
    assert again.exit_code == 0, again.output
    assert index_state(database, "ix_visits_email") == (True, True)
    assert scalar(database, "SELECT version_num FROM alembic_version") == "r2"


# -- errors a DBA can act on ------------------------------------------------------------

def test_a_failed_unique_build_shows_the_duplicated_key(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE + """\nop.execute("INSERT INTO people VALUES (1, 'dup@example.com'), """
                   """(2, 'dup@example.com')")""", """
        with op.get_context().autocommit_block():
            op.create_index("ux_people_email", "people", ["email"], unique=True, postgresql_concurrently=True)
    """)
    result = apply(database, root)
    assert result.exit_code == 1, result.output
    line = error_line(result.stderr)
    assert "could not create unique index" in line
    assert "DETAIL: Key (email)=(dup@example.com) is duplicated." in line
    assert index_state(database, "ux_people_email") is None  # the INVALID leftover was cleaned up


def test_revision_errors_name_the_file_and_line_without_a_traceback(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE, """
        op.drop_constraint(None, "people")
    """)
    result = apply(database, root)
    assert result.exit_code == 1, result.output
    line = error_line(result.stderr)
    assert "revision r2 failed" in line and "versions/r2.py line 9" in line and "CompileError" in line, line
    assert "stays at r1" in line and "Traceback" not in result.output

    (root / "versions" / "r2.py").write_text("revision = 'r2'\ndown_revision = 'r1'\ndef upgrade(:\n    pass\n")
    result = apply(database, root)
    assert result.exit_code == 2, result.output
    line = error_line(result.stderr)
    assert "versions/r2.py line 3" in line and "SyntaxError" in line and "Traceback" not in result.output


def test_a_database_at_a_revision_the_directory_does_not_know(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE)
    execute(database, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); "
                     "INSERT INTO alembic_version VALUES ('f00dfeed')")
    for verb in ("status", "apply", "rollback"):
        result = run_cli(verb, "--database-url", database, "--migrations", str(root))
        assert result.exit_code == 2, (verb, result.output)
        assert "f00dfeed" in result.stderr and "right migrations directory" in result.stderr
        assert "Traceback" not in result.output


def test_a_password_with_an_unencoded_at_is_refused_without_echoing_it(database: str) -> None:
    url = database.replace("://postgres:", "://postgres:tPa@SS")
    result = run_cli("status", "--database-url", url)
    assert result.exit_code == 2, result.output
    assert "tPa" not in result.output and "SS@" not in result.output
    assert "%40" in result.stderr


def test_the_dry_run_flags_a_concurrent_build_inside_a_transaction(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE, """
        op.add_column("people", sa.Column("nickname", sa.Text))
        op.create_index("ix_people_email", "people", ["email"], postgresql_concurrently=True)
    """)
    dry = apply(database, root, "--dry-run")
    assert dry.exit_code == 1, dry.output
    assert "cannot run inside a transaction block" in dry.stdout and "autocommit_block()" in dry.stdout
    real = apply(database, root)
    assert real.exit_code == 1
    assert "cannot run inside a transaction block" in real.stderr and "autocommit_block()" in real.stderr


def test_non_ascii_names_are_folded_as_postgresql_folds_them(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE, """
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY Índice_Email ON people (email)")
    """)
    assert apply(database, root).exit_code == 0
    assert scalar(database, "SELECT relname FROM pg_class WHERE relname LIKE '%%ndice_email'") == "Índice_email"
    back = run_cli("rollback", "--database-url", database, "--migrations", str(root))
    assert back.exit_code == 0, back.output
    again = apply(database, root)  # the kept index is found under its real name, not built twice
    assert again.exit_code == 0, again.output
    assert scalar(database, "SELECT count(*) FROM pg_class WHERE relname LIKE '%%ndice%%'") == 1


def test_jobs_build_an_autocommit_blocks_indexes_together(database: str, tmp_path: Path) -> None:
    """With --jobs 2 the second table's build finishes while the first table's waits."""
    root = project(tmp_path, PEOPLE + '\nop.execute("CREATE TABLE notes (id int, body text)")', """
        with op.get_context().autocommit_block():
            op.create_index("ix_people_email", "people", ["email"], postgresql_concurrently=True)
            op.create_index("ix_notes_body", "notes", ["body"], postgresql_concurrently=True)
    """)
    assert apply(database, root, "--to", "r1").exit_code == 0
    writer = psycopg.connect(database)
    writer.execute("INSERT INTO people (id) VALUES (1)")  # an open write on people: its build waits
    with released_after(3.0, writer.rollback):
        result = apply(database, root, "--jobs", "2", "--no-progress")
    writer.close()
    assert result.exit_code == 0, result.output
    built = [line.split(":")[0] for line in result.stdout.splitlines() if ": built in" in line]
    assert built == ["public.ix_notes_body", "public.ix_people_email"], result.stdout


@pytest.mark.parametrize("idiom", ['op.execute("COMMIT")', "op.get_bind().commit()"])
def test_a_build_after_an_explicit_commit_goes_through_the_engine_on_psycopg2(database: str, tmp_path: Path,
                                                                              idiom: str) -> None:
    root = project(tmp_path, PEOPLE, f"""
        {idiom}
        op.execute("CREATE INDEX CONCURRENTLY ix_people_email ON people (email)")
    """)
    (root.parent / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n"
                                              "sqlalchemy.url = postgresql+psycopg2://\n")
    result = run_cli("apply", "--database-url", database, "--migrations", str(root.parent / "alembic.ini"))
    assert result.exit_code == 0, result.output
    assert "public.ix_people_email: built in" in result.stdout  # repaired, watched and confirmed by dbtune
    assert index_state(database, "ix_people_email") == (True, True)


def test_a_session_that_may_stall_builds_is_named_once_per_run(database: str, tmp_path: Path) -> None:
    root = project(tmp_path, PEOPLE + '\nop.execute("CREATE TABLE notes (id int)")', """
        with op.get_context().autocommit_block():
            op.create_index("ix_people_email", "people", ["email"], postgresql_concurrently=True)
    """, """
        with op.get_context().autocommit_block():
            op.create_index("ix_people_name", "people", ["full_name"], postgresql_concurrently=True)
    """)
    assert apply(database, root, "--to", "r1").exit_code == 0
    idle = psycopg.connect(database, application_name="forgotten-psql")
    idle.execute("SELECT 1")  # idle in transaction, holding no snapshot: the builds go on
    try:
        result = apply(database, root)
    finally:
        idle.close()
    assert result.exit_code == 0, result.output
    assert result.stderr.count("may stall it") == 1, result.stderr
    assert "forgotten-psql" in result.stderr
