"""Outbox: messages to send, written in the same transaction as the change they announce.

Workers claim due messages with a short lease and renew it while they hold them; a claim
that is neither finished (sent, rescheduled or failed) nor renewed before its lease ends is
claimable again, so a crashed worker delays its messages by one lease and loses nothing.
A chat's messages are claimed in id order: one whose chat has an earlier message still
held elsewhere (or waiting for its retry) is not claimable.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from storage._sql import dialect_of, locked, table_of
from storage.database import Database
from storage.enums import OrderStatus, OutboxKind, OutboxStatus
from storage.models import OutboxMessage
from storage.order_states import transition
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class OutboxDraft:
    """A row to enqueue: a fact (kind, order, recipient; no text — composed when sent) or a
    message with its text."""

    chat_id: int
    text: str = ""
    kind: str = "message"
    reply_markup: str | None = None  # JSON of the Telegram reply_markup
    document_name: str | None = None
    document_data: bytes | None = None
    order_id: int | None = None
    dedupe_key: str | None = None  # a second draft with the same key is dropped
    not_before: datetime | None = None
    broadcast_id: int | None = None


def order_message_edit(
    order_id: int, message_chat_id: int | None, message_id: int | None, tag: str
) -> list[OutboxDraft]:
    """The fact that the order message (when one is recorded) is to show the order's new
    state: no Pay or Cancel left on an order that is paid, expired or cancelled."""
    if message_chat_id is None or message_id is None:
        return []
    return [
        OutboxDraft(
            message_chat_id,
            kind=OutboxKind.ORDER_MESSAGE,
            order_id=order_id,
            dedupe_key=f"order_message:{tag}:{order_id}",
        )
    ]


_outbox = table_of(OutboxMessage)
# PostgreSQL: claims take turns (a few milliseconds each). Two claims at once would each
# see the other's rows as unclaimed and could split one chat's messages between workers.
CLAIM_LOCK_KEY = 0x5707A10
# Core, built once: the ORM's bulk-insert bookkeeping cost more than the insert.
_INSERT = {
    name: insert(_outbox).on_conflict_do_nothing(index_elements=["dedupe_key"])
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_INSERT_RETURNING = {name: stmt.returning(_outbox.c.id) for name, stmt in _INSERT.items()}


def _rows(drafts: Sequence[OutboxDraft]) -> list[dict[str, object]]:
    now = utcnow()
    return [
        {
            "chat_id": d.chat_id,
            "text": d.text,
            "kind": d.kind,
            "reply_markup": d.reply_markup,
            "document_name": d.document_name,
            "document_data": d.document_data,
            "order_id": d.order_id,
            "dedupe_key": d.dedupe_key,
            "broadcast_id": d.broadcast_id,
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": d.not_before or now,
            "created_at": now,
        }
        for d in drafts
    ]


async def enqueue_in(s: AsyncSession, drafts: Sequence[OutboxDraft]) -> list[int]:
    """Insert drafts inside the caller's transaction; returns the new ids (duplicates of an
    existing dedupe_key are skipped)."""
    if not drafts:
        return []
    res = await s.execute(_INSERT_RETURNING[dialect_of(s)], _rows(drafts))
    return [row[0] for row in res.all()]


async def add_in(s: AsyncSession, drafts: Sequence[OutboxDraft]) -> None:
    """`enqueue_in` without the ids: one executemany, no rows to read back."""
    if drafts:
        await s.execute(_INSERT[dialect_of(s)], _rows(drafts))


async def enqueue(db: Database, drafts: Sequence[OutboxDraft]) -> list[int]:
    async with db.transaction() as s:
        return await enqueue_in(s, drafts)


async def queued_keys(db: Database, keys: Collection[str]) -> set[str]:
    """Which of these dedupe keys an outbox row already has (sent or not): a read, so that
    a caller that would mostly enqueue duplicates need not take a write transaction."""
    if not keys:
        return set()
    async with db.session() as s:
        found = await s.scalars(
            sa.select(col(OutboxMessage.dedupe_key)).where(
                col(OutboxMessage.dedupe_key).in_(list(keys))
            )
        )
        return {key for key in found if key is not None}


def _free(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) <= now
    )


def _of_broadcasts(broadcasts: Collection[int]) -> sa.ColumnElement[bool]:
    not_broadcast = col(OutboxMessage.broadcast_id).is_(None)
    if not broadcasts:
        return not_broadcast
    return sa.or_(not_broadcast, col(OutboxMessage.broadcast_id).in_(list(broadcasts)))


def _chat_waits(now: datetime) -> sa.Exists:
    """An earlier pending message of the same chat is held (a live lease) or waits for its
    next attempt: later messages of that chat must wait for it. A broadcast's message is
    never waited for by the chat's own messages (goods, order notices): a broadcast held
    for its low-priority turn, or waiting out a 5xx, never delays them."""
    earlier = aliased(OutboxMessage)
    return sa.exists().where(
        col(earlier.chat_id) == col(OutboxMessage.chat_id),
        col(earlier.status) == OutboxStatus.PENDING,
        col(earlier.id) < col(OutboxMessage.id),
        sa.or_(col(earlier.next_attempt_at) > now, col(earlier.claimed_until) > now),
        sa.or_(col(earlier.broadcast_id).is_(None), col(OutboxMessage.broadcast_id).is_not(None)),
    )


async def claim_due(
    db: Database,
    worker_id: str,
    now: datetime | None = None,
    limit: int = 20,
    lease_seconds: float = 10,
    *,
    rank: Mapping[str, int] | None = None,
    broadcasts: Collection[int] = (),
    broadcast_limit: int | None = None,
) -> list[OutboxMessage]:
    """Claim up to `limit` due messages for `worker_id` until now + lease; `attempts` is
    incremented. No two workers hold the same message at once, and a message is not
    claimed while an earlier one of its chat is held or waiting. `rank` orders the claim
    by kind (lower first, unlisted kinds 0), then by due time and id; the result is in
    id order. A broadcast's messages are claimed only by the worker that holds the
    broadcast (`broadcasts`: their ids), so that one replica paces each broadcast; at most
    `broadcast_limit` of them."""
    now = now or utcnow()
    order: list[sa.ColumnElement[object]] = []
    if rank:
        order.append(sa.case(dict(rank), value=col(OutboxMessage.kind), else_=0))
    async with db.transaction() as s:
        if db.is_postgres:
            await s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_LOCK_KEY})
        due = (
            sa.select(col(OutboxMessage.id), col(OutboxMessage.broadcast_id))
            .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
            .where(col(OutboxMessage.next_attempt_at) <= now, _free(now))
            .where(~_chat_waits(now), _of_broadcasts(broadcasts))
            .order_by(*order, col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
            .limit(limit)
        )
        # Two statements, not `id IN (subquery LIMIT n)`: PostgreSQL may evaluate such a
        # subquery more than once and update more than `limit` rows.
        rows = (await s.execute(locked(s, due, skip_locked=True))).all()
        ids = [row[0] for row in rows]
        if broadcast_limit is not None:
            beyond = set([row[0] for row in rows if row[1] is not None][broadcast_limit:])
            ids = [i for i in ids if i not in beyond]
        if not ids:
            return []
        stmt = (
            sa.update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(ids))
            .where(col(OutboxMessage.status) == OutboxStatus.PENDING, _free(now))
            .values(
                claimed_by=worker_id,
                claimed_until=now + timedelta(seconds=lease_seconds),
                attempts=col(OutboxMessage.attempts) + 1,
            )
            .returning(OutboxMessage)
        )
        claimed = list(
            (
                await s.scalars(
                    stmt,
                    execution_options={"synchronize_session": False, "populate_existing": True},
                )
            ).all()
        )
    claimed.sort(key=lambda m: m.id or 0)
    return claimed


async def renew_claims(
    db: Database, worker_id: str, ids: Collection[int], until: datetime
) -> set[int]:
    """Extend `worker_id`'s leases on these messages to `until`; returns the ids it still
    holds (a message finished, or taken over after a lapsed lease, is left out)."""
    if not ids:
        return set()
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.id).in_(list(ids)),
                col(OutboxMessage.claimed_by) == worker_id,
                col(OutboxMessage.status) == OutboxStatus.PENDING,
            )
            .values(claimed_until=until)
            .returning(col(OutboxMessage.id))
        )
        return {message_id for (message_id,) in res.all() if message_id is not None}


async def _finish_in(s: AsyncSession, message_ids: Sequence[int], **values: object) -> int:
    """Release the claims on these messages, still pending, setting `values`; how many."""
    res = await s.execute(
        sa.update(OutboxMessage)
        .where(
            col(OutboxMessage.id).in_(message_ids),
            col(OutboxMessage.status) == OutboxStatus.PENDING,
        )
        .values(claimed_until=None, claimed_by=None, **values)
        .returning(col(OutboxMessage.id))
    )
    return len(res.all())


async def mark_sent(db: Database, *message_ids: int, deliver_order: int | None = None) -> int:
    """Mark these messages sent (one Telegram message may carry several); returns how many
    were still pending. With `deliver_order`, that order goes paid → delivered in the same
    transaction — and only if a message was marked here, so the order is delivered exactly
    when its goods message is recorded as sent."""
    now = utcnow()
    async with db.transaction() as s:
        marked = await _finish_in(s, message_ids, status=OutboxStatus.SENT, sent_at=now)
        if marked and deliver_order is not None:
            await transition(s, deliver_order, OrderStatus.DELIVERED, delivered_at=now)
        return marked


async def reschedule(
    db: Database, message_ids: Sequence[int], next_attempt_at: datetime, error: str
) -> int:
    """Release the claims and retry at `next_attempt_at` (the caller computes the backoff);
    one transaction for the messages one Telegram message carried."""
    async with db.transaction() as s:
        return await _finish_in(s, message_ids, next_attempt_at=next_attempt_at, last_error=error)


async def mark_failed(db: Database, message_ids: Sequence[int], error: str) -> int:
    """Give up for good (e.g. the user blocked the bot)."""
    async with db.transaction() as s:
        return await _finish_in(
            s, message_ids, status=OutboxStatus.FAILED, failed_at=utcnow(), last_error=error
        )


async def outbox_backlog(db: Database) -> int:
    async with db.session() as s:
        n = await s.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
        )
        return int(n or 0)


async def next_due_at(
    db: Database, now: datetime | None = None, broadcasts: Collection[int] = ()
) -> datetime | None:
    """When the next pending message becomes claimable (its next attempt, or the end of its
    current lease); None when nothing is pending. A message waiting behind an earlier one of
    its chat is left out: it becomes claimable when that one's lease or retry time ends (or
    it is finished, which its worker announces itself). Broadcasts' messages count only for
    the worker holding the broadcast (`broadcasts`)."""
    now = now or utcnow()
    async with db.session() as s:
        unclaimed = await s.scalar(
            sa.select(sa.func.min(col(OutboxMessage.next_attempt_at))).where(
                col(OutboxMessage.status) == OutboxStatus.PENDING,
                col(OutboxMessage.claimed_until).is_(None),
                ~_chat_waits(now),
                _of_broadcasts(broadcasts),
            )
        )
        lease_end = await s.scalar(
            sa.select(sa.func.min(col(OutboxMessage.claimed_until))).where(
                col(OutboxMessage.status) == OutboxStatus.PENDING
            )
        )
    candidates = [t for t in (unclaimed, lease_end) if t is not None]
    return min(candidates) if candidates else None


async def release_claims(db: Database, worker_id: str, ids: Collection[int] | None = None) -> int:
    """Hand back `worker_id`'s claims (all of them, or these `ids`) unsent: claimable again
    at once. A restarted worker with the same id need not wait for its dead predecessor's
    leases; a worker stopping, or giving up a chat's later messages, frees them now."""
    where = [
        col(OutboxMessage.claimed_by) == worker_id,
        col(OutboxMessage.status) == OutboxStatus.PENDING,
    ]
    if ids is not None:
        if not ids:
            return 0
        where.append(col(OutboxMessage.id).in_(list(ids)))
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(OutboxMessage)
            .where(*where)
            .values(claimed_until=None, claimed_by=None)
            .returning(col(OutboxMessage.id))
        )
        return len(res.all())
