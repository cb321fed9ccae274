"""Broadcasts: an admin's message to many customers, sent through the outbox.

A broadcast's recipients are not enqueued at once: the replica holding the broadcast's
lease enqueues the next page (customers past `cursor`, up to the last customer id when it was
sent) when few of its messages are left pending, and moves the cursor in the same
transaction. Each row's dedupe key is the broadcast and the chat, so nobody is enqueued twice
whatever happens; the outbox's claims and leases send each row once, across restarts.
Only the owner's outbox worker claims the broadcast's rows (storage.outbox.claim_due's
`broadcasts`), so several replicas do not add up their paces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import locked
from storage.database import Database
from storage.enums import BroadcastStatus, OutboxKind, OutboxStatus
from storage.models import Broadcast, Customer, Order, OutboxMessage
from storage.order_states import PAID_STATES
from storage.outbox import OutboxDraft, add_in
from storage.types import utcnow

BLOCKED_PREFIX = "403"  # an outbox row's last_error when the recipient blocked the bot
STOPPED = "stopped"  # the last_error of a row not sent because its broadcast was stopped
CREATE_LOCK_KEY = 0x5707B0C  # PostgreSQL: one draft's Send is checked and taken at a time


@dataclass(frozen=True, slots=True)
class BroadcastCounts:
    delivered: int = 0
    blocked: int = 0
    failed: int = 0
    pending: int = 0  # enqueued, not finished


def _audience(buyers_only: bool) -> list[sa.ColumnElement[bool]]:
    where = [~col(Customer.blocked_bot)]
    if buyers_only:
        where.append(
            sa.exists().where(
                col(Order.customer_id) == col(Customer.id),
                col(Order.status).in_(PAID_STATES),
            )
        )
    return where


def _audience_count(buyers_only: bool) -> sa.Select[int]:
    return sa.select(sa.func.count()).select_from(Customer).where(*_audience(buyers_only))


async def audience_size(db: Database, *, buyers_only: bool) -> int:
    """Customers a broadcast would go to now (those who blocked the bot left out)."""
    async with db.session() as s:
        return int(await s.scalar(_audience_count(buyers_only)) or 0)


async def create_broadcast(
    db: Database,
    admin_chat_id: int,
    text: str,
    *,
    photo: str | None = None,
    reply_markup: str | None = None,
    buyers_only: bool = False,
) -> Broadcast:
    """A broadcast to the audience as it is now: customers who join later are not in it."""
    async with db.transaction() as s:
        return await _create_in(s, admin_chat_id, text, photo, reply_markup, buyers_only, None)


async def create_broadcast_from_draft(
    db: Database,
    admin_chat_id: int,
    draft_message_id: int,
    text: str,
    *,
    photo: str | None = None,
    reply_markup: str | None = None,
    buyers_only: bool = False,
) -> Broadcast | None:
    """The broadcast of the draft whose Send sits on `draft_message_id` (that message
    becomes its progress message), once: None when that draft was sent already. Both taps
    of a double tap arrive and are handled at once, on one replica or two; without this
    everyone would get the message twice."""
    async with db.transaction() as s:
        if db.is_postgres:  # SQLite's writers are one at a time already (BEGIN IMMEDIATE)
            await s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CREATE_LOCK_KEY})
        sent = await s.scalar(
            sa.select(col(Broadcast.id)).where(
                col(Broadcast.admin_chat_id) == admin_chat_id,
                col(Broadcast.progress_message_id) == draft_message_id,
            )
        )
        if sent is not None:
            return None
        return await _create_in(
            s, admin_chat_id, text, photo, reply_markup, buyers_only, draft_message_id
        )


async def _create_in(
    s: AsyncSession,
    admin_chat_id: int,
    text: str,
    photo: str | None,
    reply_markup: str | None,
    buyers_only: bool,
    progress_message_id: int | None,
) -> Broadcast:
    last = await s.scalar(sa.select(sa.func.max(col(Customer.id))))
    total = await s.scalar(_audience_count(buyers_only))
    broadcast = Broadcast(
        admin_chat_id=admin_chat_id,
        text=text,
        photo=photo,
        reply_markup=reply_markup,
        buyers_only=buyers_only,
        total=int(total or 0),
        last_customer_id=int(last or 0),
        progress_message_id=progress_message_id,
    )
    s.add(broadcast)
    await s.flush()
    return broadcast


async def set_progress_message(db: Database, broadcast_id: int, message_id: int) -> None:
    async with db.transaction() as s:
        await s.execute(
            sa.update(Broadcast)
            .where(col(Broadcast.id) == broadcast_id)
            .values(progress_message_id=message_id)
        )


async def get_broadcast(db: Database, broadcast_id: int) -> Broadcast | None:
    async with db.session() as s:
        return await s.get(Broadcast, broadcast_id)


async def recent_broadcasts(db: Database, limit: int = 10) -> list[Broadcast]:
    async with db.session() as s:
        rows = await s.scalars(sa.select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit))
        return list(rows.all())


async def lease_broadcasts(
    db: Database, owner: str, now: datetime, until: datetime
) -> list[Broadcast]:
    """Take or keep the lease of every running broadcast that is free, lapsed or already
    ours; returns those now ours. (Asked every second by every replica: a read first, so
    that no write is taken while nothing is being broadcast.)"""
    async with db.session() as s:
        running = await s.scalar(
            sa.select(col(Broadcast.id))
            .where(col(Broadcast.status) == BroadcastStatus.RUNNING)
            .limit(1)
        )
    if running is None:
        return []
    async with db.transaction() as s:
        rows = await s.scalars(
            sa.update(Broadcast)
            .where(
                col(Broadcast.status) == BroadcastStatus.RUNNING,
                sa.or_(
                    col(Broadcast.owner).is_(None),
                    col(Broadcast.owner) == owner,
                    col(Broadcast.owner_until) <= now,
                ),
            )
            .values(owner=owner, owner_until=until)
            .returning(Broadcast),
            execution_options={"synchronize_session": False},
        )
        return sorted(rows.all(), key=lambda b: b.id or 0)


async def release_broadcasts(db: Database, owner: str) -> None:
    """A replica stopping: another (or this one restarted) takes its broadcasts at once."""
    async with db.transaction() as s:
        await s.execute(
            sa.update(Broadcast)
            .where(col(Broadcast.owner) == owner)
            .values(owner=None, owner_until=None)
        )


async def feed_broadcast(
    db: Database, broadcast_id: int, owner: str, *, low: int, page: int
) -> int:
    """Enqueue the broadcast's next page of recipients when fewer than `low` of its
    messages are pending (and the lease is `owner`'s); returns how many were enqueued."""
    async with db.transaction() as s:
        broadcast = (
            await s.scalars(
                locked(
                    s,
                    sa.select(Broadcast).where(
                        col(Broadcast.id) == broadcast_id,
                        col(Broadcast.status) == BroadcastStatus.RUNNING,
                        col(Broadcast.owner) == owner,
                    ),
                )
            )
        ).first()
        if broadcast is None or broadcast.cursor >= broadcast.last_customer_id:
            return 0
        pending = await s.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(
                col(OutboxMessage.broadcast_id) == broadcast_id,
                col(OutboxMessage.status) == OutboxStatus.PENDING,
            )
        )
        if int(pending or 0) >= low:
            return 0
        rows = (
            await s.execute(
                sa.select(col(Customer.id), col(Customer.telegram_id))
                .where(
                    col(Customer.id) > broadcast.cursor,
                    col(Customer.id) <= broadcast.last_customer_id,
                    *_audience(broadcast.buyers_only),
                )
                .order_by(col(Customer.id))
                .limit(page)
            )
        ).all()
        cursor = rows[-1][0] if len(rows) == page else broadcast.last_customer_id
        await add_in(
            s,
            [
                OutboxDraft(
                    chat,
                    kind=OutboxKind.BROADCAST,
                    broadcast_id=broadcast_id,
                    dedupe_key=f"broadcast:{broadcast_id}:{chat}",
                )
                for _, chat in rows
            ],
        )
        await s.execute(
            sa.update(Broadcast)
            .where(col(Broadcast.id) == broadcast_id)
            .values(cursor=cursor, enqueued=col(Broadcast.enqueued) + len(rows))
        )
        return len(rows)


async def broadcast_counts(
    db: Database, broadcast_ids: Sequence[int]
) -> dict[int, BroadcastCounts]:
    """Delivered, blocked, failed and pending messages of each broadcast."""
    if not broadcast_ids:
        return {}
    blocked = col(OutboxMessage.last_error).startswith(BLOCKED_PREFIX)
    stopped = col(OutboxMessage.last_error) == STOPPED
    async with db.session() as s:
        rows = (
            await s.execute(
                sa.select(
                    col(OutboxMessage.broadcast_id),
                    col(OutboxMessage.status),
                    sa.case((blocked, 1), (stopped, 2), else_=0),
                    sa.func.count(),
                )
                .where(col(OutboxMessage.broadcast_id).in_(list(broadcast_ids)))
                .group_by(sa.text("1"), sa.text("2"), sa.text("3"))
            )
        ).all()
    found: dict[int, dict[str, int]] = {b: {} for b in broadcast_ids}
    for broadcast_id, status, why, n in rows:
        if status == OutboxStatus.SENT:
            name = "delivered"
        elif status == OutboxStatus.PENDING:
            name = "pending"
        elif why == 2:
            continue  # never sent: its broadcast was stopped
        else:
            name = "blocked" if why == 1 else "failed"
        counts = found[broadcast_id]
        counts[name] = counts.get(name, 0) + int(n)
    return {b: BroadcastCounts(**counts) for b, counts in found.items()}


async def finish_broadcast(db: Database, broadcast_id: int, now: datetime | None = None) -> bool:
    """Running → done once every recipient was enqueued and none is pending; True for the
    one caller that made the change (it sends the report)."""
    pending = sa.exists().where(
        col(OutboxMessage.broadcast_id) == broadcast_id,
        col(OutboxMessage.status) == OutboxStatus.PENDING,
    )
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(Broadcast)
            .where(
                col(Broadcast.id) == broadcast_id,
                col(Broadcast.status) == BroadcastStatus.RUNNING,
                col(Broadcast.cursor) >= col(Broadcast.last_customer_id),
                ~pending,
            )
            .values(status=BroadcastStatus.DONE, finished_at=now or utcnow())
            .returning(col(Broadcast.id))
        )
        return res.first() is not None


async def stop_broadcast(db: Database, broadcast_id: int, now: datetime | None = None) -> bool:
    """Running → stopped: its pending messages nobody holds are dropped; those a worker
    holds are dropped when it composes them. True for the caller that stopped it."""
    now = now or utcnow()
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(Broadcast)
            .where(
                col(Broadcast.id) == broadcast_id,
                col(Broadcast.status) == BroadcastStatus.RUNNING,
            )
            .values(status=BroadcastStatus.STOPPED, finished_at=now)
            .returning(col(Broadcast.id))
        )
        if res.first() is None:
            return False
        await s.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.broadcast_id) == broadcast_id,
                col(OutboxMessage.status) == OutboxStatus.PENDING,
                sa.or_(
                    col(OutboxMessage.claimed_until).is_(None),
                    col(OutboxMessage.claimed_until) <= now,
                ),
            )
            .values(status=OutboxStatus.FAILED, failed_at=now, last_error=STOPPED)
        )
        return True


async def progress_turn(db: Database, broadcast_id: int, now: datetime, every: float) -> bool:
    """Whether the progress message of this running broadcast may be edited now (at most
    once per `every` seconds, across replicas): True for one caller per interval."""
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(Broadcast)
            .where(
                col(Broadcast.id) == broadcast_id,
                col(Broadcast.status) == BroadcastStatus.RUNNING,
                sa.or_(
                    col(Broadcast.progress_at).is_(None),
                    col(Broadcast.progress_at) <= now - timedelta(seconds=every),
                ),
            )
            .values(progress_at=now)
            .returning(col(Broadcast.id))
        )
        return res.first() is not None
