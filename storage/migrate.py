"""Programmatic Alembic: bring a database up to the head revision."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

if TYPE_CHECKING:
    from storage.database import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant: every replica migrating at startup takes this lock first.
MIGRATION_LOCK_KEY = 0x5707A6E


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade_engine(db: Database, revision: str = "head") -> None:
    cfg = alembic_config()

    def _run(sync_conn: sa.Connection) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with db.engine.connect() as conn:
        if db.is_postgres:
            # Transaction-scoped: released when this (transactional-DDL) upgrade commits.
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
            )
        await conn.run_sync(_run)
        await conn.commit()


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply pending migrations to the database at `url` (idempotent, loop-friendly)."""
    from storage.database import Database

    db = Database(url)
    try:
        await upgrade_engine(db, revision)
    finally:
        await db.dispose()
