"""The sales /stats shows: one series of the last 30 UTC days feeds both its figures and its
chart, so the chart's numbers are the numbers it prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from storage import Database, DaySales, daily_sales

CHART_DAYS = 30


@dataclass(frozen=True, slots=True)
class SalesOverview:
    currency: str
    days: tuple[DaySales, ...]  # the last CHART_DAYS UTC days, oldest first, today last

    def total(self, last_days: int) -> tuple[int, Decimal]:
        """(paid orders, revenue) of the last `last_days` days, today included."""
        span = self.days[-last_days:]
        return sum(d.orders for d in span), sum((d.revenue for d in span), Decimal(0))

    @property
    def periods(self) -> list[tuple[str, int, Decimal]]:
        """/stats' periods, by the labels its texts translate."""
        return [
            ("Today (UTC)", *self.total(1)),
            ("7 days", *self.total(7)),
            ("30 days", *self.total(CHART_DAYS)),
        ]


async def sales_overview(db: Database, now: datetime, currency: str) -> SalesOverview:
    today = now.date()
    first = today - timedelta(days=CHART_DAYS - 1)
    return SalesOverview(currency, tuple(await daily_sales(db, first, today, currency)))
