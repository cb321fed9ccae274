"""Rate cap, logging, secrecy, lifetime, and the default aiohttp transport on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from payments import CryptoPayClient, CryptoPayTransportError, UnauthorizedError
from payments.ratelimit import TokenBucket

from .conftest import TOKEN, FakeTime, fail, ok


async def test_rate_cap_is_shared_by_all_methods(make_client, fake_time):
    stamps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(fake_time.now)
        return ok(True) if "delete" in request.url.path else ok([])

    client, _ = make_client(handler, rate_limit_per_s=5)
    calls = [client.get_balance() if i % 2 else client.delete_check(i + 1) for i in range(12)]
    await asyncio.gather(*calls)
    start = stamps[0]
    offsets = [round(s - start, 6) for s in stamps]
    # A burst of 5, then one call every 1/5 s: no one-second window holds more than 10.
    assert offsets == [0, 0, 0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4]


async def test_no_cap_means_no_waiting(make_client, fake_time):
    client, server = make_client(lambda r: ok([]))
    await asyncio.gather(*(client.get_balance() for _ in range(50)))
    assert len(server.requests) == 50 and fake_time.sleeps == []


async def test_token_bucket_refills_with_the_clock():
    time = FakeTime()
    bucket = TokenBucket(2, burst=2, clock=time.clock, sleep=time.sleep)
    assert bucket.try_acquire() and bucket.try_acquire() and not bucket.try_acquire()
    time.now += 0.5
    assert bucket.try_acquire() and not bucket.try_acquire()
    await bucket.acquire()
    assert time.sleeps == [pytest.approx(0.5)]
    with pytest.raises(ValueError):
        TokenBucket(0)


async def test_one_log_line_per_attempt_without_secrets(make_client, caplog):
    caplog.set_level(logging.INFO, logger="payments.cryptopay")
    client, _ = make_client(lambda r: ok({**_invoice(), "payload": "secret-order"}))
    answers = iter([fail(503, "UNAVAILABLE"), ok({"items": []})])
    client2, _ = make_client(lambda r: next(answers))
    await client.create_invoice("1", asset="TON", payload="secret-order", description="secret-desc")
    await client2.get_invoices()
    records = [r for r in caplog.records if r.name == "payments.cryptopay"]
    assert [(r.method, r.attempt, r.outcome, r.error_name) for r in records] == [
        ("createInvoice", 1, "ok", None),
        ("getInvoices", 1, "error", "UNAVAILABLE"),
        ("getInvoices", 2, "ok", None),
    ]
    assert all(isinstance(r.duration_ms, float) for r in records)
    for record in records:
        text = record.getMessage() + json.dumps(record.__dict__, default=str)
        assert TOKEN not in text and "secret-order" not in text and "secret-desc" not in text


def _invoice() -> dict[str, object]:
    return {"invoice_id": 1, "status": "active", "amount": "1", "asset": "TON"}


async def test_token_never_in_repr_or_errors(make_client):
    client, _ = make_client(lambda r: fail(401, "UNAUTHORIZED"))
    assert TOKEN not in repr(client) and TOKEN not in str(vars(client).get("base_url"))
    with pytest.raises(UnauthorizedError) as info:
        await client.get_me()
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


async def test_secretstr_token_is_sent(make_client):
    server_seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        server_seen.append(request.headers["Crypto-Pay-API-Token"])
        return ok(True)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = CryptoPayClient(SecretStr(TOKEN), "https://x/api", http=http)
        await client.delete_invoice(1)
    assert server_seen == [TOKEN]


@pytest.mark.parametrize("token", ["", "  ", "a\nb"])
def test_bad_tokens_rejected_without_echo(token):
    with pytest.raises(ValueError) as info:
        CryptoPayClient(token, "https://x/api")
    assert token.strip() == "" or token not in str(info.value)


async def test_injected_client_is_never_closed():
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: ok(True)))
    async with CryptoPayClient(TOKEN, "https://x/api", http=http) as client:
        assert await client.delete_check(1)
    assert not http.is_closed
    await http.aclose()


def test_constructor_does_no_io():
    # No running loop, no network: constructing must neither need nor touch either.
    client = CryptoPayClient(TOKEN, "http://127.0.0.1:9/api")
    assert client._sender is None


# -- the default transport against a real loopback server ------------------------------------------


@pytest.fixture
async def loopback() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        body = await request.json()
        if request.headers.get("Crypto-Pay-API-Token") != TOKEN:
            return web.json_response(
                {"ok": False, "error": {"code": 401, "name": "UNAUTHORIZED"}}, status=401
            )
        assert request.match_info["method"] == "getInvoices"
        return web.json_response(
            {"ok": True, "result": {"items": [{**_invoice(), "payload": body["status"]}]}}
        )

    app = web.Application()
    app.router.add_post("/api/{method}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/api", seen
    await runner.cleanup()


async def test_default_transport_round_trip_and_close(loopback):
    base, seen = loopback
    async with CryptoPayClient(TOKEN, base + "/") as client:
        invoices = await client.get_invoices(status="paid")
        assert invoices[0].payload == "paid"
        sender = client._sender
        assert sender is not None and sender._session is not None  # type: ignore[attr-defined]
        session = sender._session  # type: ignore[attr-defined]
    assert session.closed
    assert seen[0].method == "POST" and seen[0].path == "/api/getInvoices"
    with pytest.raises(RuntimeError):
        await client.get_invoices()


async def test_default_transport_errors(loopback):
    base, _ = loopback
    async with CryptoPayClient("123:wrong", base) as client:
        with pytest.raises(UnauthorizedError):
            await client.get_invoices()


async def test_connection_refused_is_not_ambiguous(fake_time):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    client = CryptoPayClient(
        TOKEN,
        f"http://127.0.0.1:{port}/api",
        max_attempts=2,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    async with client:
        with pytest.raises(CryptoPayTransportError) as info:
            await client.get_me()
    assert not info.value.ambiguous and len(fake_time.sleeps) == 1
