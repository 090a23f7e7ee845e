"""Each dialect's history in its own directory, chosen here, before Alembic reads any revision.

The connection bounds its own lock waits, as many teams' env.py files do.
"""

from pathlib import Path

from alembic import context
from app import settings
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

VERSIONS = Path(__file__).resolve().parent / "versions"


def place_versions() -> None:
    context.script.version_locations = [str(VERSIONS / make_url(settings.DATABASE_URL).get_backend_name())]


def run_offline() -> None:
    place_versions()
    context.configure(url=settings.DATABASE_URL, literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    place_versions()
    engine = create_engine(settings.DATABASE_URL, poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SET lock_timeout = '4s'"))
        connection.commit()
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
