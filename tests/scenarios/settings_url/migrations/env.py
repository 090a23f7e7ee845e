"""The database comes from the application's settings, on whichever driver they name."""

import asyncio

from alembic import context
from app import settings
from sqlalchemy import create_engine, pool
from sqlalchemy.ext.asyncio import create_async_engine


def run(connection) -> None:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = create_async_engine(settings.DATABASE_URL, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=settings.DATABASE_URL, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif settings.DATABASE_URL.startswith("postgresql+asyncpg"):
    asyncio.run(run_async())
else:
    engine = create_engine(settings.DATABASE_URL, poolclass=pool.NullPool)
    with engine.connect() as connection:
        run(connection)
