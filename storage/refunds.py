"""Refunds: never more than was paid, each with its own spend_id (a transfer pays once)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col

from storage._sql import locked
from storage.database import Database
from storage.enums import OrderStatus, RefundStatus
from storage.models import Order, Refund
from storage.order_states import REFUNDABLE, can, transition
from storage.outbox import OutboxDraft, add_in
from storage.types import to_money, utcnow


class RefundError(Exception):
    pass


class OrderNotRefundable(RefundError):
    """No such order, it was never paid, it is fully refunded, or the asset differs."""


class RefundExceedsPaid(RefundError):
    def __init__(self, order_id: int, paid: Decimal, already: Decimal, amount: Decimal) -> None:
        super().__init__(
            f"order {order_id}: refund of {amount} would exceed the paid {paid} "
            f"({already} already refunded or being sent)"
        )
        self.order_id, self.paid, self.already, self.amount = order_id, paid, already, amount

    @property
    def remaining(self) -> Decimal:
        return self.paid - self.already


class SpendIdConflict(RefundError):
    """The spend_id is already used by a different refund."""


async def create_refund(
    db: Database,
    order_id: int,
    asset: str,
    amount: Decimal,
    reason: str,
    admin_id: int,
    spend_id: str,
) -> Refund:
    """Record a refund in state `sending` before the transfer is made.

    Checked with the order row locked (PG ``FOR UPDATE``; SQLite ``BEGIN IMMEDIATE``): the
    order was paid in `asset`, and its non-failed refunds plus `amount` stay ≤ paid_amount.
    A retry with the same spend_id, order, asset and amount returns the existing refund;
    any other reuse of the spend_id raises SpendIdConflict.
    """
    amount = to_money(amount)
    if amount <= 0:
        raise ValueError("refund amount must be positive")
    async with db.transaction() as s:
        existing = await s.scalar(sa.select(Refund).where(col(Refund.spend_id) == spend_id))
        if existing is not None:
            if (existing.order_id, existing.asset, existing.amount) == (order_id, asset, amount):
                return existing
            raise SpendIdConflict(f"spend_id {spend_id!r} belongs to refund {existing.id}")
        order = await s.scalar(locked(s, sa.select(Order).where(col(Order.id) == order_id)))
        if order is None or order.status not in REFUNDABLE or order.paid_amount is None:
            raise OrderNotRefundable(f"order {order_id} has no payment to refund")
        if order.paid_asset != asset:
            raise OrderNotRefundable(
                f"order {order_id} was paid in {order.paid_asset}, not {asset}"
            )
        already = await s.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(col(Refund.amount)), 0)).where(
                col(Refund.order_id) == order_id, col(Refund.status) != RefundStatus.FAILED
            )
        )
        already = Decimal(already or 0)
        if already + amount > order.paid_amount:
            raise RefundExceedsPaid(order_id, order.paid_amount, already, amount)
        now = utcnow()
        refund = Refund(
            order_id=order_id,
            asset=asset,
            amount=amount,
            reason=reason,
            admin_id=admin_id,
            spend_id=spend_id,
            status=RefundStatus.SENDING,
            created_at=now,
            updated_at=now,
        )
        s.add(refund)
        await s.flush()
        return refund


async def mark_refund_sent(
    db: Database, refund_id: int, transfer_id: int, notices: Sequence[OutboxDraft] = ()
) -> bool:
    """sending → sent; the order becomes refunded (all paid back) or partially_refunded, and
    `notices` (the buyer's and the admins' messages) go into the outbox — one transaction.
    A partial refund of an order awaiting a human (needs_review, needs_refund) leaves its
    status as it is: it was never a sale (storage/order_states.py)."""
    now = utcnow()
    async with db.transaction() as s:
        row = (
            await s.execute(
                sa.update(Refund)
                .where(col(Refund.id) == refund_id, col(Refund.status) == RefundStatus.SENDING)
                .values(status=RefundStatus.SENT, transfer_id=transfer_id, updated_at=now)
                .returning(col(Refund.order_id))
            )
        ).first()
        if row is None:
            return False
        order_id = row[0]
        order = await s.scalar(locked(s, sa.select(Order).where(col(Order.id) == order_id)))
        assert order is not None and order.paid_amount is not None
        sent = await s.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(col(Refund.amount)), 0)).where(
                col(Refund.order_id) == order_id, col(Refund.status) == RefundStatus.SENT
            )
        )
        full = Decimal(sent or 0) >= order.paid_amount
        to = OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED
        if can(order.status, to):  # the order is locked: this cannot lose a race
            await transition(s, order_id, to)
        await add_in(s, notices)
        return True


async def mark_refund_failed(db: Database, refund_id: int, error: str) -> bool:
    """sending → failed; its amount no longer counts against what may be refunded."""
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(Refund)
            .where(col(Refund.id) == refund_id, col(Refund.status) == RefundStatus.SENDING)
            .values(status=RefundStatus.FAILED, error=error, updated_at=utcnow())
            .returning(col(Refund.id))
        )
        return res.first() is not None


async def refunds_for_order(db: Database, order_id: int) -> list[Refund]:
    async with db.session() as s:
        stmt = sa.select(Refund).where(col(Refund.order_id) == order_id).order_by(col(Refund.id))
        return list((await s.scalars(stmt)).all())


async def sending_refunds(db: Database) -> list[Refund]:
    """Refunds recorded but not confirmed (a crash between record and transfer): retry them
    with the same spend_id."""
    async with db.session() as s:
        stmt = (
            sa.select(Refund)
            .where(col(Refund.status) == RefundStatus.SENDING)
            .order_by(col(Refund.id))
        )
        return list((await s.scalars(stmt)).all())
