"""`dbtune check` on teams' projects whose env.py takes its database from the application's settings.

Each runs as a real `dbtune check` process in the project's directory, as CI runs it: once on the
embedded server, and once CI-shaped, against a service-like server (``--database-url``) with the
application's settings pointing at an empty ``app`` database on it, which must stay empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from tests.fix_cli import scalar
from tests.fix_db import Server
from tests.test_scenarios import copy, dbtune

TEMPLATE_OLD = "1a31ce608336"  # the template scenario's last revision that ran in production
TEMPLATE_NEW = "b7e0c4a2f911"  # the revision a change adds: a view and its unique index, an online build


def settings_of(url: str) -> dict[str, str]:
    """The application's POSTGRES_* settings for a database URL (libpq or postgresql://)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    return {"POSTGRES_SERVER": str(params["host"]), "POSTGRES_PORT": str(params["port"]),
            "POSTGRES_USER": str(params["user"]), "POSTGRES_PASSWORD": str(params.get("password", "")),
            "POSTGRES_DB": str(params["dbname"])}


# The application's settings point at a port where nothing listens: only the handed-over database works.
NOWHERE = {"POSTGRES_SERVER": "127.0.0.1", "POSTGRES_PORT": "1", "POSTGRES_USER": "app",
           "POSTGRES_PASSWORD": "app-secret", "POSTGRES_DB": "app"}


def run_check(project: Path, env: dict[str, str], *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    result = dbtune("check", "--format", "json", *args, cwd=project, env=env, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}, result.stderr


def steps(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["name"]: s for s in report["steps"]}


def tables(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE c.relkind IN ('r', 'p', 'm') "
                           "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"))


def scratch_databases(admin: str) -> int:
    return int(scalar(admin, "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbtune_check_%'"))


def test_a_settings_driven_project_passes_on_the_embedded_server(tmp_path: Path) -> None:
    """POSTGRES_* components ([tool.dbtune] check.url-env); old revisions left to --since, the chain run whole."""
    project = copy("template", tmp_path) / "backend"
    code, report, err = run_check(project, NOWHERE, "--since", TEMPLATE_OLD)
    assert code == 0, err
    assert report["ok"] and report["result"] == "passed"
    assert all(s["status"] == "passed" for s in report["steps"]), report["steps"]
    lint = steps(report)["lint"]
    assert "4 revisions not linted" in lint["summary"], lint["summary"]
    assert [(c["name"], c["skipped"]) for c in lint["cases"]] == \
        [("e2412789c190", True), ("9c0a54914c78", True), ("d98dd8ec85a3", True), (TEMPLATE_OLD, True),
         (TEMPLATE_NEW, False)]
    assert [c["name"] for c in steps(report)["round trip"]["cases"]][-1] == TEMPLATE_NEW  # the whole chain
    assert len(steps(report)["round trip"]["cases"]) == 5
    assert NOWHERE["POSTGRES_PASSWORD"] not in err


def test_a_settings_driven_project_in_a_ci_shaped_run(pg_server: Server, database: str, tmp_path: Path) -> None:
    """A service server, the application's settings naming its empty app database: checked on a scratch one."""
    project = copy("template", tmp_path) / "backend"
    env = settings_of(database)
    code, report, err = run_check(project, env, "--database-url", pg_server.admin_dsn)
    # Without a baseline the revisions that ran in production long ago fail lint; the rest passes.
    assert code == 1 and report["failed_step"] == "lint", err
    failing = [c["name"] for c in steps(report)["lint"]["cases"] if not c["passed"] and not c["skipped"]]
    assert failing == ["9c0a54914c78", TEMPLATE_OLD]
    notes = "\n".join(steps(report)["lint"]["notes"])
    assert "d98dd8ec85a3 line" in notes and "renaming-column (squawk)" in notes  # advice, not a failure
    assert [s["status"] for s in report["steps"][3:]] == ["passed"] * 4
    assert tables(database) == 0 and scratch_databases(pg_server.admin_dsn) == 0

    # The baseline recorded once in the project: the same run passes.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'since = "{TEMPLATE_OLD}"\n')
    code, report, err = run_check(project, env, "--database-url", pg_server.admin_dsn)
    assert code == 0 and report["ok"], err
    assert tables(database) == 0 and scratch_databases(pg_server.admin_dsn) == 0
    assert env["POSTGRES_PASSWORD"] not in err


def test_an_env_py_that_goes_elsewhere_is_refused_in_one_line(pg_server: Server, database: str,
                                                              tmp_path: Path) -> None:
    """Without the settings handed over, env.py reaches the app database: nothing is checked there."""
    project = copy("template", tmp_path) / "backend"
    pyproject = project / "pyproject.toml"
    pyproject.write_text("\n".join(line for line in pyproject.read_text().splitlines()
                                   if not line.startswith("url-env")) + "\n")
    env = settings_of(database)
    result = dbtune("check", "--database-url", pg_server.admin_dsn, cwd=project, env=env, timeout=300)
    assert result.exit_code == 2, result.output
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert f"database {env['POSTGRES_DB']}" in line and "--url-env NAME=PART" in line, line
    assert "nothing was checked" in line and "Traceback" not in result.output
    assert env["POSTGRES_PASSWORD"] not in result.output
    assert tables(database) == 0 and scratch_databases(pg_server.admin_dsn) == 0

    # The application's settings naming a server where nothing listens: refused the same way.
    nowhere = dbtune("check", cwd=project, env=NOWHERE, timeout=300)
    assert nowhere.exit_code == 2, nowhere.output
    assert "tried another one and failed" in nowhere.stderr and "--url-env" in nowhere.stderr


def test_a_url_setting_of_its_own_name_and_driver_is_handed_over(pg_server: Server, database: str,
                                                                 tmp_path: Path) -> None:
    """--url-env NAME: the scratch database's URL, on the driver the application's setting names."""
    project = copy("settings_url", tmp_path)
    env = {"APP_DATABASE_URL": "postgresql+psycopg2://" + database.split("://", 1)[1]}
    code, report, err = run_check(project, env, "--database-url", pg_server.admin_dsn, "--url-env", "APP_DATABASE_URL")
    assert code == 0, err
    assert [s["status"] for s in report["steps"]] == ["passed"] * 4 + ["skipped", "passed", "passed"]
    assert report["result"] == "incomplete" and not report["ok"]  # no checks declared: verify did not run
    assert tables(database) == 0 and scratch_databases(pg_server.admin_dsn) == 0

    asyncpg = {"APP_DATABASE_URL": "postgresql+asyncpg://" + database.split("://", 1)[1]}
    code, report, err = run_check(project, asyncpg, "--url-env", "APP_DATABASE_URL")  # the embedded server
    assert code == 0, err
    assert tables(database) == 0


def test_a_database_url_setting_needs_nothing(pg_server: Server, database: str, tmp_path: Path) -> None:
    """DATABASE_URL names the scratch database while the check runs, whatever it named before."""
    project = copy("settings_url", tmp_path)
    code, report, err = run_check(project, {"DATABASE_URL": database}, "--database-url", pg_server.admin_dsn)
    assert code == 0, err
    assert [c["name"] for c in steps(report)["round trip"]["cases"]] == ["s1", "s2"]
    assert tables(database) == 0 and scratch_databases(pg_server.admin_dsn) == 0
