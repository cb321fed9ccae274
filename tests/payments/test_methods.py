"""Every method against httpx.MockTransport: the exact request and the parsed result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from payments import (
    App,
    AppStats,
    Balance,
    Check,
    Currency,
    ExchangeRate,
    Invoice,
    Transfer,
)

from .conftest import BASE, TOKEN, load_vector, ok

MISC = load_vector("responses/misc_methods.json")
INVOICE = load_vector("responses/createInvoice.json")["samples"][0]["response"]["result"]
INVOICES = load_vector("responses/getInvoices.json")["samples"][0]["response"]["result"]
TRANSFER = load_vector("responses/transfer.json")["samples"][0]["response"]["result"]
RATES = load_vector("responses/getExchangeRates.json")["samples"][0]["response"]["result"]


def assert_request(request: httpx.Request, method: str, params: dict[str, Any]) -> None:
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/{method}"
    assert request.headers["Crypto-Pay-API-Token"] == TOKEN
    assert request.headers["Content-Type"] == "application/json"
    import json

    assert json.loads(request.content) == params


async def test_get_me(make_client):
    client, server = make_client(lambda r: ok(MISC["getMe"]["response"]["result"]))
    app = await client.get_me()
    assert_request(server.requests[0], "getMe", {})
    assert app == App(
        app_id=28692, name="Stated Seaslug App", payment_processing_bot_username="CryptoTestnetBot"
    )


async def test_create_invoice_crypto(make_client):
    client, server = make_client(lambda r: ok(INVOICE))
    invoice = await client.create_invoice(
        Decimal("10.5"),
        asset="TON",
        description="Test invoice",
        payload="order:1",
        expires_in=900,
        allow_comments=False,
        paid_btn_name="viewItem",
        paid_btn_url="https://t.me/shop_bot",
    )
    assert_request(
        server.requests[0],
        "createInvoice",
        {
            "asset": "TON",
            "amount": "10.5",
            "description": "Test invoice",
            "payload": "order:1",
            "expires_in": 900,
            "allow_comments": False,
            "paid_btn_name": "viewItem",
            "paid_btn_url": "https://t.me/shop_bot",
        },
    )
    assert isinstance(invoice, Invoice)
    assert invoice.invoice_id == 528890
    assert invoice.amount == Decimal("10.5")
    assert invoice.url == "https://t.me/CryptoTestnetBot?start=IVDoTcNBYEfk"
    assert invoice.created_at == datetime(2025, 2, 8, 12, 11, 1, 341000, tzinfo=UTC)


async def test_create_invoice_fiat_sends_comma_assets_and_plain_decimal(make_client):
    client, server = make_client(lambda r: ok(INVOICE))
    await client.create_invoice(
        Decimal("0.00001"), fiat="USD", accepted_assets=["USDT", "TON"], swap_to="USDT"
    )
    assert server.params() == {
        "currency_type": "fiat",
        "fiat": "USD",
        "accepted_assets": "USDT,TON",
        "amount": "0.00001",
        "swap_to": "USDT",
    }


async def test_delete_invoice(make_client):
    client, server = make_client(lambda r: ok(True))
    assert await client.delete_invoice(528890) is True
    assert_request(server.requests[0], "deleteInvoice", {"invoice_id": 528890})


async def test_create_check(make_client):
    client, server = make_client(lambda r: ok(MISC["createCheck"]["response"]["result"]))
    check = await client.create_check("TON", "10.00", pin_to_username="@buyer")
    assert_request(
        server.requests[0],
        "createCheck",
        {"asset": "TON", "amount": "10.00", "pin_to_username": "buyer"},
    )
    assert isinstance(check, Check)
    assert (check.check_id, check.amount, check.status) == (123, Decimal("10.00"), "active")


async def test_delete_check(make_client):
    client, server = make_client(lambda r: ok(True))
    assert await client.delete_check(123) is True
    assert_request(server.requests[0], "deleteCheck", {"check_id": 123})


async def test_transfer(make_client):
    client, server = make_client(lambda r: ok(TRANSFER))
    transfer = await client.transfer(
        123456789,
        "TON",
        Decimal("10.5"),
        "refund-42",
        comment="refund #42",
        disable_send_notification=True,
    )
    assert_request(
        server.requests[0],
        "transfer",
        {
            "user_id": 123456789,
            "asset": "TON",
            "amount": "10.5",
            "spend_id": "refund-42",
            "comment": "refund #42",
            "disable_send_notification": True,
        },
    )
    assert isinstance(transfer, Transfer)
    assert (transfer.transfer_id, transfer.amount, transfer.status) == (
        1,
        Decimal("10.5"),
        "completed",
    )


async def test_get_invoices(make_client):
    client, server = make_client(lambda r: ok(INVOICES))
    invoices = await client.get_invoices(
        asset="BTC", invoice_ids=[530195, 530196], status="active", offset=10, count=50
    )
    assert_request(
        server.requests[0],
        "getInvoices",
        {
            "asset": "BTC",
            "invoice_ids": "530195,530196",
            "status": "active",
            "offset": 10,
            "count": 50,
        },
    )
    assert [i.invoice_id for i in invoices] == [530195]
    assert invoices[0].amount == Decimal("0.5")


async def test_get_invoices_by_fiat(make_client):
    client, server = make_client(lambda r: ok({"items": []}))
    assert await client.get_invoices(fiat="USD", status="paid") == []
    assert server.params() == {"fiat": "USD", "status": "paid"}


async def test_get_transfers(make_client):
    client, server = make_client(lambda r: ok({"items": [TRANSFER]}))
    transfers = await client.get_transfers(asset="TON", transfer_ids=[1], spend_id="s1", count=1)
    assert_request(
        server.requests[0],
        "getTransfers",
        {"asset": "TON", "transfer_ids": "1", "spend_id": "s1", "count": 1},
    )
    assert transfers[0].spend_id == "test_spend_id"


async def test_get_checks(make_client):
    check = MISC["createCheck"]["response"]["result"]
    client, server = make_client(lambda r: ok({"items": [check]}))
    checks = await client.get_checks(asset="TON", check_ids="123,124", status="activated")
    assert_request(
        server.requests[0],
        "getChecks",
        {"asset": "TON", "check_ids": "123,124", "status": "activated"},
    )
    assert [c.check_id for c in checks] == [123]


async def test_get_balance(make_client):
    client, server = make_client(lambda r: ok(MISC["getBalance"]["response"]["result"]))
    balances = await client.get_balance()
    assert_request(server.requests[0], "getBalance", {})
    assert balances == [
        Balance(currency_code="TON", available=Decimal("100.5"), onhold=Decimal("0.0")),
        Balance(currency_code="SEND", available=Decimal("10.5"), onhold=Decimal("0.0")),
    ]


async def test_get_exchange_rates(make_client):
    client, server = make_client(lambda r: ok(RATES))
    rates = await client.get_exchange_rates()
    assert_request(server.requests[0], "getExchangeRates", {})
    assert isinstance(rates[0], ExchangeRate)
    assert (rates[0].source, rates[0].target, rates[0].rate) == (
        "TON",
        "USD",
        Decimal("3.70824926"),
    )


async def test_get_currencies(make_client):
    client, server = make_client(lambda r: ok(MISC["getCurrencies"]["response"]["result"]))
    currencies = await client.get_currencies()
    assert_request(server.requests[0], "getCurrencies", {})
    assert [c.code for c in currencies] == ["USDT", "TON", "USD"]
    assert isinstance(currencies[2], Currency) and currencies[2].url is None
    assert currencies[2].is_fiat and currencies[1].decimals == 9


async def test_get_stats(make_client):
    client, server = make_client(lambda r: ok(MISC["getStats"]["response"]["result"]))
    plus3 = timezone(timedelta(hours=3))
    stats = await client.get_stats(
        start_at=datetime(2025, 2, 7, 13, 55, 17, 438000, tzinfo=plus3),
        end_at=datetime(2025, 2, 8, 10, 55, 17, tzinfo=UTC),
    )
    assert_request(
        server.requests[0],
        "getStats",
        {"start_at": "2025-02-07T10:55:17.438Z", "end_at": "2025-02-08T10:55:17.000Z"},
    )
    assert isinstance(stats, AppStats)
    assert stats.volume == Decimal(0) and stats.end_at == datetime(
        2025, 2, 8, 10, 55, 17, 438000, tzinfo=UTC
    )


async def test_base_url_trailing_slash_is_stripped(make_client):
    client, server = make_client(lambda r: ok(True))
    client2 = type(client)(
        TOKEN, BASE + "/", http=httpx.AsyncClient(transport=httpx.MockTransport(server))
    )
    await client2.delete_check(1)
    assert str(server.requests[0].url) == f"{BASE}/deleteCheck"
    await client2.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"asset": "USDT", "description": "x" * 2000}, "description"),
        ({"asset": "USDT", "hidden_message": "x" * 2049}, "hidden_message"),
        ({"asset": "USDT", "payload": "я" * 2049}, "payload"),
        ({"asset": "USDT", "expires_in": 0}, "expires_in"),
        ({"asset": "USDT", "expires_in": 2678401}, "expires_in"),
        ({"asset": "USDT", "paid_btn_name": "viewItem"}, "paid_btn_url"),
        ({"asset": "USDT", "paid_btn_name": "buy", "paid_btn_url": "https://x"}, "paid_btn_name"),
        ({"asset": "USDT", "paid_btn_name": "openBot", "paid_btn_url": "t.me/x"}, "http"),
        ({"asset": "USDT", "amount": Decimal(0)}, "amount"),
        ({"asset": "USDT", "amount": "-1"}, "amount"),
        ({"asset": "USDT", "amount": "NaN"}, "amount"),
        ({"asset": "USDT", "amount": "abc"}, "amount"),
        ({}, "asset is required"),
        ({"currency_type": "fiat", "asset": "USDT"}, "fiat is required"),
        ({"asset": "USDT", "accepted_assets": ["TON"]}, "accepted_assets"),
        ({"asset": "USDT", "currency_type": "coins"}, "currency_type"),
    ],
)
async def test_create_invoice_limits_checked_before_sending(make_client, kwargs, message):
    client, server = make_client(lambda r: ok(INVOICE))
    kwargs.setdefault("amount", "1")
    with pytest.raises(ValueError, match=message):
        await client.create_invoice(**kwargs)
    assert server.requests == []


async def test_payload_limit_counts_utf8_bytes(make_client):
    client, server = make_client(lambda r: ok(INVOICE))
    await client.create_invoice("1", asset="USDT", payload="я" * 2048)  # 4096 bytes: fine
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.transfer(1, "USDT", "1", "s" * 70), "spend_id"),
        (lambda c: c.transfer(1, "USDT", "1", ""), "spend_id"),
        (lambda c: c.transfer(1, "USDT", "1", "s", comment="c" * 1025), "comment"),
        (lambda c: c.transfer(1, "USDT", "0", "s"), "amount"),
        (lambda c: c.get_invoices(status="expired"), "status"),
        (lambda c: c.get_invoices(count=0), "count"),
        (lambda c: c.get_invoices(count=1001), "count"),
        (lambda c: c.get_invoices(offset=-1), "offset"),
        (lambda c: c.get_checks(status="paid"), "status"),
        (lambda c: c.get_transfers(spend_id="x" * 65), "spend_id"),
        (lambda c: c.create_check("TON", "1", pin_to_user_id=1, pin_to_username="u"), "not both"),
        (lambda c: c.get_stats(start_at=datetime(2025, 1, 1)), "timezone"),
        (lambda c: c.delete_invoice(0), "invoice_id"),
    ],
)
async def test_other_limits_checked_before_sending(make_client, call, message):
    client, server = make_client(lambda r: ok(True))
    with pytest.raises(ValueError, match=message):
        await call(client)
    assert server.requests == []
