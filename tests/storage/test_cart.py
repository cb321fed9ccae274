"""The server-side cart, and the order transaction naming the line it could not reserve."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

import storage
from storage import Buyer, StockShort
from tests.storage.conftest import buyer, catalog, product, seed

TTL = timedelta(minutes=15)


async def test_add_merges_caps_and_lists_the_products_state(db: storage.Database) -> None:
    a = await seed(db, "alpha", codes=3)
    b = await seed(db, "beta", codes=0, unlimited=True, content="https://x.example/b")
    cust = await buyer(db)
    assert cust.id is not None and a.id is not None and b.id is not None

    assert await storage.add_to_cart(db, cust.id, a.id, 1, a.price, cap=3) == 1
    assert await storage.add_to_cart(db, cust.id, b.id, 2, b.price, cap=10) == 2
    assert await storage.add_to_cart(db, cust.id, a.id, 5, a.price, cap=3) == 3  # capped
    lines = await storage.cart_lines(db, cust.id)
    assert [(ln.sku, ln.quantity, ln.available) for ln in lines] == [
        ("alpha", 3, 3),
        ("beta", 2, None),
    ]
    assert lines[0].line_total == Decimal("29.97")
    assert await storage.cart_units(db, cust.id) == 5

    assert await storage.set_cart_quantity(db, cust.id, a.id, 2)
    assert await storage.cart_units(db, cust.id) == 4
    assert await storage.set_cart_quantity(db, cust.id, a.id, 0)  # below 1: removed
    assert [ln.sku for ln in await storage.cart_lines(db, cust.id)] == ["beta"]
    assert not await storage.remove_from_cart(db, cust.id, a.id)
    assert await storage.empty_cart(db, cust.id) == 1
    assert await storage.cart_lines(db, cust.id) == []
    assert await storage.cart_units(db, cust.id) == 0


async def test_each_shopper_has_their_own_cart(db: storage.Database) -> None:
    a = await seed(db, "alpha", codes=3)
    alice, bob = await buyer(db, 1), await buyer(db, 2)
    assert alice.id and bob.id and a.id
    await storage.add_to_cart(db, alice.id, a.id, 2, a.price, cap=3)
    await storage.add_to_cart(db, bob.id, a.id, 1, a.price, cap=3)
    assert await storage.empty_cart(db, alice.id, [a.id]) == 1
    assert await storage.cart_units(db, alice.id) == 0
    assert await storage.cart_units(db, bob.id) == 1


async def test_repriced_inactive_and_sold_out_lines_show(db: storage.Database) -> None:
    a = await seed(db, "alpha", codes=2)
    b = await seed(db, "beta", codes=1)
    cust = await buyer(db)
    assert cust.id and a.id and b.id
    await storage.add_to_cart(db, cust.id, a.id, 1, a.price, cap=2)
    await storage.add_to_cart(db, cust.id, b.id, 1, b.price, cap=1)
    await storage.upsert_catalog(
        db,
        catalog(
            product("alpha", ["ALPHA-0000", "ALPHA-0001"], price=Decimal("12.50")),
            product("beta", ["BETA-0000"], active=False),
        ),
    )
    lines = {ln.sku: ln for ln in await storage.cart_lines(db, cust.id)}
    assert lines["alpha"].repriced
    assert (lines["alpha"].added_price, lines["alpha"].price) == (Decimal("9.99"), Decimal("12.5"))
    assert not lines["beta"].active and not lines["beta"].repriced

    other = await buyer(db, 77)
    assert other.id
    assert await storage.create_order(
        db, other.id, [(a.id, 2, Decimal("12.50"))], "USD", storage.utcnow() + TTL
    )
    (alpha,) = [ln for ln in await storage.cart_lines(db, cust.id) if ln.sku == "alpha"]
    assert alpha.available == 0


async def test_the_cart_is_the_same_through_another_connection_pool(
    db: storage.Database,
) -> None:
    """A restart, or a second replica: a new Database on the same URL sees the same cart."""
    a = await seed(db, "alpha", codes=3)
    cust = await buyer(db)
    assert cust.id and a.id
    await storage.add_to_cart(db, cust.id, a.id, 2, a.price, cap=3)
    other = storage.Database(str(db.engine.url.render_as_string(hide_password=False)))
    try:
        assert await storage.add_to_cart(other, cust.id, a.id, 1, a.price, cap=3) == 3
        assert [ln.quantity for ln in await storage.cart_lines(other, cust.id)] == [3]
    finally:
        await other.dispose()
    assert await storage.cart_units(db, cust.id) == 3


async def test_a_short_line_is_named_and_nothing_is_written(db: storage.Database) -> None:
    a = await seed(db, "alpha", codes=3)
    b = await seed(db, "beta", codes=1)
    assert a.id and b.id
    lines = [(a.id, 2, a.price), (b.id, 2, b.price)]
    with pytest.raises(StockShort) as short:
        await storage.place_order(
            db, Buyer(5, "u", "en"), lines, "USD", storage.utcnow() + TTL, report_short=True
        )
    assert (short.value.product_id, short.value.available, short.value.gone) == (b.id, 1, False)
    assert await storage.stock_counts(db, a.id) == (3, 0, 0)  # alpha's two were given back
    async with db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(storage.Order)) == 0
    # Without report_short, the old answer: None.
    expires = storage.utcnow() + TTL
    assert await storage.place_order(db, Buyer(5, "u", "en"), lines, "USD", expires) is None

    await storage.upsert_catalog(db, catalog(product("beta", ["BETA-0000"], active=False)))
    with pytest.raises(StockShort) as gone:
        await storage.place_order(
            db,
            Buyer(5, "u", "en"),
            [(a.id, 1, a.price), (b.id, 1, b.price)],
            "USD",
            storage.utcnow() + TTL,
            report_short=True,
        )
    assert (gone.value.product_id, gone.value.gone) == (b.id, True)


async def test_two_carts_race_for_the_last_unit(db: storage.Database) -> None:
    """Both carts hold the last alpha and some beta: one order wins, the other is refused
    naming alpha, and nothing is oversold or left reserved by the loser."""
    a = await seed(db, "alpha", codes=1)
    b = await seed(db, "beta", codes=4)
    assert a.id and b.id
    buyers = [Buyer(6000 + i, None, "en") for i in range(2)]

    async def checkout(who: Buyer) -> storage.Order | StockShort:
        try:
            order = await storage.place_order(
                db,
                who,
                [(a.id or 0, 1, a.price), (b.id or 0, 2, b.price)],
                "USD",
                storage.utcnow() + TTL,
                report_short=True,
            )
        except StockShort as short:
            return short
        assert order is not None
        return order

    results = await asyncio.gather(*(checkout(w) for w in buyers))
    orders = [r for r in results if isinstance(r, storage.Order)]
    shorts = [r for r in results if isinstance(r, StockShort)]
    assert len(orders) == 1 and len(shorts) == 1
    assert (shorts[0].product_id, shorts[0].available) == (a.id, 0)
    assert await storage.stock_counts(db, a.id) == (0, 1, 0)
    assert await storage.stock_counts(db, b.id) == (2, 2, 0)
    details = await storage.get_order(db, orders[0].id or 0)
    assert details is not None
    assert [(ln.product_id, ln.quantity) for ln in details.lines] == [(a.id, 1), (b.id, 2)]
    assert details.order.total == a.price + 2 * b.price
