from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import storage
from storage import OrderStatus, StockStatus, StockUnit
from tests.storage.conftest import buyer, catalog, order_for, payment, product, seed

SOON = timedelta(minutes=15)


async def open_orders(db: storage.Database, customer_id: int) -> int:
    orders = await storage.list_customer_orders(db, customer_id, limit=1000)
    return sum(o.status is OrderStatus.PENDING for o in orders)


async def test_create_order_reserves_all_lines_or_nothing(db: storage.Database) -> None:
    await storage.upsert_catalog(
        db, catalog(product("a", ["A1", "A2"]), product("b", ["B1"], price=Decimal("2.5")))
    )
    a, b = await storage.get_product(db, "a"), await storage.get_product(db, "b")
    assert a and b and a.id and b.id
    cust = await buyer(db)
    assert cust.id is not None
    expires = storage.utcnow() + SOON

    too_many = await storage.create_order(
        db, cust.id, [(a.id, 2, a.price), (b.id, 2, b.price)], "USD", expires
    )
    assert too_many is None
    assert await storage.stock_counts(db, a.id) == (2, 0, 0)  # line a was rolled back
    assert await open_orders(db, cust.id) == 0

    order = await storage.create_order(
        db, cust.id, [(a.id, 2, a.price), (b.id, 1, b.price)], "USD", expires
    )
    assert order is not None and order.status is OrderStatus.PENDING
    assert order.total == Decimal("22.48")
    assert await storage.stock_counts(db, a.id) == (0, 2, 0)
    details = await storage.get_order(db, order.id or 0)
    assert details is not None
    assert [(ln.product_id, ln.quantity) for ln in details.lines] == [(a.id, 2), (b.id, 1)]
    assert details.customer.telegram_id == cust.telegram_id and details.codes == {}
    assert await open_orders(db, cust.id) == 1


async def test_create_order_refuses_inactive_or_missing_products(db: storage.Database) -> None:
    prod = await seed(db, codes=2, active=False)
    cust = await buyer(db)
    assert cust.id and prod.id
    exp = storage.utcnow() + SOON
    assert await storage.create_order(db, cust.id, [(prod.id, 1, prod.price)], "USD", exp) is None
    assert await storage.create_order(db, cust.id, [(98765, 1, prod.price)], "USD", exp) is None
    with pytest.raises(ValueError):
        await storage.create_order(db, cust.id, [(prod.id, 0, prod.price)], "USD", exp)


async def test_release_only_if_still_pending_and_reserved(db: storage.Database) -> None:
    prod = await seed(db, codes=2)
    order = await order_for(db, prod)
    assert order.id is not None
    assert await storage.release_order(db, order.id, OrderStatus.CANCELLED)
    assert not await storage.release_order(db, order.id, OrderStatus.EXPIRED)
    assert await storage.stock_counts(db, prod.id or 0) == (2, 0, 0)
    got = await storage.get_order(db, order.id)
    assert got is not None and got.order.status is OrderStatus.CANCELLED

    paid = await order_for(db, prod)
    await storage.settle(db, payment(paid))
    assert not await storage.release_order(db, paid.id or 0, OrderStatus.EXPIRED)
    assert await storage.stock_counts(db, prod.id or 0) == (1, 0, 1)
    with pytest.raises(ValueError):
        await storage.release_order(db, paid.id or 0, OrderStatus.PAID)


async def test_release_does_not_touch_units_reserved_by_others(db: storage.Database) -> None:
    prod = await seed(db, codes=2)
    mine = await order_for(db, prod, telegram_id=1)
    theirs = await order_for(db, prod, telegram_id=2)
    await storage.release_order(db, mine.id or 0, OrderStatus.EXPIRED)
    async with db.session() as s:
        units = (await s.scalars(sa.select(StockUnit).order_by(StockUnit.id))).all()
    assert {(u.status, u.order_id) for u in units} == {
        (StockStatus.AVAILABLE, None),
        (StockStatus.RESERVED, theirs.id),
    }


async def test_attach_invoice(db: storage.Database) -> None:
    prod = await seed(db)
    order = await order_for(db, prod)
    oid = order.id or 0
    assert await storage.attach_invoice(db, oid, 11, "IVh", "https://t.me/CryptoBot?start=IVh")
    assert await storage.attach_invoice(db, oid, 11, "IVh", "https://t.me/CryptoBot?start=IVh")
    assert not await storage.attach_invoice(db, oid, 12, "other", "https://x")
    details = await storage.get_order(db, oid)
    assert details is not None and details.order.invoice_id == 11
    assert details.order.bot_invoice_url == "https://t.me/CryptoBot?start=IVh"
    await storage.release_order(db, oid, OrderStatus.CANCELLED)
    other = await order_for(db, prod)
    assert not await storage.attach_invoice(db, oid, 13, "h", "u")  # no longer pending
    assert other.id != oid


async def test_order_listings(db: storage.Database) -> None:
    prod = await seed(db, codes=10)
    mine = [await order_for(db, prod, telegram_id=1) for _ in range(5)]
    theirs = await order_for(db, prod, telegram_id=2)
    cust = await buyer(db, 1)
    assert cust.id is not None

    page1 = await storage.list_customer_orders(db, cust.id, limit=3)
    page2 = await storage.list_customer_orders(db, cust.id, before_id=page1[-1].id, limit=3)
    assert [o.id for o in page1 + page2] == [o.id for o in reversed(mine)]

    await storage.settle(db, payment(mine[0]))
    paid = await storage.list_orders(db, OrderStatus.PAID)
    assert [o.id for o in paid] == [mine[0].id]
    everything = await storage.list_orders(db, limit=100)
    assert everything[0].id == theirs.id and len(everything) == 6
    older = await storage.list_orders(db, before_id=theirs.id, limit=2)
    assert [o.id for o in older] == [mine[4].id, mine[3].id]


async def test_job_queries(db: storage.Database) -> None:
    prod = await seed(db, codes=10)
    now = storage.utcnow()
    overdue = await order_for(db, prod, ttl=-60)
    fresh = await order_for(db, prod, ttl=600)
    for o in (overdue, fresh):
        await storage.attach_invoice(db, o.id or 0, 900 + (o.id or 0), "h", "u")

    assert [o.id for o in await storage.overdue_pending_orders(db, now)] == [overdue.id]
    with_invoice = await storage.pending_orders_with_invoice(db, limit=1)
    assert [o.id for o in with_invoice] == [overdue.id]
    nxt = await storage.pending_orders_with_invoice(db, limit=10, after_id=overdue.id)
    assert [o.id for o in nxt] == [fresh.id]

    await storage.release_order(db, overdue.id or 0, OrderStatus.EXPIRED)
    since = await storage.orders_expired_since(db, now - timedelta(hours=1))
    assert [o.id for o in since] == [overdue.id]
    assert await storage.orders_expired_since(db, now) == []
    assert [o.id for o in await storage.overdue_pending_orders(db, now)] == []


async def test_create_order_max_open_refuses_inside_the_transaction(db: storage.Database) -> None:
    prod = await seed(db, codes=5)
    cust = await buyer(db)
    assert cust.id and prod.id
    exp = storage.utcnow() + SOON
    line = [(prod.id, 1, prod.price)]
    for _ in range(2):
        assert await storage.create_order(db, cust.id, line, "USD", exp, max_open=2) is not None
    with pytest.raises(storage.TooManyOpenOrders) as refused:
        await storage.create_order(db, cust.id, line, "USD", exp, max_open=2)
    assert refused.value.open_orders == 2
    assert await open_orders(db, cust.id) == 2
    assert await storage.stock_counts(db, prod.id) == (3, 2, 0)  # nothing reserved for it
    # Another customer is not affected; without max_open there is no cap.
    other = await buyer(db, 2002)
    assert other.id is not None
    assert await storage.create_order(db, other.id, line, "USD", exp, max_open=2) is not None
    assert await storage.create_order(db, cust.id, line, "USD", exp) is not None


async def test_create_order_max_open_holds_under_concurrent_taps(db: storage.Database) -> None:
    prod = await seed(db, codes=10)
    cust = await buyer(db)
    assert cust.id and prod.id
    exp = storage.utcnow() + SOON

    async def tap() -> str:
        assert cust.id and prod.id
        try:
            order = await storage.create_order(
                db, cust.id, [(prod.id, 1, prod.price)], "USD", exp, max_open=3
            )
        except storage.TooManyOpenOrders:
            return "refused"
        return "created" if order is not None else "out_of_stock"

    results = await asyncio.gather(*(tap() for _ in range(8)))
    assert sorted(results) == ["created"] * 3 + ["refused"] * 5
    assert await open_orders(db, cust.id) == 3
    assert await storage.stock_counts(db, prod.id) == (7, 3, 0)


async def test_place_order_writes_the_buyer_and_the_order_in_one_transaction(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=3)
    assert prod.id is not None
    exp = storage.utcnow() + SOON
    line = [(prod.id, 2, prod.price)]

    order = await storage.place_order(db, storage.Buyer(4242, "ann", "de"), line, "USD", exp)
    assert order is not None and order.id is not None and order.status is OrderStatus.PENDING
    assert order.total == prod.price * 2 and order.expires_at == exp
    cust = await storage.get_customer(db, 4242)
    assert cust is not None and (cust.username, cust.language) == ("ann", "de")
    assert order.customer_id == cust.id
    stored = await storage.get_order(db, order.id)
    assert stored is not None and stored.order.total == order.total
    assert await storage.stock_counts(db, prod.id) == (1, 2, 0)

    # A known buyer is refreshed, not duplicated (and a block is lifted: they wrote to us).
    await storage.set_blocked(db, 4242, True)
    again = await storage.place_order(
        db, storage.Buyer(4242, "ann_new", "de"), [(prod.id, 1, prod.price)], "USD", exp
    )
    assert again is not None and again.customer_id == cust.id
    refreshed = await storage.get_customer(db, 4242)
    assert refreshed is not None and refreshed.username == "ann_new"
    assert not refreshed.blocked_bot


async def test_place_order_refused_writes_nothing_not_even_the_buyer(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=1)
    assert prod.id is not None
    exp = storage.utcnow() + SOON
    out_of_stock = await storage.place_order(
        db, storage.Buyer(5151, "zed", "en"), [(prod.id, 2, prod.price)], "USD", exp
    )
    assert out_of_stock is None
    assert await storage.get_customer(db, 5151) is None
    assert await storage.stock_counts(db, prod.id) == (1, 0, 0)

    first = await storage.place_order(
        db, storage.Buyer(5151, "zed", "en"), [(prod.id, 1, prod.price)], "USD", exp, max_open=1
    )
    assert first is not None
    with pytest.raises(storage.TooManyOpenOrders):
        await storage.place_order(
            db,
            storage.Buyer(5151, "renamed", "en"),
            [(prod.id, 1, prod.price)],
            "USD",
            exp,
            max_open=1,
        )
    cust = await storage.get_customer(db, 5151)
    assert cust is not None and cust.username == "zed"  # the refused upsert was rolled back


async def test_place_order_cap_holds_for_a_new_buyer_tapping_at_once(db: storage.Database) -> None:
    prod = await seed(db, codes=10)
    assert prod.id is not None
    exp = storage.utcnow() + SOON

    async def tap() -> str:
        assert prod.id is not None
        try:
            order = await storage.place_order(
                db,
                storage.Buyer(6161, None, None),
                [(prod.id, 1, prod.price)],
                "USD",
                exp,
                max_open=2,
            )
        except storage.TooManyOpenOrders:
            return "refused"
        return "created" if order is not None else "out_of_stock"

    results = await asyncio.gather(*(tap() for _ in range(6)))
    assert sorted(results) == ["created"] * 2 + ["refused"] * 4
    cust = await storage.get_customer(db, 6161)
    assert cust is not None and cust.id is not None
    assert await open_orders(db, cust.id) == 2
    assert await storage.stock_counts(db, prod.id) == (8, 2, 0)


async def test_upsert_customer_writes_only_when_something_changed(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await storage.upsert_customer(db, 77, "bob", "en")
    writes = 0
    transaction = db.transaction

    def counted() -> Any:
        nonlocal writes
        writes += 1
        return transaction()

    monkeypatch.setattr(db, "transaction", counted)
    same = await storage.upsert_customer(db, 77, "bob", "en")
    assert writes == 0 and same.id == first.id and same.username == "bob"
    renamed = await storage.upsert_customer(db, 77, "bobby", "en")
    assert writes == 1 and renamed.username == "bobby"
    monkeypatch.undo()
    assert await storage.set_blocked(db, 77, True)
    monkeypatch.setattr(db, "transaction", counted)
    back = await storage.upsert_customer(db, 77, "bobby", "en")  # unblocks: a write
    assert writes == 2 and not back.blocked_bot


async def test_order_status_follows_the_order(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    assert prod.id is not None
    order = await storage.place_order(
        db,
        storage.Buyer(7373, None, None),
        [(prod.id, 1, prod.price)],
        "USD",
        storage.utcnow() + SOON,
    )
    assert order is not None and order.id is not None
    assert await storage.order_status(db, order.id, buyer_telegram_id=7373) == OrderStatus.PENDING
    assert await storage.order_status(db, order.id, buyer_telegram_id=7374) is None  # not theirs
    await storage.release_order(db, order.id, OrderStatus.CANCELLED)
    assert await storage.order_status(db, order.id, 7373) == OrderStatus.CANCELLED
    assert await storage.order_status(db, order.id + 1000, 7373) is None
