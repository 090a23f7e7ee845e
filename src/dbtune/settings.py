"""Where dbtune connects and which migrations it runs, and where each came from.

Layered as a DBA expects: a command-line flag wins, then the environment
(``DBTUNE_DATABASE_URL``, then ``DATABASE_URL``), then ``[tool.dbtune]`` in
``pyproject.toml`` (for the migrations path), then defaults (libpq's own
``PG*`` variables for the connection, the bundled migrations).  Every value
remembers its source so ``dbtune status`` can print it.
"""

from __future__ import annotations

import configparser
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigError
from .resources import bundled

DRIVER = "postgresql+psycopg"


@dataclass(frozen=True)
class Target:
    """A database to connect to.  Never print ``url`` itself: use ``masked``."""

    url: URL
    source: str

    @classmethod
    def parse(cls, text: str, source: str) -> Target:
        text = text.strip()
        try:
            if "://" in text:
                url = make_url(text)
            else:  # libpq keyword form: "host=... dbname=..."
                params = psycopg.conninfo.conninfo_to_dict(text)
                url = URL.create(DRIVER, username=params.pop("user", None),
                                 password=params.pop("password", None), host=params.pop("host", None),
                                 port=int(params["port"]) if params.get("port") else None,
                                 database=params.pop("dbname", None),
                                 query={k: str(v) for k, v in params.items() if k != "port"})
        except (ArgumentError, ValueError, psycopg.ProgrammingError):
            raise ConfigError(f"the database URL from {source} is not a PostgreSQL URL or connection string") from None
        if url.get_backend_name() not in ("postgresql", "postgres"):
            raise ConfigError(f"the database URL from {source} is not a PostgreSQL URL")
        return cls(url=url.set(drivername=DRIVER), source=source)

    @property
    def masked(self) -> str:
        """The URL with any password replaced by ``***``."""
        url = self.url.set(drivername="postgresql")
        if not (url.host or url.database or url.username or url.query):
            return "the libpq default server (PG* environment)"
        query = {k: ("***" if k == "password" else v) for k, v in url.query.items()}
        return url.set(query=query).render_as_string(hide_password=True)

    @property
    def password(self) -> str | None:
        return self.url.password or self.url.query.get("password")  # type: ignore[return-value]

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect``; libpq fills gaps from PG* variables."""
        kwargs: dict[str, Any] = {k: v for k, v in self.url.query.items()}
        for key, value in (("host", self.url.host), ("port", self.url.port), ("user", self.url.username),
                           ("password", self.url.password), ("dbname", self.url.database)):
            if value is not None:
                kwargs[key] = str(value)
        return kwargs

    def scrub(self, text: str) -> str:
        """Remove the password from a message that might echo it."""
        if self.password:
            text = text.replace(self.password, "***")
        return text


def resolve_target(database_url: str | None = None, environ: dict[str, str] | None = None) -> Target:
    env = os.environ if environ is None else environ
    if database_url:
        return Target.parse(database_url, "--database-url")
    for name in ("DBTUNE_DATABASE_URL", "DATABASE_URL"):
        if env.get(name):
            return Target.parse(env[name], name)
    # Nothing given: an empty URL lets libpq read PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
    parts = {k: env[k] for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE") if env.get(k)}
    return Target(url=URL.create(DRIVER), source="libpq PG* environment" + (
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


def resolve_migrations(path: str | os.PathLike[str] | None = None, start: Path | None = None) -> Migrations:
    if path:
        return _migrations_at(Path(path), "--migrations")
    settings, pyproject = project_settings(start)
    if "migrations" in settings and pyproject is not None:
        return _migrations_at(pyproject.parent / settings["migrations"], f"[tool.dbtune] in {pyproject.name}")
    return Migrations(script_location=bundled("migrations"), ini=None, source="bundled")


def _migrations_at(path: Path, source: str) -> Migrations:
    """Accept an Alembic script directory, an alembic.ini, or a folder holding one."""
    if path.is_dir() and (path / "alembic.ini").is_file() and not (path / "env.py").is_file():
        path = path / "alembic.ini"
    if path.is_file() and path.suffix == ".ini":
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
            location = parser.get("alembic", "script_location")
        except (configparser.Error, OSError):
            raise ConfigError(f"{path} has no [alembic] script_location") from None
        location = location.replace("%(here)s", str(path.parent.resolve()))
        script = Path(location) if Path(location).is_absolute() else path.parent / location
        if not (script / "env.py").is_file():
            raise ConfigError(f"{path} names {location}, which is not an Alembic directory (no env.py)")
        return Migrations(script_location=script, ini=path, source=source)
    if not path.exists():
        raise ConfigError(f"migrations path {path} does not exist")
    if not (path / "env.py").is_file():
        raise ConfigError(f"{path} is not an Alembic migrations directory (no env.py, no alembic.ini)")
    return Migrations(script_location=path, ini=None, source=source)
