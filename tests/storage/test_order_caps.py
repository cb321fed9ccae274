"""The per-shopper caps against hoarding, counted inside the order's transaction: units held
in pending orders (MAX_RESERVED_UNITS) and orders abandoned within the hour
(MAX_ABANDONED_PER_HOUR)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

import storage
from storage import Order, OrderStatus
from tests.storage.conftest import buyer, catalog, product, seed

SOON = timedelta(minutes=15)


async def counts(db: storage.Database) -> tuple[int, int]:
    """(orders, order lines) in the database."""
    async with db.session() as s:
        orders = await s.scalar(sa.select(sa.func.count()).select_from(storage.Order))
        lines = await s.scalar(sa.select(sa.func.count()).select_from(storage.OrderLine))
    return int(orders or 0), int(lines or 0)


async def test_units_held_across_orders_and_lines_are_capped(db: storage.Database) -> None:
    await storage.upsert_catalog(
        db,
        catalog(
            product("a", [f"A{i}" for i in range(20)]),
            product("guide", [], unlimited=True, content="https://example.com/g"),
        ),
    )
    a, guide = await storage.get_product(db, "a"), await storage.get_product(db, "guide")
    assert a and guide and a.id and guide.id
    cust = await buyer(db)
    assert cust.id is not None
    exp = storage.utcnow() + SOON

    first = await storage.create_order(db, cust.id, [(a.id, 6, a.price)], "USD", exp, max_units=10)
    assert first is not None
    # Two lines (an unlimited product counts too) that together pass the cap.
    lines = [(a.id, 2, a.price), (guide.id, 3, guide.price)]
    with pytest.raises(storage.TooManyUnits) as refused:
        await storage.create_order(db, cust.id, lines, "USD", exp, max_units=10)
    assert (refused.value.held, refused.value.limit) == (6, 10)
    assert await counts(db) == (1, 1)  # nothing written
    assert await storage.stock_counts(db, a.id) == (14, 6, 0)

    # Up to the cap exactly is fine; another customer has their own.
    lines = [(a.id, 1, a.price), (guide.id, 3, guide.price)]
    assert await storage.create_order(db, cust.id, lines, "USD", exp, max_units=10) is not None
    other = await buyer(db, 2002)
    assert other.id is not None
    line = [(guide.id, 10, guide.price)]
    assert await storage.create_order(db, other.id, line, "USD", exp, max_units=10) is not None

    # Units of orders no longer pending are not held.
    assert first.id is not None
    assert await storage.release_order(db, first.id, OrderStatus.CANCELLED)
    line = [(guide.id, 6, guide.price)]
    assert await storage.create_order(db, cust.id, line, "USD", exp, max_units=10) is not None


async def test_place_order_refused_for_units_writes_not_even_the_buyer(
    db: storage.Database,
) -> None:
    prod = await seed(db, "guide", codes=0, unlimited=True, content="x")
    assert prod.id is not None
    exp = storage.utcnow() + SOON
    with pytest.raises(storage.TooManyUnits) as refused:
        await storage.place_order(
            db,
            storage.Buyer(4242, "hoarder", "en"),
            [(prod.id, 10**6, prod.price)],
            "USD",
            exp,
            max_units=10,
        )
    assert refused.value.held == 0
    assert await counts(db) == (0, 0)
    async with db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(storage.Customer)) == 0


async def test_units_cap_holds_under_concurrent_taps(db: storage.Database) -> None:
    prod = await seed(db, codes=40)
    cust = await buyer(db)
    assert cust.id and prod.id
    exp = storage.utcnow() + SOON

    async def tap() -> str:
        assert cust.id and prod.id
        try:
            order = await storage.create_order(
                db, cust.id, [(prod.id, 3, prod.price)], "USD", exp, max_units=10
            )
        except storage.TooManyUnits:
            return "refused"
        return "created" if order is not None else "out_of_stock"

    results = await asyncio.gather(*(tap() for _ in range(8)))
    assert sorted(results) == ["created"] * 3 + ["refused"] * 5  # 9 units held, not 24
    assert await storage.stock_counts(db, prod.id) == (31, 9, 0)


async def abandon(db: storage.Database, customer_id: int, prod: storage.Product, **kw: bool) -> int:
    assert prod.id is not None
    exp = storage.utcnow() + SOON
    order = await storage.create_order(db, customer_id, [(prod.id, 1, prod.price)], "USD", exp)
    assert order is not None and order.id is not None
    assert await storage.release_order(db, order.id, OrderStatus.CANCELLED, **kw)
    return order.id


async def test_abandoned_orders_within_the_hour_pause_ordering(db: storage.Database) -> None:
    prod = await seed(db, codes=20)
    cust = await buyer(db)
    assert cust.id and prod.id
    exp = storage.utcnow() + SOON
    line = [(prod.id, 1, prod.price)]

    # Released by the shop (Crypto Pay down, invoice not recorded): not the buyer's doing.
    for _ in range(3):
        await abandon(db, cust.id, prod)
    ids = [await abandon(db, cust.id, prod, abandoned=True) for _ in range(3)]
    # An hour and more ago: out of the window.
    async with db.transaction() as s:
        await s.execute(
            sa.update(Order)
            .where(Order.id == ids[0])
            .values(abandoned_at=storage.utcnow() - timedelta(minutes=61))
        )
    assert await storage.create_order(db, cust.id, line, "USD", exp, max_abandoned=3) is not None

    await abandon(db, cust.id, prod, abandoned=True)  # the third within the hour
    async with db.session() as s:
        oldest_in_hour = await s.scalar(sa.select(Order.abandoned_at).where(Order.id == ids[1]))
    before = await counts(db)
    with pytest.raises(storage.TooManyAbandoned) as refused:
        await storage.create_order(db, cust.id, line, "USD", exp, max_abandoned=3)
    assert oldest_in_hour is not None
    assert refused.value.until == oldest_in_hour + timedelta(hours=1)
    assert await counts(db) == before  # nothing written

    # Another customer is not affected; expiry by the buyer's neglect counts like a cancel.
    other = await buyer(db, 2002)
    assert other.id is not None
    assert await storage.create_order(db, other.id, line, "USD", exp, max_abandoned=3)
    for _ in range(2):
        await abandon(db, other.id, prod, abandoned=True)
    order = await storage.create_order(db, other.id, line, "USD", exp, max_abandoned=3)
    assert order is not None and order.id is not None
    assert await storage.release_order(db, order.id, OrderStatus.EXPIRED, abandoned=True)
    with pytest.raises(storage.TooManyAbandoned):
        await storage.create_order(db, other.id, line, "USD", exp, max_abandoned=3)


async def test_release_marks_abandonment_only_when_asked(db: storage.Database) -> None:
    prod = await seed(db, codes=2, price=Decimal("1.00"))
    cust = await buyer(db)
    assert cust.id is not None
    mine = await abandon(db, cust.id, prod, abandoned=True)
    ours = await abandon(db, cust.id, prod)
    async with db.session() as s:
        rows = dict(
            (await s.execute(sa.select(Order.id, Order.abandoned_at).order_by(Order.id))).all()
        )
    assert rows[mine] is not None and rows[mine].tzinfo is not None
    assert rows[ours] is None
