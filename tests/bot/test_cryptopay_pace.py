"""The Crypto Pay client as the composition root builds it (bot.app.create_cryptopay): a
burst of checkouts is not queued behind a limiter of ours; CRYPTOPAY_RATE_LIMIT still caps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from bot.app import create_cryptopay
from bot.config import load_settings
from bot.runtime.metrics import Metrics
from payments import CryptoPayClient
from tests.bot.conftest import BOT_TOKEN, CP_TOKEN

BALANCE = b'{"ok":true,"result":[]}'
Handler = Callable[[web.Request], Awaitable[web.Response]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Serve a getBalance handler on loopback; yields a starter returning the API base URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/api/getBalance", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        (address,) = [a for a in runner.addresses if isinstance(a, tuple)][:1]
        return f"http://127.0.0.1:{address[1]}/api"

    yield start
    for runner in runners:
        await runner.cleanup()


def client_for(base_url: str, **env: str) -> CryptoPayClient:
    settings = load_settings(
        BOT_TOKEN=BOT_TOKEN, CRYPTOPAY_TOKEN=CP_TOKEN, CRYPTOPAY_API_URL=base_url, **env
    )
    return create_cryptopay(settings, Metrics())


async def test_by_default_a_burst_of_100_is_in_flight_at_once(serve, monkeypatch, tmp_path):
    """The server answers nobody until all 100 requests have arrived. The old default bucket
    (20 at once, then 20/s) needed 4 s to let the hundredth out."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    arrived = asyncio.Barrier(100)

    async def handler(request: web.Request) -> web.Response:
        await arrived.wait()
        return web.Response(body=BALANCE, content_type="application/json")

    client = client_for(await serve(handler))
    try:
        await asyncio.wait_for(asyncio.gather(*(client.get_balance() for _ in range(100))), 3)
    finally:
        await arrived.abort()  # on failure, frees the handlers still waiting
        await client.aclose()


async def test_an_explicit_rate_limit_spaces_the_calls(serve, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    stamps: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        stamps.append(time.monotonic())
        return web.Response(body=BALANCE, content_type="application/json")

    client = client_for(await serve(handler), CRYPTOPAY_RATE_LIMIT="10")
    try:
        started = time.monotonic()
        await asyncio.gather(*(client.get_balance() for _ in range(15)))
    finally:
        await client.aclose()
    # A burst of 10, then one every 0.1 s: the fifteenth cannot go out before 0.5 s.
    assert len(stamps) == 15
    assert max(stamps) - started >= 0.45
