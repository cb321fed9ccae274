"""Order listings for shoppers, admins and the scheduled jobs (keyset, newest first)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col

from storage.database import Database
from storage.enums import OrderStatus
from storage.models import Customer, Order, OrderLine, Product
from storage.order_states import RELEASED


async def order_status(db: Database, order_id: int, buyer_telegram_id: int) -> OrderStatus | None:
    """The order's status now; None when there is no such order, or it is not that Telegram
    user's."""
    stmt = (
        sa.select(col(Order.status))
        .join(Customer, col(Customer.id) == col(Order.customer_id))
        .where(col(Order.id) == order_id, col(Customer.telegram_id) == buyer_telegram_id)
    )
    async with db.session() as s:
        status = await s.scalar(stmt)
    return None if status is None else OrderStatus(status)


async def list_customer_orders(
    db: Database, customer_id: int, *, before_id: int | None = None, limit: int = 10
) -> list[Order]:
    async with db.session() as s:
        stmt = sa.select(Order).where(col(Order.customer_id) == customer_id)
        if before_id is not None:
            stmt = stmt.where(col(Order.id) < before_id)
        stmt = stmt.order_by(col(Order.id).desc()).limit(limit)
        return list((await s.scalars(stmt)).all())


async def list_orders(
    db: Database,
    status: OrderStatus | None = None,
    *,
    before_id: int | None = None,
    limit: int = 20,
) -> list[Order]:
    async with db.session() as s:
        stmt = sa.select(Order)
        if status is not None:
            stmt = stmt.where(col(Order.status) == status)
        if before_id is not None:
            stmt = stmt.where(col(Order.id) < before_id)
        stmt = stmt.order_by(col(Order.id).desc()).limit(limit)
        return list((await s.scalars(stmt)).all())


async def pending_orders_with_invoice(
    db: Database, limit: int = 100, after_id: int | None = None
) -> list[Order]:
    """Pending orders that have an invoice, oldest first (keyset on id) — reconciliation."""
    async with db.session() as s:
        stmt = sa.select(Order).where(
            col(Order.status) == OrderStatus.PENDING, col(Order.invoice_id).is_not(None)
        )
        if after_id is not None:
            stmt = stmt.where(col(Order.id) > after_id)
        stmt = stmt.order_by(col(Order.id)).limit(limit)
        return list((await s.scalars(stmt)).all())


async def orders_expired_since(db: Database, since: datetime, limit: int = 500) -> list[Order]:
    """Expired or cancelled orders with an invoice whose deadline is at or after `since` —
    the ones a late payment may still arrive for."""
    async with db.session() as s:
        stmt = (
            sa.select(Order)
            .where(
                col(Order.status).in_(RELEASED),
                col(Order.expires_at) >= since,
                col(Order.invoice_id).is_not(None),
            )
            .order_by(col(Order.expires_at), col(Order.id))
            .limit(limit)
        )
        return list((await s.scalars(stmt)).all())


async def overdue_pending_orders(db: Database, now: datetime, limit: int = 100) -> list[Order]:
    """Pending orders whose deadline has passed (to be released as expired)."""
    async with db.session() as s:
        stmt = (
            sa.select(Order)
            .where(col(Order.status) == OrderStatus.PENDING, col(Order.expires_at) <= now)
            .order_by(col(Order.expires_at), col(Order.id))
            .limit(limit)
        )
        return list((await s.scalars(stmt)).all())


async def order_items(
    db: Database, order_ids: Collection[int]
) -> dict[int, list[tuple[str, int, dict[str, dict[str, str]] | None]]]:
    """Each order's lines as (product title, quantity, the title's translations), in line
    order: a listing's rows name what was bought, in the reader's language."""
    if not order_ids:
        return {}
    stmt = (
        sa.select(
            col(OrderLine.order_id),
            col(Product.title),
            col(OrderLine.quantity),
            col(Product.translations),
        )
        .join(Product, col(Product.id) == col(OrderLine.product_id))
        .where(col(OrderLine.order_id).in_(list(order_ids)))
        .order_by(col(OrderLine.order_id), col(OrderLine.id))
    )
    items: dict[int, list[tuple[str, int, dict[str, dict[str, str]] | None]]] = {}
    async with db.session() as s:
        for order_id, title, quantity, translations in (await s.execute(stmt)).all():
            items.setdefault(order_id, []).append((title, quantity, translations))
    return items
