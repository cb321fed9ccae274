"""Code uploads in batches (issue 15, Low): a big upload never holds one long transaction."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

import storage
from storage.catalog import CODE_BATCH
from tests.storage.conftest import catalog, product

BIG = 65_536


async def test_a_big_upload_commits_in_batches_and_lets_other_writers_in(
    db: storage.Database,
) -> None:
    """65,536 codes: one transaction per batch. On SQLite, where every writer of the shop
    queues for one lock, a small write issued once the upload has begun inserting finishes
    before the upload does (on PostgreSQL the two need not wait for each other at all)."""
    await storage.upsert_catalog(db, catalog(product("key", []), product("other", [])))
    codes = [f"C{i:06d}" for i in range(BIG)]
    inserting = asyncio.Event()
    commits = 0

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO stock_units"):
            inserting.set()

    def on_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    sync_engine = db.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", before_execute)
    event.listen(sync_engine, "commit", on_commit)
    finished: list[str] = []

    async def upload() -> tuple[int, int]:
        result = await storage.add_codes(db, "key", codes)
        finished.append("upload")
        return result

    async def small_write() -> None:
        await inserting.wait()
        assert await storage.add_codes(db, "other", ["ONE"]) == (1, 0)
        finished.append("small write")

    try:
        (added, skipped), _ = await asyncio.gather(upload(), small_write())
    finally:
        event.remove(sync_engine, "before_cursor_execute", before_execute)
        event.remove(sync_engine, "commit", on_commit)
    assert (added, skipped) == (BIG, 0)
    if not db.is_postgres:
        assert finished == ["small write", "upload"]
    assert commits >= BIG // CODE_BATCH + 1  # the upload's batches and the small write
    key = await storage.get_product(db, "key")
    assert key is not None and key.id is not None
    assert (await storage.stock_counts(db, key.id)).available == BIG


async def test_batches_stay_idempotent(db: storage.Database) -> None:
    """A code repeated across batches, or already stored, is added once."""
    await storage.upsert_catalog(db, catalog(product("key", ["OLD"])))
    codes = ["A", "B", "OLD", "C", "A", " ", "D", "B"]
    assert await storage.add_codes(db, "key", codes, batch=2) == (4, 4)
    assert await storage.add_codes(db, "key", codes, batch=3) == (0, 8)
    key = await storage.get_product(db, "key")
    assert key is not None and key.id is not None
    assert (await storage.stock_counts(db, key.id)).available == 5
