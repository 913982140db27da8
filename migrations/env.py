"""Alembic environment: async engine from wa_bridge.store (search_path and pragmas included).

The URL comes from ``config.attributes["url"]`` (``wa-bridge db upgrade``), else
``sqlalchemy.url``, else ``WA_BRIDGE_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from wa_bridge.store.db import create_engine
from wa_bridge.store.tables import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = (
        config.attributes.get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("WA_BRIDGE_DATABASE_URL")
    )
    if not url:
        raise SystemExit("no database URL: set WA_BRIDGE_DATABASE_URL")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(_run_async())
