from __future__ import annotations

import asyncio
import sys
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import storage
from storage.models import metadata


def _diff(conn: sa.Connection, target: sa.MetaData) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, target))


async def test_migrations_build_exactly_the_models_schema(fresh_url: str) -> None:
    await storage.upgrade(fresh_url)  # from inside this test's running event loop
    await storage.upgrade(fresh_url)  # idempotent
    db = storage.Database(fresh_url)
    try:
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff, metadata) == []
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert version == "0010"
        assert {t.name for t in metadata.sorted_tables} <= tables

        # The comparison can fail: a model change without a migration is caught.
        changed = sa.MetaData()
        for table in metadata.sorted_tables:
            table.to_metadata(changed)
        changed.tables["orders"].append_column(sa.Column("note", sa.Text()))
        sa.Index("ix_extra", changed.tables["outbox"].c.kind)
        async with db.engine.connect() as conn:
            diffs = await conn.run_sync(_diff, changed)
        kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in diffs}
        assert {"add_column", "add_index"} <= kinds
    finally:
        await db.dispose()


async def test_replicas_migrating_together(fresh_url: str) -> None:
    """Three processes start on an empty database at once (PG: the advisory lock; SQLite:
    one IMMEDIATE transaction) — all succeed, the schema is built once."""
    code = "import asyncio, sys, storage; asyncio.run(storage.upgrade(sys.argv[1]))"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, fresh_url, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = await asyncio.gather(*(p.communicate() for p in procs))
    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode()[-800:] for _, err in results]
    db = storage.Database(fresh_url)
    try:
        await storage.upgrade(db)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff, metadata) == []
            versions = (await conn.execute(sa.text("SELECT * FROM alembic_version"))).all()
        assert versions == [("0010",)]
    finally:
        await db.dispose()


async def test_all_revisions_are_applied_in_one_transaction(fresh_url: str) -> None:
    """Alembic commits after each revision unless told the DDL is transactional: on SQLite a
    second process could then apply a revision this one had already chosen (and fail on
    "index already exists") — the race test_replicas_migrating_together shows under load."""
    from sqlalchemy import event

    db = storage.Database(fresh_url)
    commits: list[int] = []
    event.listen(db.engine.sync_engine, "commit", lambda conn: commits.append(1))
    try:
        await storage.upgrade(db)
    finally:
        await db.dispose()
    assert len(commits) == 1
