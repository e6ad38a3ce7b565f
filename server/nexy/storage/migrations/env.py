"""Alembic environment: runs on a connection handed over by the caller, or on a URL.

``nexy.storage.database`` hands over a live connection in ``config.attributes["connection"]``
(from an async engine, through ``run_sync``). Run as ``alembic`` from a shell instead, the
URL comes from ``config.attributes["url"]`` or the ``sqlalchemy.url`` option and an async
engine is made here for the run.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from nexy.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_on_connection(connection: Connection) -> None:
    """Apply the migrations on a synchronous connection (the caller owns its transaction)."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite rebuilds a table to alter it; batch mode does that when a migration asks.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_on_url(url: str) -> None:
    """Make a throwaway async engine for the URL and migrate through it."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on_connection)
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    """Print the SQL instead of running it (``alembic upgrade --sql``)."""
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Pick the way in: a handed-over connection, else a URL."""
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        run_on_connection(connection)
        return
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass a connection or set sqlalchemy.url")
    if context.is_offline_mode():
        run_offline(str(url))
    else:
        asyncio.run(run_on_url(str(url)))


main()
