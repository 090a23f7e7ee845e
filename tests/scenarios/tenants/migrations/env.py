"""Each tenant's schema migrated in turn, on the application's own database URL.

The search_path comes with the connection (libpq's options, or asyncpg's
server_settings); the version table lands in each tenant's schema.
"""

import asyncio

from alembic import context
from app import settings
from sqlalchemy import create_engine, pool
from sqlalchemy.ext.asyncio import create_async_engine


def run_tenant(connection) -> None:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def connect_args(tenant: str) -> dict:
    if settings.DATABASE_URL.startswith("postgresql+asyncpg"):
        return {"server_settings": {"search_path": tenant}}
    return {"options": f"-csearch_path={tenant}"}


async def run_async() -> None:
    for tenant in settings.TENANTS:
        engine = create_async_engine(settings.DATABASE_URL, poolclass=pool.NullPool, connect_args=connect_args(tenant))
        async with engine.connect() as connection:
            await connection.run_sync(run_tenant)
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=settings.DATABASE_URL, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif settings.DATABASE_URL.startswith("postgresql+asyncpg"):
    asyncio.run(run_async())
else:
    for tenant in settings.TENANTS:
        engine = create_engine(settings.DATABASE_URL, poolclass=pool.NullPool, connect_args=connect_args(tenant))
        with engine.connect() as connection:
            run_tenant(connection)
