"""The 10 signature vectors, the header policy, and parsing of both webhook files."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr

from payments import InvalidUpdateError, Update, parse_update, verify_signature

from .conftest import TOKEN, load_vector

VECTORS = load_vector("webhook_signature_vectors.json")
CASES = VECTORS["cases"]


def test_there_are_ten_cases():
    assert len(CASES) == 10
    assert sum(c["expected_valid"] for c in CASES) == 3


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_signature_vector(case):
    body = case["body"].encode("utf-8")
    assert len(body) == case["body_len_bytes"]
    assert hashlib.sha256(body).hexdigest() == case["body_sha256"]
    # Each case names the token the receiver verifies with (NEG_wrong_token: another app's).
    got = verify_signature(body, case["header_crypto_pay_api_signature"], case["token"])
    assert got is case["expected_valid"]


def test_wrong_token_case_verifies_with_its_signing_token():
    case = next(c for c in CASES if c["name"] == "NEG_wrong_token")
    body = case["body"].encode()
    sig = case["header_crypto_pay_api_signature"]
    assert verify_signature(body, sig, TOKEN)
    assert not verify_signature(body, sig, case["token"])


def test_secret_is_sha256_of_token():
    assert hashlib.sha256(TOKEN.encode()).hexdigest() == VECTORS["secret_sha256_of_token_hex"]


def test_secretstr_token_accepted():
    case = CASES[2]
    assert verify_signature(
        case["body"].encode(), case["header_crypto_pay_api_signature"], SecretStr(TOKEN)
    )


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "zz" * 32,
        "ab",
        "é" * 64,
        "\u0663" * 64,
        12345,
        b"f9b1" * 16,
        " " + CASES[2]["header_crypto_pay_api_signature"],
    ],
)
def test_garbled_headers_are_false_not_exceptions(header):
    assert verify_signature(CASES[2]["body"].encode(), header, TOKEN) is False  # type: ignore[arg-type]


def test_uppercase_policy_rejects_but_lowercase_of_same_accepts():
    case = next(c for c in CASES if c["name"] == "NEG_uppercase_hex")
    body = case["body"].encode()
    upper = case["header_crypto_pay_api_signature"]
    assert not verify_signature(body, upper, TOKEN)
    assert verify_signature(body, upper.lower(), TOKEN)


def test_empty_token_never_verifies():
    body = b"{}"
    sig = hmac.new(hashlib.sha256(b"").digest(), body, hashlib.sha256).hexdigest()
    assert verify_signature(body, sig, "") is False


def test_parse_real_capture_2023():
    capture = load_vector("webhook_real_capture_2023_testnet.json")
    update = parse_update(capture["request"]["raw_body"].encode())
    assert isinstance(update, Update)
    assert (update.update_id, update.update_type) == (22021, "invoice_paid")
    assert update.request_date == datetime(2023, 9, 11, 9, 27, 3, 9000, tzinfo=UTC)
    invoice = update.payload
    assert (invoice.invoice_id, invoice.status, invoice.asset) == (88133, "paid", "USDT")
    assert invoice.amount == Decimal(1) and invoice.fee == Decimal("0.03")
    assert invoice.payload == '{"paymentId":"2VFBQRUJK32S9VorgOyRtT4ltbw"}'
    assert invoice.paid_at == datetime(2023, 9, 11, 8, 58, 19, 941000, tzinfo=UTC)


def test_parse_testnet_2022_sample():
    sample = load_vector("webhook_payload_testnet_2022_sample.json")
    update = parse_update(json.dumps(sample["update"]).encode())
    assert update.update_id == 4618
    assert update.payload.invoice_id == 12774 and update.payload.amount == Decimal("2.5")
    assert update.payload.hidden_message == "We processing your payment"
    assert update.payload.paid_btn_name == "openBot"


def test_parse_modern_fiat_update():
    update = parse_update(CASES[1]["body"].encode())
    assert update.payload.currency_type == "fiat" and update.payload.paid_asset == "USDT"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"x"',
        b'{"ok": true}',
        b'{"update_type": "invoice_paid", "payload": {"invoice_id": "x"}, "update_id": 1}',
    ],
)
def test_parse_update_rejects_non_updates(body):
    with pytest.raises(InvalidUpdateError):
        parse_update(body)
    assert issubclass(InvalidUpdateError, ValueError)
