from __future__ import annotations

from decimal import Decimal

import pytest

import storage
from storage import OrderStatus, RefundStatus
from tests.storage.conftest import order_for, payment, seed


async def _paid_order(db: storage.Database, amount: str = "10") -> int:
    prod = await seed(db, codes=1)
    order = await order_for(db, prod)
    await storage.settle(db, payment(order, paid_amount=Decimal(amount)))
    assert order.id is not None
    return order.id


async def test_partial_then_full_refund(db: storage.Database) -> None:
    oid = await _paid_order(db, "10")
    r1 = await storage.create_refund(db, oid, "USDT", Decimal("4"), "late", 42, "s1")
    assert r1.status is RefundStatus.SENDING and r1.id is not None
    assert await storage.sending_refunds(db) == [r1]
    assert await storage.mark_refund_sent(db, r1.id, 555)
    assert not await storage.mark_refund_sent(db, r1.id, 556)
    got = await storage.get_order(db, oid)
    assert got is not None and got.order.status is OrderStatus.PARTIALLY_REFUNDED

    with pytest.raises(storage.RefundExceedsPaid) as exc:
        await storage.create_refund(db, oid, "USDT", Decimal("6.00000001"), "", 42, "s2")
    assert exc.value.remaining == Decimal("6")
    r2 = await storage.create_refund(db, oid, "USDT", Decimal("6"), "", 42, "s2")
    assert r2.id is not None and await storage.mark_refund_sent(db, r2.id, 557)
    got = await storage.get_order(db, oid)
    assert got is not None and got.order.status is OrderStatus.REFUNDED
    with pytest.raises(storage.OrderNotRefundable):
        await storage.create_refund(db, oid, "USDT", Decimal("0.01"), "", 42, "s3")
    refunds = await storage.refunds_for_order(db, oid)
    assert [(r.spend_id, r.transfer_id) for r in refunds] == [("s1", 555), ("s2", 557)]


async def test_failed_refund_frees_its_amount(db: storage.Database) -> None:
    oid = await _paid_order(db, "10")
    r1 = await storage.create_refund(db, oid, "USDT", Decimal("10"), "", 42, "s1")
    assert r1.id is not None
    with pytest.raises(storage.RefundExceedsPaid):
        await storage.create_refund(db, oid, "USDT", Decimal("1"), "", 42, "s2")
    assert await storage.mark_refund_failed(db, r1.id, "insufficient funds")
    assert not await storage.mark_refund_failed(db, r1.id, "again")
    assert not await storage.mark_refund_sent(db, r1.id, 1)
    r2 = await storage.create_refund(db, oid, "USDT", Decimal("10"), "", 42, "s2")
    assert r2.status is RefundStatus.SENDING
    assert [r.id for r in await storage.sending_refunds(db)] == [r2.id]


async def test_spend_id_reuse(db: storage.Database) -> None:
    oid = await _paid_order(db, "10")
    r1 = await storage.create_refund(db, oid, "USDT", Decimal("3"), "", 42, "same")
    retry = await storage.create_refund(db, oid, "USDT", Decimal("3"), "", 42, "same")
    assert retry.id == r1.id
    with pytest.raises(storage.SpendIdConflict):
        await storage.create_refund(db, oid, "USDT", Decimal("4"), "", 42, "same")
    assert len(await storage.refunds_for_order(db, oid)) == 1


async def test_unpaid_or_other_asset_is_not_refundable(db: storage.Database) -> None:
    prod = await seed(db, codes=2)
    pending = await order_for(db, prod)
    with pytest.raises(storage.OrderNotRefundable):
        await storage.create_refund(db, pending.id or 0, "USDT", Decimal("1"), "", 42, "a")
    with pytest.raises(storage.OrderNotRefundable):
        await storage.create_refund(db, 424242, "USDT", Decimal("1"), "", 42, "b")
    oid = await _paid_order(db)
    with pytest.raises(storage.OrderNotRefundable, match="USDT"):
        await storage.create_refund(db, oid, "TON", Decimal("1"), "", 42, "c")
    with pytest.raises(ValueError):
        await storage.create_refund(db, oid, "USDT", Decimal("0"), "", 42, "d")


async def test_refund_notices_are_queued_with_the_sent_mark_only_once(db: storage.Database) -> None:
    oid = await _paid_order(db, "10")
    backlog = await storage.outbox_backlog(db)
    refund = await storage.create_refund(db, oid, "USDT", Decimal("10"), "", 42, "s-notice")
    assert refund.id is not None
    notices = [
        storage.OutboxDraft(chat_id=7, text="refunded", order_id=oid),
        storage.OutboxDraft(chat_id=42, text="admin: refund sent", order_id=oid),
    ]
    assert await storage.mark_refund_sent(db, refund.id, 900, notices)
    assert await storage.outbox_backlog(db) == backlog + 2
    assert not await storage.mark_refund_sent(db, refund.id, 900, notices)  # already sent
    assert await storage.outbox_backlog(db) == backlog + 2


async def test_partial_refund_of_an_order_needing_review_keeps_it_for_a_human(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=1)
    order = await order_for(db, prod)
    short = payment(order, paid_amount=Decimal("5"))
    result = await storage.settle(db, short, lambda _p, _o: "paid 5 of 9.99")
    oid = result.order.id if result.order else None
    assert oid is not None

    r1 = await storage.create_refund(db, oid, "USDT", Decimal("2"), "", 42, "nr1")
    assert r1.id is not None and await storage.mark_refund_sent(db, r1.id, 601)
    # Never a sale, no goods went out: it stays on the attention list, not partially_refunded.
    got = await storage.get_order(db, oid)
    assert got is not None and got.order.status is OrderStatus.NEEDS_REVIEW
    assert [o.id for o in await storage.orders_needing_attention(db)] == [oid]

    r2 = await storage.create_refund(db, oid, "USDT", Decimal("3"), "", 42, "nr2")
    assert r2.id is not None and await storage.mark_refund_sent(db, r2.id, 602)
    got = await storage.get_order(db, oid)
    assert got is not None and got.order.status is OrderStatus.REFUNDED
    assert await storage.orders_needing_attention(db) == []
