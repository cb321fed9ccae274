"""The discount arithmetic: exact, half-up to the minor unit, spread without a cent lost."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from storage import PromoKind, PromoRefusal, PromoTerms, Quote, discount_amount, evaluate, spread
from storage.discounts import minor_unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def terms(kind: PromoKind = PromoKind.PERCENT, value: str = "10", **kw: object) -> PromoTerms:
    return PromoTerms(code="x", kind=kind, value=Decimal(value), currency="USD", **kw)  # type: ignore[arg-type]


def test_minor_units() -> None:
    assert minor_unit("USD") == Decimal("0.01")
    assert minor_unit("rub") == Decimal("0.01")
    assert minor_unit("JPY") == Decimal(1)


def test_percent_rounds_half_up_to_the_cent() -> None:
    assert discount_amount(PromoKind.PERCENT, Decimal(50), Decimal("9.99"), "USD") == Decimal(
        "5.00"
    )
    assert discount_amount(PromoKind.PERCENT, Decimal(10), Decimal("0.05"), "USD") == Decimal(
        "0.01"
    )
    assert discount_amount(PromoKind.PERCENT, Decimal(10), Decimal("0.04"), "USD") == Decimal(
        "0.00"
    )
    assert discount_amount(PromoKind.PERCENT, Decimal("12.5"), Decimal("100"), "JPY") == Decimal(13)


def test_fixed_is_capped_at_the_applicable_subtotal() -> None:
    assert discount_amount(PromoKind.FIXED, Decimal(5), Decimal("3.00"), "USD") == Decimal("3.00")
    assert discount_amount(PromoKind.FIXED, Decimal(5), Decimal("30"), "USD") == Decimal("5.00")


def test_spread_over_many_random_orders_is_exact_and_never_negative() -> None:
    rng = random.Random(16)
    for _ in range(3000):
        totals = [Decimal(rng.randint(0, 50_000)) / 100 for _ in range(rng.randint(1, 6))]
        cap = sum(totals, Decimal(0))
        if rng.random() < 0.5:
            d = discount_amount(PromoKind.PERCENT, Decimal(rng.randint(1, 99)), cap, "USD")
        else:
            d = discount_amount(PromoKind.FIXED, Decimal(rng.randint(1, 9999)) / 100, cap, "USD")
        parts = spread(d, totals, "USD")
        assert sum(parts, Decimal(0)) == d
        assert all(Decimal(0) <= p <= t for p, t in zip(parts, totals, strict=True))
        assert all(p == p.quantize(Decimal("0.01")) for p in parts)


def test_spread_is_proportional() -> None:
    assert spread(Decimal("1.00"), [Decimal(1), Decimal(3)], "USD") == [
        Decimal("0.25"),
        Decimal("0.75"),
    ]
    assert spread(Decimal("0.01"), [Decimal(0), Decimal(5)], "USD") == [Decimal(0), Decimal("0.01")]
    with pytest.raises(ValueError):
        spread(Decimal("0.001"), [Decimal(1)], "USD")


def test_evaluate_each_refusal_in_order() -> None:
    lines = [("a", Decimal("10.00"))]
    assert evaluate(terms(active=False), lines, "USD", NOW, 0) == PromoRefusal.SWITCHED_OFF
    assert evaluate(terms(valid_until=NOW), lines, "USD", NOW, 0) == PromoRefusal.EXPIRED
    assert evaluate(terms(max_uses=3, used=3), lines, "USD", NOW, 0) == PromoRefusal.USED_UP
    assert evaluate(terms(per_buyer=2), lines, "USD", NOW, 2) == PromoRefusal.ALREADY_USED
    assert evaluate(terms(skus=("b",)), lines, "USD", NOW, 0) == PromoRefusal.NOT_FOR_THESE
    assert evaluate(terms(), lines, "EUR", NOW, 0) == PromoRefusal.NOT_FOR_THESE
    below = evaluate(terms(min_total=Decimal("10.01")), lines, "USD", NOW, 0)
    assert below == PromoRefusal.BELOW_MINIMUM
    zero = evaluate(terms(PromoKind.FIXED, "10"), lines, "USD", NOW, 0)
    assert zero == PromoRefusal.ZERO_TOTAL
    ok = evaluate(terms(valid_until=NOW + timedelta(seconds=1)), lines, "USD", NOW, 0)
    assert ok == Quote(Decimal("10.00"), Decimal("1.00"), Decimal("9.00"), (Decimal("1.00"),))


def test_sku_restricted_code_discounts_only_its_lines() -> None:
    lines = [("a", Decimal("10.00")), ("b", Decimal("20.00"))]
    quote = evaluate(terms(PromoKind.FIXED, "50", skus=("a",)), lines, "USD", NOW, 0)
    assert isinstance(quote, Quote)
    assert (quote.discount, quote.total) == (Decimal("10.00"), Decimal("20.00"))
    assert quote.line_discounts == (Decimal("10.00"), Decimal(0))


def test_lines_priced_finer_than_the_cent_carry_only_whole_cents() -> None:
    """1.005 + 1.005 USD: a fixed 5 is capped at 2.01 by the subtotal, but each line can
    carry only 1.00 in whole cents; the quote gives 2.00 and never raises."""
    lines = [("a", Decimal("1.005")), ("b", Decimal("1.005"))]
    quote = evaluate(terms(PromoKind.FIXED, "5"), lines, "USD", NOW, 0)
    assert isinstance(quote, Quote)
    assert (quote.discount, quote.total) == (Decimal("2.00"), Decimal("0.010"))
    assert sum(quote.line_discounts) == quote.discount
