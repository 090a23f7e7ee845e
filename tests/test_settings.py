"""Where dbtune connects and which migrations it runs: parsing and errors (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtune.core.errors import ConfigError
from dbtune.core.settings import resolve_migrations, resolve_target
from tests.fix_cli import OWN_MIGRATIONS


def test_a_libpq_keyword_string_is_accepted_and_masked() -> None:
    target = resolve_target("host=db1 port=6432 user=dba password=s3cret dbname=shop sslmode=require")
    kwargs = target.connect_kwargs()
    assert kwargs == {"host": "db1", "port": "6432", "user": "dba", "password": "s3cret", "dbname": "shop",
                      "sslmode": "require"}
    assert "s3cret" not in target.masked and "dba:***@db1:6432/shop" in target.masked


def test_precedence_flag_then_dbtune_then_database_url_then_libpq() -> None:
    env = {"DBTUNE_DATABASE_URL": "postgresql://a@h1/d", "DATABASE_URL": "postgresql://b@h2/d", "PGHOST": "h3"}
    assert resolve_target("postgresql://c@h0/d", env).source == "--database-url"
    assert resolve_target(None, env).source == "DBTUNE_DATABASE_URL"
    assert resolve_target(None, {k: v for k, v in env.items() if k != "DBTUNE_DATABASE_URL"}).source == "DATABASE_URL"
    libpq = resolve_target(None, {"PGHOST": "h3", "PGPASSWORD": "x"})
    assert libpq.source == "libpq PG* environment (PGHOST)" and libpq.connect_kwargs() == {}


def test_an_alembic_ini_names_the_directory(tmp_path: Path) -> None:
    found = resolve_migrations(OWN_MIGRATIONS / "alembic.ini")
    assert found.script_location == OWN_MIGRATIONS / "migrations" and found.ini is not None
    (tmp_path / "alembic.ini").write_text("[alembic]\nsqlalchemy.url = x\n")
    with pytest.raises(ConfigError, match="no \\[alembic\\] script_location"):
        resolve_migrations(tmp_path / "alembic.ini")
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/nowhere\n")
    with pytest.raises(ConfigError, match="not an Alembic directory"):
        resolve_migrations(tmp_path)


def test_every_public_name_loads_from_the_package() -> None:
    """The names `import dbtune` promises (loaded lazily from their modules) are all there."""
    import dbtune

    assert dbtune.__all__
    for name in dbtune.__all__:
        assert getattr(dbtune, name) is not None, name
    with pytest.raises(AttributeError):
        dbtune.no_such_name  # noqa: B018
