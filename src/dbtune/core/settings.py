"""Where dbtune connects and which migrations it runs, and where each came from.

The database: ``--database-url``, then ``DBTUNE_DATABASE_URL``, then
``DATABASE_URL``.  With none of them, a migration verb uses the database the
project's own env.py connects to (so a project that knows its database just
works), and the other verbs use libpq's ``PG*`` variables.

The migrations are found the way Alembic finds them: ``--migrations`` (or
``DBTUNE_MIGRATIONS``), then ``[tool.dbtune] migrations`` in
``pyproject.toml``, then ``ALEMBIC_CONFIG``, then ``./alembic.ini``.  dbtune's
own reference migrations run only when asked for by name (``bundled``): run
in a team's project, dbtune must never create the reference schema there.
Every value remembers its source so ``status`` can print it.
"""

from __future__ import annotations

import configparser
import dataclasses
import functools
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import conninfo
from .conninfo import scrub
from .errors import ConfigError
from .resources import bundled

DRIVER = "postgresql+psycopg"
BUNDLED = "bundled"  # --migrations bundled: dbtune's reference migrations


@dataclass(frozen=True)
class Target:
    """A database to connect to, as libpq's keywords.  Never print them: use ``masked``.

    ``explicit`` is False when nothing named a database: a migration verb then
    takes the database the project's env.py connects to.  ``session`` holds
    settings every dbtune session applies after connecting (the migration
    connection's search_path, so that dbtune resolves names as the migration does).
    """

    params: tuple[tuple[str, str], ...] = ()
    source: str = ""
    explicit: bool = True
    session: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str, source: str) -> Target:
        try:
            params = conninfo.parse(text)
        except conninfo.Unusable as exc:
            raise ConfigError(f"the database URL from {source} {exc}") from None
        return cls(params=tuple(params.items()), source=source)

    @classmethod
    def from_engine_url(cls, url: Any, source: str) -> Target:
        """The database a SQLAlchemy engine of any PostgreSQL driver connects to, for psycopg."""
        return cls(params=tuple(conninfo.from_sqlalchemy(url).items()), source=source)

    def with_session(self, **settings: str) -> Target:
        merged = dict(self.session)
        merged.update(settings)
        return dataclasses.replace(self, session=tuple(merged.items()))

    def with_params(self, source: str, **params: str) -> Target:
        """The same server with some keywords changed (another database on it, say)."""
        return dataclasses.replace(self, params=tuple({**dict(self.params), **params}.items()), source=source)

    @functools.cached_property
    def url(self) -> Any:
        """The target as a SQLAlchemy URL, for Alembic: built (and SQLAlchemy imported) only when asked for."""
        return conninfo.sqlalchemy_url(dict(self.params), DRIVER)

    @property
    def masked(self) -> str:
        """The URL with any password replaced by ``***``."""
        return conninfo.masked(dict(self.params))

    @property
    def password(self) -> str | None:
        return dict(self.params).get("password")

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect``; libpq fills gaps from PG* variables."""
        return dict(self.params)

    def scrub(self, text: str) -> str:
        """Remove the password from a message that might echo it."""
        return scrub(text, self.password)


def resolve_target(database_url: str | None = None, environ: dict[str, str] | None = None) -> Target:
    env = os.environ if environ is None else environ
    if database_url:
        return Target.parse(database_url, "--database-url")
    for name in ("DBTUNE_DATABASE_URL", "DATABASE_URL"):
        if env.get(name):
            return Target.parse(env[name], name)
    # Nothing given: no keyword lets libpq read PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
    parts = {k: env[k] for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE") if env.get(k)}
    return Target(explicit=False, source="libpq PG* environment" + (
        f" ({', '.join(sorted(parts))})" if parts else " (defaults)"))


@dataclass(frozen=True)
class Migrations:
    """An Alembic script directory, and the alembic.ini that named it, if any."""

    script_location: Path
    ini: Path | None
    source: str

    @property
    def bundled(self) -> bool:
        try:
            return self.script_location.resolve() == bundled("migrations").resolve()
        except FileNotFoundError:
            return False


def find_pyproject(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def project_settings(start: Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """``[tool.dbtune]`` of the nearest pyproject.toml, and that file's path."""
    path = find_pyproject(start)
    if path is None:
        return {}, None
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path.name}: {exc}") from None
    return data.get("tool", {}).get("dbtune", {}), path


def resolve_migrations(path: str | os.PathLike[str] | None = None, start: Path | None = None,
                       environ: dict[str, str] | None = None) -> Migrations:
    """The project's migrations, looked up as Alembic looks them up (see the module's docstring)."""
    env = os.environ if environ is None else environ
    here = (start or Path.cwd())
    if path:
        return _migrations_at(path, "--migrations")
    if env.get("DBTUNE_MIGRATIONS"):
        return _migrations_at(env["DBTUNE_MIGRATIONS"], "DBTUNE_MIGRATIONS")
    settings, pyproject = project_settings(start)
    if "migrations" in settings and pyproject is not None:
        return _migrations_at(pyproject.parent / settings["migrations"], f"[tool.dbtune] in {pyproject.name}")
    if env.get("ALEMBIC_CONFIG"):
        return _migrations_at(here / env["ALEMBIC_CONFIG"], "ALEMBIC_CONFIG")
    if (here / "alembic.ini").is_file():
        return _migrations_at(here / "alembic.ini", "./alembic.ini")
    raise ConfigError("no Alembic project here (no --migrations, no [tool.dbtune] migrations in pyproject.toml, "
                      "no ALEMBIC_CONFIG, no ./alembic.ini): pass --migrations PATH (a migrations directory or "
                      f"its alembic.ini), or --migrations {BUNDLED} for dbtune's reference migrations")


def _migrations_at(where: str | os.PathLike[str], source: str) -> Migrations:
    """Accept ``bundled``, an Alembic script directory, an alembic.ini, or a folder holding one."""
    if str(where) == BUNDLED:
        return Migrations(script_location=bundled("migrations"), ini=None,
                          source=f"dbtune's reference migrations, from {source}")
    path = Path(where)
    if path.is_dir() and (path / "alembic.ini").is_file() and not (path / "env.py").is_file():
        path = path / "alembic.ini"
    if path.is_file():
        return _from_ini(path, source)
    if not path.exists():
        raise ConfigError(f"migrations path {path} does not exist")
    if not (path / "env.py").is_file():
        raise ConfigError(f"{path} is not an Alembic migrations directory (no env.py, no alembic.ini)")
    return Migrations(script_location=path, ini=None, source=source)


def _from_ini(path: Path, source: str) -> Migrations:
    """Let Alembic itself resolve what the file names: ``package:path``, ``%(here)s``, prepend_sys_path."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    try:
        config = Config(file_=str(path))
        if not config.get_main_option("script_location"):
            raise ConfigError(f"{path} has no [{config.config_ini_section}] script_location")
        script = ScriptDirectory.from_config(config)
    except ConfigError:
        raise
    except CommandError as exc:
        raise ConfigError(f"{path} names {config.get_main_option('script_location')}, which is not an Alembic "
                          f"directory ({exc})") from None
    except (configparser.Error, OSError, ValueError, ImportError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    location = Path(script.dir)
    if not (location / "env.py").is_file():
        raise ConfigError(f"{path} names {config.get_main_option('script_location')}, which is not an Alembic "
                          "directory (no env.py)")
    return Migrations(script_location=location, ini=path, source=source)

