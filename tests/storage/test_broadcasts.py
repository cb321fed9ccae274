"""Broadcasts in storage, on SQLite and PostgreSQL: recipients enqueued a page at a time and
never twice, one owner at a time, only the owner's worker claims its rows, counts, finish and
stop."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

import storage
from storage import BroadcastStatus, OutboxKind, OutboxMessage, OutboxStatus
from tests.storage.conftest import buyer, order_for, seed

FIRST = 50_000


async def customers(db: storage.Database, n: int, first: int = FIRST) -> list[int]:
    for user in range(first, first + n):
        await buyer(db, user)
    return list(range(first, first + n))


async def rows_of(db: storage.Database, broadcast_id: int) -> list[OutboxMessage]:
    async with db.session() as s:
        found = await s.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.broadcast_id == broadcast_id)  # type: ignore[arg-type]
            .order_by(OutboxMessage.id)  # type: ignore[arg-type]
        )
        return list(found.all())


async def owned(db: storage.Database, owner: str, seconds: float = 30) -> list[int]:
    now = storage.utcnow()
    leased = await storage.lease_broadcasts(db, owner, now, now + timedelta(seconds=seconds))
    return [b.id for b in leased if b.id is not None]


async def test_pages_enqueue_each_recipient_once_and_only_the_audience_of_the_moment(
    db: storage.Database,
) -> None:
    users = await customers(db, 25)
    await storage.set_blocked(db, users[3], True)
    broadcast = await storage.create_broadcast(db, 1, "Hello")
    assert broadcast.id is not None and broadcast.total == 24
    await customers(db, 3, first=90_000)  # joined after Send: not in it
    assert await owned(db, "w1") == [broadcast.id]

    assert await storage.feed_broadcast(db, broadcast.id, "w1", low=5, page=10) == 10
    assert await storage.feed_broadcast(db, broadcast.id, "w1", low=5, page=10) == 0  # 10 pending
    first = await rows_of(db, broadcast.id)
    assert [r.chat_id for r in first] == users[:3] + users[4:11]
    await storage.mark_sent(db, *[r.id for r in first[:6] if r.id is not None])
    assert await storage.feed_broadcast(db, broadcast.id, "w1", low=5, page=10) == 10
    await storage.mark_sent(db, *[r.id for r in await rows_of(db, broadcast.id) if r.id])
    assert await storage.feed_broadcast(db, broadcast.id, "w1", low=5, page=10) == 4
    assert await storage.feed_broadcast(db, broadcast.id, "w1", low=50, page=10) == 0  # all in

    chats = [r.chat_id for r in await rows_of(db, broadcast.id)]
    assert chats == [u for u in users if u != users[3]]
    stored = await storage.get_broadcast(db, broadcast.id)
    assert stored is not None and stored.enqueued == 24
    assert {r.kind for r in await rows_of(db, broadcast.id)} == {OutboxKind.BROADCAST}


async def test_feeding_at_once_still_enqueues_nobody_twice(db: storage.Database) -> None:
    await customers(db, 40)
    broadcast = await storage.create_broadcast(db, 1, "Hello")
    assert broadcast.id is not None
    await owned(db, "w1")
    fed = await asyncio.gather(
        *(storage.feed_broadcast(db, broadcast.id, "w1", low=100, page=15) for _ in range(5))
    )
    chats = [r.chat_id for r in await rows_of(db, broadcast.id)]
    assert sum(fed) == len(chats) == len(set(chats)) == 40


async def test_one_owner_at_a_time_and_only_its_worker_claims_the_rows(
    db: storage.Database,
) -> None:
    await customers(db, 3)
    prod = await seed(db, "key", codes=1)
    broadcast = await storage.create_broadcast(db, 1, "Hello")
    assert broadcast.id is not None
    assert await owned(db, "w1", seconds=5) == [broadcast.id]
    assert await owned(db, "w2") == []
    assert await storage.feed_broadcast(db, broadcast.id, "w2", low=10, page=10) == 0
    assert await storage.feed_broadcast(db, broadcast.id, "w1", low=10, page=10) == 3
    order = await order_for(db, prod, telegram_id=FIRST)
    (goods,) = await storage.enqueue(
        db, [storage.OutboxDraft(FIRST + 1, "goods", order_id=order.id)]
    )

    now = storage.utcnow()
    # A worker that does not hold the broadcast sees only the other messages.
    (claimed,) = await storage.claim_due(db, "w2", now, limit=10)
    assert claimed.id == goods
    assert await storage.claim_due(db, "w2", now, limit=10) == []
    rank = {str(OutboxKind.BROADCAST): 2}
    mine = await storage.claim_due(db, "w1", now, limit=10, rank=rank, broadcasts=[broadcast.id])
    assert [m.chat_id for m in mine] == [FIRST, FIRST + 1, FIRST + 2]
    assert await storage.next_due_at(db, now) is not None  # the leases' end

    # The lease lapses: another replica takes the broadcast over.
    later = now + timedelta(seconds=6)
    leased = await storage.lease_broadcasts(db, "w2", later, later + timedelta(seconds=30))
    assert [b.id for b in leased] == [broadcast.id]
    await storage.release_broadcasts(db, "w2")
    assert await owned(db, "w3") == [broadcast.id]


async def test_counts_finish_and_stop(db: storage.Database) -> None:
    users = await customers(db, 6)
    broadcast = await storage.create_broadcast(db, 1, "Hello")
    assert broadcast.id is not None
    await owned(db, "w1")
    await storage.feed_broadcast(db, broadcast.id, "w1", low=10, page=10)
    rows = [r.id for r in await rows_of(db, broadcast.id) if r.id is not None]
    await storage.mark_sent(db, rows[0], rows[1])
    await storage.mark_failed(db, [rows[2]], "403 Forbidden: bot was blocked by the user")
    await storage.mark_failed(db, [rows[3]], "400 Bad Request: chat not found")
    assert not await storage.finish_broadcast(db, broadcast.id)  # two still pending
    counts = (await storage.broadcast_counts(db, [broadcast.id]))[broadcast.id]
    assert counts == storage.BroadcastCounts(delivered=2, blocked=1, failed=1, pending=2)

    await storage.claim_due(db, "w1", storage.utcnow(), broadcasts=[broadcast.id], limit=1)
    assert await storage.stop_broadcast(db, broadcast.id)
    assert not await storage.stop_broadcast(db, broadcast.id)
    statuses = {(r.chat_id, r.status, r.last_error) for r in await rows_of(db, broadcast.id)}
    assert (users[4], OutboxStatus.PENDING, None) in statuses  # held by a worker: it decides
    assert (users[5], OutboxStatus.FAILED, storage.STOPPED) in statuses
    counts = (await storage.broadcast_counts(db, [broadcast.id]))[broadcast.id]
    assert counts == storage.BroadcastCounts(delivered=2, blocked=1, failed=1, pending=1)
    stopped = await storage.get_broadcast(db, broadcast.id)
    assert stopped is not None and stopped.status == BroadcastStatus.STOPPED
    assert await owned(db, "w1") == []  # nothing left to lease


async def test_a_broadcast_is_done_once_everything_is_finished(db: storage.Database) -> None:
    await customers(db, 2)
    broadcast = await storage.create_broadcast(db, 1, "Hello")
    assert broadcast.id is not None
    await owned(db, "w1")
    await storage.feed_broadcast(db, broadcast.id, "w1", low=10, page=10)
    await storage.mark_sent(db, *[r.id for r in await rows_of(db, broadcast.id) if r.id])
    done = await asyncio.gather(*(storage.finish_broadcast(db, broadcast.id) for _ in range(4)))
    assert sorted(done) == [False, False, False, True]


async def test_buyers_only_counts_customers_with_a_paid_order(db: storage.Database) -> None:
    await customers(db, 4)
    prod = await seed(db, "key", codes=3)
    paid = await order_for(db, prod, telegram_id=FIRST)
    await order_for(db, prod, telegram_id=FIRST + 1)  # pending: not a buyer
    async with db.transaction() as s:
        await s.execute(
            sa.update(storage.Order)
            .where(storage.Order.id == paid.id)  # type: ignore[arg-type]
            .values(status=storage.OrderStatus.DELIVERED)
        )
    assert await storage.audience_size(db, buyers_only=True) == 1
    assert await storage.audience_size(db, buyers_only=False) == 4
    broadcast = await storage.create_broadcast(db, 1, "Hi", buyers_only=True)
    assert broadcast.id is not None and broadcast.total == 1
    await owned(db, "w1")
    assert await storage.feed_broadcast(db, broadcast.id, "w1", low=10, page=10) == 1
    assert [r.chat_id for r in await rows_of(db, broadcast.id)] == [FIRST]


async def test_a_claim_takes_at_most_broadcast_limit_of_a_broadcasts_messages(
    db: storage.Database,
) -> None:
    await customers(db, 6)
    broadcast = await storage.create_broadcast(db, 1, "Hello")
    assert broadcast.id is not None
    await owned(db, "w1")
    await storage.feed_broadcast(db, broadcast.id, "w1", low=10, page=10)
    (other,) = await storage.enqueue(db, [storage.OutboxDraft(FIRST + 100, "a notice")])
    now = storage.utcnow()
    rank = {str(OutboxKind.BROADCAST): 2}
    claimed = await storage.claim_due(
        db, "w1", now, limit=10, rank=rank, broadcasts=[broadcast.id], broadcast_limit=2
    )
    assert [m.chat_id for m in claimed] == [FIRST, FIRST + 1, FIRST + 100]
    assert claimed[-1].id == other
    again = await storage.claim_due(
        db, "w1", now, limit=10, rank=rank, broadcasts=[broadcast.id], broadcast_limit=0
    )
    assert again == []


async def test_the_progress_may_be_edited_once_per_interval(db: storage.Database) -> None:
    await customers(db, 1)
    broadcast = await storage.create_broadcast(db, 1, "Hello")
    assert broadcast.id is not None
    now = storage.utcnow()
    turns = await asyncio.gather(
        *(storage.progress_turn(db, broadcast.id, now, 3) for _ in range(4))
    )
    assert sorted(turns) == [False, False, False, True]
    assert not await storage.progress_turn(db, broadcast.id, now + timedelta(seconds=2.9), 3)
    assert await storage.progress_turn(db, broadcast.id, now + timedelta(seconds=3), 3)


async def test_a_draft_is_sent_once_even_by_taps_at_the_same_moment(db: storage.Database) -> None:
    await customers(db, 3)
    made = await asyncio.gather(
        *(storage.create_broadcast_from_draft(db, 1, 777, "Hello") for _ in range(4))
    )
    started = [b for b in made if b is not None]
    assert len(started) == 1 and started[0].progress_message_id == 777
    async with db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(storage.Broadcast)) == 1
    # Another draft (another message with Send), or another admin's, is its own broadcast.
    assert await storage.create_broadcast_from_draft(db, 1, 778, "Hello") is not None
    assert await storage.create_broadcast_from_draft(db, 2, 777, "Hello") is not None


async def test_a_chats_own_messages_never_wait_behind_its_broadcast_message(
    db: storage.Database,
) -> None:
    """Goods for a customer whose broadcast message is held by the owner (waiting for its
    low-priority turn) or waits out a 5xx are claimable at once; the chat's order holds
    among its own messages, and a broadcast message still waits behind them."""
    (user, other) = await customers(db, 2)
    broadcast = await storage.create_broadcast(db, 1, "Hello")
    assert broadcast.id is not None
    await owned(db, "w1")
    await storage.feed_broadcast(db, broadcast.id, "w1", low=10, page=10)
    now = storage.utcnow()
    held = await storage.claim_due(db, "w1", now, limit=10, broadcasts=[broadcast.id])
    assert {m.chat_id for m in held} == {user, other}
    await storage.enqueue(db, [storage.OutboxDraft(user, "goods of #1", kind="goods")])
    (goods,) = await storage.claim_due(db, "w2", storage.utcnow(), limit=10)
    assert goods.chat_id == user and goods.text == "goods of #1"

    # The broadcast message is put off (a 5xx): the chat's next goods still go now.
    by_chat = {m.chat_id: m.id for m in held if m.id is not None}
    await storage.reschedule(db, [by_chat[user]], now + timedelta(seconds=30), "502")
    await storage.mark_sent(db, goods.id or 0)
    await storage.enqueue(db, [storage.OutboxDraft(user, "goods of #2", kind="goods")])
    (second,) = await storage.claim_due(db, "w2", storage.utcnow(), limit=10)
    assert second.text == "goods of #2"

    # A goods message put off (a 5xx) still holds back the chat's later broadcast message.
    await storage.reschedule(db, [second.id or 0], now + timedelta(seconds=30), "502")
    await storage.mark_sent(db, by_chat[user], by_chat[other])
    later = await storage.create_broadcast(db, 1, "Again")
    assert later.id is not None
    await owned(db, "w1")
    await storage.feed_broadcast(db, later.id, "w1", low=10, page=10)
    claimed = await storage.claim_due(db, "w1", storage.utcnow(), limit=10, broadcasts=[later.id])
    assert [m.chat_id for m in claimed] == [other]
