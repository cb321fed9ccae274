"""/stats' series: paid orders per UTC day, bucketed alike on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import storage
from storage import Database
from tests.storage.conftest import order_for, payment, seed


async def test_sales_are_counted_on_their_utc_day_with_every_day_listed(db: Database) -> None:
    prod = await seed(db, codes=8)
    paid_at = [
        datetime(2026, 11, 28, 23, 59, 59, 999000, tzinfo=UTC),  # the last moment of the 28th
        datetime(2026, 11, 29, 0, 0, tzinfo=UTC),  # the first of the 29th
        # 01:30 on the 30th in Moscow is still the 29th in UTC
        datetime(2026, 11, 30, 1, 30, tzinfo=UTC) - timedelta(hours=3),
        datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        datetime(2026, 12, 1, 0, 0, tzinfo=UTC),  # after the range
    ]
    for moment in paid_at:
        order = await order_for(db, prod)
        result = await storage.settle(db, payment(order, paid_at=moment))
        assert result.outcome == storage.SettleOutcome.SETTLED
    unpaid = await order_for(db, prod)  # pending: no sale
    assert unpaid.id is not None

    days = await storage.daily_sales(db, date(2026, 11, 27), date(2026, 11, 30), "USD")
    price = prod.price
    assert [(d.day, d.orders, d.revenue) for d in days] == [
        (date(2026, 11, 27), 0, Decimal(0)),
        (date(2026, 11, 28), 1, price),
        (date(2026, 11, 29), 2, price * 2),
        (date(2026, 11, 30), 1, price),
    ]
    assert await storage.daily_sales(db, date(2026, 11, 1), date(2026, 11, 1), "EUR") == [
        storage.DaySales(date(2026, 11, 1), 0, Decimal(0))
    ]
