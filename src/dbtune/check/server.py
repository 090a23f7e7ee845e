"""Where `dbtune check` runs: a scratch database on a server given by URL, or a throwaway PostgreSQL.

Either is removed afterwards, even on failure, unless ``--keep`` asks to keep it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import psycopg
from psycopg import sql

from ..core.errors import ConfigError
from ..core.output import Output
from ..core.settings import Target
from .results import CheckOptions, CheckReport


@contextlib.contextmanager
def scratch_database(options: CheckOptions, report: CheckReport, out: Output) -> Iterator[Target]:
    """A database to check on, removed afterwards (unless --keep)."""
    from ..core import db
    from ..servers.throwaway import find_bindir, throwaway_server

    if options.database_url is not None:
        admin = options.database_url
        name = f"dbtune_check_{secrets.token_hex(4)}"
        with db.connect(admin, purpose="check") as conn:
            report.server = f"PostgreSQL {conn.info.parameter_status('server_version')} at {admin.masked}"
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        scratch = admin.with_params("scratch database", dbname=name)
        try:
            yield scratch
        finally:
            if options.keep:
                # The password is the user's own server's: masked, as every other line masks it.
                report.kept_dsn = scratch.masked
            else:
                with db.connect(admin, purpose="check") as conn:
                    force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force))
        return
    bindir = options.pg_bin if options.pg_bin is not None else find_bindir(options.server)
    if not (bindir / "initdb").exists() or not (bindir / "postgres").exists():
        raise ConfigError(f"{bindir} has no PostgreSQL server binaries (initdb, postgres)")
    with throwaway_server(bindir=bindir, keep=options.keep) as server:
        with psycopg.connect(server.dsn()) as conn:
            report.server = f"PostgreSQL {conn.info.parameter_status('server_version')} (throwaway)"
        try:
            yield Target.parse(server.dsn(), "throwaway server")
        finally:
            if options.keep and server.is_running():
                report.kept_dsn = server.dsn()
