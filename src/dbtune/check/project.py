"""The project's env.py pointed at the scratch database, and proved to reach it and nowhere else.

The scratch database reaches env.py as ``sqlalchemy.url`` and as ``DATABASE_URL``
(and ``DBTUNE_DATABASE_URL``); a project whose env.py reads other variables (the
application's ``POSTGRES_*`` settings) names them with ``--url-env``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ..core.errors import ConfigError
from ..core.settings import Migrations, Target

URL_PARTS = ("url", "host", "port", "user", "password", "dbname")
_ALWAYS = {"DATABASE_URL": "url", "DBTUNE_DATABASE_URL": "url"}


def parse_url_env(items: list[str] | tuple[str, ...] | dict[str, str]) -> dict[str, str]:
    """``NAME`` (the whole URL) or ``NAME=PART`` (host, port, user, password, dbname), as --url-env takes them;
    ``[tool.dbtune] check.url-env`` may also be a table of NAME = PART."""
    if isinstance(items, dict):
        items = [f"{name}={part}" for name, part in items.items()]
    found: dict[str, str] = {}
    for item in items:
        name, _, part = item.partition("=")
        name, part = name.strip(), (part.strip() or "url")
        if not name.replace("_", "").isalnum() or name[0].isdigit():
            raise ConfigError(f"--url-env {item}: {name!r} is not an environment variable name")
        if part not in URL_PARTS:
            raise ConfigError(f"--url-env {item}: {part!r} is not one of {', '.join(URL_PARTS)}")
        found[name] = part
    return found


def _env_value(target: Target, part: str, current: str | None) -> str:
    url = target.url
    if part == "url":
        # Keep the driver the variable names now (an application on asyncpg keeps asyncpg).
        from sqlalchemy.engine import make_url

        try:
            driver = make_url(current).drivername if current else ""
        except Exception:  # noqa: BLE001 - any unparsable value: use dbtune's own driver
            driver = ""
        if driver.startswith("postgresql"):
            url = url.set(drivername=driver)
        return url.render_as_string(hide_password=False)
    value = {"host": url.host, "port": url.port, "user": url.username, "password": url.password,
             "dbname": url.database}[part]
    return "" if value is None else str(value)


@contextlib.contextmanager
def pointing_at(target: Target, url_env: dict[str, str]) -> Iterator[None]:
    """env.py files read DATABASE_URL and friends: during the check they name the scratch database."""
    wanted = {**_ALWAYS, **url_env}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update({k: _env_value(target, part, saved[k]) for k, part in wanted.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Reached(Exception):
    """Raised from inside env.py's migration context: where its connection went (nothing is changed)."""

    def __init__(self, identity: Any, where: str) -> None:
        super().__init__(where)
        self.identity, self.where = identity, where


def env_py_reaches(target: Target, migrations: Migrations) -> None:
    """Refuse in one line, before any step, when env.py connects elsewhere than the scratch database.

    env.py runs once with a migration function that reports its connection and aborts,
    so its transaction rolls back and no database is touched.  An env.py that fails in
    its own way is left to the steps, which report it as they report every failure.
    """
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy.exc import OperationalError

    from ..core import db
    from ..migration import drivers
    from ..migration.config import alembic_config

    def reached(heads: Any, context: Any) -> list[Any]:
        raw = drivers.dbapi(context.connection)
        where = Target.from_engine_url(context.connection.engine.url, "env.py").masked
        raise _Reached(drivers.identity(raw), where)

    config = alembic_config(target, migrations)
    try:
        script = script_directory(target, migrations)
        with EnvironmentContext(config, script, fn=reached):
            script.run_env()
    except _Reached as found:
        with db.connect(target, purpose="check") as conn:
            ours = drivers.identity(conn)
        if not ours.same_database(found.identity):
            raise _elsewhere(f"env.py connects to {found.where} ({found.identity.describe()}), not to the scratch "
                             f"database dbtune made ({ours.describe()})") from None
    except OperationalError as exc:
        # The scratch database was just reached with the same URL: env.py is going somewhere else.
        with db.connect(target, purpose="check") as conn:
            ours = drivers.identity(conn)
        reason = target.scrub(str(exc.orig or exc).splitlines()[0])
        raise _elsewhere(f"env.py does not connect to the scratch database dbtune made ({ours.describe()}): it "
                         f"tried another one and failed ({reason})") from None
    except Exception:  # noqa: BLE001 - env.py's own failure: the steps report it
        return


def _elsewhere(what: str) -> ConfigError:
    return ConfigError(
        f"{what}: nothing was checked. "
        "Name the variables env.py builds its URL from: --url-env NAME for a URL, --url-env NAME=PART for "
        "host, port, user, password, dbname (or [tool.dbtune] check.url-env)")


def script_directory(target: Target, migrations: Migrations) -> Any:
    from alembic.script import ScriptDirectory

    from ..migration.config import alembic_config

    return ScriptDirectory.from_config(alembic_config(target, migrations))
