"""The reference schema and its seed, on real servers.

The seed is what every later plan and timing is measured on, so these tests
pin down what a DBA relies on: the schema applies and comes off cleanly, the
seed is proportional to its scale, identical on every run and server version,
shaped like production (settled history, small open tail), and it never
overwrites data unless told to.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator

import psycopg
import pytest
import sqlparse
from psycopg import sql

from dbtune.core.errors import ConfigError, DbtuneError
from dbtune.core.output import Output
from dbtune.core.resources import sql_path
from dbtune.seed import SEEDED_TABLES, seed
from tests.fix_cli import run_cli

TINY = 0.002  # 2,000 orders: a second or two per seed
INDEX_SCALE = 0.05  # the smallest scale the index files' verify queries are tuned for

# Checksums of a TINY seed per server, to compare servers with each other:
# pg_server runs every test on one server before the next, so by the second
# server's run the first one's checksums are here.
_CHECKSUMS: dict[int, dict[str, str]] = {}


def run_sql_file(dsn: str, *parts: str) -> None:
    """Run a file of the project's SQL the way migrations do: split, one transaction."""
    statements = sqlparse.split(sql_path(*parts).read_text())
    with psycopg.connect(dsn) as conn, conn.transaction():
        for statement in statements:
            if sqlparse.format(statement, strip_comments=True).strip():
                conn.execute(statement)


@pytest.fixture
def schema_db(database: str) -> Iterator[str]:
    """A fresh database with the reference schema applied."""
    run_sql_file(database, "schema", "reference_schema.sql")
    yield database


def seeded(dsn: str, scale: float = TINY, **kwargs: object) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return seed(conn, scale, **kwargs)


def checksums(dsn: str) -> dict[str, str]:
    """md5 of every seeded table's rows in id order, independent of session settings."""
    result = {}
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET DateStyle = 'ISO, YMD'")
        for table in SEEDED_TABLES:
            query = sql.SQL("SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.id)) FROM {} AS t").format(
                sql.Identifier(table))
            result[table] = conn.execute(query).fetchone()[0]
    return result


def scalar(dsn: str, query: str) -> object:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchone()[0]


def test_schema_applies_without_secondary_indexes_and_down_removes_it(database: str) -> None:
    run_sql_file(database, "schema", "reference_schema.sql")
    with psycopg.connect(database) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert tables == set(SEEDED_TABLES)
        # Every index backs a primary key or unique constraint: adding the
        # others is the migrations' job.
        extra = conn.execute("""
            SELECT i.indexrelid::regclass::text FROM pg_index AS i
            JOIN pg_class AS c ON c.oid = i.indrelid
            WHERE c.relnamespace = 'public'::regnamespace
              AND NOT EXISTS (SELECT FROM pg_constraint AS k WHERE k.conindid = i.indexrelid
                              AND k.contype IN ('p', 'u'))""").fetchall()
        assert extra == []
        # The enumerations are enforced.
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute("INSERT INTO audit_logs (entity_type, entity_id, action) VALUES ('NOPE', 1, 'x')")
    run_sql_file(database, "schema", "reference_schema_down.sql")
    assert scalar(database, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace") == 0


def test_seed_counts_are_proportional_and_committed(schema_db: str) -> None:
    stream = io.StringIO()
    with psycopg.connect(schema_db) as conn:
        counts = seed(conn, TINY, out=Output(stdout=stream))
    assert list(counts) == list(SEEDED_TABLES)
    # Exact where the size is set by the scale, proportional where derived.
    assert counts["retailers"] == 40 and counts["vendors"] == 4 and counts["products"] == 100
    assert counts["orders"] == 2000 and counts["audit_logs"] == 2000
    assert counts["whatsapp_messages"] == 400
    assert counts["users"] == 1 + 40 + 4  # staff (at least one) + retailer and vendor owners
    assert 0.38 * 2000 <= counts["payments"] <= 0.48 * 2000
    assert 1.8 * counts["payments"] <= counts["credit_ledgers"] <= 2.1 * counts["payments"]
    assert 2 * 100 <= counts["vendor_products"] <= 4 * 100
    # Committed: another session sees exactly these rows.
    with psycopg.connect(schema_db) as conn:
        for table, n in counts.items():
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            assert conn.execute(query).fetchone()[0] == n, table
    # Progress went to the Output, one line per table.
    lines = stream.getvalue().splitlines()
    for table in SEEDED_TABLES:
        assert any(line.startswith(f"seeded {table}:") for line in lines), table


def test_seed_is_shaped_like_production(schema_db: str) -> None:
    seeded(schema_db)
    with psycopg.connect(schema_db) as conn:
        def share(query: str) -> float:
            return float(conn.execute(query).fetchone()[0])

        assert share("SELECT avg((status = 'COMPLETED')::int) FROM orders") > 0.8
        assert share("SELECT avg((status = 'PENDING_VENDOR_ACCEPTANCE')::int) FROM orders") < 0.02
        assert share("SELECT avg((NOT is_processed)::int) FROM whatsapp_messages") < 0.02
        overdue = share("""SELECT avg((payment_status IN ('UNPAID', 'PARTIAL')
                                      AND due_date < DATE '2025-07-01')::int) FROM payments""")
        assert 0 < overdue < 0.05
        # Two years up to the fixed reference date, never now().
        first, last = conn.execute("SELECT min(created_at), max(created_at) FROM orders").fetchone()
        assert (last - first).days >= 700
        assert last.isoformat() < "2025-07-01"
        # Skewed activity: the busiest retailer orders far more than the median one.
        busiest, median = conn.execute("""
            SELECT max(n), percentile_disc(0.5) WITHIN GROUP (ORDER BY n)
            FROM (SELECT count(*) AS n FROM orders GROUP BY retailer_id) AS x""").fetchone()
        assert busiest > 5 * median
        # An order's payment agrees with it, and the ledger adds up.
        assert conn.execute("""
            SELECT count(*) FROM payments AS p JOIN orders AS o ON o.id = p.order_id
            WHERE p.payment_status <> o.payment_status OR p.amount <> o.total
               OR p.paid_amount <> o.total - o.due_amount""").fetchone()[0] == 0
        assert conn.execute("""
            SELECT sum(amount) FILTER (WHERE transaction_type = 'CREDIT')
                 = (SELECT sum(paid_amount) FROM payments) FROM credit_ledgers""").fetchone()[0]
        # Product names are built from words: brand first, pack size last.
        for name, brand, unit in conn.execute("SELECT name, brand, unit FROM products"):
            assert name.startswith(brand + " ") and name.endswith(" " + unit), name
        assert conn.execute("SELECT count(*) FROM products WHERE name ILIKE '%rice %'").fetchone()[0] > 3
        # The foreign keys set aside during the load are back, and validated.
        fks = conn.execute("""SELECT count(*), bool_and(convalidated) FROM pg_constraint
                              WHERE contype = 'f' AND connamespace = 'public'::regnamespace""").fetchone()
        assert fks == (13, True)
        # Sequences continue after the seeded ids: the application can insert.
        new_id = conn.execute("INSERT INTO users (name, email, role) VALUES ('New', 'new@example.com', 'SUPPORT')"
                              " RETURNING id").fetchone()[0]
        assert new_id == 1 + 1 + 40 + 4
        conn.rollback()


def test_seed_is_deterministic(pg_server, schema_db: str) -> None:
    other = pg_server.create_database()
    try:
        run_sql_file(other, "schema", "reference_schema.sql")
        seeded(schema_db)
        seeded(other)
        first, second = checksums(schema_db), checksums(other)
    finally:
        pg_server.drop_database(other)
    assert first == second
    assert all(first.values())
    # And across server versions, when more than one is under test.
    for major, recorded in _CHECKSUMS.items():
        assert recorded == first, f"PostgreSQL {major} and {pg_server.major} seed different data"
    _CHECKSUMS[pg_server.major] = first


def test_seed_refuses_to_overwrite_rows_unless_replace(schema_db: str) -> None:
    before = seeded(schema_db)
    sums = checksums(schema_db)
    with pytest.raises(DbtuneError, match=r"already hold rows"):
        seeded(schema_db)
    assert checksums(schema_db) == sums
    # Any seeded table holding rows is enough to refuse, even a single one.
    with psycopg.connect(schema_db) as conn:
        conn.execute("TRUNCATE users, retailers, vendors, products, vendor_products, orders, payments,"
                     " credit_ledgers, whatsapp_messages, audit_logs")
        conn.execute("INSERT INTO whatsapp_messages (\"from\", body) VALUES ('+919999999999', 'hi')")
    with pytest.raises(DbtuneError, match=r"whatsapp_messages already hold rows"):
        seeded(schema_db)
    # replace=True truncates and starts over: the same data as a fresh seed.
    assert seeded(schema_db, replace=True) == before
    assert checksums(schema_db) == sums


def test_seed_without_schema_says_to_apply_it(database: str) -> None:
    with pytest.raises(DbtuneError, match=r"dbtune apply") as info:
        seeded(database)
    assert "orders" in str(info.value)


def test_seed_rejects_a_bad_scale(database: str) -> None:
    with psycopg.connect(database) as conn:
        for scale in (0, -1, -0.5, math.nan, math.inf, "lots", None, True):
            with pytest.raises(ConfigError, match="scale"):
                seed(conn, scale)  # type: ignore[arg-type]


def index_files() -> list[dict[str, object]]:
    """The index files' name, statement, verify queries and expected node."""
    found = []
    for path in sorted(sql_path("indexes").glob("*.sql")):
        text = path.read_text()
        statements = [s for s in sqlparse.split(text) if sqlparse.format(s, strip_comments=True).strip()]
        found.append({
            "name": path.stem,
            "statements": statements,
            "verify": re.findall(r"^-- verify: (.+)$", text, flags=re.MULTILINE),
            "expect": re.findall(r"^-- expect-node: (.+)$", text, flags=re.MULTILINE),
        })
    return found


def test_index_files_are_well_formed() -> None:
    files = index_files()
    assert len(files) >= 16
    for f in files:
        name = f["name"]
        assert len(name) <= 63 and re.fullmatch(r"ix_[a-z0-9_]+", name), name
        assert len(f["statements"]) == 1, name
        assert re.search(rf"^CREATE INDEX CONCURRENTLY IF NOT EXISTS {name}\s+ON ", f["statements"][0],
                         flags=re.MULTILINE), name
        assert f["verify"], name


def _plan_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.slow
def test_seeded_data_makes_the_planner_use_every_index(schema_db: str) -> None:
    """Each index file's verify queries use that index on data seeded at INDEX_SCALE.

    With all indexes present at once, as after the migrations: an index that
    loses to another one for its own query is dead weight.
    """
    seeded(schema_db, INDEX_SCALE)
    files = index_files()
    with psycopg.connect(schema_db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        for f in files:
            conn.execute(f["statements"][0])
        # Index-only scans are costed on the visibility map, which only VACUUM sets.
        conn.execute("VACUUM (ANALYZE)")
        misses = []
        for f in files:
            for query in f["verify"]:
                plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + sql.SQL(query)).fetchone()[0][0]["Plan"]
                nodes = [n["Node Type"] for n in _plan_nodes(plan) if n.get("Index Name") == f["name"]]
                wanted = f["expect"] or ["Index Scan", "Index Only Scan", "Bitmap Index Scan"]
                if not set(nodes) & set(wanted):
                    used = [(n["Node Type"], n.get("Index Name") or n.get("Relation Name"))
                            for n in _plan_nodes(plan) if "Scan" in n["Node Type"]]
                    misses.append(f"{f['name']}: {query} -> {used}")
    assert not misses, "\n".join(misses)


def test_seed_does_not_queue_behind_a_session_using_the_tables(database: str) -> None:
    assert run_cli("apply", "--database-url", database, "--to", "0001").exit_code == 0
    with psycopg.connect(database) as holder:
        holder.execute("LOCK TABLE orders IN ACCESS SHARE MODE")
        result = run_cli("seed", "--database-url", database, "--scale", "0.001", "--lock-timeout", "0.2")
    assert result.exit_code == 1, result.output
    assert "another session is using the reference tables (no lock within 0.2s" in result.stderr
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
