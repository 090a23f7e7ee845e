"""The dry run's lock labels: each statement kind against the lock the PostgreSQL docs give it.

The expected modes come from the "Explicit Locking" chapter and the ALTER TABLE
page of the PostgreSQL documentation, not from the code under test.  The last
tests check a few of them against a real server's pg_locks, and the dry run of
a team's migration end to end.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dbtune.sqltext.lockmodes import classify, describe
from tests.fix_cli import run_cli, scalar
from tests.test_own_migrations import project

# statement, relation -> expected mode, scans/rewrites ("" none, "scan", "rewrite")
CASES = [
    ("WITH ins AS (INSERT INTO audit(x) VALUES (1) RETURNING x) UPDATE releases SET y = 1",
     {"releases": ("ROW EXCLUSIVE", ""), "audit": ("ROW EXCLUSIVE", "")}),
    ("UPDATE users SET a = 1 WHERE id = 3", {"users": ("ROW EXCLUSIVE", "")}),
    ("DELETE FROM users WHERE id IN (SELECT id FROM banned)",
     {"users": ("ROW EXCLUSIVE", ""), "banned": ("ACCESS SHARE", "")}),
    ("INSERT INTO t SELECT * FROM s", {"t": ("ROW EXCLUSIVE", ""), "s": ("ACCESS SHARE", "")}),
    ("SELECT * FROM a JOIN b.c ON true FOR UPDATE", {"a": ("ROW SHARE", ""), "b.c": ("ROW SHARE", "")}),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v",
     {"t": ("ROW EXCLUSIVE", ""), "s": ("ACCESS SHARE", "")}),
    ("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (r) REFERENCES retailers(id)",
     {"orders": ("SHARE ROW EXCLUSIVE", "scan"), "retailers": ("SHARE ROW EXCLUSIVE", "")}),
    ("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (r) REFERENCES retailers(id) NOT VALID",
     {"orders": ("SHARE ROW EXCLUSIVE", ""), "retailers": ("SHARE ROW EXCLUSIVE", "")}),
    ("ALTER TABLE orders VALIDATE CONSTRAINT fk", {"orders": ("SHARE UPDATE EXCLUSIVE", "scan")}),
    ("ALTER TABLE orders ALTER COLUMN x SET NOT NULL", {"orders": ("ACCESS EXCLUSIVE", "scan")}),
    ("ALTER TABLE orders ADD CONSTRAINT c CHECK (x > 0)", {"orders": ("ACCESS EXCLUSIVE", "scan")}),
    ("ALTER TABLE orders ADD CONSTRAINT c CHECK (x > 0) NOT VALID", {"orders": ("ACCESS EXCLUSIVE", "")}),
    ("ALTER TABLE orders ADD COLUMN c int DEFAULT 0", {"orders": ("ACCESS EXCLUSIVE", "")}),
    ("ALTER TABLE orders ADD COLUMN c timestamptz DEFAULT now()", {"orders": ("ACCESS EXCLUSIVE", "")}),
    ("ALTER TABLE orders ADD COLUMN c float8 DEFAULT random()", {"orders": ("ACCESS EXCLUSIVE", "rewrite")}),
    ("ALTER TABLE orders ADD COLUMN id2 bigserial", {"orders": ("ACCESS EXCLUSIVE", "rewrite")}),
    ("ALTER TABLE orders ALTER COLUMN c TYPE bigint", {"orders": ("ACCESS EXCLUSIVE", "rewrite")}),
    ("ALTER TABLE orders SET (autovacuum_vacuum_scale_factor = 0.01)", {"orders": ("SHARE UPDATE EXCLUSIVE", "")}),
    ("ALTER TABLE orders ALTER COLUMN c SET STATISTICS 500", {"orders": ("SHARE UPDATE EXCLUSIVE", "")}),
    ("ALTER TABLE orders DISABLE TRIGGER USER", {"orders": ("SHARE ROW EXCLUSIVE", "")}),
    ("ALTER TABLE orders ADD COLUMN c int, ALTER COLUMN d SET NOT NULL", {"orders": ("ACCESS EXCLUSIVE", "scan")}),
    ("ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN (1)",
     {"p": ("SHARE UPDATE EXCLUSIVE", ""), "p1": ("ACCESS EXCLUSIVE", "scan")}),
    ("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
     {"p": ("SHARE UPDATE EXCLUSIVE", ""), "p1": ("SHARE UPDATE EXCLUSIVE", "")}),
    ("ALTER INDEX ix RENAME TO iy", {"ix": ("SHARE UPDATE EXCLUSIVE", "")}),
    ("ALTER TABLE t RENAME COLUMN a TO b", {"t": ("ACCESS EXCLUSIVE", "")}),
    ("CREATE INDEX CONCURRENTLY ix ON t (a)", {"t": ("SHARE UPDATE EXCLUSIVE", "scan")}),
    ("CREATE UNIQUE INDEX ix ON s.t (a)", {"s.t": ("SHARE", "scan")}),
    ("REINDEX INDEX CONCURRENTLY ix", {"ix": ("SHARE UPDATE EXCLUSIVE", "scan")}),
    ("REINDEX TABLE t", {"t": ("SHARE", "scan")}),
    ("DROP TABLE a, b", {"a": ("ACCESS EXCLUSIVE", ""), "b": ("ACCESS EXCLUSIVE", "")}),
    ("REFRESH MATERIALIZED VIEW CONCURRENTLY mv", {"mv": ("EXCLUSIVE", "scan")}),
    ("REFRESH MATERIALIZED VIEW mv", {"mv": ("ACCESS EXCLUSIVE", "rewrite")}),
    ("CREATE TABLE x (id int PRIMARY KEY, r int REFERENCES retailers(id))", {"retailers": ("SHARE ROW EXCLUSIVE", "")}),
    ("CREATE TABLE x1 PARTITION OF p FOR VALUES IN (2)", {"p": ("ACCESS EXCLUSIVE", "")}),
    ("CREATE MATERIALIZED VIEW mv AS SELECT * FROM orders WITH NO DATA", {}),
    ("CREATE MATERIALIZED VIEW mv AS SELECT * FROM orders", {"orders": ("ACCESS SHARE", "")}),
    ("TRUNCATE a", {"a": ("ACCESS EXCLUSIVE", "rewrite")}),
    ("VACUUM FULL a", {"a": ("ACCESS EXCLUSIVE", "rewrite")}),
    ("VACUUM a", {"a": ("SHARE UPDATE EXCLUSIVE", "scan")}),
    ("ANALYZE a", {"a": ("SHARE UPDATE EXCLUSIVE", "")}),
    ("LOCK TABLE a IN SHARE ROW EXCLUSIVE MODE", {"a": ("SHARE ROW EXCLUSIVE", "")}),
    ("CREATE TRIGGER tr BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION f()", {"a": ("SHARE ROW EXCLUSIVE", "")}),
    ("CREATE STATISTICS s ON a, b FROM t", {"t": ("SHARE UPDATE EXCLUSIVE", "")}),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", {}),
    ("CREATE OPERATOR === (leftarg = int, rightarg = int, function = int4eq)", {}),
    ("CREATE EXTENSION IF NOT EXISTS pg_trgm", {}),
    ("SET lock_timeout = 1000", {}),
]


@pytest.mark.parametrize(("sql", "expected"), CASES, ids=[c[0][:50] for c in CASES])
def test_each_statement_kind_takes_the_documented_lock(sql: str, expected: dict[str, tuple[str, str]]) -> None:
    [statement] = classify(sql)
    found = {lock.relation: (lock.mode, "rewrite" if lock.rewrites else "scan" if lock.scans else "")
             for lock in statement.locks}
    assert found == expected


def test_labels_say_what_a_reviewer_must_know() -> None:
    assert "rewrites every row of releases (UPDATE without WHERE)" in describe(
        "WITH ins AS (INSERT INTO audit(x) VALUES (1) RETURNING x) UPDATE releases SET y = 1")
    assert "UPDATE without WHERE" not in describe("UPDATE users SET a = 1 WHERE id = 3")
    assert "add it NOT VALID, then VALIDATE CONSTRAINT" in describe(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (r) REFERENCES retailers(id)")
    assert "unless a valid CHECK (x IS NOT NULL) proves it" in describe("ALTER TABLE o ALTER COLUMN x SET NOT NULL")
    assert describe("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'") == "no table lock"
    assert "cannot see into" in describe("DO $$ BEGIN PERFORM 1; END $$")
    assert classify("CREATE INDEX CONCURRENTLY ix ON t (a)")[0].transaction_block is False
    assert classify("not sql at all")[0].kind == "unparsable"


MODE_NAMES = {"AccessShareLock": "ACCESS SHARE", "RowShareLock": "ROW SHARE", "RowExclusiveLock": "ROW EXCLUSIVE",
              "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE", "ShareLock": "SHARE",
              "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE", "ExclusiveLock": "EXCLUSIVE",
              "AccessExclusiveLock": "ACCESS EXCLUSIVE"}
ORDER = list(MODE_NAMES.values())

SERVER_CASES = [
    "WITH ins AS (INSERT INTO audit(x) VALUES (1) RETURNING x) UPDATE releases SET y = 1",
    "ALTER TABLE releases ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES audit(x) NOT VALID",
    "ALTER TABLE releases ALTER COLUMN y SET NOT NULL",
    "ALTER TABLE releases SET (autovacuum_vacuum_scale_factor = 0.01)",
    "CREATE INDEX ix_releases_y ON releases (y)",
    "CREATE FUNCTION f_no_lock() RETURNS int LANGUAGE sql AS 'select 1'",
    "SELECT * FROM releases FOR UPDATE",
]


@pytest.mark.parametrize("statement", SERVER_CASES, ids=[s[:40] for s in SERVER_CASES])
def test_labels_match_the_locks_a_real_server_takes(database: str, statement: str) -> None:
    """Run the statement in a transaction and read the strongest lock it holds on each table from pg_locks."""
    with psycopg.connect(database, autocommit=True) as setup:
        setup.execute("CREATE TABLE audit (x int PRIMARY KEY); CREATE TABLE releases (x int, y int)")
        setup.execute("INSERT INTO releases VALUES (1, 1)")
    with psycopg.connect(database) as conn:
        conn.execute(statement)
        rows = conn.execute(
            "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = pg_backend_pid() AND c.relname IN ('audit', 'releases')").fetchall()
        conn.rollback()
    held: dict[str, str] = {}
    for relname, mode in rows:
        name = MODE_NAMES[mode]
        if relname not in held or ORDER.index(name) > ORDER.index(held[relname]):
            held[relname] = name
    [classified] = classify(statement)
    assert {lock.relation: lock.mode for lock in classified.locks} == held



def test_the_dry_run_of_a_teams_migration_labels_each_statement(database: str, tmp_path: Path) -> None:
    """The statements the issue found mislabelled, in a team's revision, reviewed with --dry-run."""
    root = project(tmp_path, """
        op.execute("CREATE TABLE releases (id int PRIMARY KEY, shipped bool)")
        op.execute("CREATE TABLE audit (release_id int)")
    """, """
        op.execute("WITH ins AS (INSERT INTO audit SELECT id FROM releases RETURNING release_id) "
                   "UPDATE releases SET shipped = true")
        op.create_foreign_key("fk_audit_release", "audit", "releases", ["release_id"], ["id"])
        op.alter_column("releases", "shipped", nullable=False)
        op.execute("CREATE FUNCTION release_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM releases'")
    """)
    dry = run_cli("apply", "--database-url", database, "--migrations", str(root), "--dry-run")
    assert dry.exit_code == 0, dry.output
    labels = [line for line in dry.stdout.splitlines() if line.startswith("-- lock:")]
    assert len(labels) >= 5, dry.stdout
    cte, fk, not_null, function, version = labels[-5:]
    assert cte.startswith("-- lock: ROW EXCLUSIVE on releases") and "ROW EXCLUSIVE on audit" in cte
    assert "rewrites every row of releases" in cte
    assert "SHARE ROW EXCLUSIVE on audit" in fk and "SHARE ROW EXCLUSIVE on releases" in fk and "scans" in fk
    assert "ACCESS EXCLUSIVE on releases" in not_null and "scans the table" in not_null
    assert function.startswith("-- lock: no table lock")
    assert version.startswith("-- lock: ROW EXCLUSIVE on alembic_version")
    assert scalar(database, "SELECT to_regclass('releases') IS NULL")  # the dry run changed nothing
