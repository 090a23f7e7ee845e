"""Connection strings read, resolved and shown by libpq's own rules, and masked in one place.

A URL (``postgresql://...``, also with a SQLAlchemy driver: ``postgresql+asyncpg://...``) or a
libpq keyword string (``host=... dbname=...``) becomes libpq's keywords through psycopg's
``conninfo_to_dict`` (libpq's PQconninfoParse), so dbtune reads a string as psql reads it.
What libpq fills in later (a service file's entries, the ``PG*`` variables, compiled-in
defaults) is worked out here too, for the one place that must know it before connecting:
two fleet targets naming one database.  A password is shown only as ``***``.

Imports psycopg only: SQLAlchemy is imported when a migration asks for its URL object.
"""

from __future__ import annotations

import configparser
import functools
import os
import pwd
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .errors import ConfigError

# The keywords a URL's user info, host, port and path stand for; every other one is a query argument.
_IN_URL = ("user", "password", "host", "port", "dbname")
# SQLAlchemy's pattern for a scheme, which names the driver too (postgresql+psycopg2).
_SCHEME = re.compile(r"([\w+]+)://")
# The user info as dbtune has always read it: the user up to a ':' or '/', the password up to the
# '@'.  libpq ends the user info at a '/' (the rest of such a password would become the host and
# the database) and refuses a bare '%' or space: both parts are percent-encoded again before
# libpq reads them.
_USERINFO = re.compile(r"(?P<user>[^:/@]*)(?::(?P<password>[^@]*))?@")
# scheme://user:password@host: everything between "user:" and the last @ before the host.
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^\s]*@(?=[^@\s]*(?:\s|$))", re.IGNORECASE)


class Unusable(ValueError):
    """Why a connection string cannot be used, in words that never hold its password."""


@functools.cache
def keywords() -> frozenset[str]:
    """libpq's connection keywords (PQconndefaults)."""
    return frozenset(o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults())


def driver(text: str) -> str | None:
    """The scheme a URL names (``postgresql+asyncpg``), or None for a libpq keyword string."""
    found = _SCHEME.match(text.strip())
    return found.group(1) if found else None


def parse(text: str) -> dict[str, str]:
    """libpq's keywords for a URL or keyword string, as libpq reads it; Unusable if it cannot."""
    text = text.strip()
    if "://" not in text:
        return _libpq(text)
    if text.split("?", 1)[0].count("@") > 1:
        # An unencoded @ in the password: any split would print part of the password.
        raise Unusable("is malformed: it has more than one '@' before the host (write an '@' in the password "
                       "as %40)")
    scheme = driver(text)
    if scheme is None:
        raise Unusable("is not a PostgreSQL URL or connection string")
    if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise Unusable("is not a PostgreSQL URL")
    # libpq refuses a space anywhere in a URL; dbtune has always taken one (a database "my db").
    url = "postgresql://" + _encoded_userinfo(text[len(scheme) + 3:]).replace(" ", "%20")
    try:
        return _libpq(url)
    except Unusable:
        unknown = _unknown_arguments(url)
        if unknown:
            raise Unusable(f"is not a PostgreSQL URL or connection string: {unknown[0]!r} is not a libpq "
                           "parameter") from None
        raise


def _encoded_userinfo(rest: str) -> str:
    info = _USERINFO.match(rest)
    if info is None or "?" in rest[:info.end()]:  # no user info, or an '@' of the query's
        return rest
    user = quote(unquote(info["user"]), safe="")
    password = "" if info["password"] is None else ":" + quote(unquote(info["password"]), safe="")
    return f"{user}{password}@{rest[info.end():]}"


def _unknown_arguments(url: str) -> list[str]:
    """Query arguments libpq has no keyword for (asyncpg's ``ssl``, say), read as libpq reads a URL:
    the user info ends at the first '@' or '/', the query starts at the next '?'."""
    rest = url.partition("://")[2]
    end = min((i for i in (rest.find("@"), rest.find("/")) if i >= 0), default=-1)
    if end >= 0 and rest[end] == "@":
        rest = rest[end + 1:]
    query = rest.partition("?")[2]
    return sorted({key for key, _ in parse_qsl(query, keep_blank_values=True)} - keywords())


def _libpq(text: str) -> dict[str, str]:
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(text).items()}
    except psycopg.ProgrammingError:
        # libpq's own message may quote a piece of the password: not shown.
        raise Unusable("is not a PostgreSQL URL or connection string") from None
    if not all(part.isdigit() or not part for part in params.get("port", "").split(",")):
        raise Unusable("is not a PostgreSQL URL or connection string")
    return params


def from_sqlalchemy(url: Any) -> dict[str, str]:
    """libpq's keywords for a SQLAlchemy URL of any PostgreSQL driver.

    Driver-specific query arguments (asyncpg's ``ssl``, ``prepared_statement_cache_size``,
    psycopg2's ``client_encoding``...) are not libpq's: only libpq's own keywords are kept.
    """
    params = {k: _text(v) for k, v in url.query.items() if k in keywords()}
    if "ssl" in url.query and "sslmode" not in params:  # asyncpg spells sslmode "ssl"
        params["sslmode"] = _text(url.query["ssl"])
    for key, value in zip(_IN_URL, (url.username, url.password, url.host, url.port, url.database), strict=True):
        if value is not None:
            params[key] = str(value)
    return params


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ",".join(value)  # a repeated query argument: a tuple


def sqlalchemy_url(params: dict[str, str], drivername: str) -> Any:
    """The same keywords as a SQLAlchemy URL (for Alembic's ``sqlalchemy.url``)."""
    from sqlalchemy.engine import URL

    netloc, query = _split(params)
    # SQLAlchemy writes a password only after a user name: an empty one keeps it.
    user = netloc.get("user", "" if "password" in netloc else None)
    return URL.create(drivername, username=user, password=netloc.get("password"),
                      host=netloc.get("host"), port=int(netloc["port"]) if "port" in netloc else None,
                      database=netloc.get("dbname"), query=query)


def _split(params: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The keywords a URL shows before its '?', and the query arguments.

    A socket directory or a list of hosts stays a query argument (libpq reads both there).
    """
    netloc = {k: v for k, v in params.items() if k in _IN_URL}
    query = {k: v for k, v in params.items() if k not in _IN_URL}
    if any(c in netloc.get("host", "") for c in "/,"):
        query["host"] = netloc.pop("host")
    if not netloc.get("port", "").isdigit() and "port" in netloc:
        query["port"] = netloc.pop("port")
    return netloc, query


def masked(params: dict[str, str]) -> str:
    """The URL with any password shown as ``***``, rendered as SQLAlchemy renders one."""
    netloc, query = _split(params)
    if not (netloc.get("host") or netloc.get("dbname") or netloc.get("user") or query):
        return "the libpq default server (PG* environment)"
    text = "postgresql://"
    if "user" in netloc or "password" in netloc:
        text += quote(netloc.get("user", ""), safe=" +") + (":***" if "password" in netloc else "") + "@"
    host = netloc.get("host")
    if host is not None:
        text += f"[{host}]" if ":" in host else host
    if "port" in netloc:
        text += ":" + netloc["port"]
    if "dbname" in netloc:
        text += "/" + quote(netloc["dbname"], safe=" +/")
    if query:
        text += "?" + "&".join(f"{quote_plus(k)}={quote_plus(query[k])}" for k in sorted(query))
    return text


def scrub(text: str, password: str | None = None) -> str:
    """Mask a known password, and the password of any URL in the text (up to its last @)."""
    if password:
        text = text.replace(password, "***")
    return _URL_PASSWORD.sub(r"\1***@", text)


# -- what libpq fills in ----------------------------------------------------------------------------

def service_files() -> list[Path]:
    """libpq's service files, in its order: PGSERVICEFILE (or ~/.pg_service.conf), then PGSYSCONFDIR's."""
    files = [Path(os.environ["PGSERVICEFILE"]) if "PGSERVICEFILE" in os.environ
             else Path.home() / ".pg_service.conf"]
    if "PGSYSCONFDIR" in os.environ:
        files.append(Path(os.environ["PGSYSCONFDIR"]) / "pg_service.conf")
    return [f for f in files if f.is_file()]


def services() -> dict[str, dict[str, str]]:
    """Every service the service files define, by name: the user's file wins, as in libpq."""
    found: dict[str, dict[str, str]] = {}
    for path in reversed(service_files()):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
        except configparser.Error as exc:
            raise ConfigError(f"service file {path}: {str(exc).splitlines()[0]}") from None
        for section in parser.sections():
            found[section] = dict(parser[section])
    return found


def resolved(params: dict[str, str], defined: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """What libpq connects with, before it connects (libpq's conninfo_add_defaults).

    The string's own keywords, then its service's (``service``, else PGSERVICE), then each
    keyword's environment variable, then its compiled-in default; the user defaults to the
    operating system's user and the database to the user.
    """
    found = dict(params)
    service = found.get("service") or os.environ.get("PGSERVICE")
    if service:
        entries = (services() if defined is None else defined).get(service, {})
        found.update({k: v for k, v in entries.items() if k not in found})
    for option in psycopg.pq.Conninfo.get_defaults():
        key, envvar = option.keyword.decode(), (option.envvar or b"").decode()
        if key in found:
            continue
        if envvar and envvar in os.environ:
            found[key] = os.environ[envvar]
        elif option.compiled is not None:
            found[key] = option.compiled.decode()
    found.setdefault("user", pwd.getpwuid(os.geteuid()).pw_name)
    found.setdefault("dbname", found["user"])
    return found
