"""Crypto Pay objects as pydantic v2 models.

Rules that hold for every model here:

* money and rates are :class:`~decimal.Decimal`, parsed from strings *or* numbers via ``str``
  (some fields documented as Number arrive as strings and vice versa) and serialised to JSON as
  plain decimal strings, never exponent notation;
* assets, fiats and statuses are open strings: the service adds and removes them;
* unknown and deprecated fields are ignored, missing optional ones are ``None``;
* datetimes are aware UTC (a naive value is taken as UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
)

__all__ = [
    "App",
    "AppStats",
    "Balance",
    "Check",
    "Currency",
    "ExchangeRate",
    "Invoice",
    "Transfer",
    "Update",
    "WireDecimal",
    "decimal_to_wire",
]


def decimal_to_wire(value: Decimal) -> str:
    """``Decimal("0.00001")`` -> ``"0.00001"`` (``format(d, "f")`` never uses an exponent)."""
    return format(value, "f")


def _empty_to_none(value: Any) -> Any:
    return None if value == "" else value


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _split_assets(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _to_str(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


_decimal_serializer = PlainSerializer(decimal_to_wire, return_type=str, when_used="json")
# pydantic's own Decimal parsing (in Rust) takes strings and numbers (floats via their repr),
# and rejects NaN, infinities and booleans; only the JSON output needs our serializer.
WireDecimal = Annotated[Decimal, _decimal_serializer]
OptDecimal = Annotated[
    Decimal | None,
    BeforeValidator(_empty_to_none),
    PlainSerializer(
        lambda v: None if v is None else decimal_to_wire(v),
        return_type=str | None,
        when_used="json",
    ),
]
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
AssetList = Annotated[list[str], BeforeValidator(_split_assets)]
LooseStr = Annotated[str, BeforeValidator(_to_str)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Invoice(_Model):
    invoice_id: int
    status: str
    amount: WireDecimal
    hash: str = ""
    currency_type: str = "crypto"
    asset: str | None = None
    fiat: str | None = None
    accepted_assets: AssetList | None = None
    paid_asset: str | None = None
    paid_amount: OptDecimal = None
    paid_fiat_rate: OptDecimal = None
    paid_usd_rate: OptDecimal = None
    fee_asset: str | None = None
    fee_amount: OptDecimal = None
    fee_in_usd: OptDecimal = None
    fee: OptDecimal = None  # deprecated since 1.2, still sent
    usd_rate: OptDecimal = None  # deprecated since 1.2, still sent
    pay_url: str | None = None  # deprecated since 1.2, still sent
    bot_invoice_url: str | None = None
    mini_app_invoice_url: str | None = None
    web_app_invoice_url: str | None = None
    description: str | None = None
    hidden_message: str | None = None
    paid_btn_name: str | None = None
    paid_btn_url: str | None = None
    payload: str | None = None
    comment: str | None = None
    allow_comments: bool | None = None
    allow_anonymous: bool | None = None
    paid_anonymously: bool | None = None
    swap_to: str | None = None
    is_swapped: bool | None = None
    swapped_uid: LooseStr | None = None
    swapped_to: str | None = None
    swapped_rate: OptDecimal = None
    swapped_output: OptDecimal = None
    swapped_usd_amount: OptDecimal = None
    swapped_usd_rate: OptDecimal = None
    created_at: UtcDatetime | None = None
    expiration_date: UtcDatetime | None = None
    paid_at: UtcDatetime | None = None

    @property
    def url(self) -> str | None:
        """The link to give the buyer (``pay_url`` on pre-1.2 payloads)."""
        return self.bot_invoice_url or self.pay_url


class Transfer(_Model):
    transfer_id: int
    asset: str
    amount: WireDecimal
    status: str = "completed"
    user_id: int | None = None
    spend_id: LooseStr | None = None  # returned by getTransfers, not by transfer
    comment: str | None = None
    completed_at: UtcDatetime | None = None


class Check(_Model):
    check_id: int
    asset: str
    amount: WireDecimal
    status: str
    hash: str = ""
    bot_check_url: str | None = None
    created_at: UtcDatetime | None = None
    activated_at: UtcDatetime | None = None


class Balance(_Model):
    currency_code: str
    available: WireDecimal
    onhold: WireDecimal = Decimal(0)


class ExchangeRate(_Model):
    source: str
    target: str
    rate: WireDecimal
    is_valid: bool = False
    is_crypto: bool | None = None
    is_fiat: bool | None = None


class Currency(_Model):
    code: str
    name: str = ""
    is_blockchain: bool = False
    is_stablecoin: bool = False
    is_fiat: bool = False
    url: str | None = None
    decimals: int | None = None


class AppStats(_Model):
    volume: WireDecimal
    conversion: WireDecimal
    unique_users_count: int = 0
    created_invoice_count: int = 0
    paid_invoice_count: int = 0
    start_at: UtcDatetime | None = None
    end_at: UtcDatetime | None = None


class App(_Model):
    app_id: int
    name: str
    payment_processing_bot_username: str | None = None


class Update(_Model):
    """A webhook delivery. ``update_id`` is documented as non-unique: key on the invoice."""

    update_id: int
    update_type: str
    payload: Invoice
    request_date: UtcDatetime | None = None
