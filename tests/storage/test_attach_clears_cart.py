"""attach_invoice(clear_cart=True): a cart's Checkout empties the cart in the invoice's
transaction, only for orders actually attached, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import storage
from storage import OrderStatus
from tests.storage.conftest import catalog, product

TTL = timedelta(minutes=15)


async def cart_order(db: storage.Database, telegram_id: int) -> tuple[int, storage.Order]:
    """A buyer with keys a and b in the cart (and c, not ordered); an order for a and b."""
    buyer = storage.Buyer(telegram_id, None, "en")
    customer = await storage.upsert_customer(db, telegram_id, None, "en")
    assert customer.id is not None
    ids = {}
    for sku in ("a", "b", "c"):
        prod = await storage.get_product(db, sku)
        assert prod is not None and prod.id is not None
        ids[sku] = prod.id
        await storage.add_to_cart(db, customer.id, prod.id, 1, prod.price, cap=5)
    lines = [(ids[sku], 1, storage.to_money("9.99")) for sku in ("a", "b")]
    order = await storage.place_order(db, buyer, lines, "USD", storage.utcnow() + TTL)
    assert order is not None and order.id is not None
    return customer.id, order


async def skus_in_cart(db: storage.Database, customer_id: int) -> list[str]:
    return sorted(line.sku for line in await storage.cart_lines(db, customer_id))


async def seed_three(db: storage.Database) -> None:
    codes = {sku: [f"{sku.upper()}-{i:03d}" for i in range(20)] for sku in "abc"}
    await storage.upsert_catalog(db, catalog(*(product(sku, codes[sku]) for sku in "abc")))


async def test_attached_orders_products_leave_the_cart(db: storage.Database) -> None:
    await seed_three(db)
    customers = []
    orders = []
    for n in range(3):
        customer_id, order = await cart_order(db, 7100 + n)
        customers.append(customer_id)
        orders.append(order)

    async def attach(i: int, order: storage.Order) -> bool:
        assert order.id is not None
        return await storage.attach_invoice(
            db, order.id, 900 + i, f"h{i}", f"https://t.me/pay/{i}", clear_cart=True
        )

    # At once: one batch of several (and, on its own, the first one alone).
    assert await asyncio.gather(*(attach(i, o) for i, o in enumerate(orders))) == [True] * 3
    for customer_id in customers:
        assert await skus_in_cart(db, customer_id) == ["c"]


async def test_a_refused_attach_leaves_the_cart(db: storage.Database) -> None:
    await seed_three(db)
    customer_id, order = await cart_order(db, 7200)
    assert order.id is not None
    await storage.release_order(db, order.id, OrderStatus.CANCELLED)
    assert not await storage.attach_invoice(
        db, order.id, 990, "h", "https://t.me/pay/x", clear_cart=True
    )
    assert await skus_in_cart(db, customer_id) == ["a", "b", "c"]


async def test_without_clear_cart_the_cart_stays(db: storage.Database) -> None:
    await seed_three(db)
    customer_id, order = await cart_order(db, 7300)
    assert order.id is not None
    assert await storage.attach_invoice(db, order.id, 991, "h", "https://t.me/pay/y")
    assert await skus_in_cart(db, customer_id) == ["a", "b", "c"]
