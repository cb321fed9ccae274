"""Every response sample parses; money is Decimal in and plain decimal strings out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from payments import (
    App,
    AppStats,
    Balance,
    Check,
    Currency,
    ExchangeRate,
    Invoice,
    Transfer,
    decimal_to_wire,
)

from .conftest import load_vector

MISC = load_vector("responses/misc_methods.json")


def results(name: str) -> list[object]:
    return [
        s["response"]["result"]
        for s in load_vector(f"responses/{name}")["samples"]
        if s["response"].get("ok")
    ]


def test_all_invoice_samples_parse():
    samples = results("createInvoice.json") + [
        item
        for r in results("getInvoices.json")
        for item in r["items"]  # type: ignore[index]
    ]
    invoices = [Invoice.model_validate(s) for s in samples]
    assert [i.invoice_id for i in invoices] == [528890, 1422, 530195, 1407]
    legacy = invoices[3]  # 2021: no currency_type, deprecated is_confirmed
    assert legacy.currency_type == "crypto" and legacy.url == legacy.pay_url
    assert legacy.paid_at == datetime(2021, 11, 29, 18, 32, 36, 17000, tzinfo=UTC)


def test_other_samples_parse():
    transfers = [Transfer.model_validate(r) for r in results("transfer.json")]
    assert transfers[0].completed_at == datetime(2024, 3, 14, 12, tzinfo=UTC)
    rates = [ExchangeRate.model_validate(x) for r in results("getExchangeRates.json") for x in r]  # type: ignore[attr-defined]
    assert len(rates) == 7 and rates[4].rate == Decimal("58208.74")
    assert rates[4].is_crypto is None  # 2021 rates had no is_crypto
    App.model_validate(MISC["getMe"]["response"]["result"])
    [Balance.model_validate(b) for b in MISC["getBalance"]["response"]["result"]]
    [Currency.model_validate(c) for c in MISC["getCurrencies"]["response"]["result"]]
    stats = AppStats.model_validate(MISC["getStats"]["response"]["result"])
    assert stats.volume == Decimal(0) and stats.start_at is not None and stats.start_at.tzinfo
    check = Check.model_validate(MISC["createCheck"]["response"]["result"])
    assert check.activated_at is None


def test_modern_fiat_invoice_fields():
    body = load_vector("webhook_signature_vectors.json")["cases"][1]["body"]
    invoice = Invoice.model_validate(json.loads(body)["payload"])
    assert invoice.accepted_assets == ["USDT", "TON"]
    assert invoice.fee_amount == Decimal("0.078")
    assert invoice.paid_fiat_rate == Decimal("1.00002469")
    assert invoice.description == "Заказ №42 — VPN 1 мес ✓"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.00001", "0.00001"),
        (0.00001, "0.00001"),
        (1e-7, "0.0000001"),
        (5, "5"),
        ("1E+3", "1000"),
        ("2.50", "2.50"),
    ],
)
def test_decimal_parsing_and_wire_format(raw, expected):
    balance = Balance.model_validate({"currency_code": "BTC", "available": raw})
    assert isinstance(balance.available, Decimal)
    assert decimal_to_wire(balance.available) == expected
    dumped = json.loads(balance.model_dump_json())
    assert dumped["available"] == expected and "e" not in dumped["available"].lower()


def test_decimal_never_float_in_python_dump():
    balance = Balance(currency_code="TON", available=Decimal("0.00001"))
    assert balance.model_dump()["available"] == Decimal("0.00001")


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", True, None, [1]])
def test_bad_decimals_rejected(bad):
    with pytest.raises(ValidationError):
        Balance.model_validate({"currency_code": "TON", "available": bad})


def test_open_sets_unknown_fields_and_comma_assets():
    invoice = Invoice.model_validate(
        {
            "invoice_id": 1,
            "status": "refunded_someday",
            "asset": "XAUT",
            "amount": 3,
            "accepted_assets": "USDT, TON,",
            "brand_new_field": {"x": 1},
            "created_at": "2025-04-02T17:03:05",
            "expiration_date": "2025-04-02T20:03:05+03:00",
            "fee_amount": "",
        }
    )
    assert invoice.status == "refunded_someday" and invoice.asset == "XAUT"
    assert invoice.amount == Decimal(3) and invoice.fee_amount is None
    assert invoice.accepted_assets == ["USDT", "TON"]
    assert invoice.created_at == datetime(2025, 4, 2, 17, 3, 5, tzinfo=UTC)
    assert invoice.expiration_date is not None and invoice.expiration_date.tzinfo is UTC
    assert invoice.expiration_date.hour == 17
