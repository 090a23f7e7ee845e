"""Alembic's configuration for a run: the project's alembic.ini, dbtune's target and options.

``alembic_config`` is what every verb (and ``dbtune check``) hands Alembic: the
project as the DBA named it, the database dbtune was given (if any) in the
driver the project uses, and the run's options where ``dbtune.ops`` finds them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..core.errors import ConfigError
from ..core.settings import Migrations, Target
from ..online import OnlineOptions
from .keys import OPTIONS_KEY


@dataclass
class RunOptions:
    online: OnlineOptions = field(default_factory=OnlineOptions)
    wait_for_lock: bool = False


# Drivers whose URL takes libpq's own query arguments (application_name, options).
_LIBPQ_DRIVERS = ("postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+psycopg2cffi")


def alembic_config(target: Target, migrations: Migrations, options: RunOptions | None = None,
                   stdout: io.StringIO | None = None) -> Config:
    """Alembic's Config for the project, with dbtune's target as ``sqlalchemy.url``.

    Handed in only when the DBA named a database: otherwise env.py's own choice (its
    alembic.ini, the application's settings) stands, as under alembic.  The driver
    the project's alembic.ini names is kept, so an env.py on psycopg2 or asyncpg gets
    a URL for its driver.
    """
    options = options or RunOptions()
    config = Config(file_=str(migrations.ini) if migrations.ini else None,
                    stdout=stdout or io.StringIO(), output_buffer=stdout)
    if migrations.ini is None:
        config.set_main_option("script_location", str(migrations.script_location))
    if target.explicit:
        url = target.url.set(drivername=_project_driver(config))
        if url.drivername in _LIBPQ_DRIVERS:
            url = url.update_query_dict({"application_name": "dbtune migrate"})
        # ConfigParser interpolation: a literal % in a password must be doubled.
        config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    config.attributes[OPTIONS_KEY] = options.online
    return config


def _project_driver(config: Config) -> str:
    try:
        named = config.get_main_option("sqlalchemy.url")
        driver = make_url(named).drivername if named else ""
    except (ArgumentError, ValueError, KeyError):
        driver = ""
    return driver if driver.startswith("postgresql") else "postgresql+psycopg"


def script_directory(config: Config, migrations: Migrations) -> ScriptDirectory:
    """The project's revisions; a directory Alembic cannot read is a configuration error."""
    try:
        return ScriptDirectory.from_config(config)
    except CommandError as exc:
        raise ConfigError(f"{migrations.script_location}: {exc}") from None
