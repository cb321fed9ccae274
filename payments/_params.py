"""Checks the documented limits and builds the wire parameters of each method.

Everything here is pure: a ``ValueError`` that names the parameter, before any request is
sent. Decimals go out as plain decimal strings and lists as comma strings, because the API
rejects JSON arrays (``accepted_assets`` as an array gives 500 APP_ERROR).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .models import decimal_to_wire

Amount = Decimal | str | int | float

PAID_BTN_NAMES = frozenset({"viewItem", "openChannel", "openBot", "callback"})
INVOICE_STATUSES = frozenset({"active", "paid"})
CHECK_STATUSES = frozenset({"active", "activated"})
CURRENCY_TYPES = frozenset({"crypto", "fiat"})

MAX_DESCRIPTION = 1024
MAX_HIDDEN_MESSAGE = 2048
MAX_PAYLOAD_BYTES = 4096
MAX_EXPIRES_IN = 2_678_400  # 31 days
MAX_SPEND_ID = 64
MAX_COMMENT = 1024
MAX_COUNT = 1000


def amount(value: Amount, name: str = "amount") -> str:
    """Validate a positive finite amount and return its wire string."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a Decimal, str or int, not bool")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite")
    try:
        dec = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"{name} is not a decimal number: {value!r}") from None
    if not dec.is_finite() or dec <= 0:
        raise ValueError(f"{name} must be a finite number greater than 0, got {value!r}")
    return decimal_to_wire(dec)


def code(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty currency code")
    return value.strip()


def text(value: str, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value


def comma_list(values: Iterable[Any] | str, name: str) -> str:
    items = values.split(",") if isinstance(values, str) else list(values)
    parts = [str(v).strip() for v in items]
    if not parts or any(not p or "," in p for p in parts):
        raise ValueError(f"{name} must be a non-empty list without empty items")
    return ",".join(parts)


def positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def id_list(values: Iterable[int] | str, name: str) -> str:
    if isinstance(values, str):
        values = [int(v) if v.strip().isdigit() else -1 for v in values.split(",")]
    return ",".join(str(positive_int(v, name)) for v in values) or _empty(name)


def _empty(name: str) -> str:
    raise ValueError(f"{name} must not be empty")


def paging(params: dict[str, Any], offset: int | None, count: int | None) -> None:
    if offset is not None:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be an integer >= 0, got {offset!r}")
        params["offset"] = offset
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be an integer in 1..{MAX_COUNT}, got {count!r}")
        params["count"] = count


def spend_id(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SPEND_ID:
        got = len(value) if isinstance(value, str) else type(value).__name__
        raise ValueError(f"spend_id must be 1..{MAX_SPEND_ID} characters, got {got}")
    return value


def iso_utc(value: datetime, name: str) -> str:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def create_invoice(
    *,
    amount_: Amount,
    asset: str | None,
    fiat: str | None,
    currency_type: str | None,
    accepted_assets: Iterable[str] | str | None,
    description: str | None,
    hidden_message: str | None,
    paid_btn_name: str | None,
    paid_btn_url: str | None,
    swap_to: str | None,
    payload: str | None,
    allow_comments: bool | None,
    allow_anonymous: bool | None,
    expires_in: int | None,
) -> dict[str, Any]:
    kind = currency_type if currency_type is not None else ("fiat" if fiat else "crypto")
    if kind not in CURRENCY_TYPES:
        raise ValueError(f"currency_type must be 'crypto' or 'fiat', got {currency_type!r}")
    params: dict[str, Any] = {}
    if currency_type is not None or kind == "fiat":
        params["currency_type"] = kind
    if kind == "crypto":
        if asset is None:
            raise ValueError("asset is required when currency_type is 'crypto'")
        if fiat is not None:
            raise ValueError("fiat is only allowed when currency_type is 'fiat'")
        if accepted_assets is not None:
            raise ValueError("accepted_assets is only allowed when currency_type is 'fiat'")
        params["asset"] = code(asset, "asset")
    else:
        if fiat is None:
            raise ValueError("fiat is required when currency_type is 'fiat'")
        if asset is not None:
            raise ValueError("asset is only allowed when currency_type is 'crypto'")
        params["fiat"] = code(fiat, "fiat")
        if accepted_assets is not None:
            params["accepted_assets"] = comma_list(accepted_assets, "accepted_assets")
    params["amount"] = amount(amount_)
    if description is not None:
        params["description"] = text(description, "description", MAX_DESCRIPTION)
    if hidden_message is not None:
        params["hidden_message"] = text(hidden_message, "hidden_message", MAX_HIDDEN_MESSAGE)
    if paid_btn_name is not None:
        if paid_btn_name not in PAID_BTN_NAMES:
            allowed = ", ".join(sorted(PAID_BTN_NAMES))
            raise ValueError(f"paid_btn_name must be one of {allowed}, got {paid_btn_name!r}")
        if not paid_btn_url:
            raise ValueError("paid_btn_url is required when paid_btn_name is set")
        params["paid_btn_name"] = paid_btn_name
    if paid_btn_url is not None:
        if paid_btn_name is None:
            raise ValueError("paid_btn_url needs paid_btn_name")
        if not paid_btn_url.startswith(("http://", "https://")):
            raise ValueError("paid_btn_url must start with http:// or https://")
        params["paid_btn_url"] = paid_btn_url
    if swap_to is not None:
        params["swap_to"] = code(swap_to, "swap_to")
    if payload is not None:
        if not isinstance(payload, str):
            raise ValueError("payload must be a string")
        size = len(payload.encode("utf-8"))
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload is {size} bytes in UTF-8; the limit is {MAX_PAYLOAD_BYTES}")
        params["payload"] = payload
    if allow_comments is not None:
        params["allow_comments"] = bool(allow_comments)
    if allow_anonymous is not None:
        params["allow_anonymous"] = bool(allow_anonymous)
    if expires_in is not None:
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)
            or not 1 <= expires_in <= MAX_EXPIRES_IN
        ):
            raise ValueError(f"expires_in must be an integer in 1..{MAX_EXPIRES_IN} seconds")
        params["expires_in"] = expires_in
    return params


def transfer(
    *,
    user_id: int,
    asset: str,
    amount_: Amount,
    spend_id_: str,
    comment: str | None,
    disable_send_notification: bool | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "user_id": positive_int(user_id, "user_id"),
        "asset": code(asset, "asset"),
        "amount": amount(amount_),
        "spend_id": spend_id(spend_id_),
    }
    if comment is not None:
        params["comment"] = text(comment, "comment", MAX_COMMENT)
    if disable_send_notification is not None:
        params["disable_send_notification"] = bool(disable_send_notification)
    return params


def create_check(
    *,
    asset: str,
    amount_: Amount,
    pin_to_user_id: int | None,
    pin_to_username: str | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"asset": code(asset, "asset"), "amount": amount(amount_)}
    if pin_to_user_id is not None and pin_to_username is not None:
        raise ValueError("pass pin_to_user_id or pin_to_username, not both")
    if pin_to_user_id is not None:
        params["pin_to_user_id"] = positive_int(pin_to_user_id, "pin_to_user_id")
    if pin_to_username is not None:
        params["pin_to_username"] = code(pin_to_username, "pin_to_username").lstrip("@")
    return params


def status(value: str | None, allowed: frozenset[str], params: dict[str, Any]) -> None:
    if value is None:
        return
    if value not in allowed:
        raise ValueError(f"status must be one of {', '.join(sorted(allowed))}, got {value!r}")
    params["status"] = value
