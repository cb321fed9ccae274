"""The fake Crypto Pay's pay page: Pay sends the signed webhook, Let it expire expires."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.sandbox import FakeCryptoPay
from payments import verify_signature

TOKEN = "4242:AApayPageToken"


@pytest.fixture
async def cp() -> AsyncIterator[FakeCryptoPay]:
    async with FakeCryptoPay(token=TOKEN, network="testnet") as fake:
        yield fake


@pytest.fixture
async def receiver(cp: FakeCryptoPay) -> AsyncIterator[list[tuple[bytes, bool]]]:
    """A webhook endpoint that records each body and whether its signature verifies."""
    got: list[tuple[bytes, bool]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        got.append(
            (body, verify_signature(body, request.headers.get("crypto-pay-api-signature"), TOKEN))
        )
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    cp.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield got
    await runner.cleanup()


async def create(cp: FakeCryptoPay, **params: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(headers={"Crypto-Pay-API-Token": TOKEN}) as http:
        resp = await http.post(f"{cp.base_url}/createInvoice", json=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["result"]


async def test_pay_marks_paid_and_sends_the_signed_webhook(
    cp: FakeCryptoPay, receiver: list[tuple[bytes, bool]]
) -> None:
    invoice = await create(
        cp,
        currency_type="fiat",
        fiat="USD",
        amount="19.98",
        accepted_assets="USDT,TON",
        description="Order #7: <b>two</b> keys",
        payload="7",
    )
    url = cp.pay_page_url(invoice["hash"])
    assert url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as http:
        page = await http.get(url)
        assert page.status_code == 200
        assert 'data-status="active"' in page.text
        assert "19.98 USD" in page.text
        assert "&lt;b&gt;two&lt;/b&gt;" in page.text  # the description is text, not markup
        assert re.search(r'value="pay">Pay<', page.text)
        assert re.search(r'value="expire">Let it expire<', page.text)
        done = await http.post(url, data={"action": "pay", "asset": "TON"})
    assert done.status_code == 200
    assert 'data-status="paid"' in done.text
    assert "webhook answered 200" in done.text
    paid = cp.invoice(invoice["invoice_id"])
    assert paid["status"] == "paid" and paid["paid_asset"] == "TON"
    assert Decimal(paid["paid_amount"]) > 0
    assert len(receiver) == 1
    body, signed = receiver[0]
    assert signed
    assert b'"update_type":"invoice_paid"' in body and b'"payload":"7"' in body


async def test_let_it_expire_expires_without_a_webhook(
    cp: FakeCryptoPay, receiver: list[tuple[bytes, bool]]
) -> None:
    invoice = await create(cp, currency_type="crypto", asset="USDT", amount="5")
    async with httpx.AsyncClient() as http:
        done = await http.post(cp.pay_page_url(invoice["hash"]), data={"action": "expire"})
        again = await http.post(cp.pay_page_url(invoice["hash"]), data={"action": "pay"})
    assert 'data-status="expired"' in done.text
    assert cp.invoice(invoice["invoice_id"])["status"] == "expired"
    assert "is expired" in again.text  # an expired invoice cannot be paid
    assert receiver == []


async def test_unknown_invoice_is_404(cp: FakeCryptoPay) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.get(cp.pay_page_url("IVnotthere00"))
    assert resp.status_code == 404
