"""Programmatic Alembic: bring a database up to the head revision."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from storage.database import SQLITE_BEGIN_OPTION, Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant: every replica migrating at startup takes this lock first.
MIGRATION_LOCK_KEY = 0x5707A6E


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Alembic keeps its migration context in module globals, so two upgrades interleaving on
# one event loop would trample each other: serialise them per loop.
_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _loop_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _loop_locks.get(loop)
    if lock is None:
        lock = _loop_locks[loop] = asyncio.Lock()
    return lock


async def upgrade(target: Database | str, revision: str = "head") -> None:
    """Apply pending migrations to `target` (idempotent, loop-friendly): a Database, or the
    URL of one, opened for the upgrade and disposed after it. Every replica may call this
    at start-up: PostgreSQL upgrades under an advisory lock, SQLite in one IMMEDIATE
    transaction, so they take turns and the schema is built once."""
    if isinstance(target, str):
        db = Database(target)
        try:
            await upgrade(db, revision)
        finally:
            await db.dispose()
        return

    cfg = alembic_config()

    def _run(sync_conn: sa.Connection) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with _loop_lock(), target.engine.connect() as conn:
        if target.is_postgres:
            # Transaction-scoped: released when this (transactional-DDL) upgrade commits.
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
            )
        else:
            # One IMMEDIATE transaction: a second process waits on the busy timeout
            # instead of failing to upgrade its read lock.
            await conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        await conn.run_sync(_run)
        await conn.commit()
