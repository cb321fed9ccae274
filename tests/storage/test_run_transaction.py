"""Database.run_transaction: a plain function of Core statements as one write transaction —
in the SQLite writer thread on a file, through AsyncConnection.run_sync elsewhere."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa

import storage

_INSERT = sa.text("INSERT INTO categories (slug, title, position) VALUES (:slug, :slug, 0)")
_COUNT = sa.text("SELECT count(*) FROM categories WHERE slug LIKE :prefix")


class Boom(Exception):
    pass


async def _count(db: storage.Database, prefix: str) -> int:
    async with db.session() as s:
        return int(await s.scalar(_COUNT, {"prefix": f"{prefix}%"}) or 0)


async def test_the_body_commits_as_a_whole_or_not_at_all(db: storage.Database) -> None:
    threads: list[int] = []

    def body(conn: sa.Connection, slugs: list[str], fail: bool) -> int:
        threads.append(threading.get_ident())
        for slug in slugs:
            conn.execute(_INSERT, {"slug": slug})
        if fail:
            raise Boom("after the inserts")
        return len(slugs)

    assert await db.run_transaction(body, ["kept-1", "kept-2"], False) == 2
    with pytest.raises(Boom):
        await db.run_transaction(body, ["gone-1", "gone-2"], True)
    assert await _count(db, "kept-") == 2
    assert await _count(db, "gone-") == 0  # the raising body's inserts rolled back
    # On a SQLite file the body runs in the Database's writer thread; on PostgreSQL in
    # run_sync's greenlet, on the loop's thread.
    off_loop = threading.get_ident() not in threads
    assert off_loop == (not db.is_postgres)


async def test_writers_of_both_kinds_queue_and_all_commit(db: storage.Database) -> None:
    """run_transaction and transaction() writing at once: none fails (on SQLite both queue
    on the process's write lock; the other connection's writer waits, never errors)."""

    def body(conn: sa.Connection, slug: str) -> None:
        conn.execute(_INSERT, {"slug": slug})

    async def through_session(slug: str) -> None:
        async with db.transaction() as s:
            await s.execute(_INSERT, {"slug": slug})

    calls = [
        db.run_transaction(body, f"mix-t{i}") if i % 2 else through_session(f"mix-s{i}")
        for i in range(40)
    ]
    await asyncio.gather(*calls)
    assert await _count(db, "mix-") == 40


async def test_a_disposed_database_writes_again(db: storage.Database) -> None:
    def body(conn: sa.Connection, slug: str) -> None:
        conn.execute(_INSERT, {"slug": slug})

    await db.run_transaction(body, "again-1")
    await db.dispose()
    await db.run_transaction(body, "again-2")
    assert await _count(db, "again-") == 2
