from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import sqlalchemy as sa

import storage
from storage import OrderStatus, OutboxStatus
from storage.order_states import transition
from tests.storage.conftest import order_for, payment, seed

_chats = itertools.count(7)


async def _one(db: storage.Database, chat: int | None = None, **kw: object) -> int:
    """One message; each to a chat of its own unless `chat` is given."""
    draft = storage.OutboxDraft(chat_id=next(_chats) if chat is None else chat, text="hi", **kw)  # type: ignore[arg-type]
    (mid,) = await storage.enqueue(db, [draft])
    return mid


async def test_claim_lease_expires_and_message_comes_back(db: storage.Database) -> None:
    mid = await _one(
        db, reply_markup='{"inline_keyboard": []}', document_name="codes.txt", document_data=b"A\nB"
    )
    now = storage.utcnow()
    (msg,) = await storage.claim_due(db, "w1", now, limit=10, lease_seconds=30)
    assert msg.id == mid and msg.attempts == 1 and msg.claimed_by == "w1"
    assert msg.document_data == b"A\nB" and msg.reply_markup == '{"inline_keyboard": []}'
    assert await storage.claim_due(db, "w2", now + timedelta(seconds=29)) == []
    (again,) = await storage.claim_due(db, "w2", now + timedelta(seconds=31))
    assert again.id == mid and again.attempts == 2 and again.claimed_by == "w2"


async def test_sent_message_is_never_claimed_again(db: storage.Database) -> None:
    mid = await _one(db)
    await storage.claim_due(db, "w", storage.utcnow())
    assert await storage.mark_sent(db, mid)
    assert not await storage.mark_sent(db, mid)
    assert await storage.claim_due(db, "w", storage.utcnow() + timedelta(days=1)) == []
    assert await storage.outbox_backlog(db) == 0
    assert await storage.next_due_at(db) is None


async def test_reschedule_and_fail(db: storage.Database) -> None:
    a, b = await _one(db), await _one(db)
    now = storage.utcnow()
    assert len(await storage.claim_due(db, "w", now)) == 2
    later = now + timedelta(seconds=40)
    assert await storage.reschedule(db, [a], later, "429 retry_after=40")
    assert await storage.mark_failed(db, [b], "Forbidden: bot was blocked by the user")
    assert await storage.claim_due(db, "w", now + timedelta(seconds=39)) == []
    due = await storage.next_due_at(db)
    assert due is not None and abs(due - later) < timedelta(milliseconds=1)
    (msg,) = await storage.claim_due(db, "w", later)
    assert msg.id == a and msg.last_error == "429 retry_after=40" and msg.attempts == 2
    assert not await storage.reschedule(db, [b], later, "x")  # failed for good stays failed
    assert await storage.outbox_backlog(db) == 1


async def test_next_due_at_counts_leases_and_not_before(db: storage.Database) -> None:
    now = storage.utcnow()
    await _one(db, not_before=now + timedelta(minutes=5))
    due = await storage.next_due_at(db)
    assert due is not None and due > now + timedelta(minutes=4)
    assert await storage.claim_due(db, "w", now) == []
    (m,) = await storage.claim_due(db, "w", now + timedelta(minutes=5), lease_seconds=60)
    lease_end = await storage.next_due_at(db)
    assert lease_end == m.claimed_until


async def test_dedupe_key_drops_second_draft_and_limit_orders_by_due(
    db: storage.Database,
) -> None:
    now = storage.utcnow()
    ids = await storage.enqueue(
        db,
        [
            storage.OutboxDraft(chat_id=1, text="late", not_before=now - timedelta(seconds=1)),
            storage.OutboxDraft(chat_id=2, text="early", not_before=now - timedelta(seconds=9)),
            storage.OutboxDraft(chat_id=3, text="x", dedupe_key="order:1:admin"),
        ],
    )
    assert len(ids) == 3
    assert (
        await storage.enqueue(db, [storage.OutboxDraft(1, "y", dedupe_key="order:1:admin")]) == []
    )
    batch = await storage.claim_due(db, "w", now + timedelta(seconds=1), limit=2)
    assert sorted(m.text for m in batch) == ["early", "late"]  # the two due first
    assert all(m.status is OutboxStatus.PENDING for m in batch)


async def test_restarted_worker_takes_back_only_its_own_claims(db: storage.Database) -> None:
    mine, theirs = await _one(db), await _one(db)
    now = storage.utcnow()
    assert [m.id for m in await storage.claim_due(db, "host:8080", now, limit=1)] == [mine]
    assert [m.id for m in await storage.claim_due(db, "host:8081", now, limit=1)] == [theirs]
    assert await storage.release_claims(db, "host:8080") == 1
    # the restarted worker gets its message back at once; the other lease still holds
    (again,) = await storage.claim_due(db, "host:8080", now)
    assert again.id == mine and again.attempts == 2
    assert await storage.release_claims(db, "nobody") == 0


# --- chat order, priority, leases renewed ----------------------------------------------------


async def test_a_chats_later_message_waits_for_its_earlier_one(db: storage.Database) -> None:
    first, second = await _one(db, chat=5), await _one(db, chat=5)
    other = await _one(db, chat=6)
    now = storage.utcnow()
    (held,) = await storage.claim_due(db, "w1", now, limit=1)
    assert held.id == first
    # Chat 5's second message is not claimable while the first is held elsewhere.
    assert [m.id for m in await storage.claim_due(db, "w2", now)] == [other]
    assert await storage.mark_sent(db, other) == 1
    # Nothing is due until the first one's lease ends (the second waits behind it).
    assert await storage.next_due_at(db, now) == held.claimed_until
    # Rescheduled (a retry later): still first in line, so the second keeps waiting.
    assert await storage.reschedule(db, [first], now + timedelta(seconds=30), "5xx")
    assert await storage.claim_due(db, "w2", now) == []
    # Its turn comes: both are claimable, in id order.
    later = now + timedelta(seconds=31)
    assert [m.id for m in await storage.claim_due(db, "w2", later)] == [first, second]
    # A message given up for good no longer holds its chat back.
    third = await _one(db, chat=5)
    assert await storage.mark_failed(db, [first], "400")
    assert await storage.mark_sent(db, second) == 1
    assert [m.id for m in await storage.claim_due(db, "w2", later)] == [third]


async def test_rank_claims_goods_before_admin_notices(db: storage.Database) -> None:
    notices = [await _one(db, kind="admin") for _ in range(3)]
    goods = [await _one(db, kind="goods") for _ in range(3)]
    now = storage.utcnow()
    batch = await storage.claim_due(db, "w", now, limit=3, rank={"admin": 1})
    assert [m.id for m in batch] == goods
    assert [m.id for m in await storage.claim_due(db, "w", now, limit=3)] == notices


async def test_renewed_lease_keeps_the_claim_and_a_lapsed_one_is_lost(
    db: storage.Database,
) -> None:
    a, b = await _one(db), await _one(db)
    now = storage.utcnow()
    assert len(await storage.claim_due(db, "w1", now, lease_seconds=10)) == 2
    renewed_until = now + timedelta(seconds=19)
    assert await storage.renew_claims(db, "w1", [a], renewed_until) == {a}
    # 15 s later: b's lease lapsed and w2 takes it over; a is still w1's.
    taken = await storage.claim_due(db, "w2", now + timedelta(seconds=15))
    assert [m.id for m in taken] == [b]
    assert await storage.renew_claims(db, "w1", [a, b], now + timedelta(seconds=25)) == {a}
    assert await storage.mark_sent(db, a) == 1
    assert await storage.renew_claims(db, "w1", [a], now + timedelta(seconds=30)) == set()
    assert await storage.renew_claims(db, "w1", [], now) == set()


async def test_release_hands_back_only_the_given_claims(db: storage.Database) -> None:
    a, _ = await _one(db), await _one(db)
    now = storage.utcnow()
    assert len(await storage.claim_due(db, "w", now)) == 2
    assert await storage.release_claims(db, "w", [a]) == 1
    assert await storage.release_claims(db, "w", []) == 0
    assert [m.id for m in await storage.claim_due(db, "other", now)] == [a]
    assert await storage.release_claims(db, "w") == 1  # b


async def test_mark_sent_marks_a_batch_together(db: storage.Database) -> None:
    ids = [await _one(db, chat=9) for _ in range(3)]
    assert await storage.mark_sent(db, *ids) == 3
    assert await storage.mark_sent(db, *ids) == 0
    assert await storage.outbox_backlog(db) == 0


# --- paid → delivered with the goods message -------------------------------------------------


async def _paid_with_goods(db: storage.Database) -> tuple[int, int]:
    """A paid order and the id of its goods message."""
    order = await order_for(db, await seed(db, codes=1))
    assert order.id is not None
    await storage.settle(db, payment(order))
    (message,) = await storage.claim_due(db, "w", storage.utcnow())
    assert message.id is not None and message.order_id == order.id
    return order.id, message.id


async def _status(db: storage.Database, order_id: int) -> OrderStatus:
    got = await storage.get_order(db, order_id)
    assert got is not None
    return got.order.status


async def test_goods_sent_and_order_delivered_in_one_step(db: storage.Database) -> None:
    order_id, message_id = await _paid_with_goods(db)
    assert await _status(db, order_id) is OrderStatus.PAID
    assert await storage.mark_sent(db, message_id, deliver_order=order_id) == 1
    got = await storage.get_order(db, order_id)
    assert got is not None and got.order.status is OrderStatus.DELIVERED
    assert got.order.delivered_at is not None
    assert await storage.outbox_backlog(db) == 0


async def test_message_already_sent_delivers_nothing(db: storage.Database) -> None:
    order_id, message_id = await _paid_with_goods(db)
    assert await storage.mark_sent(db, message_id) == 1
    assert await storage.mark_sent(db, message_id, deliver_order=order_id) == 0
    assert await _status(db, order_id) is OrderStatus.PAID


async def test_goods_sent_for_an_order_no_longer_paid_leave_it_as_it_is(
    db: storage.Database,
) -> None:
    """Refunded before its goods went out: the message is recorded sent, and the order stays
    refunded (delivered only from paid)."""
    order_id, message_id = await _paid_with_goods(db)
    async with db.transaction() as s:
        assert await transition(s, order_id, OrderStatus.REFUNDED) is not None
    assert await storage.mark_sent(db, message_id, deliver_order=order_id) == 1
    assert await _status(db, order_id) is OrderStatus.REFUNDED
    assert await storage.outbox_backlog(db) == 0


_REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_orders BEFORE UPDATE ON orders "
        "BEGIN SELECT RAISE(ABORT, 'orders refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_orders() RETURNS trigger AS "
        "$$ BEGIN RAISE EXCEPTION 'orders refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_orders BEFORE UPDATE ON orders "
        "FOR EACH ROW EXECUTE FUNCTION refuse_orders()",
    ],
}
_ALLOW = {
    "sqlite": ["DROP TRIGGER refuse_orders"],
    "postgresql": ["DROP TRIGGER refuse_orders ON orders", "DROP FUNCTION refuse_orders()"],
}


async def test_order_update_failing_leaves_the_message_unsent(
    db: storage.Database, engine_name: str
) -> None:
    """One transaction: when the database refuses the order's update, the goods message is
    not recorded as sent either (it comes back for another try)."""
    order_id, message_id = await _paid_with_goods(db)
    async with db.engine.begin() as conn:
        for sql in _REFUSE[engine_name]:
            await conn.execute(sa.text(sql))
    try:
        with pytest.raises(sa.exc.DBAPIError, match="orders refused"):
            await storage.mark_sent(db, message_id, deliver_order=order_id)
    finally:
        async with db.engine.begin() as conn:
            for sql in _ALLOW[engine_name]:
                await conn.execute(sa.text(sql))
    assert await _status(db, order_id) is OrderStatus.PAID
    assert await storage.outbox_backlog(db) == 1
    assert await storage.mark_sent(db, message_id, deliver_order=order_id) == 1
    assert await _status(db, order_id) is OrderStatus.DELIVERED
