from __future__ import annotations

from datetime import timedelta

import storage
from storage import OutboxStatus


async def _one(db: storage.Database, **kw: object) -> int:
    (mid,) = await storage.enqueue(db, [storage.OutboxDraft(chat_id=7, text="hi", **kw)])  # type: ignore[arg-type]
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
    assert await storage.reschedule(db, a, later, "429 retry_after=40")
    assert await storage.mark_failed(db, b, "Forbidden: bot was blocked by the user")
    assert await storage.claim_due(db, "w", now + timedelta(seconds=39)) == []
    due = await storage.next_due_at(db)
    assert due is not None and abs(due - later) < timedelta(milliseconds=1)
    (msg,) = await storage.claim_due(db, "w", later)
    assert msg.id == a and msg.last_error == "429 retry_after=40" and msg.attempts == 2
    assert not await storage.reschedule(db, b, later, "x")  # failed for good stays failed
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
            storage.OutboxDraft(chat_id=1, text="early", not_before=now - timedelta(seconds=9)),
            storage.OutboxDraft(chat_id=1, text="x", dedupe_key="order:1:admin"),
        ],
    )
    assert len(ids) == 3
    assert (
        await storage.enqueue(db, [storage.OutboxDraft(1, "y", dedupe_key="order:1:admin")]) == []
    )
    batch = await storage.claim_due(db, "w", now + timedelta(seconds=1), limit=2)
    assert [m.text for m in batch] == ["early", "late"]
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
