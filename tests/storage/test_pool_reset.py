"""SQLite's pool reset: only a connection returned with a transaction open is rolled back."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from storage import Database


async def test_connection_returned_mid_transaction_is_rolled_back(sqlite_template: Path) -> None:
    """The pool's blanket rollback-on-return is off on SQLite (storage/database.py
    _on_reset): a connection whose user left a transaction open must still come back clean
    — its writes gone and the write lock free for the next writer."""
    path = sqlite_template.parent / "reset.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.execute("BEGIN IMMEDIATE")
            await driver.execute(
                "INSERT INTO categories (slug, title, position) VALUES ('left', 'Left open', 0)"
            )
            assert driver.in_transaction
        # The pool keeps one connection: the next user gets the same one, reset.
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw.driver_connection is driver
            assert not driver.in_transaction
        async with db.transaction() as s:  # takes the write lock at once (BEGIN IMMEDIATE)
            left = await s.scalar(sa.text("SELECT count(*) FROM categories WHERE slug = 'left'"))
        assert left == 0
    finally:
        await db.dispose()
