"""The engine's faults, run as teams run dbtune: the application's owner role, no superuser, no
pg_read_all_stats.  Other roles' sessions then show only their pid and role; every decision must
rest on what every role can see, and a missing privilege costs detail, never safety."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dbtune.online import PRIVILEGE_HINT
from tests.fix_cli import dbtune_process, run_cli
from tests.fix_db import OwnedDatabase
from tests.test_hardening import PEOPLE, error_line, lock_pid
from tests.test_online import Blocker, build_in_progress, cancelled_build, index_state, wait_until
from tests.test_own_migrations import project

BUILDS = """
    with op.get_context().autocommit_block():
        op.create_index("ix_people_email", "people", ["email"], postgresql_concurrently=True)
"""


def user_of(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["user"]


@pytest.fixture
def people(owned_database: OwnedDatabase, tmp_path: Path) -> tuple[OwnedDatabase, Path, str]:
    """The owner's project at r1 (people, notes), and an application role that reads and writes them."""
    app = owned_database.other_role()  # before the tables: the owner's default privileges reach it
    root = project(tmp_path, PEOPLE + '\nop.execute("CREATE TABLE notes (id int)")', BUILDS)
    result = run_cli("apply", "--database-url", owned_database.url, "--migrations", str(root), "--to", "r1")
    assert result.exit_code == 0, result.output
    with psycopg.connect(owned_database.url, autocommit=True) as conn:
        conn.execute("INSERT INTO people SELECT g, g || '@x.test', 'n' || g, true FROM generate_series(1, 5000) g")
        assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    return owned_database, root, app


def apply_as(url: str, root: Path, *args: str):
    return run_cli("apply", "--database-url", url, "--migrations", str(root), *args)


def test_a_blocker_in_another_role_is_named_by_pid_and_role_and_max_wait_holds(people) -> None:
    owned, root, app = people
    blocker = Blocker(app, "snapshot")
    try:
        result = apply_as(owned.url, root, "--max-wait", "1", "--no-progress")
    finally:
        blocker.release()
    assert result.exit_code == 5, result.output
    line = error_line(result.stderr)
    assert f"pid {blocker.pid} (role {user_of(app)}" in line and "hidden from this role" in line
    assert "stays at r1" in line
    # The session that may stall the build was seen before it started, though its age is hidden.
    assert "session(s) of other roles have one open now" in result.stderr
    assert result.stderr.count(PRIVILEGE_HINT) == 1  # named once, not per report
    assert index_state(owned.admin_url, "ix_people_email") is None  # nothing left behind


def test_lock_busy_between_two_migration_roles_names_the_holder(people) -> None:
    owned, root, app = people
    # A second migration role that may read the revision but is not the owner's member, so the
    # holder's session details are hidden from it (the case that crashed before).
    second = owned.other_role()
    with psycopg.connect(owned.url, autocommit=True) as conn:
        conn.execute(f'GRANT SELECT ON alembic_version TO "{user_of(second)}"')
    blocker = Blocker(app, "snapshot")
    run = dbtune_process("apply", "--database-url", owned.url, "--migrations", str(root), "--no-progress")
    try:
        holder = wait_until(lambda: lock_pid(owned.admin_url), what="the first run's lock")
        result = apply_as(second, root)
    finally:
        blocker.release()
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    assert result.exit_code == 4, result.output
    line = error_line(result.stderr)
    assert f"pid {holder} (role {owned.role}" in line and "--wait" in line
    assert index_state(owned.admin_url, "ix_people_email") == (True, True)


def test_an_invalid_leftover_is_repaired_by_the_owner_role(people) -> None:
    owned, root, app = people
    cancelled_build(owned.url, "CREATE INDEX CONCURRENTLY ix_people_email ON people (email)",
                    write="INSERT INTO people VALUES (-1, 'w', 'w', true)")
    assert index_state(owned.admin_url, "ix_people_email") == (False, False)
    result = apply_as(owned.url, root, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "is INVALID (left by a failed build); dropping it" in result.stderr
    assert index_state(owned.admin_url, "ix_people_email") == (True, True)


def test_another_roles_build_in_progress_is_never_dropped_nor_reindexed(people) -> None:
    """A DBA builds the index by hand, as a superuser, while the owner role runs apply and maintain:
    the build's table and phase are hidden from the owner, its lock on the table is not."""
    owned, root, app = people
    with build_in_progress(owned.admin_url, "ix_people_email",
                           "CREATE INDEX CONCURRENTLY ix_people_email ON people (email)",
                           Blocker(app, "snapshot"), "dba-by-hand"):
        maintained = run_cli("maintain", "--database-url", owned.url, "--only", "reindex")
        result = apply_as(owned.url, root, "--max-wait", "1", "--no-progress")
        still_building = index_state(owned.admin_url, "ix_people_email")
    assert maintained.exit_code == 0, maintained.output
    assert "left alone: leave alone public.ix_people_email" in maintained.stdout
    assert result.exit_code == 5, result.output
    assert "is running an index build on public.people" in result.stderr
    line = error_line(result.stderr)
    assert "still building" in line and "stays at r1" in line
    assert still_building is not None  # never dropped under the DBA's build
    assert index_state(owned.admin_url, "ix_people_email") == (True, True)  # the DBA's build finished
