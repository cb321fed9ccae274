"""PHOTO_FETCH_URLS=false (what `make demo` sets): a catalog photo given as an https URL is
never fetched, not a single connection, and its card goes out as text. The URL points at a
listening socket on 127.0.0.1 that counts who connects; with the setting on (the default) the
same job does connect there, so the count could tell."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.app import create_bot, create_dispatcher
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.context import ShopContext
from bot.jobs import Jobs
from bot.sandbox import FakeCryptoPay, FakeTelegram
from payments import CryptoPayClient, ExchangeRateCache
from storage import Database, photo_ref, upgrade
from tests.bot.conftest import ALICE, BOT_TOKEN, BOT_USERNAME, CP_TOKEN
from tests.bot.conftest import make_settings as shop_settings

CATALOG = """
[[categories]]
slug = "games"
title = "Game keys"

[[products]]
sku = "online"
category = "games"
title = "Photo on the web"
price = "2.00"
photo = "https://127.0.0.1:{port}/online.jpg"
codes = ["ONLINE-1"]
"""


@dataclass
class Listener:
    """A TCP socket on 127.0.0.1 that records each connection and hangs up at once."""

    port: int = 0
    connections: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.connected.set()
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    found = Listener()
    server = await asyncio.start_server(found.on_connect, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class World:
    tg: FakeTelegram
    ctx: ShopContext


async def world(tmp_path: Path, listener: Listener, **extra: str) -> AsyncIterator[World]:
    async with (
        FakeTelegram(token=BOT_TOKEN, bot_username=BOT_USERNAME) as tg,
        FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp,
    ):
        settings = shop_settings(tmp_path, cp, TELEGRAM_API_URL=tg.base_url, **extra)
        db = Database(settings.database_url)
        await upgrade(db)
        await import_catalog_file(db, parse_catalog(CATALOG.format(port=listener.port), "USD"))
        cryptopay = CryptoPayClient(CP_TOKEN, cp.base_url, timeout=5.0)
        bot = create_bot(settings)
        ctx = ShopContext(
            settings=settings,
            db=db,
            cryptopay=cryptopay,
            rates=ExchangeRateCache(cryptopay, ttl_seconds=60),
            bot=bot,
            bot_username=BOT_USERNAME,
        )
        try:
            yield World(tg, ctx)
        finally:
            await bot.session.close()
            await ctx.close()


@pytest.fixture
async def offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: Listener
) -> AsyncIterator[World]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    async for found in world(tmp_path, listener, PHOTO_FETCH_URLS="false"):
        yield found


@pytest.fixture
async def online(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: Listener
) -> AsyncIterator[World]:
    monkeypatch.chdir(tmp_path)
    async for found in world(tmp_path, listener):
        yield found


async def test_with_url_fetching_off_the_photo_job_never_connects(
    offline: World, listener: Listener
) -> None:
    ctx = offline.ctx
    assert ctx.settings.photo_fetch_urls is False
    report = await Jobs(ctx).photos.run()  # the running bot's photo job, as it is wired
    assert report.stored == [] and report.failed == []  # not tried, so not a failure either
    assert listener.connections == 0
    ref = await photo_ref(ctx.db, 1)
    assert ref is not None and ref.digest is None  # no copy: the source stays as it was

    # The card goes out as a text message, no photo.
    dp = create_dispatcher(ctx)
    alice = offline.tg.user(ALICE, "Alice")
    await alice.send("/start p_online")
    for update in await ctx.bot.get_updates(timeout=0):
        await dp.feed_update(ctx.bot, update)
    card = await alice.wait_for_message("Photo on the web")
    assert "text" in card.raw and "photo" not in card.raw
    assert offline.tg.calls_of("sendPhoto") == []
    assert listener.connections == 0


async def test_with_url_fetching_on_the_same_job_does_connect(
    online: World, listener: Listener
) -> None:
    assert online.ctx.settings.photo_fetch_urls is True  # the default
    report = await Jobs(online.ctx).photos.run()
    await asyncio.wait_for(listener.connected.wait(), 10)
    assert listener.connections >= 1
    # The listener is no https server: the fetch fails, with the shop owner's sentence.
    assert [sku for sku, _ in report.failed] == ["online"]
