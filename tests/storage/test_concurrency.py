"""Races with real concurrency: asyncio.gather over separate sessions and connections."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

import storage
from storage import OrderStatus, SettleOutcome
from storage.models import Category, OutboxMessage, Product, StockUnit
from tests.storage.conftest import buyer, order_for, payment, product, seed

TTL = timedelta(minutes=15)


async def test_twenty_buyers_one_unit_exactly_one_wins(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    customers = [await buyer(db, 2000 + i) for i in range(20)]
    expires = storage.utcnow() + TTL

    async def buy(cust: storage.Customer) -> storage.Order | None:
        assert cust.id is not None and prod.id is not None
        return await storage.create_order(db, cust.id, [(prod.id, 1, prod.price)], "USD", expires)

    results = await asyncio.gather(*(buy(c) for c in customers))
    winners = [o for o in results if o is not None]
    assert len(winners) == 1
    assert await storage.stock_counts(db, prod.id or 0) == (0, 1, 0)
    async with db.session() as s:
        n_orders = await s.scalar(sa.select(sa.func.count()).select_from(storage.Order))
    assert n_orders == 1  # the losers wrote nothing


async def test_concurrent_multi_unit_buyers_never_get_fewer_than_asked(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=7)
    customers = [await buyer(db, 3000 + i) for i in range(10)]
    expires = storage.utcnow() + TTL

    async def buy(cust: storage.Customer) -> storage.Order | None:
        assert cust.id is not None and prod.id is not None
        return await storage.create_order(db, cust.id, [(prod.id, 2, prod.price)], "USD", expires)

    results = [o for o in await asyncio.gather(*(buy(c) for c in customers)) if o is not None]
    async with db.session() as s:
        rows = (
            await s.execute(
                sa.select(StockUnit.order_id, sa.func.count())
                .where(StockUnit.status == storage.StockStatus.RESERVED)
                .group_by(StockUnit.order_id)
            )
        ).all()
    per_order = dict(rows)
    assert 1 <= len(results) <= 3
    assert all(per_order[o.id] == 2 for o in results)
    assert sum(per_order.values()) == 2 * len(results)


async def test_ten_concurrent_settles_of_one_invoice(db: storage.Database) -> None:
    prod = await seed(db, codes=5)
    order = await order_for(db, prod, qty=2)
    pay = payment(order)
    results = await asyncio.gather(*(storage.settle(db, pay) for _ in range(10)))

    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes.count(SettleOutcome.SETTLED.value) == 1
    assert outcomes.count(SettleOutcome.DUPLICATE.value) == 9
    assert await storage.stock_counts(db, prod.id or 0) == (3, 0, 2)
    async with db.session() as s:
        n_msgs = await s.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    assert n_msgs == 1
    winner = next(r for r in results if r.outcome is SettleOutcome.SETTLED)
    assert all(r.codes == winner.codes for r in results)


async def test_two_processes_settling_the_same_invoices_settle_each_once(
    db: storage.Database,
) -> None:
    """Two replicas: each has its own Database (its own connections and settle batches), so
    their transactions race for the same orders, invoices attached as checkout leaves them."""
    prod = await seed(db, codes=30)
    orders = [await order_for(db, prod, telegram_id=4000 + i) for i in range(24)]
    for order in orders:
        assert order.id is not None
        assert await storage.attach_invoice(db, order.id, 500_000 + order.id, "h", "https://x")
    other = storage.Database(db.url.render_as_string(hide_password=False))
    try:
        calls = [storage.settle(replica, payment(o)) for o in orders for replica in (db, other)]
        results = await asyncio.gather(*calls)
    finally:
        await other.dispose()

    for order, pair in zip(orders, zip(results[::2], results[1::2], strict=True), strict=True):
        assert sorted(r.outcome.value for r in pair) == ["duplicate", "settled"], order.id
        assert pair[0].codes == pair[1].codes and len(pair[0].codes[prod.id or 0]) == 1
    assert await storage.stock_counts(db, prod.id or 0) == (6, 0, 24)
    async with db.session() as s:
        n_msgs = await s.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    assert n_msgs == 24


async def test_expiry_racing_settle_sells_once_or_releases(db: storage.Database) -> None:
    for round_no in range(6):
        prod = await seed(db, sku=f"race{round_no}", codes=1)
        order = await order_for(db, prod, telegram_id=4000 + round_no)
        assert order.id is not None
        settle_res, released = await asyncio.gather(
            storage.settle(db, payment(order)),
            storage.release_order(db, order.id, OrderStatus.EXPIRED),
        )
        counts = await storage.stock_counts(db, prod.id or 0)
        got = await storage.get_order(db, order.id)
        assert got is not None
        # Either order is fine; what matters: one unit, sold at most once, never both
        # sold and back on the shelf, and the order state agrees with the stock.
        assert sum(counts) == 1
        assert got.order.status is OrderStatus.PAID
        assert counts == (0, 0, 1)
        assert settle_res.outcome in (SettleOutcome.SETTLED, SettleOutcome.LATE_SETTLED)
        assert released == (settle_res.outcome is SettleOutcome.LATE_SETTLED)


async def test_expiry_racing_settle_when_the_unit_is_taken_meanwhile(
    db: storage.Database,
) -> None:
    """The expired order's unit is bought by someone else before the late payment lands."""
    prod = await seed(db, codes=1)
    late = await order_for(db, prod, telegram_id=1)
    assert late.id is not None
    await storage.release_order(db, late.id, OrderStatus.EXPIRED)
    other_buyer = await buyer(db, 2)
    assert other_buyer.id is not None and prod.id is not None
    expires = storage.utcnow() + TTL
    settle_res, other = await asyncio.gather(
        storage.settle(db, payment(late)),
        storage.create_order(db, other_buyer.id, [(prod.id, 1, prod.price)], "USD", expires),
    )
    counts = await storage.stock_counts(db, prod.id)
    assert sum(counts) == 1
    if settle_res.outcome is SettleOutcome.LATE_SETTLED:
        assert other is None and counts == (0, 0, 1)
    else:
        assert settle_res.outcome is SettleOutcome.NEEDS_REFUND
        assert other is not None and counts == (0, 1, 0)


async def test_two_refunds_racing_past_the_paid_amount(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    order = await order_for(db, prod)
    await storage.settle(db, payment(order, paid_amount=Decimal("10")))
    assert order.id is not None

    async def refund(n: int) -> storage.Refund | Exception:
        try:
            return await storage.create_refund(
                db, order.id or 0, "USDT", Decimal("6"), "race", 42, f"spend-{n}"
            )
        except storage.RefundError as exc:
            return exc

    results = await asyncio.gather(*(refund(n) for n in range(4)))
    made = [r for r in results if isinstance(r, storage.Refund)]
    refused = [r for r in results if isinstance(r, storage.RefundExceedsPaid)]
    assert len(made) == 1 and len(refused) == 3
    assert [r.amount for r in await storage.refunds_for_order(db, order.id)] == [Decimal("6")]


async def test_two_outbox_workers_claim_each_message_once(db: storage.Database) -> None:
    drafts = [storage.OutboxDraft(chat_id=1000 + i, text=f"m{i}") for i in range(40)]
    ids = await storage.enqueue(db, drafts)
    now = storage.utcnow()

    async def worker(name: str) -> list[int]:
        got: list[int] = []
        while True:
            batch = await storage.claim_due(db, name, now, limit=3, lease_seconds=60)
            if not batch:
                return got
            got.extend(m.id or 0 for m in batch)

    a, b = await asyncio.gather(worker("a"), worker("b"))
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(ids)


async def test_racing_claims_never_split_one_chat(db: storage.Database) -> None:
    """Messages of one chat, claimed by many workers at once: the first claim takes the
    first messages (up to its limit) and every other claim gets nothing of that chat while
    they are held — no two workers ever hold messages of one chat."""
    ids = await storage.enqueue(db, [storage.OutboxDraft(1, f"m{i}") for i in range(12)])
    now = storage.utcnow()
    batches = await asyncio.gather(
        *(storage.claim_due(db, f"w{n}", now, limit=3, lease_seconds=60) for n in range(6))
    )
    holders = [[m.id for m in batch] for batch in batches if batch]
    assert holders == [ids[:3]], holders


async def test_two_replicas_import_the_same_catalog_at_once_on_an_empty_database(
    db: storage.Database,
) -> None:
    """Two replicas starting together on an empty testnet database both seed the demo
    catalog: neither crashes on a duplicate key, and the shop holds it once."""
    new = storage.CatalogData(
        currency="USD",
        categories=[storage.CategoryData("games", "Games"), storage.CategoryData("apps", "Apps")],
        products=[
            product(f"p{i}", [f"P{i}-{n:03d}" for n in range(20)], category=cat)
            for i, cat in enumerate(["games", "apps"] * 5)
        ],
    )
    other = storage.Database(db.url.render_as_string(hide_password=False))
    try:
        first, second = await asyncio.gather(
            storage.upsert_catalog(db, new), storage.upsert_catalog(other, new)
        )
    finally:
        await other.dispose()

    assert sorted([first.products_created, second.products_created]) == [0, 10]
    assert first.codes_added + second.codes_added == 200
    async with db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(StockUnit)) == 200
        assert await s.scalar(sa.select(sa.func.count()).select_from(Product)) == 10
        assert await s.scalar(sa.select(sa.func.count()).select_from(Category)) == 2
