"""Admin statistics and the audit log."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col

from storage.database import Database
from storage.enums import OrderStatus
from storage.models import AuditEntry, Order
from storage.order_states import ATTENTION_STATES, SALE_STATES, STATES
from storage.types import utcnow


async def sales_summary(
    db: Database, since: datetime, until: datetime, currency: str
) -> tuple[int, Decimal]:
    """(number of orders, sum of their totals) paid in [since, until) in `currency`.
    Sales are paid, delivered and partially refunded orders."""
    async with db.session() as s:
        row = (
            await s.execute(
                sa.select(sa.func.count(), sa.func.sum(col(Order.total))).where(
                    col(Order.paid_at) >= since,
                    col(Order.paid_at) < until,
                    col(Order.currency) == currency,
                    col(Order.status).in_(SALE_STATES),
                )
            )
        ).one()
    return int(row[0]), row[1] if row[1] is not None else Decimal("0")


async def orders_by_status(db: Database) -> dict[str, int]:
    """Every status (zeros included) → number of orders."""
    counts = {status.value: 0 for status in STATES}
    async with db.session() as s:
        rows = await s.execute(
            sa.select(col(Order.status), sa.func.count()).group_by(col(Order.status))
        )
        for status, n in rows.all():
            counts[OrderStatus(status).value] = int(n)
    return counts


async def orders_needing_attention(db: Database, limit: int = 50) -> list[Order]:
    """needs_review / needs_refund orders, oldest first."""
    async with db.session() as s:
        stmt = (
            sa.select(Order)
            .where(col(Order.status).in_(ATTENTION_STATES))
            .order_by(col(Order.id))
            .limit(limit)
        )
        return list((await s.scalars(stmt)).all())


async def write_audit(
    db: Database, admin_id: int, action: str, details: str = "", result: str = ""
) -> AuditEntry:
    async with db.transaction() as s:
        entry = AuditEntry(
            admin_id=admin_id, action=action, details=details, result=result, created_at=utcnow()
        )
        s.add(entry)
        await s.flush()
        return entry
