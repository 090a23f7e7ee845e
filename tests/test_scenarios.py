"""Teams' own projects, as DBAs bring them: env.py imports the application, takes the database
from the application's settings, puts each tenant in its own schema, runs on psycopg 3, psycopg2
or asyncpg.  Each runs as a real `dbtune` process in the project's directory, as a DBA runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.fix_cli import SCENARIOS, Result, scalar
from tests.test_online import wait_until

DRIVERS = {"psycopg": "postgresql+psycopg", "psycopg2": "postgresql+psycopg2", "asyncpg": "postgresql+asyncpg"}


def dbtune(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """`dbtune ARGS` as its own process in ``cwd``; no DBTUNE_*/DATABASE_URL from the caller."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DBTUNE_DATABASE_URL", "DATABASE_URL", "DBTUNE_MIGRATIONS", "DBTUNE_DEBUG")}
    clean.update(env or {})
    done = subprocess.run([sys.executable, "-m", "dbtune.cli", *args], cwd=cwd, env=clean, text=True,
                          capture_output=True, timeout=timeout)
    return Result(done.returncode, done.stdout, done.stderr)


def start(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("DBTUNE_DATABASE_URL", "DATABASE_URL")}
    full.update(env)
    return subprocess.Popen([sys.executable, "-m", "dbtune.cli", *args], cwd=cwd, env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(SCENARIOS / name, tmp_path / name))


def with_driver(database: str, driver: str) -> str:
    return DRIVERS[driver] + "://" + database.split("://", 1)[1]


def make_schemas(database: str, *names: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))


def regclass(database: str, name: str) -> object:
    return scalar(database, "SELECT to_regclass(%s)::text", [name])


# -- each tenant in its own schema, on every driver ------------------------------

@pytest.mark.parametrize("driver", list(DRIVERS))
def test_tenants_each_get_their_own_indexes_on_every_driver(database: str, tmp_path: Path, driver: str) -> None:
    """The search_path of the migration's own connection decides where the concurrent builds go."""
    project = copy("tenants", tmp_path)
    make_schemas(database, "tenant1", "tenant2")
    env = {"APP_DATABASE_URL": with_driver(database, driver)}
    applied = dbtune("apply", "--jobs", "2", cwd=project, env=env)
    assert applied.exit_code == 0, applied.output
    for tenant in ("tenant1", "tenant2"):
        assert scalar(database, f"SELECT version_num FROM {tenant}.alembic_version") == "t3"
        for index in ("ix_customers_email", "ix_customers_active_name"):
            assert scalar(database, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                          [f"{tenant}.{index}"]) is True, (tenant, index, applied.output)
        assert scalar(database, f"SELECT count(nickname) + count(*) FROM {tenant}.customers") == 200
    assert regclass(database, "public.ix_customers_email") is None
    assert regclass(database, "public.customers") is None
    assert "Traceback" not in applied.output

    back = dbtune("rollback", "--to", "t1", cwd=project, env=env)
    assert back.exit_code == 0, back.output
    for tenant in ("tenant1", "tenant2"):
        assert scalar(database, f"SELECT version_num FROM {tenant}.alembic_version") == "t1"
        assert regclass(database, f"{tenant}.ix_customers_email") is None
        assert scalar(database, f"SELECT count(*) FROM {tenant}.customers") == 200  # rows kept


def test_a_queued_rollback_undoes_one_revision_of_what_the_apply_left(database: str, tmp_path: Path) -> None:
    """rollback --wait decides what to undo only once it holds the lock, not while queued."""
    project = copy("tenants", tmp_path)
    make_schemas(database, "tenant1")
    env = {"APP_DATABASE_URL": with_driver(database, "psycopg"), "APP_TENANTS": "tenant1"}
    assert dbtune("apply", "--to", "t1", cwd=project, env=env).exit_code == 0
    name = database.rsplit("/", 1)[1]
    with psycopg.connect(database, autocommit=True) as conn:  # t3 takes 3 s: the rollback queues behind it
        conn.execute(sql.SQL("ALTER DATABASE {} SET app.slow_step = '3'").format(sql.Identifier(name)))
    applying = start("apply", "--no-progress", cwd=project, env=env)
    try:
        wait_until(lambda: scalar(database, "SELECT count(*) FROM pg_stat_activity "
                                            "WHERE application_name = 'dbtune lock'"), what="the apply's lock")
        rollback = dbtune("rollback", "--wait", cwd=project, env=env)
    finally:
        out, err = applying.communicate(timeout=120)
    assert applying.returncode == 0, out + err
    assert rollback.exit_code == 0, rollback.output
    assert "waiting for another dbtune run" in rollback.stdout
    assert scalar(database, "SELECT version_num FROM tenant1.alembic_version") == "t2"
    assert scalar(database, "SELECT count(*) FROM tenant1.customers") == 200
    assert regclass(database, "tenant1.ix_customers_email") is not None


# -- an env.py that picks its own database ------------------------------------------

def fullstack(database: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """FastAPI's full-stack template backend, its POSTGRES_* settings pointing at ``database``."""
    project = copy("fullstack", tmp_path) / "backend"
    params = psycopg.conninfo.conninfo_to_dict(database)
    env = {"POSTGRES_SERVER": str(params["host"]), "POSTGRES_PORT": str(params["port"]),
           "POSTGRES_USER": str(params["user"]), "POSTGRES_PASSWORD": str(params["password"]),
           "POSTGRES_DB": str(params["dbname"])}
    return project, env


def test_a_project_that_knows_its_database_just_works(database: str, tmp_path: Path) -> None:
    project, env = fullstack(database, tmp_path)
    status = dbtune("status", cwd=project, env=env)
    assert status.exit_code == 0, status.output
    assert "./alembic.ini" in status.stdout and "pending     2" in status.stdout
    assert env["POSTGRES_PASSWORD"] not in status.output
    applied = dbtune("apply", cwd=project, env=env)
    assert applied.exit_code == 0, applied.output
    assert f"/{env['POSTGRES_DB']}" in applied.stdout and "env.py's connection" in applied.stdout
    assert scalar(database, "SELECT version_num FROM alembic_version") == "d98dd8ec85a3"
    assert scalar(database, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_user_email'::regclass")


def test_dbtune_never_works_on_another_database_than_it_was_given(database: str, pg_server, tmp_path: Path) -> None:
    project, env = fullstack(database, tmp_path)
    other = pg_server.create_database()
    try:
        for verb in ("status", "apply", "rollback"):
            result = dbtune(verb, "--database-url", other, cwd=project, env=env)
            assert result.exit_code == 2, (verb, result.output)
            [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
            assert env["POSTGRES_DB"] in line and other.rsplit("/", 1)[1] in line, line
            assert "nothing was changed" in line and "Traceback" not in result.output
            assert env["POSTGRES_PASSWORD"] not in result.output
        for dsn in (database, other):
            assert scalar(dsn, "SELECT count(*) FROM pg_class WHERE relname IN ('user', 'alembic_version')") == 0
    finally:
        pg_server.drop_database(other)


def test_in_a_project_without_alembic_ini_dbtune_asks_instead_of_using_its_own(database: str,
                                                                                tmp_path: Path) -> None:
    result = dbtune("status", "--database-url", database, cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert "--migrations bundled" in result.stderr and "Traceback" not in result.output
    applied = dbtune("apply", "--database-url", database, cwd=tmp_path)
    assert applied.exit_code == 2
    assert scalar(database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0


def test_an_env_py_that_cannot_import_the_application_is_one_line(database: str, tmp_path: Path) -> None:
    project, env = fullstack(database, tmp_path)
    shutil.rmtree(project / "app" / "core")
    result = dbtune("apply", cwd=project, env=env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    env_py = (project / "app" / "alembic" / "env.py").read_text().splitlines()
    lineno = env_py.index("from app.core.config import settings") + 1
    assert f"app/alembic/env.py line {lineno}" in line and "ModuleNotFoundError" in line and "app.core" in line, line
    debug = dbtune("--debug", "apply", cwd=project, env=env)
    assert "Traceback" in debug.stderr


# -- project layouts alembic accepts ------------------------------------------------

REVISION = '''from alembic import op

revision = "{rev}"
down_revision = {down}
{extra}

def upgrade() -> None:
    op.execute("CREATE TABLE {table} (id int)")


def downgrade() -> None:
    op.execute("DROP TABLE {table}")
'''


def test_package_resource_locations_and_several_version_directories(database: str, tmp_path: Path) -> None:
    """script_location = package:path, version_locations over two folders, prepend_sys_path, %(here)s."""
    migrations = tmp_path / "src" / "myapp" / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (tmp_path / "src" / "myapp" / "__init__.py").write_text("")
    (migrations / "__init__.py").write_text("")
    shutil.copy(SCENARIOS / "broken" / "env.py", migrations / "env.py")
    (tmp_path / "plugins").mkdir()
    (migrations / "versions" / "l1.py").write_text(REVISION.format(rev="l1", down=None, extra="", table="base_t"))
    (tmp_path / "plugins" / "l2.py").write_text(REVISION.format(rev="l2", down='"l1"', extra="", table="plugin_t"))
    (tmp_path / "alembic.ini").write_text(
        "[alembic]\nscript_location = myapp:migrations\nprepend_sys_path = src\n"
        "version_locations = myapp:migrations/versions %(here)s/plugins\npath_separator = space\n")
    status = dbtune("status", "--database-url", database, cwd=tmp_path)
    assert status.exit_code == 0, status.output
    assert "pending     2" in status.stdout and "myapp/migrations" in status.stdout
    applied = dbtune("apply", "--database-url", database, cwd=tmp_path)
    assert applied.exit_code == 0, applied.output
    assert regclass(database, "plugin_t") == "plugin_t" and scalar(database, "SELECT version_num FROM "
                                                                             "alembic_version") == "l2"
    back = dbtune("rollback", "--to", "base", "--database-url", database, cwd=tmp_path)
    assert back.exit_code == 0, back.output
    assert regclass(database, "base_t") is None
