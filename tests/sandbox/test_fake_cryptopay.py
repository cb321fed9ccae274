"""The fake Crypto Pay API: envelopes, validation, control methods and signed webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.sandbox import FakeCryptoPay

TOKEN = "123456789:AAzQcZWQqQAbsfgPnOLr4FHC8Doa4L7KryC"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
async def cp() -> AsyncIterator[FakeCryptoPay]:
    async with FakeCryptoPay(token=TOKEN, network="testnet") as fake:
        yield fake


@pytest.fixture
async def http(cp: FakeCryptoPay) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Crypto-Pay-API-Token": TOKEN}
    async with httpx.AsyncClient(base_url=cp.base_url + "/", headers=headers) as client:
        yield client


async def call(http: httpx.AsyncClient, method: str, **params: Any) -> tuple[int, dict]:
    resp = await http.post(method, json=params)
    return resp.status_code, resp.json()


async def test_auth_and_unknown_method(cp: FakeCryptoPay, http: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient() as bare:
        resp = await bare.get(f"{cp.base_url}/getMe")
        assert resp.status_code == 401
        assert resp.json() == {"ok": False, "error": {"code": 401, "name": "UNAUTHORIZED"}}
        resp = await bare.get(f"{cp.base_url}/getMe", headers={"Crypto-Pay-API-Token": "1:x"})
        assert resp.status_code == 401
    assert await call(http, "createPayment") == (
        405,
        {"ok": False, "error": {"code": 405, "name": "METHOD_NOT_FOUND"}},
    )
    status, body = await call(http, "getMe")
    assert status == 200 and body["result"]["payment_processing_bot_username"] == "CryptoTestnetBot"


async def test_create_invoice_shapes_and_transports(
    cp: FakeCryptoPay, http: httpx.AsyncClient
) -> None:
    status, body = await call(
        http, "createInvoice", asset="USDT", amount="10.50", payload="order:1", expires_in=900
    )
    assert status == 200 and body["ok"] is True
    inv = body["result"]
    assert (
        inv["amount"] == "10.5" and inv["status"] == "active" and inv["currency_type"] == "crypto"
    )
    assert re.fullmatch(r"IV[A-Za-z0-9]{10}", inv["hash"])
    assert inv["bot_invoice_url"] == f"https://t.me/CryptoTestnetBot?start={inv['hash']}"
    assert inv["web_app_invoice_url"].startswith("https://testnet-app.send.tg/invoices/IV")
    assert inv["mini_app_invoice_url"].endswith(f"startapp=invoice-{inv['hash']}")
    assert ISO_MS.match(inv["created_at"]) and ISO_MS.match(inv["expiration_date"])
    assert inv["payload"] == "order:1" and inv["allow_comments"] is True
    # The same method through a query string, urlencoded and multipart bodies; numbers accepted.
    r1 = await http.get("createInvoice", params={"asset": "TON", "amount": "1"})
    r2 = await http.post("createInvoice", data={"asset": "TON", "amount": "2"})
    r3 = await http.post("createInvoice", files={"asset": (None, "TON"), "amount": (None, "3")})
    _, r4 = await call(http, "createInvoice", asset="TON", amount=0.00001)
    ids = [r.json()["result"]["invoice_id"] for r in (r1, r2, r3)] + [r4["result"]["invoice_id"]]
    assert ids == sorted(ids) and ids[0] == inv["invoice_id"] + 1
    assert r4["result"]["amount"] == "0.00001"
    assert [p.get("amount") for p in cp.created_invoices][1:] == ["1", "2", "3", 0.00001]

    status, body = await call(
        http, "createInvoice", currency_type="fiat", fiat="USD", amount="9.99",
        accepted_assets="USDT,TON",
    )  # fmt: skip
    assert body["result"]["accepted_assets"] == ["USDT", "TON"] and body["result"]["fiat"] == "USD"


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        (
            {"currency_type": "fiat", "fiat": "USD", "amount": "1", "accepted_assets": ["USDT"]},
            500,
            {"code": 500, "name": "APP_ERROR"},
        ),
        ({"asset": "NOPE", "amount": "1"}, 400, {"code": 400, "name": "UNSUPPORTED_ASSET"}),
        (
            {"asset": "TON", "amount": "1", "paid_btn_name": "viewItem"},
            400,
            {"code": 400, "name": "PAID_BTN_URL_REQUIRED"},
        ),
        ({"asset": "TON", "amount": "1", "expires_in": 0}, 400, {"name": "EXPIRES_IN_INVALID"}),
        (
            {"asset": "TON", "amount": "1", "expires_in": 2678401},
            400,
            {"name": "EXPIRES_IN_INVALID"},
        ),
        ({"asset": "TON", "amount": "1", "description": "d" * 1025}, 400, {"code": 400}),
        ({"asset": "TON", "amount": "abc"}, 400, {"code": 400}),
    ],
)
async def test_create_invoice_errors(
    http: httpx.AsyncClient, params: dict, status: int, error: dict
) -> None:
    code, body = await call(http, "createInvoice", **params)
    assert code == status and body["ok"] is False
    assert error.items() <= body["error"].items()
    if body["error"]["name"] == "UNSUPPORTED_ASSET":
        assert "USDT" in body["error"]["allowed_crypto_assets"]


async def test_get_invoices_filters_and_errors(cp: FakeCryptoPay, http: httpx.AsyncClient) -> None:
    ids = [(await call(http, "createInvoice", asset="USDT", amount="1"))[1]["result"]["invoice_id"]]
    ids.append(
        (await call(http, "createInvoice", asset="TON", amount="2"))[1]["result"]["invoice_id"]
    )
    await cp.pay(ids[0])
    _, body = await call(http, "getInvoices", invoice_ids=f"{ids[0]},{ids[1]}", status="paid")
    assert [i["invoice_id"] for i in body["result"]["items"]] == [ids[0]]
    code, body = await call(http, "getInvoices", status="expired")
    assert code == 400 and body["error"] == {
        "code": 400,
        "name": "STATUS_INVALID",
        "allowed_statuses": ["active", "paid"],
    }
    code, _ = await call(http, "getInvoices", count=1001)
    assert code == 400
    resp = await http.get("getInvoices", params={"asset": "TON", "count": "1"})
    assert [i["invoice_id"] for i in resp.json()["result"]["items"]] == [ids[1]]
    assert await call(http, "deleteInvoice", invoice_id=ids[1]) == (
        200,
        {"ok": True, "result": True},
    )
    _, body = await call(http, "getInvoices")
    assert [i["invoice_id"] for i in body["result"]["items"]] == [ids[0]]


async def test_expiry_by_clock_and_by_hand(cp: FakeCryptoPay, http: httpx.AsyncClient) -> None:
    cp.clock = lambda: datetime(2026, 1, 1, tzinfo=UTC)
    _, a = await call(http, "createInvoice", asset="USDT", amount="1", expires_in=60)
    _, b = await call(http, "createInvoice", asset="USDT", amount="1")
    assert a["result"]["created_at"] == "2026-01-01T00:00:00.000Z"
    cp.advance(61)
    _, body = await call(http, "getInvoices", invoice_ids=str(a["result"]["invoice_id"]))
    assert body["result"]["items"][0]["status"] == "expired"
    cp.expire(b["result"]["invoice_id"])
    assert cp.invoice(b["result"]["invoice_id"])["status"] == "expired"
    with pytest.raises(ValueError):
        await cp.pay(b["result"]["invoice_id"])


async def test_transfer_balance_spend_id_and_disabled(
    cp: FakeCryptoPay, http: httpx.AsyncClient
) -> None:
    cp.balances = {"USDT": Decimal("10")}
    code, body = await call(http, "transfer", user_id=7, asset="USDT", amount="4", spend_id="r-1")
    assert code == 200 and body["result"]["status"] == "completed"
    assert "spend_id" not in body["result"] and cp.balances["USDT"] == Decimal("6")
    code, body = await call(http, "transfer", user_id=7, asset="USDT", amount="4", spend_id="r-1")
    assert code == 400 and body["error"]["name"] == "SPEND_ID_ALREADY_USED"
    cp.spend_id_reuse = "return_existing"
    code, again = await call(http, "transfer", user_id=7, asset="USDT", amount="4", spend_id="r-1")
    assert code == 200 and again["result"]["transfer_id"] == body_id(cp)
    assert len(cp.transfers) == 1 and cp.balances["USDT"] == Decimal("6")
    code, body = await call(http, "transfer", user_id=7, asset="USDT", amount="7", spend_id="r-2")
    assert code == 400 and body["error"]["name"] == "NOT_ENOUGH_COINS"
    _, body = await call(http, "getTransfers", spend_id="r-1")
    assert [t["spend_id"] for t in body["result"]["items"]] == ["r-1"]
    cp.transfers_enabled = False
    code, body = await call(http, "transfer", user_id=7, asset="USDT", amount="1", spend_id="r-3")
    assert code == 403 and body["error"]["name"] == "METHOD_DISABLED"
    assert body["error"]["description"]


def body_id(cp: FakeCryptoPay) -> int:
    return next(iter(cp.transfers))


async def test_reference_methods(cp: FakeCryptoPay, http: httpx.AsyncClient) -> None:
    cp.balances = {"TON": Decimal("100.5")}
    _, body = await call(http, "getBalance")
    ton = next(b for b in body["result"] if b["currency_code"] == "TON")
    assert ton == {"currency_code": "TON", "available": "100.5", "onhold": "0"}
    _, body = await call(http, "getExchangeRates")
    pairs = {(r["source"], r["target"]): r for r in body["result"]}
    assert {("USDT", "USD"), ("TON", "EUR"), ("BTC", "RUB")} <= pairs.keys()
    assert isinstance(pairs["TON", "USD"]["rate"], str) and pairs["TON", "USD"]["is_valid"]
    Decimal(pairs["BTC", "RUB"]["rate"])
    _, body = await call(http, "getCurrencies")
    assert {"USDT", "TON", "USD"} <= {c["code"] for c in body["result"]}
    _, body = await call(http, "getStats")
    assert ISO_MS.match(body["result"]["start_at"])
    cp.balances["TON"] = Decimal("10")
    _, check = await call(http, "createCheck", asset="TON", amount="1")
    assert check["result"]["hash"].startswith("CQ")
    _, checks = await call(http, "getChecks", status="active")
    assert len(checks["result"]["items"]) == 1
    assert (await call(http, "deleteCheck", check_id=check["result"]["check_id"]))[0] == 200


async def test_fault_injection(cp: FakeCryptoPay, http: httpx.AsyncClient) -> None:
    cp.fail_next("createInvoice", status=500)
    code, body = await call(http, "createInvoice", asset="TON", amount="1")
    assert code == 500 and body["error"]["name"] == "APP_ERROR" and not cp.invoices
    cp.fail_next("createInvoice", status=502)
    resp = await http.post("createInvoice", json={"asset": "TON", "amount": "1"})
    assert resp.status_code == 502 and "Bad Gateway" in resp.text and not cp.invoices
    # The ambiguous case: the invoice is created, the client times out.
    cp.fail_next("createInvoice", status=None, delay=5, after_effect=True)
    with pytest.raises(httpx.ReadTimeout):
        await http.post("createInvoice", json={"asset": "TON", "amount": "1"}, timeout=0.3)
    assert len(cp.invoices) == 1
    cp.balances = {"USDT": Decimal("5")}
    cp.fail_next("transfer", status=500, after_effect=True)
    code, _ = await call(http, "transfer", user_id=1, asset="USDT", amount="1", spend_id="s")
    assert code == 500 and len(cp.transfers) == 1 and cp.balances["USDT"] == Decimal("4")
    cp.fail_next("getMe", status=429, times=2)
    assert [(await call(http, "getMe"))[0] for _ in range(3)] == [429, 429, 200]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    got: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((await request.read(), dict(request.headers)))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/cryptopay/webhook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/cryptopay/webhook", got
    await runner.cleanup()


async def test_pay_sends_signed_compact_webhook(
    cp: FakeCryptoPay, http: httpx.AsyncClient, receiver: tuple[str, list]
) -> None:
    url, got = receiver
    cp.webhook_url = url
    _, body = await call(
        http, "createInvoice", currency_type="fiat", fiat="USD", amount="2.6",
        accepted_assets="USDT,TON", description="Заказ №42 — VPN ✓", payload='{"order_id":42}',
    )  # fmt: skip
    invoice_id = body["result"]["invoice_id"]
    assert await cp.pay(invoice_id) == 200
    raw, headers = got[0]
    secret = hashlib.sha256(TOKEN.encode()).digest()
    assert headers["crypto-pay-api-signature"] == hmac.new(secret, raw, hashlib.sha256).hexdigest()
    assert headers["Content-Type"] == "application/json;charset=utf-8"
    assert headers["User-Agent"] == "axios/0.21.1"
    update = json.loads(raw)
    assert raw == json.dumps(update, separators=(",", ":"), ensure_ascii=False).encode()
    assert "Заказ".encode() in raw and b'\\"order_id\\"' in raw
    paid = update["payload"]
    assert update["update_type"] == "invoice_paid" and paid["status"] == "paid"
    assert paid["paid_asset"] == "USDT" and paid["paid_amount"] == "2.6"
    assert paid["accepted_assets"] == ["USDT", "TON"] and ISO_MS.match(paid["paid_at"])
    for key in ("paid_fiat_rate", "fee_amount", "fee_in_usd", "paid_usd_rate"):
        assert isinstance(paid[key], str)
        Decimal(paid[key])
    # Duplicates, concurrently: same update_id, each body signed.
    statuses = await cp.deliver_webhook(invoice_id, times=3, concurrently=True)
    assert statuses == [200, 200, 200] and len(got) == 4
    assert {json.loads(b)["update_id"] for b, _ in got} == {update["update_id"]}
    assert all(
        d.headers["crypto-pay-api-signature"] == cp.sign(d.body) for d in cp.webhook_deliveries
    )
    with pytest.raises(ValueError):
        await cp.pay(invoice_id)


async def test_wait_for_invoice_is_event_driven(cp: FakeCryptoPay, http: httpx.AsyncClient) -> None:
    waiter = asyncio.create_task(cp.wait_for_invoice(lambda inv: inv.get("payload") == "x"))
    await call(http, "createInvoice", asset="TON", amount="1", payload="x")
    assert (await asyncio.wait_for(waiter, 2))["payload"] == "x"


async def test_in_flight_peaks_clear_faults_and_webhook_request(
    cp: FakeCryptoPay, http: httpx.AsyncClient
) -> None:
    cp.fail_next("getBalance", status=None, delay=0.3, times=2)
    await asyncio.gather(call(http, "getBalance"), call(http, "getBalance"))
    await call(http, "getMe")
    assert cp.max_in_flight["getBalance"] == 2 and cp.max_in_flight["getMe"] == 1
    assert cp.in_flight["getBalance"] == 0
    cp.reset_in_flight_peaks()
    assert cp.max_in_flight == {}
    cp.fail_next("getMe", status=500, times=5)
    cp.clear_faults()
    assert (await call(http, "getMe"))[0] == 200

    _, created = await call(http, "createInvoice", asset="TON", amount="1")
    invoice_id = created["result"]["invoice_id"]
    with pytest.raises(ValueError, match="not paid"):
        cp.webhook_request(invoice_id)
    await cp.pay(invoice_id, send_webhook=False)
    body, headers = cp.webhook_request(invoice_id)
    again, _ = cp.webhook_request(invoice_id)
    assert headers["crypto-pay-api-signature"] == cp.sign(body)
    update = json.loads(body)
    assert update["update_type"] == "invoice_paid" and update["payload"]["status"] == "paid"
    assert json.loads(again)["update_id"] == update["update_id"]
    assert cp.webhook_deliveries == []  # built, not sent
