"""The outbox worker at Telegram's pace: chats side by side, each chat in order, goods before
admin notices, the notices of a busy moment in one message, leases kept while sending."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiogram.methods import SendMessage

from bot.jobs import reconcile
from bot.runtime import delivery
from bot.runtime.delivery import MAX_TEXT, OutboxWorker
from bot.shop.checkout import checkout
from storage import Buyer, OrderStatus, OutboxDraft, OutboxMessage, OutboxStatus, claim_due, enqueue
from tests.bot.conftest import ADMIN_ID, Shop

BUYERS = [2001, 2002, 2003, 2004, 2005, 2006]


async def paid_orders(shop: Shop, buyers: list[int], sku: str = "guide") -> list[int]:
    """One paid order per buyer (settled by reconciliation: goods + an admin notice each)."""
    ids = []
    for user in buyers:
        result = await checkout(shop.ctx, Buyer(user, None, None), sku, 1)
        assert result.ok and result.order_id is not None, result
        invoice_id = (await shop.order(result.order_id)).invoice_id
        assert invoice_id is not None
        await shop.cp.pay(invoice_id, send_webhook=False)
        ids.append(result.order_id)
    assert await reconcile(shop.ctx) == len(buyers)
    return ids


def sends(shop: Shop) -> list[SendMessage]:
    return [m for m in shop.session.accepted if isinstance(m, SendMessage)]


async def test_chats_go_side_by_side_and_goods_before_the_admin(shop: Shop) -> None:
    order_ids = await paid_orders(shop, BUYERS)
    shop.session.latency = 0.2  # a send takes a while: one at a time would be slow
    assert await OutboxWorker(shop.ctx).drain_once() == 2 * len(BUYERS)

    assert shop.session.max_in_flight >= 2  # several chats at once
    assert shop.session.max_in_flight_per_chat == 1
    sent = sends(shop)
    assert sorted(m.chat_id for m in sent[: len(BUYERS)]) == BUYERS  # every buyer's goods first
    # The admin's six "paid" notices, queued at once, arrive as one message, last.
    (admin,) = [m for m in sent if m.chat_id == ADMIN_ID]
    assert sent[-1] is admin
    assert all(f"Order #{order_id} paid" in admin.text for order_id in order_ids)
    for order_id in order_ids:
        assert (await shop.order(order_id)).status == OrderStatus.DELIVERED
    rows = await shop.outbox()
    assert {r.status for r in rows} == {OutboxStatus.SENT}


async def test_a_chats_messages_go_one_at_a_time_in_order(shop: Shop) -> None:
    shop.session.latency = 0.05
    texts = [f"message {n}" for n in range(3)]
    await enqueue(shop.ctx.db, [OutboxDraft(7001, text, kind="notice") for text in texts])
    started = time.monotonic()
    assert await OutboxWorker(shop.ctx).drain_once() == 3
    assert [m.text for m in sends(shop)] == texts
    assert shop.session.max_in_flight_per_chat == 1
    assert time.monotonic() - started >= 2.0  # one a second to one private chat


async def test_notices_too_long_for_one_message_are_split(shop: Shop) -> None:
    long = "x" * (MAX_TEXT // 2 - 10)
    drafts = [OutboxDraft(ADMIN_ID, f"{n} {long}", kind="admin") for n in range(3)]
    await enqueue(shop.ctx.db, drafts)
    await OutboxWorker(shop.ctx).drain_once()
    sent = [m.text for m in sends(shop)]
    assert len(sent) == 2 and all(len(text) <= MAX_TEXT for text in sent)
    assert sent[0].startswith("0 ") and "\n\n1 " in sent[0] and sent[1].startswith("2 ")


async def test_a_retry_holds_back_the_chats_later_messages(shop: Shop) -> None:
    from aiogram.exceptions import TelegramServerError

    await enqueue(shop.ctx.db, [OutboxDraft(7002, f"m{n}", kind="notice") for n in range(2)])
    shop.session.fail["sendMessage"] = [
        lambda m: TelegramServerError(method=m, message="Internal Server Error")
    ]
    assert await OutboxWorker(shop.ctx).drain_once() == 2
    assert sends(shop) == []  # the second is not sent ahead of the first
    rows = sorted(await shop.outbox(), key=lambda r: r.id)
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 2
    assert rows[1].claimed_by is None  # handed back, not left to its lease
    shop.clock.advance(700)
    assert await OutboxWorker(shop.ctx).drain_once() == 2
    assert [m.text for m in sends(shop)] == ["m0", "m1"]


async def claimed_until(shop: Shop, message_id: int) -> Any:
    async with shop.ctx.db.session() as s:
        return await s.scalar(
            sa.select(OutboxMessage.claimed_until).where(OutboxMessage.id == message_id)
        )


async def test_a_slow_send_keeps_its_lease(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lease is renewed while the send is in flight: nobody else may take the message
    after the first lease would have ended."""
    monkeypatch.setattr(delivery, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(delivery, "RENEW_SECONDS", 0.2)
    (message_id,) = await enqueue(shop.ctx.db, [OutboxDraft(7003, "slow", kind="notice")])
    shop.session.latency = 30.0
    worker = OutboxWorker(shop.ctx)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while (first := await claimed_until(shop, message_id)) is None:
            assert time.monotonic() < deadline, "never claimed"
            await asyncio.sleep(0.02)
        while (renewed := await claimed_until(shop, message_id)) <= first:
            assert time.monotonic() < deadline, "lease never renewed"
            await asyncio.sleep(0.02)
        assert renewed > first
        assert await claim_due(shop.ctx.db, "other", first + timedelta(seconds=0.1)) == []
    finally:
        shop.session.latency = 0.0
        await worker.stop()


async def test_stopping_finishes_the_send_in_flight_and_hands_back_the_rest(
    shop: Shop,
) -> None:
    first, second = await enqueue(
        shop.ctx.db, [OutboxDraft(7004, f"m{n}", kind="notice") for n in range(2)]
    )
    shop.session.latency = 0.5
    worker = OutboxWorker(shop.ctx)
    worker.start()
    deadline = time.monotonic() + 10
    while not any(shop.session.in_flight.values()):
        assert time.monotonic() < deadline, "nothing was sent"
        await asyncio.sleep(0.01)
    await worker.stop()
    rows = {r.id: r for r in await shop.outbox()}
    assert rows[first].status == OutboxStatus.SENT  # not cut off halfway
    assert rows[second].status == OutboxStatus.PENDING
    assert rows[second].claimed_by is None  # another replica may send it at once
    assert [m.text for m in sends(shop)] == ["m0"]


async def test_a_lost_lease_hands_back_the_chats_later_messages(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database was out of reach for a whole lease and another worker took a message:
    this worker must not send that chat's later messages ahead of it."""
    monkeypatch.setattr(delivery, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(delivery, "RENEW_SECONDS", 0.2)
    ids = await enqueue(shop.ctx.db, [OutboxDraft(7005, f"m{n}", kind="notice") for n in range(3)])
    shop.session.latency = 2.0
    worker = OutboxWorker(shop.ctx)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not any(shop.session.in_flight.values()):  # m0 is on its way
            assert time.monotonic() < deadline, "nothing was sent"
            await asyncio.sleep(0.01)
        async with shop.ctx.db.transaction() as s:
            await s.execute(
                sa.update(OutboxMessage)
                .where(OutboxMessage.id == ids[1])  # type: ignore[arg-type]
                .values(claimed_by="other")
            )
        # Noticed at the next renewal: m2 is handed back while the worker runs on.
        while (await shop.rows(OutboxMessage, OutboxMessage.id == ids[2]))[0].claimed_by:
            assert time.monotonic() < deadline, "m2 was kept"
            await asyncio.sleep(0.02)
        assert "outbox lease lost" in caplog.text
    finally:
        await worker.stop()  # m0's send finishes first
    rows = {r.id: r for r in await shop.outbox()}
    assert [m.text for m in sends(shop)] == ["m0"]
    assert rows[ids[2]].status == OutboxStatus.PENDING and rows[ids[2]].claimed_by is None
    assert rows[ids[1]].claimed_by == "other"


async def test_a_message_that_cannot_be_composed_is_dropped_and_frees_its_chat(
    shop: Shop,
) -> None:
    """A textless row of no known fact (a bug, or its order gone) is retried with backoff,
    then given up, so the chat's later messages still go."""
    bad, good = await enqueue(
        shop.ctx.db,
        [OutboxDraft(7101, "", kind="no_such_fact"), OutboxDraft(7101, "after it", kind="notice")],
    )
    worker = OutboxWorker(shop.ctx)
    for _ in range(delivery.MAX_COMPOSE_ATTEMPTS - 1):
        await worker.drain_once()
        assert sends(shop) == []  # "after it" waits behind the failing row
        shop.clock.advance(delivery.MAX_BACKOFF * 1.5 + 1)
    await worker.drain_once()  # the last attempt gives up on it; "after it" follows
    assert [m.text for m in sends(shop)] == ["after it"]
    rows = {r.id: r for r in await shop.outbox()}
    assert rows[bad].status == OutboxStatus.FAILED and "compose" in (rows[bad].last_error or "")
    assert rows[good].status == OutboxStatus.SENT
