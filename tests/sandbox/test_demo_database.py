"""`python -m bot demo --db URL` refuses a live shop's database: the demo would treat its
pending orders and queued messages (goods among them) as its own, against the stand-ins."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import storage
from bot.sandbox.demo.settings import ADMIN_ID, SHOPPER_ID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def migrated(path: Path, *telegram_ids: int) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    db = storage.Database(url)
    try:
        await storage.upgrade(db)
        for telegram_id in telegram_ids:
            await storage.upsert_customer(db, telegram_id, None, "en")
    finally:
        await db.dispose()
    return url


async def products_in(url: str) -> int:
    db = storage.Database(url)
    try:
        return len(await storage.all_products(db))
    finally:
        await db.dispose()


async def test_a_database_with_customers_of_its_own_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.context import DEMO_CATALOG
    from bot.sandbox.demo.runner import DemoError, import_catalog, read_catalog

    catalog = read_catalog(DEMO_CATALOG)
    live = await migrated(tmp_path / "live.db", 555_000_111, SHOPPER_ID)
    with pytest.raises(DemoError, match=r"holds a shop's customers \(1 not the demo's\)"):
        await import_catalog(live, catalog)
    assert await products_in(live) == 0  # nothing imported into it either

    # A database only the demo used (its two personas) is fine: the catalog goes in.
    reused = await migrated(tmp_path / "demo.db", SHOPPER_ID, ADMIN_ID)
    await import_catalog(reused, catalog)
    assert await products_in(reused) > 0


def test_the_demo_command_says_so_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from bot.cli import main

    url = asyncio.run(migrated(tmp_path / "live.db", 555_000_111, 555_000_222, ADMIN_ID))
    assert main(["demo", "--db", url, "--port", str(free_port())]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(
        "The database given with --db holds a shop's customers (2 not the demo's)"
    )
    assert "Traceback" not in captured.err
    assert captured.out == ""  # no URL line: the demo never started
