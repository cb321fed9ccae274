"""Orders for export (/export, `python -m bot orders export`): read in pages by id (keyset),
so a range of any size is never held at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from storage._sql import table_of
from storage.database import Database
from storage.enums import RefundStatus
from storage.models import Customer, Order, OrderLine, Product, Refund

EXPORT_PAGE = 1000

_orders = table_of(Order)
_customers = table_of(Customer)
_lines = table_of(OrderLine)
_products = table_of(Product)
_refunds = table_of(Refund)


@dataclass(frozen=True, slots=True)
class ExportedOrder:
    order_id: int
    created_at: datetime
    paid_at: datetime | None
    status: str
    buyer_id: int  # Telegram's user id
    buyer_username: str | None
    lines: tuple[tuple[str, int], ...]  # (sku, quantity), in line order
    subtotal: Decimal
    discount: Decimal
    promo_code: str | None
    total: Decimal
    currency: str
    paid_asset: str | None
    paid_amount: Decimal | None
    refunded: Decimal  # sent refunds, in the paid asset


_PAGE = (
    sa.select(
        _orders.c.id,
        _orders.c.created_at,
        _orders.c.paid_at,
        _orders.c.status,
        _customers.c.telegram_id,
        _customers.c.username,
        _orders.c.discount,
        _orders.c.promo_code,
        _orders.c.total,
        _orders.c.currency,
        _orders.c.paid_asset,
        _orders.c.paid_amount,
    )
    .join(_customers, _customers.c.id == _orders.c.customer_id)
    .where(
        _orders.c.id > sa.bindparam("p_after"),
        _orders.c.created_at >= sa.bindparam("p_since", type_=_orders.c.created_at.type),
        _orders.c.created_at < sa.bindparam("p_until", type_=_orders.c.created_at.type),
    )
    .order_by(_orders.c.id)
    .limit(sa.bindparam("p_limit"))
)
_LINES = (
    sa.select(_lines.c.order_id, _products.c.sku, _lines.c.quantity)
    .join(_products, _products.c.id == _lines.c.product_id)
    .where(_lines.c.order_id.in_(sa.bindparam("p_ids", expanding=True)))
    .order_by(_lines.c.order_id, _lines.c.id)
)
_REFUNDED = (
    sa.select(_refunds.c.order_id, sa.func.sum(_refunds.c.amount))
    .where(
        _refunds.c.order_id.in_(sa.bindparam("p_ids", expanding=True)),
        _refunds.c.status == RefundStatus.SENT,
    )
    .group_by(_refunds.c.order_id)
)


async def export_orders(
    db: Database, since: datetime, until: datetime, *, page: int = EXPORT_PAGE
) -> AsyncIterator[list[ExportedOrder]]:
    """The orders created in [since, until), oldest first, a page at a time (each page read
    in its own short session: an export never holds the database)."""
    after = 0
    while True:
        async with db.session() as s:
            params = {"p_after": after, "p_since": since, "p_until": until, "p_limit": page}
            rows = (await s.execute(_PAGE, params)).all()
            if not rows:
                return
            ids = [int(r[0]) for r in rows]
            lines: dict[int, list[tuple[str, int]]] = {}
            for order_id, sku, quantity in (await s.execute(_LINES, {"p_ids": ids})).all():
                lines.setdefault(int(order_id), []).append((str(sku), int(quantity)))
            refunded = {
                int(order_id): amount
                for order_id, amount in (await s.execute(_REFUNDED, {"p_ids": ids})).all()
            }
        yield [
            ExportedOrder(
                order_id=int(r[0]),
                created_at=r[1],
                paid_at=r[2],
                status=str(r[3]),
                buyer_id=int(r[4]),
                buyer_username=r[5],
                lines=tuple(lines.get(int(r[0]), ())),
                subtotal=r[8] + r[6],
                discount=r[6],
                promo_code=r[7],
                total=r[8],
                currency=str(r[9]),
                paid_asset=r[10],
                paid_amount=r[11],
                refunded=refunded.get(int(r[0])) or Decimal(0),
            )
            for r in rows
        ]
        after = ids[-1]
        if len(rows) < page:
            return
