"""Alembic environment for the storage package.

Normally driven by ``storage.migrate`` with a live connection in
``config.attributes["connection"]``. From the command line (for new revisions)::

    DATABASE_URL=sqlite+aiosqlite:///dev.db alembic -c storage/migrations/alembic.ini \
        revision --autogenerate -m "what changed"
"""

from __future__ import annotations

import asyncio
import os

import sqlalchemy as sa
from alembic import context

from storage.database import Database
from storage.models import metadata

config = context.config
target_metadata = metadata


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        user_module_prefix="storage.types.",
        # SQLite's DDL is transactional too; Alembic assumes not and commits after each
        # revision, so a second process could run a revision this one already chose.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    return os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url") or ""


def run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=_url().startswith("sqlite"),
        user_module_prefix="storage.types.",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online_async() -> None:
    db = Database(_url())
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(_configure)
            await conn.commit()
    finally:
        await db.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_online_async())


if context.is_offline_mode():
    run_offline()
else:
    run_online()
