"""Alembic environment for dbtune's bundled migrations.

Runs under `dbtune apply` (which hands over a connection and its options in
``config.attributes``) and under plain `alembic upgrade head` (which reads the
URL from DBTUNE_DATABASE_URL or DATABASE_URL).  Each migration runs in its own
transaction, so a failed step leaves the database at the last revision that
succeeded; migrations that build indexes CONCURRENTLY run outside any
transaction (see dbtune.ops).
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config

# A table of our own, so dbtune's revisions never collide with the
# application's `alembic_version` in the same database.
VERSION_TABLE = "dbtune_version"


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "DBTUNE_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DBTUNE_DATABASE_URL (or DATABASE_URL) to the database to migrate")
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def run_migrations_offline() -> None:
    context.configure(url=_url(), literal_binds=True, version_table=VERSION_TABLE,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, version_table=VERSION_TABLE,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
