"""The checkout's writes after the order (the invoice, the order message) are group-committed:
calls made at the same time share one transaction, and each still gets its own answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

import storage
from storage import OrderStatus
from storage.models import Order
from tests.storage.conftest import order_for, seed


async def test_concurrent_attaches_share_a_transaction_and_answer_each(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = await seed(db, codes=12)
    orders = [await order_for(db, prod, telegram_id=100 + i) for i in range(10)]
    ids = [o.id or 0 for o in orders]
    # One order attached before with invoice 500: the same invoice again is True, another
    # is False. One order released: False.
    assert await storage.attach_invoice(db, ids[0], 500, "h500", "https://t.me/x500")
    await storage.release_order(db, ids[1], OrderStatus.CANCELLED)

    begun = 0
    run_transaction = db.run_transaction

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal begun
        begun += 1
        return await run_transaction(*args, **kwargs)

    monkeypatch.setattr(db, "run_transaction", counting)
    calls = [
        storage.attach_invoice(db, ids[0], 500, "h500", "https://t.me/x500"),
        storage.attach_invoice(db, ids[1], 501, "h501", "https://t.me/x501"),
        # Two invoices for one order in one batch: the first call wins, as one after the other.
        storage.attach_invoice(db, ids[2], 502, "h502", "https://t.me/x502"),
        storage.attach_invoice(db, ids[2], 503, "h503", "https://t.me/x503"),
        *(
            storage.attach_invoice(db, oid, 600 + oid, f"h{oid}", f"https://t.me/{oid}")
            for oid in reversed(ids[3:])
        ),
    ]
    results = await asyncio.gather(*calls)
    assert results == [True, False, True, False, *([True] * 7)]
    assert begun == 1  # one transaction for all eleven

    async with db.session() as s:
        rows = dict((await s.execute(sa.select(Order.id, Order.invoice_id))).all())
    assert rows[ids[0]] == 500 and rows[ids[1]] is None and rows[ids[2]] == 502
    assert all(rows[oid] == 600 + oid for oid in ids[3:])


async def test_a_batch_broken_by_one_item_fails_that_item_alone(db: storage.Database) -> None:
    prod = await seed(db, codes=3)
    a, b, c = [(await order_for(db, prod, telegram_id=200 + i)).id or 0 for i in range(3)]
    # b and c ask for the same invoice id (unique): run alone, the later one breaks the
    # constraint; in one batch the statement fails as a whole, and is retried item by item.
    results = await asyncio.gather(
        storage.attach_invoice(db, a, 701, "h", "https://t.me/a"),
        storage.attach_invoice(db, b, 702, "h", "https://t.me/b"),
        storage.attach_invoice(db, c, 702, "h", "https://t.me/c"),
        return_exceptions=True,
    )
    assert results[:2] == [True, True]
    assert isinstance(results[2], sa.exc.IntegrityError)
    details = await storage.get_order(db, c)
    assert details is not None and details.order.invoice_id is None


async def test_concurrent_order_messages_recorded_with_each_status(db: storage.Database) -> None:
    prod = await seed(db, codes=8)
    orders = [(await order_for(db, prod, telegram_id=300 + i)).id or 0 for i in range(6)]
    await storage.release_order(db, orders[0], OrderStatus.EXPIRED)
    statuses = await asyncio.gather(
        *(storage.record_order_message(db, oid, 300 + i, 40 + i) for i, oid in enumerate(orders)),
        storage.record_order_message(db, 999_999, 1, 1),  # no such order
    )
    assert statuses == [OrderStatus.EXPIRED, *([OrderStatus.PENDING] * 5), None]
    async with db.session() as s:
        rows = (
            await s.execute(
                sa.select(Order.id, Order.message_chat_id, Order.message_id).order_by(Order.id)
            )
        ).all()
    assert [(chat, message) for _, chat, message in rows] == [(300 + i, 40 + i) for i in range(6)]
