"""/metrics on the real aiohttp server (issue 15): only METRICS_ALLOW peers or the bearer
METRICS_TOKEN may read it, and a burst of scrapes runs the GROUP BY over all orders once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import event

from bot.shop.checkout import checkout
from bot.web import build_web_app
from storage import Buyer, get_product, place_order
from tests.bot.conftest import ALICE, BOB, Shop, make_settings

TOKEN = "metrics-Token_0123456789abcdef"


@pytest.fixture
def group_bys(shop: Shop) -> Iterator[list[str]]:
    """Every GROUP BY statement the shop's engine runs (the orders-by-status count)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "GROUP BY" in statement.upper():
            seen.append(statement)

    engine = shop.ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


async def serve(shop: Shop, **settings: str) -> TestServer:
    if settings:
        shop.ctx.settings = make_settings(shop.tmp_path, shop.cp, **settings)
    server = TestServer(build_web_app(shop.ctx), host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def status_of(
    http: aiohttp.ClientSession, server: TestServer, **headers: str
) -> tuple[int, str]:
    async with http.get(server.make_url("/metrics"), headers=headers) as resp:
        return resp.status, await resp.text()


def gauge(text: str, status: str) -> float:
    prefix = f'shop_orders{{status="{status}"}} '
    return next(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


async def test_a_burst_of_scrapes_runs_one_group_by(
    shop: Shop, group_bys: list[str], http: aiohttp.ClientSession
) -> None:
    server = await serve(shop)  # METRICS_CACHE_SECONDS: the default, 15
    try:
        answers = await asyncio.gather(*(status_of(http, server) for _ in range(40)))
        answers += [await status_of(http, server) for _ in range(10)]
        assert {code for code, _ in answers} == {200}
        assert len(group_bys) == 1, group_bys
        assert gauge(answers[-1][1], "pending") == 0

        # An order another replica placed (this process counted nothing): cached until the
        # scrape interval has passed.
        product = await get_product(shop.ctx.db, "multi")
        assert product is not None and product.id is not None
        lines = [(product.id, 1, product.price)]
        later = shop.clock() + timedelta(minutes=15)
        assert await place_order(shop.ctx.db, Buyer(BOB, None, None), lines, "USD", later)
        code, text = await status_of(http, server)
        assert (code, gauge(text, "pending"), len(group_bys)) == (200, 0, 1)  # still cached
        shop.clock.advance(16)  # past the scrape interval: read again
        code, text = await status_of(http, server)
        assert (code, gauge(text, "pending"), len(group_bys)) == (200, 1, 2)

        # This process's own checkout shows at the next scrape, inside the interval.
        result = await checkout(shop.ctx, Buyer(ALICE, None, None), "multi", 1)
        assert result.ok
        code, text = await status_of(http, server)
        assert (code, gauge(text, "pending"), len(group_bys)) == (200, 2, 3)
        code, text = await status_of(http, server)  # nothing new: cached again
        assert (code, gauge(text, "pending"), len(group_bys)) == (200, 2, 3)
    finally:
        await server.close()


async def test_without_a_cache_concurrent_scrapes_still_share_a_read(
    shop: Shop, group_bys: list[str], http: aiohttp.ClientSession
) -> None:
    server = await serve(shop, METRICS_CACHE_SECONDS="0")
    try:
        answers = await asyncio.gather(*(status_of(http, server) for _ in range(20)))
        assert {code for code, _ in answers} == {200}
        assert 1 <= len(group_bys) < 20, len(group_bys)
        before = len(group_bys)
        await status_of(http, server)  # alone: read now, not from the cache
        assert len(group_bys) == before + 1
    finally:
        await server.close()


async def test_a_peer_outside_metrics_allow_gets_403(
    shop: Shop, group_bys: list[str], http: aiohttp.ClientSession
) -> None:
    server = await serve(shop, METRICS_ALLOW="127.0.0.2/32, 10.0.0.0/8")
    try:
        # From 127.0.0.1: not in the list.
        code, body = await status_of(http, server)
        assert code == 403 and "shop_" not in body, body
        # A forwarding header naming an allowed address changes nothing.
        assert (await status_of(http, server, **{"X-Forwarded-For": "127.0.0.2"}))[0] == 403
        assert group_bys == []  # a refused scrape costs no query

        # From 127.0.0.2 (loopback too): allowed.
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as other:
            code, body = await status_of(other, server)
            assert code == 200 and "shop_orders" in body
            # …unless the request says it came through a proxy: then the peer is the proxy.
            assert (await status_of(other, server, **{"X-Forwarded-For": "203.0.113.9"}))[0] == 403
            assert (await status_of(other, server, Forwarded="for=203.0.113.9"))[0] == 403
    finally:
        await server.close()


async def test_default_allows_loopback_only(shop: Shop, http: aiohttp.ClientSession) -> None:
    server = await serve(shop)
    try:
        assert (await status_of(http, server))[0] == 200  # the e2e scrapers' case
        assert (await status_of(http, server, **{"X-Real-IP": "127.0.0.1"}))[0] == 403
    finally:
        await server.close()


async def test_bearer_token_opens_metrics_to_others(
    shop: Shop, http: aiohttp.ClientSession
) -> None:
    server = await serve(shop, METRICS_ALLOW="", METRICS_TOKEN=TOKEN)
    try:
        code, _ = await status_of(http, server)
        assert code == 401
        for wrong in (f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN):
            assert (await status_of(http, server, Authorization=wrong))[0] == 401, wrong
        async with http.get(
            server.make_url("/metrics"), headers={"Authorization": "Bearer wrong"}
        ) as resp:
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        code, body = await status_of(http, server, Authorization=f"Bearer {TOKEN}")
        assert code == 200 and "shop_orders" in body
        code, _ = await status_of(http, server, Authorization=f"bearer  {TOKEN}")
        assert code == 200
    finally:
        await server.close()


async def test_non_ascii_bearer_is_401(shop: Shop) -> None:
    server = await serve(shop, METRICS_ALLOW="", METRICS_TOKEN=TOKEN)
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + "Authorization: Bearer токен-0123456789abcdef\r\n\r\n".encode()
        )
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        assert response.startswith(b"HTTP/1.1 401"), response[:200]
    finally:
        await server.close()


async def test_ipv4_mapped_and_ipv6_loopback_peers(shop: Shop, http: aiohttp.ClientSession) -> None:
    """On a dual-stack socket an IPv4 client's peer reads ::ffff:127.0.0.1: that is
    127.0.0.1 for METRICS_ALLOW; ::1 is allowed by the default list."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 0))
    port = sock.getsockname()[1]
    runner = web.AppRunner(build_web_app(shop.ctx))
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        for host in ("127.0.0.1", "[::1]"):
            async with http.get(f"http://{host}:{port}/metrics") as resp:
                assert resp.status == 200, host
        shop.ctx.settings = make_settings(shop.tmp_path, shop.cp, METRICS_ALLOW="127.0.0.0/8")
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
        async with http.get(f"http://[::1]:{port}/metrics") as resp:
            assert resp.status == 403
    finally:
        await runner.cleanup()
