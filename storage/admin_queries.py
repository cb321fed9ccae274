"""What the admin's screens read besides single orders: every product, and the buyer and
products of a page of orders in two queries (not one per row)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import col

from storage.database import Database
from storage.models import Customer, Order, OrderLine, Product


class OrderOverview(NamedTuple):
    buyer_id: int  # the buyer's Telegram user id
    buyer_username: str | None
    lines: list[tuple[str, int]]  # (product title, quantity), in the order's line order


async def all_products(db: Database) -> list[Product]:
    """Every product, inactive ones too, in catalog order."""
    async with db.session() as s:
        stmt = sa.select(Product).order_by(col(Product.position), col(Product.id))
        return list((await s.scalars(stmt)).all())


async def products_by_id(db: Database, product_ids: Sequence[int]) -> dict[int, Product]:
    if not product_ids:
        return {}
    async with db.session() as s:
        stmt = sa.select(Product).where(col(Product.id).in_(list(product_ids)))
        return {p.id: p for p in (await s.scalars(stmt)).all() if p.id is not None}


async def order_overviews(db: Database, order_ids: Sequence[int]) -> dict[int, OrderOverview]:
    """Buyer and (title, quantity) lines of each order; orders that do not exist are left out."""
    if not order_ids:
        return {}
    ids = list(order_ids)
    async with db.session() as s:
        buyers = await s.execute(
            sa.select(col(Order.id), col(Customer.telegram_id), col(Customer.username))
            .join(Customer, col(Customer.id) == col(Order.customer_id))
            .where(col(Order.id).in_(ids))
        )
        result: dict[int, OrderOverview] = {
            oid: OrderOverview(tg, name, []) for oid, tg, name in buyers.all() if oid is not None
        }
        lines = await s.execute(
            sa.select(col(OrderLine.order_id), col(Product.title), col(OrderLine.quantity))
            .join(Product, col(Product.id) == col(OrderLine.product_id))
            .where(col(OrderLine.order_id).in_(ids))
            .order_by(col(OrderLine.order_id), col(OrderLine.id))
        )
        for oid, title, quantity in lines.all():
            if oid in result:
                result[oid].lines.append((title, quantity))
    return result
