"""Where a server setting in force comes from (``pg_settings.source``), as a DBA would say it.

One wording for every message that names why a session behaves as it does: a
statement cancelled by ``statement_timeout``, a write refused because the session is
read-only.
"""

from __future__ import annotations

_SOURCES = {
    "user": "the role (ALTER ROLE ... SET)",
    "database": "the database (ALTER DATABASE ... SET)",
    "database user": "the role in this database (ALTER ROLE ... IN DATABASE ... SET)",
    "configuration file": "the server's configuration (postgresql.conf or ALTER SYSTEM)",
    "session": "env.py's connection setup (a SET on the connection)",
    "client": "env.py's connection options (PGOPTIONS or the URL's options)",
    "environment variable": "the server's environment",
    "command line": "the server's command line",
}


def describe(source: str) -> str:
    """``pg_settings.source`` in words; an unknown source as it is."""
    return _SOURCES.get(source, source)
