"""Explicit revisions (`apply --to`, `rollback --to`, dry runs) on a project whose env.py places its
versions itself, and what the verbs that change nothing leave behind: nothing, not even a version table.

The project (tests/scenarios/dialects) keeps its history in versions/postgresql and names that
directory only in env.py, through ``context.script.version_locations``, as some large open-source
projects do; each test runs it as a real `dbtune` process in the project's directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fix_cli import OWN_MIGRATIONS, Result, run_cli, scalar
from tests.fix_db import OwnedDatabase
from tests.test_scenarios import copy, dbtune, with_driver


def dialects(database: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    return copy("dialects", tmp_path), {"APP_DATABASE_URL": with_driver(database, "psycopg")}


def version(database: str) -> object:
    return scalar(database, "SELECT string_agg(version_num, ',') FROM alembic_version")


def version_tables(database: str) -> object:
    return scalar(database, "SELECT count(*) FROM pg_class WHERE relname IN ('alembic_version', 'dbtune_version')")


def error_line(result: Result) -> str:
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    return line


# -- revisions named where env.py places the versions ---------------------------------

def test_explicit_revisions_resolve_once_env_py_has_placed_the_versions(database: str, tmp_path: Path) -> None:
    project, env = dialects(database, tmp_path)
    dry = dbtune("apply", "--dry-run", "--to", "b002", cwd=project, env=env)
    assert dry.exit_code == 0, dry.output
    assert "upgrade to b002" in dry.stdout and "CREATE INDEX CONCURRENTLY ix_events_kind" in dry.stdout
    assert "ADD COLUMN source" not in dry.stdout  # b003 is past the destination

    up = dbtune("apply", "--to", "b002", cwd=project, env=env)
    assert up.exit_code == 0, up.output
    assert version(database) == "b002"
    assert scalar(database, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_events_kind'::regclass")

    assert dbtune("apply", cwd=project, env=env).exit_code == 0
    assert version(database) == "b003"

    dry_down = dbtune("rollback", "--dry-run", "--to", "b001", cwd=project, env=env)
    assert dry_down.exit_code == 0, dry_down.output
    assert "downgrade to b001" in dry_down.stdout and "DROP INDEX CONCURRENTLY ix_events_kind" in dry_down.stdout
    assert version(database) == "b003"

    down = dbtune("rollback", "--to", "b001", cwd=project, env=env)
    assert down.exit_code == 0, down.output
    assert version(database) == "b001"
    assert scalar(database, "SELECT to_regclass('ix_events_kind')") is None
    assert scalar(database, "SELECT count(*) FROM events") == 100


@pytest.mark.parametrize("args", [("apply", "--to", "b009"), ("apply", "--dry-run", "--to", "b009"),
                                  ("rollback", "--to", "b009"), ("rollback", "--to", "b009@-1")])
def test_a_truly_unknown_revision_is_still_a_usage_error(database: str, tmp_path: Path, args: tuple[str, ...]) -> None:
    project, env = dialects(database, tmp_path)
    assert dbtune("apply", "--to", "b002", cwd=project, env=env).exit_code == 0
    result = dbtune(*args, cwd=project, env=env)
    assert result.exit_code == 2, result.output
    assert f"unknown revision '{args[-1]}'" in error_line(result)
    assert "Traceback" not in result.output
    assert version(database) == "b002"


@pytest.mark.parametrize("dry_run", [False, True], ids=["apply", "dry-run"])
def test_apply_to_a_revision_the_database_is_past_says_where_it_is(database: str, tmp_path: Path,
                                                                   dry_run: bool) -> None:
    """At b003, `apply --to b002` changes nothing and says so as an error: the database is not at b002."""
    project, env = dialects(database, tmp_path)
    assert dbtune("apply", cwd=project, env=env).exit_code == 0
    result = dbtune("apply", *(["--dry-run"] if dry_run else []), "--to", "b002", cwd=project, env=env)
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert "the database is at b003, past b002: apply never downgrades; `dbtune rollback --to b002` does" in line
    assert "nothing was changed" in line.lower()
    assert "already at" not in result.output
    assert version(database) == "b003"
    assert scalar(database, "SELECT count(*) FROM information_schema.columns "
                            "WHERE table_name = 'events' AND column_name = 'source'") == 1

    same = dbtune("apply", "--to", "b003", cwd=project, env=env)
    assert same.exit_code == 0, same.output
    assert "already at b003: nothing to apply" in same.stdout


# -- settings env.py brings -------------------------------------------------------------

def test_a_lock_timeout_above_the_bound_is_named_by_its_source_where_it_matters(database: str,
                                                                               tmp_path: Path) -> None:
    project, env = dialects(database, tmp_path)
    status = dbtune("status", cwd=project, env=env)
    assert status.exit_code == 0, status.output
    assert "lock_timeout" not in status.stderr  # status runs no migration: the bound changes nothing

    applied = dbtune("apply", cwd=project, env=env)
    assert applied.exit_code == 0, applied.output
    assert "env.py's connection setup sets lock_timeout to 4s; dbtune keeps it at 2s" in applied.stderr
    assert "revision b003 sets lock_timeout to 5s; dbtune keeps it at 2s" in applied.stderr
    assert "the migration sets" not in applied.output
    assert version(database) == "b003"


# -- verbs that change nothing write nothing ----------------------------------------------

READ_ONLY = [("status",), ("apply", "--dry-run"), ("apply", "--dry-run", "--to", "b002"), ("rollback", "--dry-run"),
             ("rollback", "--dry-run", "--to", "base")]


def test_status_and_dry_runs_leave_no_version_table_at_base(owned_database: OwnedDatabase, tmp_path: Path) -> None:
    """As the database's non-superuser owner, as DBAs run them; on env.py's database and on a named one."""
    project, env = dialects(owned_database.url, tmp_path)
    for args in [*READ_ONLY, ("apply", "--to", "b009")]:
        result = dbtune(*args, cwd=project, env=env)
        assert result.exit_code == (2 if "b009" in args else 0), (args, result.output)
        assert version_tables(owned_database.admin_url) == 0, args

    # A plain Alembic project and dbtune's own migrations, on the database named on the command line.
    for migrations in (str(OWN_MIGRATIONS), "bundled"):
        for args in [("status",), ("apply", "--dry-run"), ("rollback", "--dry-run")]:
            result = run_cli(*args, "--database-url", owned_database.url, env={"DBTUNE_MIGRATIONS": migrations})
            assert result.exit_code == 0, (migrations, args, result.output)
            assert version_tables(owned_database.admin_url) == 0, (migrations, args)

    applied = dbtune("apply", cwd=project, env=env)  # a revision to record: now the table appears
    assert applied.exit_code == 0, applied.output
    assert version(owned_database.admin_url) == "b003"
    assert scalar(owned_database.admin_url, "SELECT tableowner FROM pg_tables WHERE tablename = 'alembic_version'") \
        == owned_database.role
