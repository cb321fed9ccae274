"""Promo codes in storage, on SQLite and PostgreSQL: the use taken in the order's
transaction, raced; given back on release; the discount written on the order and lines."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

import storage
from storage import OrderStatus, PromoKind, PromoRefusal, PromoRefused, PromoTerms
from storage.models import OrderLine
from tests.storage.conftest import catalog, payment, product, seed

TTL = timedelta(minutes=15)


def terms(
    code: str = "SAVE10", kind: PromoKind = PromoKind.PERCENT, value: str = "10", **kw: object
) -> PromoTerms:
    return PromoTerms(code=code, kind=kind, value=Decimal(value), currency="USD", **kw)  # type: ignore[arg-type]


async def place(
    db: storage.Database, prod: storage.Product, telegram_id: int, promo: str | None, qty: int = 1
) -> storage.Order | None:
    assert prod.id is not None
    return await storage.place_order(
        db,
        storage.Buyer(telegram_id, None, None),
        [(prod.id, qty, prod.price)],
        "USD",
        storage.utcnow() + TTL,
        promo=promo,
    )


async def used(db: storage.Database, code: str) -> int:
    promo = await storage.get_promo(db, code)
    assert promo is not None
    return promo.used


async def test_ten_buyers_race_for_a_one_use_code_exactly_one_gets_it(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=20)
    await storage.add_promo(db, terms("ONCE", max_uses=1))

    async def attempt(n: int) -> storage.Order | PromoRefusal | None:
        try:
            return await place(db, prod, 5000 + n, "once")
        except PromoRefused as refused:
            return refused.reason

    results = await asyncio.gather(*(attempt(n) for n in range(10)))
    winners = [r for r in results if isinstance(r, storage.Order)]
    assert len(winners) == 1
    assert [r for r in results if not isinstance(r, storage.Order)] == [PromoRefusal.USED_UP] * 9
    assert winners[0].discount == Decimal("1.00") and winners[0].total == Decimal("8.99")
    assert await used(db, "ONCE") == 1
    async with db.session() as s:
        uses = await s.scalar(sa.select(sa.func.count()).select_from(storage.PromoUse))
        orders = await s.scalar(sa.select(sa.func.count()).select_from(storage.Order))
    assert (uses, orders) == (1, 1)  # the losers wrote nothing


async def test_discount_is_written_on_order_lines_and_the_saved_code_is_cleared(
    db: storage.Database,
) -> None:
    await storage.upsert_catalog(
        db,
        catalog(
            product("a", ["A1", "A2"], price=Decimal("3.33")),
            product("b", ["B1"], price=Decimal("5.00")),
        ),
    )
    a, b = await storage.get_product(db, "a"), await storage.get_product(db, "b")
    assert a and b and a.id and b.id
    await storage.add_promo(db, terms("Fix", PromoKind.FIXED, "5"))
    who = storage.Buyer(7001, "u", "en")
    await storage.save_promo(db, who, "FIX")
    assert await storage.saved_promo(db, 7001) == "fix"
    order = await storage.place_order(
        db,
        who,
        [(a.id, 2, a.price), (b.id, 1, b.price)],
        "USD",
        storage.utcnow() + TTL,
        promo="fix",
    )
    assert order is not None and order.id is not None
    assert (order.discount, order.total, order.promo_code) == (
        Decimal("5.00"),
        Decimal("6.66"),
        "fix",
    )
    async with db.session() as s:
        lines = (await s.scalars(sa.select(OrderLine).order_by(OrderLine.id))).all()
    assert [ln.discount for ln in lines] == [Decimal("2.86"), Decimal("2.14")]
    assert sum(ln.discount for ln in lines) == order.discount
    assert await storage.saved_promo(db, 7001) is None


async def test_per_buyer_is_counted_and_a_use_comes_back_on_cancel_and_expiry(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=5)
    await storage.add_promo(db, terms("TWICE", max_uses=2, per_buyer=1))
    first = await place(db, prod, 8001, "twice")
    assert first is not None and first.id is not None
    with pytest.raises(PromoRefused) as again:
        await place(db, prod, 8001, "twice")
    assert again.value.reason == PromoRefusal.ALREADY_USED
    second = await place(db, prod, 8002, "twice")
    assert second is not None and second.id is not None
    with pytest.raises(PromoRefused) as gone:
        await place(db, prod, 8003, "twice")
    assert gone.value.reason == PromoRefusal.USED_UP

    assert await storage.release_order(db, first.id, OrderStatus.CANCELLED)
    assert await used(db, "twice") == 1
    assert await place(db, prod, 8001, "twice") is not None  # the buyer may use it again
    assert await storage.release_order(db, second.id, OrderStatus.EXPIRED)
    assert await used(db, "twice") == 1
    assert await place(db, prod, 8003, "twice") is not None
    assert await used(db, "twice") == 2


async def test_a_paid_order_keeps_its_use_and_settles_at_the_discounted_total(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=2)
    await storage.add_promo(db, terms("HALF", value="50"))
    order = await place(db, prod, 9001, "half")
    assert order is not None and order.id is not None
    assert order.total == Decimal("4.99")  # 9.99 - 5.00 (4.995 rounded half up)
    result = await storage.settle(db, payment(order, paid_amount=Decimal("4.99")))
    assert result.outcome == storage.SettleOutcome.SETTLED
    assert not await storage.release_order(db, order.id, OrderStatus.EXPIRED)
    assert await used(db, "half") == 1
    (summary,) = await storage.list_promos(db)
    assert (summary.paid_orders, summary.revenue) == (1, Decimal("4.99"))


async def test_refusals_write_nothing_and_leave_the_stock(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    assert prod.id is not None
    await storage.add_promo(db, terms("MIN", min_total=Decimal("20")))
    await storage.add_promo(db, terms("OTHER", skus=("elsewhere",)))
    await storage.add_promo(db, terms("OFF"))
    assert await storage.switch_off_promo(db, "off")
    cases = {
        "nope": PromoRefusal.UNKNOWN,
        "min": PromoRefusal.BELOW_MINIMUM,
        "other": PromoRefusal.NOT_FOR_THESE,
        "off": PromoRefusal.SWITCHED_OFF,
    }
    for code, reason in cases.items():
        with pytest.raises(PromoRefused) as refused:
            await place(db, prod, 9100, code)
        assert refused.value.reason == reason, code
    assert await storage.stock_counts(db, prod.id) == (1, 0, 0)
    with pytest.raises(storage.PromoExists):
        await storage.add_promo(db, terms("min"))
