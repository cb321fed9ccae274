"""Outbox: messages to send, written in the same transaction as the change they announce.

Workers claim due messages with a lease; a claim that is not finished (sent, rescheduled or
failed) before the lease ends is claimable again, so a crashed worker loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import dialect_of, locked, table_of
from storage.database import Database
from storage.enums import OutboxStatus
from storage.models import OutboxMessage
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


_outbox = table_of(OutboxMessage)
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


async def claim_due(
    db: Database,
    worker_id: str,
    now: datetime | None = None,
    limit: int = 20,
    lease_seconds: float = 60,
) -> list[OutboxMessage]:
    """Claim up to `limit` due messages for `worker_id` until now + lease; `attempts` is
    incremented. No two workers hold the same message at once."""
    now = now or utcnow()
    free = sa.or_(
        col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) <= now
    )
    async with db.transaction() as s:
        due = (
            sa.select(col(OutboxMessage.id))
            .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
            .where(col(OutboxMessage.next_attempt_at) <= now, free)
            .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
            .limit(limit)
        )
        # Two statements, not `id IN (subquery LIMIT n)`: PostgreSQL may evaluate such a
        # subquery more than once and update more than `limit` rows.
        ids = list((await s.scalars(locked(s, due, skip_locked=True))).all())
        if not ids:
            return []
        stmt = (
            sa.update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(ids))
            .where(col(OutboxMessage.status) == OutboxStatus.PENDING, free)
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
    claimed.sort(key=lambda m: (m.next_attempt_at, m.id or 0))
    return claimed


async def _finish(db: Database, message_id: int, **values: object) -> bool:
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.id) == message_id,
                col(OutboxMessage.status) == OutboxStatus.PENDING,
            )
            .values(claimed_until=None, claimed_by=None, **values)
            .returning(col(OutboxMessage.id))
        )
        return res.first() is not None


async def mark_sent(db: Database, message_id: int) -> bool:
    return await _finish(db, message_id, status=OutboxStatus.SENT, sent_at=utcnow())


async def reschedule(db: Database, message_id: int, next_attempt_at: datetime, error: str) -> bool:
    """Release the claim and retry at `next_attempt_at` (the caller computes the backoff)."""
    return await _finish(db, message_id, next_attempt_at=next_attempt_at, last_error=error)


async def mark_failed(db: Database, message_id: int, error: str) -> bool:
    """Give up for good (e.g. the user blocked the bot)."""
    return await _finish(
        db, message_id, status=OutboxStatus.FAILED, failed_at=utcnow(), last_error=error
    )


async def outbox_backlog(db: Database) -> int:
    async with db.session() as s:
        n = await s.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
        )
        return int(n or 0)


async def next_due_at(db: Database) -> datetime | None:
    """When the next pending message becomes claimable (its next attempt, or the end of its
    current lease); None when nothing is pending."""
    async with db.session() as s:
        unclaimed = await s.scalar(
            sa.select(sa.func.min(col(OutboxMessage.next_attempt_at))).where(
                col(OutboxMessage.status) == OutboxStatus.PENDING,
                col(OutboxMessage.claimed_until).is_(None),
            )
        )
        lease_end = await s.scalar(
            sa.select(sa.func.min(col(OutboxMessage.claimed_until))).where(
                col(OutboxMessage.status) == OutboxStatus.PENDING
            )
        )
    candidates = [t for t in (unclaimed, lease_end) if t is not None]
    return min(candidates) if candidates else None


async def release_claims(db: Database, worker_id: str) -> int:
    """Hand back every claim `worker_id` still holds — a restarted worker with the same id
    need not wait for its dead predecessor's leases to run out."""
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.claimed_by) == worker_id,
                col(OutboxMessage.status) == OutboxStatus.PENDING,
            )
            .values(claimed_until=None, claimed_by=None)
            .returning(col(OutboxMessage.id))
        )
        return len(res.all())
