"""Reference data and parameter rules of the fake Crypto Pay API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation
from typing import Any

# Approximate USD prices of the crypto assets (editable per fake through ``usd_prices``).
USD_PRICES: dict[str, str] = {
    "USDT": "1.00002469",
    "TON": "3.12405521",
    "SOL": "178.2311",
    "TRX": "0.2481",
    "GRAM": "0.0031",
    "BTC": "97012.55",
    "ETH": "3388.17",
    "DOGE": "0.3291",
    "LTC": "90.44",
    "NOT": "0.00611",
    "MY": "0.031",
    "DOGS": "0.00047",
    "BNB": "652.3",
    "USDC": "0.99991",
    "HMSTR": "0.0021",
    "CATI": "0.28",
    "SEND": "0.0112",
    "XAUT": "2651.4",
}
TESTNET_EXTRA = {"JET": "0.1523"}
# Units of each fiat per 1 USD.
FIAT_PER_USD: dict[str, str] = {
    "USD": "1",
    "EUR": "0.9218",
    "RUB": "96.54",
    "BYN": "3.27",
    "UAH": "41.32",
    "GBP": "0.7844",
    "CNY": "7.241",
    "KZT": "497.6",
    "UZS": "12815",
    "GEL": "2.78",
    "TRY": "34.62",
    "AMD": "391.2",
    "THB": "33.9",
    "INR": "84.61",
    "BRL": "5.81",
    "IDR": "15890",
    "AZN": "1.7",
    "AED": "3.6725",
    "PLN": "4.02",
    "ILS": "3.64",
    "KGS": "86.7",
    "TJS": "10.93",
}
NAMES = {
    "USDT": ("Tether", True, "https://tether.to/", 18),
    "USDC": ("USD Coin", True, "https://www.centre.io/usdc", 18),
    "TON": ("Toncoin", False, "https://ton.org/", 9),
    "BTC": ("Bitcoin", False, "https://bitcoin.org/", 8),
    "ETH": ("Ethereum", False, "https://ethereum.org/", 18),
    "LTC": ("Litecoin", False, "https://litecoin.org/", 8),
    "BNB": ("Binance Coin", False, "https://www.binance.com/", 18),
    "TRX": ("TRON", False, "https://tron.network/", 6),
    "SOL": ("Solana", False, "https://solana.com/", 9),
}
# Paid amounts of fiat invoices are rounded up to what Crypto Bot displays.
DISPLAY_PLACES = {"USDT": 2, "USDC": 2, "TRX": 2, "BTC": 8, "ETH": 6, "LTC": 6, "BNB": 6}
PAID_BTN_NAMES = ("viewItem", "openChannel", "openBot", "callback")
SWAP_TO = ("USDT", "TON", "TRX", "ETH", "SOL", "BTC", "LTC")
MAX_EXPIRES_IN = 2_678_400
INVOICE_KEY_ORDER = (
    "invoice_id hash currency_type asset fiat amount accepted_assets paid_asset paid_amount "
    "paid_fiat_rate fee_asset fee_amount fee fee_in_usd pay_url bot_invoice_url "
    "mini_app_invoice_url web_app_invoice_url description status created_at allow_comments "
    "allow_anonymous expiration_date usd_rate paid_usd_rate paid_at paid_anonymously comment "
    "hidden_message payload paid_btn_name paid_btn_url swap_to"
).split()


class CpError(Exception):
    """An error answer: ``{"ok": false, "error": {"code": code, "name": name, **extra}}``."""

    def __init__(self, code: int, name: str, **extra: Any) -> None:
        super().__init__(name)
        self.code = code
        self.name = name
        self.extra = extra

    def envelope(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "name": self.name, **self.extra}}


def iso(moment: datetime) -> str:
    """``2025-04-02T17:03:05.198Z``: milliseconds and a Z, like Crypto Pay."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: Any, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise CpError(400, f"{name.upper()}_INVALID") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fmt(value: Decimal) -> str:
    """A decimal string without exponent or trailing zeros (``"10.5"``, ``"0.00001"``)."""
    text = format(value.normalize(), "f")
    return text


def fmt8(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.00000001"), rounding=ROUND_DOWN), "f")


def round_up(value: Decimal, asset: str) -> Decimal:
    places = DISPLAY_PLACES.get(asset, 4)
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_UP)


def required(params: dict[str, Any], key: str) -> Any:
    value = params.get(key)
    if value is None or value == "":
        raise CpError(400, f"PARAM_{key.upper()}_REQUIRED")
    return value


def amount_param(params: dict[str, Any], key: str = "amount") -> Decimal:
    """Amounts are decimal strings; JSON numbers are accepted too (read via their text)."""
    value = required(params, key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise CpError(400, f"{key.upper()}_INVALID")
    try:
        amount = Decimal(value if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise CpError(400, f"{key.upper()}_INVALID") from None
    if not amount.is_finite():
        raise CpError(400, f"{key.upper()}_INVALID")
    if amount <= 0:
        raise CpError(400, "AMOUNT_TOO_SMALL")
    return amount


def int_param(
    params: dict[str, Any], key: str, default: int | None = None, *, error: str | None = None
) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise CpError(400, error or f"{key.upper()}_INVALID")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CpError(400, error or f"{key.upper()}_INVALID") from None


def bool_param(params: dict[str, Any], key: str, default: bool) -> bool:
    value = params.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0"):
        return False
    raise CpError(400, f"{key.upper()}_INVALID")


def str_param(params: dict[str, Any], key: str, limit: int, *, utf8: bool = False) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = str(value)
    size = len(text.encode()) if utf8 else len(text)
    if size > limit:
        raise CpError(400, f"{key.upper()}_TOO_LONG")
    return text


def id_list(params: dict[str, Any], key: str) -> set[int] | None:
    """``invoice_ids``/``transfer_ids``/``check_ids``: a comma string (a list is accepted)."""
    value = params.get(key)
    if value is None or value == "":
        return None
    items = value if isinstance(value, list) else str(value).split(",")
    try:
        return {int(str(item).strip()) for item in items if str(item).strip()}
    except ValueError:
        raise CpError(400, f"{key.upper()}_INVALID") from None


def page(params: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    offset = int_param(params, "offset", 0) or 0
    count = int_param(params, "count", 100)
    if offset < 0:
        raise CpError(400, "OFFSET_INVALID")
    if count is None or not 1 <= count <= 1000:
        raise CpError(400, "COUNT_INVALID")
    return {"items": items[offset : offset + count]}


def order_invoice(invoice: dict[str, Any]) -> dict[str, Any]:
    ordered = {key: invoice[key] for key in INVOICE_KEY_ORDER if key in invoice}
    ordered.update({k: v for k, v in invoice.items() if k not in ordered})
    return ordered
