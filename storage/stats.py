"""Admin statistics and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from storage._sql import dialect_of
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


@dataclass(frozen=True, slots=True)
class DaySales:
    day: date  # UTC
    orders: int
    revenue: Decimal


def _utc_day(column: Any, dialect: str) -> Any:
    """The UTC calendar day of a stored time, as 'YYYY-MM-DD' text on both engines: SQLite
    keeps the UTC wall time as text, PostgreSQL a timestamptz (read in UTC)."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.substr(column, 1, 10)


async def daily_sales(db: Database, first: date, last: date, currency: str) -> list[DaySales]:
    """Sales (paid orders, as sales_summary counts them) per UTC day from `first` to `last`
    inclusive, every day listed (zeros included): one GROUP BY over the paid_at index."""
    since = datetime.combine(first, time(0), tzinfo=UTC)
    until = datetime.combine(last + timedelta(days=1), time(0), tzinfo=UTC)
    async with db.session() as s:
        day = _utc_day(col(Order.paid_at), dialect_of(s)).label("day")
        rows = await s.execute(
            sa.select(day, sa.func.count(), sa.func.sum(col(Order.total)))
            .where(
                col(Order.paid_at) >= since,
                col(Order.paid_at) < until,
                col(Order.currency) == currency,
                col(Order.status).in_(SALE_STATES),
            )
            .group_by(day)
        )
        found = {str(d): (int(n), total) for d, n, total in rows.all()}
    days = []
    current = first
    while current <= last:
        n, total = found.get(current.isoformat(), (0, None))
        days.append(DaySales(current, n, total if total is not None else Decimal(0)))
        current += timedelta(days=1)
    return days


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
