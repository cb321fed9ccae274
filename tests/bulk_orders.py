"""Many orders fast (bulk Core inserts), each derived from its number alone: a test can check
an export or a chart against `expected(i)` without holding the orders in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from storage import Customer, Database, Order, OrderLine, OrderStatus, Refund, RefundStatus
from storage._sql import table_of

BATCH = 5000
CUSTOMERS = 50
FIRST_TELEGRAM_ID = 70_000
# Spreadsheet formula starts among the usernames and codes (CSV injection), and plain ones.
USERNAMES = ("=SUM(A1:A9)", "+49123", "-2+3", "@home", "plain_user", None)
STATUSES = (
    OrderStatus.PAID,
    OrderStatus.DELIVERED,
    OrderStatus.PENDING,
    OrderStatus.EXPIRED,
    OrderStatus.PARTIALLY_REFUNDED,
    OrderStatus.CANCELLED,
    OrderStatus.REFUNDED,
)
PAID = {
    OrderStatus.PAID,
    OrderStatus.DELIVERED,
    OrderStatus.PARTIALLY_REFUNDED,
    OrderStatus.REFUNDED,
}
SALES = {OrderStatus.PAID, OrderStatus.DELIVERED, OrderStatus.PARTIALLY_REFUNDED}


@dataclass(frozen=True, slots=True)
class Expected:
    number: int  # 1-based: the i-th order inserted
    telegram_id: int
    username: str | None
    status: OrderStatus
    created_at: datetime
    paid_at: datetime | None
    quantity: int
    subtotal: Decimal
    discount: Decimal
    promo_code: str | None
    total: Decimal
    paid_amount: Decimal | None
    refunded: Decimal


def expected(i: int, now: datetime, days: int = 30) -> Expected:
    k = i % CUSTOMERS
    status = STATUSES[i % len(STATUSES)]
    created = now - timedelta(days=i % days, minutes=10 + i % 600)
    quantity = 1 + i % 3
    unit = Decimal(i % 500 + 1) / 100
    subtotal = unit * quantity
    discount = Decimal("0.50") if i % 4 == 0 and subtotal > 1 else Decimal(0)
    total = subtotal - discount
    paid = status in PAID
    refunded = Decimal(0)
    if status == OrderStatus.REFUNDED:
        refunded = total
    elif status == OrderStatus.PARTIALLY_REFUNDED:
        refunded = total / 2
    return Expected(
        number=i,
        telegram_id=FIRST_TELEGRAM_ID + k,
        username=USERNAMES[k % len(USERNAMES)],
        status=status,
        created_at=created,
        paid_at=created + timedelta(minutes=3) if paid else None,
        quantity=quantity,
        subtotal=subtotal,
        discount=discount,
        promo_code="-spring" if discount else None,
        total=total,
        paid_amount=total if paid else None,
        refunded=refunded,
    )


async def bulk_orders(
    db: Database, n: int, product_id: int, now: datetime, *, days: int = 30
) -> dict[int, int]:
    """Insert `n` orders as `expected(1..n)` says (one line each, of `product_id`, in USD paid
    in USDT); returns order id → its number."""
    customers, orders, lines, refunds = (
        table_of(Customer),
        table_of(Order),
        table_of(OrderLine),
        table_of(Refund),
    )
    async with db.transaction() as s:
        await s.execute(
            sa.insert(customers),
            [
                {
                    "telegram_id": FIRST_TELEGRAM_ID + k,
                    "username": USERNAMES[k % len(USERNAMES)],
                    "blocked_bot": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for k in range(CUSTOMERS)
            ],
        )
        ids = dict(
            (
                await s.execute(
                    sa.select(customers.c.telegram_id, customers.c.id).where(
                        customers.c.telegram_id >= FIRST_TELEGRAM_ID
                    )
                )
            ).all()
        )
        first_id = int(await s.scalar(sa.select(sa.func.coalesce(sa.func.max(orders.c.id), 0))))
    numbers: dict[int, int] = {}
    for start in range(1, n + 1, BATCH):
        span = range(start, min(n, start + BATCH - 1) + 1)
        rows = [expected(i, now, days) for i in span]
        async with db.transaction() as s:
            order_rows = []
            for e in rows:
                order_id = first_id + e.number
                numbers[order_id] = e.number
                order_rows.append(
                    {
                        "id": order_id,
                        "customer_id": ids[e.telegram_id],
                        "total": e.total,
                        "currency": "USD",
                        "status": e.status,
                        "expires_at": e.created_at + timedelta(minutes=15),
                        "paid_asset": "USDT" if e.paid_at else None,
                        "paid_amount": e.paid_amount,
                        "paid_at": e.paid_at,
                        "created_at": e.created_at,
                        "updated_at": e.created_at,
                        "discount": e.discount,
                        "promo_code": e.promo_code,
                    }
                )
            await s.execute(sa.insert(orders), order_rows)
            await s.execute(
                sa.insert(lines),
                [
                    {
                        "order_id": first_id + e.number,
                        "product_id": product_id,
                        "quantity": e.quantity,
                        "unit_price": e.subtotal / e.quantity,
                        "discount": e.discount,
                    }
                    for e in rows
                ],
            )
            refund_rows = [
                {
                    "order_id": first_id + e.number,
                    "asset": "USDT",
                    "amount": e.refunded,
                    "reason": "",
                    "admin_id": 1,
                    "spend_id": f"bulk-{first_id + e.number}",
                    "status": RefundStatus.SENT,
                    "created_at": now,
                    "updated_at": now,
                }
                for e in rows
                if e.refunded
            ]
            if refund_rows:
                await s.execute(sa.insert(refunds), refund_rows)
    return numbers
