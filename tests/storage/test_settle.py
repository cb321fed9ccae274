from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import storage
from storage import OrderStatus, SettleOutcome
from storage.models import OutboxMessage, PaymentEvent
from tests.storage.conftest import order_for, payment, seed


async def _outbox_count(db: storage.Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) or 0)


async def test_settle_pending_order_sells_its_reserved_units(db: storage.Database) -> None:
    prod = await seed(db, codes=3)
    order = await order_for(db, prod, qty=2)
    result = await storage.settle(db, payment(order))

    assert result.outcome is SettleOutcome.SETTLED and result.changed
    assert result.order is not None and result.order.status is OrderStatus.PAID
    assert result.order.paid_amount == Decimal("19.98")
    assert result.order.fee_amount == Decimal("0.03")
    assert result.order.invoice_id == 500_000 + (order.id or 0)
    assert result.codes == {prod.id: ["KEY-0000", "KEY-0001"]}
    assert await _outbox_count(db) == 1
    assert await storage.stock_counts(db, prod.id or 0) == (1, 0, 2)
    details = await storage.get_order(db, order.id or 0)
    assert details is not None and details.codes == result.codes


async def test_second_settle_is_a_duplicate_and_changes_nothing(db: storage.Database) -> None:
    prod = await seed(db, codes=2)
    order = await order_for(db, prod)
    first = await storage.settle(db, payment(order))
    again = await storage.settle(db, payment(order, source="reconcile"))

    assert first.outcome is SettleOutcome.SETTLED
    assert again.outcome is SettleOutcome.DUPLICATE and not again.changed
    assert again.codes == first.codes
    assert await _outbox_count(db) == 1
    assert await storage.stock_counts(db, prod.id or 0) == (1, 0, 1)
    async with db.session() as s:
        events = (await s.scalars(sa.select(PaymentEvent))).all()
    assert [(e.status, e.source) for e in events] == [("paid", "webhook")]


async def test_settle_unknown_order_and_foreign_invoice(db: storage.Database) -> None:
    prod = await seed(db)
    order = await order_for(db, prod)
    assert await storage.attach_invoice(db, order.id or 0, 77, "hash", "https://t.me/x")

    ghost = storage.SettlePayment(
        order_id=999_999,
        invoice_id=1,
        paid_asset="TON",
        paid_amount=Decimal(1),
        fee_asset=None,
        fee_amount=None,
        paid_at=storage.utcnow(),
        source="webhook",
    )
    assert (await storage.settle(db, ghost)).outcome is SettleOutcome.UNKNOWN_ORDER
    other = await storage.settle(db, payment(order, invoice_id=78))
    assert other.outcome is SettleOutcome.UNKNOWN_ORDER
    got = await storage.get_order(db, order.id or 0)
    assert got is not None and got.order.status is OrderStatus.PENDING
    assert await _outbox_count(db) == 0


async def test_late_payment_with_stock_sells_fresh_units(db: storage.Database) -> None:
    prod = await seed(db, codes=2)
    order = await order_for(db, prod)
    assert await storage.release_order(db, order.id or 0, OrderStatus.EXPIRED)
    assert await storage.stock_counts(db, prod.id or 0) == (2, 0, 0)

    result = await storage.settle(db, payment(order))
    assert result.outcome is SettleOutcome.LATE_SETTLED
    assert result.order is not None and result.order.status is OrderStatus.PAID
    assert sum(len(c) for c in result.codes.values()) == 1
    assert await storage.stock_counts(db, prod.id or 0) == (1, 0, 1)


async def test_late_payment_without_stock_needs_refund(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    late = await order_for(db, prod, telegram_id=1)
    assert await storage.release_order(db, late.id or 0, OrderStatus.EXPIRED)
    other = await order_for(db, prod, telegram_id=2)  # takes the only unit
    assert other.id is not None

    result = await storage.settle(db, payment(late))
    assert result.outcome is SettleOutcome.NEEDS_REFUND and result.changed
    assert result.order is not None and result.order.status is OrderStatus.NEEDS_REFUND
    assert result.order.paid_amount == late.total and result.order.attention_reason
    assert result.codes == {}
    assert await _outbox_count(db) == 1  # the buyer is told (and the admins, when any)
    assert await storage.stock_counts(db, prod.id or 0) == (0, 1, 0)
    again = await storage.settle(db, payment(late))
    assert again.outcome is SettleOutcome.DUPLICATE


async def test_unlimited_product_needs_no_units(db: storage.Database) -> None:
    prod = await seed(db, sku="guide", codes=0, unlimited=True, content="https://x/guide.pdf")
    order = await order_for(db, prod, qty=3)
    result = await storage.settle(db, payment(order))
    assert result.outcome is SettleOutcome.SETTLED
    assert result.codes == {}


async def test_a_mismatched_payment_goes_to_review_and_frees_stock(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=1)
    order = await order_for(db, prod)
    short = payment(order, paid_amount=Decimal("1.00"))
    result = await storage.settle(db, short, lambda _p, _o: "paid 1.00 of 9.99")

    assert result.outcome is SettleOutcome.NEEDS_REVIEW
    assert result.order is not None and result.order.status is OrderStatus.NEEDS_REVIEW
    assert result.order.paid_amount == Decimal("1.00")
    assert result.order.attention_reason == "paid 1.00 of 9.99"
    assert await _outbox_count(db) == 1
    assert await storage.stock_counts(db, prod.id or 0) == (1, 0, 0)
    assert (await storage.settle(db, payment(order))).outcome is (SettleOutcome.DUPLICATE)
    attention = await storage.orders_needing_attention(db)
    assert [o.id for o in attention] == [order.id]


async def test_datetimes_come_back_aware_utc(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    order = await order_for(db, prod, ttl=60)
    got = await storage.get_order(db, order.id or 0)
    assert got is not None
    assert got.order.expires_at.utcoffset() == timedelta(0)
    assert abs(got.order.expires_at - order.expires_at) < timedelta(milliseconds=1)


class _CountingTransactions:
    """Counts db.transaction() and db.session() calls (one per connection checkout)."""

    def __init__(self, db: storage.Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.transactions = 0
        self.sessions = 0
        transaction, session = db.transaction, db.session

        def counted_transaction() -> Any:
            self.transactions += 1
            return transaction()

        def counted_session() -> Any:
            self.sessions += 1
            return session()

        monkeypatch.setattr(db, "transaction", counted_transaction)
        monkeypatch.setattr(db, "session", counted_session)


async def test_verify_mismatch_reviews_in_the_same_transaction(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = await seed(db, codes=2)
    order = await order_for(db, prod)
    assert await storage.attach_invoice(db, order.id or 0, 4242, "h", "https://t.me/x")
    seen: list[storage.Order] = []

    def verify(p: storage.SettlePayment, o: storage.Order) -> str | None:
        assert p.invoice_id == 4242
        seen.append(o)
        return "invoice amount 1.00 differs from the order total 9.99"

    counter = _CountingTransactions(db, monkeypatch)
    result = await storage.settle(db, payment(order, invoice_id=4242), verify)
    assert (counter.transactions, counter.sessions) == (1, 0)
    monkeypatch.undo()

    assert [o.id for o in seen] == [order.id] and seen[0].total == order.total
    assert result.outcome is SettleOutcome.NEEDS_REVIEW and result.changed
    assert result.order is not None and result.order.status is OrderStatus.NEEDS_REVIEW
    assert result.order.attention_reason and "differs" in result.order.attention_reason
    assert result.order.paid_amount == order.total and result.codes == {}
    assert await _outbox_count(db) == 1
    async with db.session() as s:
        kind = await s.scalar(sa.select(OutboxMessage.kind))
        events = (await s.scalars(sa.select(PaymentEvent))).all()
    assert kind == storage.OutboxKind.UNDER_REVIEW
    assert [(e.invoice_id, e.order_id) for e in events] == [(4242, order.id)]
    assert await storage.stock_counts(db, prod.id or 0) == (2, 0, 0)  # nothing sold
    # A repeat (the webhook retried) is a duplicate; verify is not asked again.
    again = await storage.settle(db, payment(order, invoice_id=4242), verify)
    assert again.outcome is SettleOutcome.DUPLICATE and len(seen) == 1


async def test_verify_match_settles_in_one_transaction(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = await seed(db, codes=1)
    order = await order_for(db, prod)
    counter = _CountingTransactions(db, monkeypatch)
    result = await storage.settle(db, payment(order), lambda p, o: None)
    assert (counter.transactions, counter.sessions) == (1, 0)
    assert result.outcome is SettleOutcome.SETTLED


async def test_verify_mismatch_on_a_late_payment_reviews(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    order = await order_for(db, prod)
    assert await storage.release_order(db, order.id or 0, OrderStatus.CANCELLED)
    result = await storage.settle(db, payment(order), lambda p, o: "paid in XYZ")
    assert result.outcome is SettleOutcome.NEEDS_REVIEW
    assert result.order is not None and result.order.attention_reason == "paid in XYZ"
    assert await storage.stock_counts(db, prod.id or 0) == (1, 0, 0)


async def test_verify_failure_rolls_everything_back(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    order = await order_for(db, prod)

    def broken(p: storage.SettlePayment, o: storage.Order) -> str | None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await storage.settle(db, payment(order), broken)
    got = await storage.get_order(db, order.id or 0)
    assert got is not None and got.order.status is OrderStatus.PENDING
    assert await storage.stock_counts(db, prod.id or 0) == (0, 1, 0)
    async with db.session() as s:
        assert (await s.scalars(sa.select(PaymentEvent))).all() == []
    assert await _outbox_count(db) == 0
    assert (await storage.settle(db, payment(order))).outcome is SettleOutcome.SETTLED


async def test_order_found_by_invoice_or_by_payload_before_the_invoice_is_recorded(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=3)
    with_invoice = await order_for(db, prod, telegram_id=1)
    assert await storage.attach_invoice(db, with_invoice.id or 0, 900, "h", "https://t.me/x")
    by_invoice = payment(with_invoice, invoice_id=900, order_id=None)  # payload names none
    result = await storage.settle(db, by_invoice)
    assert result.outcome is SettleOutcome.SETTLED
    assert result.order is not None and result.order.id == with_invoice.id

    # The payload names another order than the one carrying the invoice: trust neither.
    other = await order_for(db, prod, telegram_id=2)
    third = await order_for(db, prod, telegram_id=3)
    assert await storage.attach_invoice(db, third.id or 0, 901, "h", "https://t.me/x")
    crossed = await storage.settle(db, payment(other, invoice_id=901))
    assert crossed.outcome is SettleOutcome.UNKNOWN_ORDER
    for o in (other, third):
        got = await storage.get_order(db, o.id or 0)
        assert got is not None and got.order.status is OrderStatus.PENDING

    # No invoice recorded yet (the webhook beat attach_invoice): the payload's order.
    early = await storage.settle(db, payment(other, invoice_id=902))
    assert early.outcome is SettleOutcome.SETTLED
    assert early.order is not None and early.order.invoice_id == 902
    # An invoice nobody carries, with no payload: unknown, and recorded.
    ghost = await storage.settle(db, payment(third, invoice_id=903, order_id=None))
    assert ghost.outcome is SettleOutcome.UNKNOWN_ORDER
    async with db.session() as s:
        recorded = await s.scalar(sa.select(PaymentEvent).where(PaymentEvent.invoice_id == 903))
    assert recorded is not None and recorded.order_id is None


async def test_settlement_enqueues_facts_for_the_buyer_and_each_admin(
    db: storage.Database,
) -> None:
    """The outbox gets what to send, not text: the kind, the order and the recipient,
    committed with the settlement; a repeat adds nothing."""
    prod = await seed(db, codes=2)
    order = await order_for(db, prod, telegram_id=1001)
    late = await order_for(db, prod, telegram_id=1002)
    assert await storage.release_order(db, late.id or 0, OrderStatus.CANCELLED)
    for paid in (order, late, order):
        await storage.settle(db, payment(paid), admins={9, 7})
    async with db.session() as s:
        rows = (await s.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id))).all()
    K = storage.OutboxKind
    assert [(m.kind, m.chat_id, m.order_id, m.dedupe_key, m.text) for m in rows] == [
        (K.GOODS, 1001, order.id, f"goods:{order.id}", ""),
        (K.ADMIN_PAID, 7, order.id, f"paid:{order.id}:7", ""),
        (K.ADMIN_PAID, 9, order.id, f"paid:{order.id}:9", ""),
        (K.GOODS, 1002, late.id, f"goods:{late.id}", ""),
        (K.ADMIN_LATE_PAID, 7, late.id, f"paid:{late.id}:7", ""),
        (K.ADMIN_LATE_PAID, 9, late.id, f"paid:{late.id}:9", ""),
    ]
