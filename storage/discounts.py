"""Promo discounts as pure arithmetic: exact Decimal, half-up to the currency's minor unit.

No database here: the checkout transaction (storage/promos.py) and the price shown on a
card or a cart (bot/shop/promos.py) compute with the same functions, so what the shopper
is shown is what the invoice asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from enum import StrEnum

from storage.types import MONEY_SCALE

# ISO 4217 digits after the point, where they are not 2 (Crypto Pay's fiats are all 2).
_MINOR_DIGITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0}
_SCALE = 10**MONEY_SCALE
HUNDRED = Decimal(100)


class PromoKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


class PromoRefusal(StrEnum):
    """Why a code does not apply; each is worded as one sentence for the shopper."""

    UNKNOWN = "unknown"
    SWITCHED_OFF = "switched_off"
    EXPIRED = "expired"
    USED_UP = "used_up"
    ALREADY_USED = "already_used"
    NOT_FOR_THESE = "not_for_these"
    BELOW_MINIMUM = "below_minimum"
    ZERO_TOTAL = "zero_total"


# Refusals that depend on the order (its products or amount), not on the code: the code may
# still apply to another order, so a shopper keeps it.
ORDER_DEPENDENT = frozenset(
    {PromoRefusal.NOT_FOR_THESE, PromoRefusal.BELOW_MINIMUM, PromoRefusal.ZERO_TOTAL}
)


def minor_unit(currency: str) -> Decimal:
    """The currency's smallest amount: 0.01 for USD, EUR, RUB…; 1 for JPY."""
    return Decimal(1).scaleb(-_MINOR_DIGITS.get(currency.upper(), 2))


@dataclass(frozen=True)
class PromoTerms:
    """What a code promises, as stored."""

    code: str
    kind: PromoKind
    value: Decimal
    currency: str
    max_uses: int | None = None
    used: int = 0
    per_buyer: int = 1
    valid_until: datetime | None = None  # exclusive
    min_total: Decimal | None = None
    skus: tuple[str, ...] = ()  # empty: every product
    active: bool = True


@dataclass(frozen=True)
class Quote:
    """An order's price with a code: `line_discounts[i]` belongs to the i-th line; they add
    up to `discount` exactly."""

    subtotal: Decimal
    discount: Decimal
    total: Decimal
    line_discounts: tuple[Decimal, ...]


def discount_amount(kind: PromoKind, value: Decimal, applicable: Decimal, currency: str) -> Decimal:
    """The discount on an applicable subtotal: a percent of it or a fixed amount, rounded
    half-up to the minor unit, never more than the subtotal (rounded down to the unit)."""
    unit = minor_unit(currency)
    if kind == PromoKind.PERCENT:
        wanted = (applicable * value / HUNDRED).quantize(unit, ROUND_HALF_UP)
    else:
        wanted = value.quantize(unit, ROUND_HALF_UP)
    cap = applicable.quantize(unit, ROUND_DOWN)
    return max(Decimal(0), min(wanted, cap))


def spread(discount: Decimal, line_totals: Sequence[Decimal], currency: str) -> list[Decimal]:
    """`discount` over lines in proportion to their totals, in whole minor units (largest
    remainder first): the parts add up to `discount` exactly and none exceeds its line.
    A line of total 0 gets 0 (so a line a code does not apply to is passed as 0)."""
    unit = minor_unit(currency)
    units = int(discount / unit)
    if Decimal(units) * unit != discount or units < 0:
        raise ValueError(f"{discount} is not a whole number of {unit}")
    weights = [int(total * _SCALE) for total in line_totals]
    whole = sum(weights)
    if units == 0:
        return [Decimal(0) for _ in line_totals]
    caps = [int((total / unit).to_integral_value(ROUND_DOWN)) for total in line_totals]
    if units > sum(caps):
        raise ValueError("the discount exceeds the lines")
    shares = [min(units * w // whole, cap) for w, cap in zip(weights, caps, strict=True)]
    left = units - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-((units * weights[i]) % whole), i))
    while left:
        for i in by_remainder:
            if left and shares[i] < caps[i]:
                shares[i] += 1
                left -= 1
    return [Decimal(share) * unit for share in shares]


def evaluate(
    terms: PromoTerms,
    lines: Sequence[tuple[str, Decimal]],
    currency: str,
    now: datetime,
    buyer_uses: int,
) -> Quote | PromoRefusal:
    """The price of lines (sku, line total) with the code, or why it does not apply —
    in the order a shopper would want to hear it."""
    if not terms.active:
        return PromoRefusal.SWITCHED_OFF
    if terms.valid_until is not None and now >= terms.valid_until:
        return PromoRefusal.EXPIRED
    if terms.max_uses is not None and terms.used >= terms.max_uses:
        return PromoRefusal.USED_UP
    if buyer_uses >= terms.per_buyer:
        return PromoRefusal.ALREADY_USED
    wanted = set(terms.skus)
    applies = [not wanted or sku in wanted for sku, _ in lines]
    if currency.upper() != terms.currency.upper() or not any(applies):
        return PromoRefusal.NOT_FOR_THESE
    subtotal = sum((total for _, total in lines), Decimal(0))
    if terms.min_total is not None and subtotal < terms.min_total:
        return PromoRefusal.BELOW_MINIMUM
    eligible = [total if ok else Decimal(0) for (_, total), ok in zip(lines, applies, strict=True)]
    discount = discount_amount(terms.kind, terms.value, sum(eligible, Decimal(0)), currency)
    # Never more than the lines can carry each in whole minor units (prices with more
    # decimals than the currency's unit: 1.005 + 1.005 can carry 2.00, not 2.01).
    unit = minor_unit(currency)
    discount = min(
        discount, sum((line.quantize(unit, ROUND_DOWN) for line in eligible), Decimal(0))
    )
    total = subtotal - discount
    if total <= 0:  # Crypto Pay cannot invoice zero
        return PromoRefusal.ZERO_TOTAL
    return Quote(subtotal, discount, total, tuple(spread(discount, eligible, currency)))
