"""`dbtune advise`: each kind of candidate on the query made for it, proven by the planner, written as a
revision that `dbtune check` passes and that `dbtune verify` proves used after `dbtune apply`; as the owner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest

from dbtune.advise.candidates import Candidate
from dbtune.advise.choose import Trial, choose
from dbtune.sqltext import shapes
from tests.fix_cli import OWN_MIGRATIONS, run_cli, scalar

PROJECT_REVISION = '''"""items and a tiny lookup table

Revision ID: b1
Revises:
"""
from alembic import op

revision = "b1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE items (id bigint PRIMARY KEY, customer_id int NOT NULL, region int NOT NULL, "
               "kind int NOT NULL, status text NOT NULL, name text NOT NULL, total numeric NOT NULL, "
               "created_at timestamptz NOT NULL, notes text NOT NULL)")
    op.execute("CREATE INDEX ix_items_kind ON items (kind)")
    op.execute("CREATE TABLE tiny (code text PRIMARY KEY, label text)")


def downgrade() -> None:
    op.execute("DROP TABLE tiny")
    op.execute("DROP TABLE items")
'''

# One query per candidate kind, then what no new index should serve.
QUERIES = """
SELECT * FROM items WHERE customer_id = 42 ORDER BY created_at DESC LIMIT 20;
SELECT * FROM items WHERE status = 'pending' ORDER BY created_at LIMIT 50;
SELECT id, name FROM items WHERE name ILIKE '%c4ca%';
SELECT * FROM items WHERE kind = 3;
SELECT label FROM tiny WHERE label = 'x';
INSERT INTO items SELECT * FROM items WHERE false;
SELECT total FROM items WHERE region = 7;
"""


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "alembic.ini").write_text((OWN_MIGRATIONS / "alembic.ini").read_text())
    (root / "migrations" / "env.py").write_text((OWN_MIGRATIONS / "migrations" / "env.py").read_text())
    (root / "migrations" / "versions" / "b1_items.py").write_text(PROJECT_REVISION)
    return root / "alembic.ini"


def _fill(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        # The suite's servers run with synchronous_commit off: rows whose commit is not flushed
        # yet get no hint bits, so the VACUUM below would mark no page all-visible.
        conn.execute("SET synchronous_commit = on")
        conn.execute("INSERT INTO items SELECT g, g % 2000, g % 50, g % 40, CASE WHEN g % 100 = 0 THEN 'pending' "
                     "ELSE 'done' END, md5(g::text), g % 997, timestamptz '2025-01-01' + g * interval '1 minute', "
                     "repeat('x', 300) FROM generate_series(1, 60000) g")
        conn.execute("INSERT INTO tiny VALUES ('a', 'x'), ('b', 'y')")
        conn.execute("VACUUM ANALYZE items")
        conn.execute("ANALYZE tiny")


def _indexes(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def test_statement_kinds_from_the_parse_tree() -> None:
    assert shapes.kind("SELECT * FROM t WHERE a = $1") == "query"
    assert shapes.kind("INSERT INTO t SELECT * FROM s") == "bulk load"
    assert shapes.kind("INSERT INTO t VALUES ($1, $2)") == "insert"
    assert shapes.kind("CREATE INDEX CONCURRENTLY i ON t (a)") == "ddl"
    assert shapes.kind("VACUUM ANALYZE t") == "maintenance"
    assert shapes.kind("UPDATE t SET a = $1 WHERE b = $2") == "update"
    [use] = shapes.uses("SELECT a, b FROM t WHERE c = $1 AND d > $2 AND NOT e ORDER BY f DESC")
    assert (use.equal, use.ranges, use.order, use.read) == (["c"], ["d"], [("f", True)], {"a", "b", "c", "d", "e",
                                                                                         "f"})
    assert [c.sql() for c in use.constants] == ['NOT "e"']
    # A list (IN) before an ORDER BY goes after the sort's column; pg_stat_statements' typed
    # parameter (DATE $2) is read as a cast.
    typed = "SELECT id FROM p WHERE s IN ($1, $3) AND d < DATE $2 ORDER BY d LIMIT $4"
    assert shapes.readable(typed).endswith("d < $2::DATE ORDER BY d LIMIT $4") and shapes.kind(typed) == "query"
    assert [str(o) for o in shapes.outlines(typed)] == ["an index on p (d, s)"]
    assert [str(o) for o in shapes.outlines("SELECT * FROM p WHERE s IN (1, 2) AND k = 3")] == ["an index on p (s, k)"]


def test_a_checks_parameters_are_filled_from_pg_stats_numbers_as_numbers() -> None:
    """The check file's query reads as the application's: a number compared with a numeric column
    unquoted, text, dates and a real quoted (0.1::real is not the numeric 0.1), a pattern a whole value, the
    LIMIT a number; nothing to fill with, None."""
    from dbtune.advise.costing import fill
    from dbtune.advise.tables import Stats, Table
    from dbtune.sqltext.parameters import params

    orders = Table(1, "public", "orders", 1000.0, 8192,
                   {"retailer_id": ("bigint", True), "total": ("numeric(12,2)", True), "status": ("text", True),
                    "created_at": ("date", True), "name": ("text", True), "code": ("integer", True),
                    "ratio": ("real", True)})
    orders.stats = {"retailer_id": Stats(0, 100, (), (), ("1", "758", "999")),
                    "total": Stats(0, -1, (), (), tuple(f"{n}.50" for n in range(20))),
                    "status": Stats(0, 3, ("done", "pending"), (0.9, 0.1), ()),
                    "created_at": Stats(0, -1, (), (), ("2025-01-01", "2025-06-01", "2025-12-31")),
                    "name": Stats(0, -1, (), (), ("acme", "bolt", "cog")),
                    "code": Stats(0, 3, ("2", "-1"), (0.5, 0.5), ()),
                    "ratio": Stats(0, 2, ("0.5", "0.1"), (0.5, 0.5), ())}
    text = ("SELECT id FROM orders WHERE retailer_id = $1 AND total > $2 AND status = $3 AND created_at < $4 "
            "AND name LIKE $5 AND code = $6 AND ratio = $7 LIMIT $8")
    assert fill(text, params(text), {None: orders}) == (
        "SELECT id FROM orders WHERE retailer_id = 758 AND total > 18.50 AND status = 'pending' "
        "AND created_at < '2025-01-01' AND name LIKE '%bolt%' AND code = '-1' AND ratio = '0.1' LIMIT 20")
    unknown = "SELECT id FROM orders WHERE nothing = $1"
    assert fill(unknown, params(unknown), {None: orders}) is None


def test_the_choice_keeps_one_index_a_query_and_not_one_that_barely_serves_it() -> None:
    def candidate(keys: tuple[str, ...], include: tuple[str, ...] = ()) -> Candidate:
        return Candidate('"t"', "t", "covering" if include else "composite", tuple((k, False) for k in keys), include)
    a, twin, b = candidate(("x",)), candidate(("x",), ("y",)), candidate(("z",))
    trials = [Trial(a, 0, 100, 10, True), Trial(a, 1, 100, 40, True), Trial(twin, 0, 100, 9, True),
              Trial(b, 1, 100, 5, True)]
    kept = choose(trials, [1.0, 1.0], {a: 10, twin: 20, b: 10}, 0.5, dict.fromkeys((a, twin, b), "planned"))
    # a serves query 0; its covering twin is as good there and not kept; a "serves" query 1 at
    # 60% but eight times b's cost, so b is kept for it.
    assert {k.candidate: [t.query for t in k.serves] for k in kept} == {a: [0], b: [1]}


@pytest.mark.parametrize("hypopg", [True, False], ids=["hypopg", "no-hypopg"])
def test_advise_proves_each_kind_writes_a_revision_check_passes_and_verify_proves_it(
        owned_database, tmp_path: Path, hypopg: bool) -> None:  # type: ignore[no-untyped-def]
    owned = owned_database
    if hypopg:
        available = scalar(owned.admin_url, "SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'")
        if not available:
            pytest.skip(f"needs hypopg for PostgreSQL {owned.server.major} "
                        f"(Debian's postgresql-{owned.server.major}-hypopg package)")
        with psycopg.connect(owned.admin_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION hypopg")  # the scene: a superuser created it once
    ini = _project(tmp_path)
    applied = run_cli("apply", "--migrations", str(ini), "--database-url", owned.url)
    assert applied.exit_code == 0, applied.output
    _fill(owned.admin_url)
    queries = tmp_path / "queries.sql"
    queries.write_text(QUERIES)
    before = _indexes(owned.url)

    result = run_cli("advise", "--queries", str(queries), "--format", "json", "--database-url", owned.url)
    assert result.exit_code == 0, result.output
    advice = json.loads(result.stdout)
    assert _indexes(owned.url) == before  # nothing built on the target

    served = {q["origin"]: i["kind"] for i in advice["indexes"] for q in i["queries"]}
    assert served["queries.sql #1"] == "composite"
    assert served["queries.sql #2"] == "partial"
    assert served["queries.sql #3"] == "trigram"
    assert served["queries.sql #7"] == "covering"  # an index-only scan: the table's pages all-visible
    covering = next(i for i in advice["indexes"] if i["kind"] == "covering")
    assert covering["definition"].endswith('("region") INCLUDE ("total")')
    partial = next(i for i in advice["indexes"] if i["kind"] == "partial")
    assert partial["definition"].endswith("WHERE \"status\" = 'pending'")
    for index in advice["indexes"]:
        assert index["estimated_bytes"] > 0 and index["table_writes_per_hour"] is not None
        assert all(q["gain"] >= 0.5 and q["cost_after"] < q["cost_before"] for q in index["queries"])
    # The existing index on kind suppresses its duplicate; the tiny table's index is not worth it.
    assert {"candidate": 'CREATE INDEX "ix_items_kind" ON "public"."items" ("kind")',
            "by": "ix_items_kind"} in advice["already_served"]
    assert any('"tiny"' in d["candidate"] and d["best_gain"] < 0.5 for d in advice["under_threshold"])
    assert "queries.sql #4" not in served and "queries.sql #5" not in served
    assert {"origin": "queries.sql #6", "kind": "bulk load"}.items() <= next(
        q for q in advice["not_advised"] if q["origin"] == "queries.sql #6").items()
    # Which way it planned: hypopg for the btree candidates, a sample for the trigram one (hypopg
    # holds no GIN index); without hypopg, the sample for all, and a line that says why.
    indexes = {i["kind"]: i["planned"] for i in advice["indexes"]}
    assert indexes["trigram"].startswith("planned on a sample of up to 50,000 rows")
    if hypopg:
        assert indexes["composite"] == "planned with hypopg" and not advice["notes"]
    else:
        assert indexes["composite"].startswith("planned on a sample")
        assert any("hypopg is not created in this database" in n for n in advice["notes"])

    table = run_cli("advise", "--queries", str(queries), "--database-url", owned.url, "--write-revision",
                    "--migrations", str(ini))
    assert table.exit_code == 0, table.output
    assert "planned on a sample" in table.stdout and "wrote revision" in table.stderr
    assert re.search(r"under the threshold: \S*tiny\S* \((best gain \d+\.\d%|no query's plan cost fell with it)\)",
                     table.stdout), table.stdout
    [revision] = [p for p in (ini.parent / "migrations" / "versions").glob("*_advised_indexes.py")]
    text = revision.read_text()
    assert "autocommit_block()" in text and "DROP INDEX CONCURRENTLY" in text and "down_revision = 'b1'" in text
    checks = ini.parent / "migrations" / "checks"
    assert len(list(checks.glob("*.sql"))) == len(advice["indexes"])

    checked = run_cli("check", "--migrations", str(ini), "--checks", str(checks), "--database-url",
                      owned.server.admin_dsn, "--quiet")
    assert checked.exit_code == 0, checked.output
    applied = run_cli("apply", "--migrations", str(ini), "--database-url", owned.url)
    assert applied.exit_code == 0, applied.output
    assert {i["name"] for i in advice["indexes"]} <= _indexes(owned.url)
    with psycopg.connect(owned.admin_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE items")
    verified = run_cli("verify", "--checks", str(checks), "--database-url", owned.url)
    assert verified.exit_code == 0, verified.output
    assert f"{len(advice['indexes'])} passed, 0 failed" in verified.stdout


def test_bad_input_is_refused_in_one_line_and_nothing_is_written(owned_database, tmp_path: Path) -> None:
    """As the owner role: a missing or empty file, no pg_stat_statements, and a revision with no index
    to put in it are each exit 2 with one line, no traceback, and nothing written to the project."""
    url = owned_database.url
    cases = {"does not exist": ["--queries", str(tmp_path / "missing.sql")]}
    (tmp_path / "empty.sql").write_text("-- nothing here\n")
    cases["holds no SQL statement"] = ["--queries", str(tmp_path / "empty.sql")]
    cases["no statements to advise on"] = []  # pg_stat_statements is not created in this database
    (tmp_path / "catalog.sql").write_text("SELECT 1;\n")
    ini = _project(tmp_path)
    cases["no index to write"] = ["--queries", str(tmp_path / "catalog.sql"), "--write-revision",
                                  "--migrations", str(ini)]
    for expected, args in cases.items():
        result = run_cli("advise", *args, "--database-url", url)
        errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error:")]
        assert result.exit_code == 2 and len(errors) == 1 and expected in errors[0], (expected, result.output)
        assert "Traceback" not in result.output and owned_database.password not in result.output
    assert [p.name for p in (ini.parent / "migrations" / "versions").glob("*.py")] == ["b1_items.py"]
    assert not (ini.parent / "migrations" / "checks").exists()
