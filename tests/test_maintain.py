"""`dbtune maintain`: stale statistics analyzed, INVALID and bloated indexes rebuilt online, builds left alone."""

from __future__ import annotations

import psycopg

from dbtune.maintenance.maintain import LOCK_KEY
from tests.fix_cli import run_cli, scalar
from tests.fix_db import OwnedDatabase
from tests.test_online import Blocker, build_in_progress, cancelled_build, index_state, wait_until


def execute(database: str, statement: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def maintain(database: str, *args: str):
    return run_cli("maintain", "--database-url", database, *args)


def filled(database: str, rows: int = 20_000) -> None:
    execute(database, f"""
        CREATE TABLE events (id int PRIMARY KEY, account int NOT NULL, kind text NOT NULL)
            WITH (autovacuum_enabled = off);
        CREATE TABLE notes (id int);
        INSERT INTO events SELECT i, i % 500, 'k' || (i % 7) FROM generate_series(1, {rows}) i""")
    # The statistics collector reports changes at the end of a transaction, within a second.
    wait_until(lambda: scalar(database, "SELECT n_mod_since_analyze FROM pg_stat_user_tables "
                                        "WHERE relname = 'events'"), what="the change counts")


def last_analyze(database: str, table: str) -> object:
    return scalar(database, "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", [table])


def test_a_table_just_filled_is_analyzed_and_the_dry_run_changes_nothing(database: str) -> None:
    filled(database)
    dry = maintain(database, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would analyze public.events: never analyzed" in dry.stdout
    assert last_analyze(database, "events") is None
    result = maintain(database, "--only", "analyze")
    assert result.exit_code == 0, result.output
    assert "analyzed public.events" in result.stdout
    assert last_analyze(database, "events") is not None
    execute(database, "UPDATE events SET kind = 'x' WHERE id <= 5000")  # 25% of the rows
    wait_until(lambda: scalar(database, "SELECT n_mod_since_analyze >= 5000 FROM pg_stat_user_tables "
                                        "WHERE relname = 'events'"), what="the update's count")
    again = maintain(database, "--dry-run", "--only", "analyze")
    assert "would analyze public.events: 5,000 rows changed since the last analyze, 25% of 20,000" in again.stdout
    assert "would analyze" not in maintain(database, "--dry-run", "--stale-fraction", "0.5").stdout


def test_an_invalid_index_it_did_not_make_is_rebuilt(database: str) -> None:
    filled(database)
    cancelled_build(database, "CREATE INDEX CONCURRENTLY ix_events_kind ON events (kind)",
                    write="INSERT INTO events VALUES (0, 0, 'x')")
    left = index_state(database, "ix_events_kind")
    assert left is not None and left[0] is False
    dry = maintain(database, "--dry-run", "--only", "reindex")
    assert "would reindex public.ix_events_kind: INVALID" in dry.stdout
    assert index_state(database, "ix_events_kind") == left
    result = maintain(database, "--only", "reindex")
    assert result.exit_code == 0, result.output
    assert index_state(database, "ix_events_kind") == (True, True)


def test_the_owner_role_rebuilds_an_invalid_index(owned_database: OwnedDatabase) -> None:
    """As teams run it: the tables' owner, no superuser."""
    url = owned_database.url
    filled(url)
    cancelled_build(url, "CREATE INDEX CONCURRENTLY ix_events_kind ON events (kind)",
                    write="INSERT INTO events VALUES (0, 0, 'x')")
    assert index_state(url, "ix_events_kind") == (False, False)
    result = maintain(url, "--only", "reindex")
    assert result.exit_code == 0, result.output
    assert index_state(url, "ix_events_kind") == (True, True)


def test_a_build_in_progress_is_left_alone(database: str) -> None:
    filled(database)
    with build_in_progress(database, "ix_events_account",
                           "CREATE INDEX CONCURRENTLY ix_events_account ON events (account)",
                           Blocker(database, "snapshot")):
        result = maintain(database, "--only", "reindex")
    assert result.exit_code == 0, result.output
    assert "left alone: leave alone public.ix_events_account" in result.stdout
    assert index_state(database, "ix_events_account") == (True, True)  # the build finished, untouched


def test_a_bloated_index_is_rebuilt_concurrently_and_shrinks(database: str) -> None:
    filled(database, 200_000)
    execute(database, "CREATE INDEX ix_events_account_kind ON events (account, kind)")
    execute(database, "DELETE FROM events WHERE id % 10 <> 0")
    execute(database, "VACUUM ANALYZE events")
    before = scalar(database, "SELECT pg_relation_size('ix_events_account_kind')")
    dry = maintain(database, "--dry-run", "--only", "reindex", "--bloat-min-mb", "0.5")
    assert "would reindex public.ix_events_account_kind: about" in dry.stdout, dry.stdout
    result = maintain(database, "--only", "reindex", "--bloat-min-mb", "0.5")
    assert result.exit_code == 0, result.output
    after = scalar(database, "SELECT pg_relation_size('ix_events_account_kind')")
    assert after < before / 3, (before, after)
    assert index_state(database, "ix_events_account_kind") == (True, True)
    assert "bloat" not in maintain(database, "--dry-run", "--only", "reindex", "--bloat-min-mb", "0.5").stdout


def test_two_maintain_runs_never_overlap(database: str) -> None:
    holder = psycopg.connect(database, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    try:
        result = maintain(database)
    finally:
        holder.close()
    assert result.exit_code == 4, result.output
    assert "maintenance lock" in result.stderr


def test_the_busiest_tables_get_their_autovacuum_settings_from_a_migration(database: str) -> None:
    env = {"DBTUNE_MIGRATIONS": "bundled"}
    assert run_cli("apply", "--database-url", database, env=env).exit_code == 0
    for table in ("orders", "credit_ledgers", "payments"):
        options = scalar(database, "SELECT reloptions::text FROM pg_class WHERE oid = %s::regclass", [table])
        assert options == "{autovacuum_analyze_scale_factor=0.05,autovacuum_vacuum_scale_factor=0.1}", options
    assert run_cli("rollback", "--to", "0007", "--database-url", database, env=env).exit_code == 0
    assert scalar(database, "SELECT reloptions FROM pg_class WHERE oid = 'orders'::regclass") is None
