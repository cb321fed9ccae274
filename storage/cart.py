"""The shopper's cart, kept in the database: the same after a restart and on every replica.

A line remembers the price it was added at (`added_price`); the product's current state
(price, on sale, stock) is read with the lines, so a repricing or a sell-out shows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from storage._sql import dialect_of, table_of, upsert_insert
from storage.database import Database
from storage.listing import available_in
from storage.models import CartItem, Product
from storage.types import to_money, utcnow


@dataclass(frozen=True, slots=True)
class CartLine:
    product_id: int
    sku: str
    title: str
    quantity: int
    added_price: Decimal  # the unit price when the line was added
    price: Decimal  # the unit price now
    currency: str
    active: bool
    available: int | None  # units on sale now; None: an unlimited product (or not counted)
    max_per_order: int | None
    added_at: datetime
    translations: dict[str, dict[str, str]] | None = None  # the product's (title in [products.ru])

    @property
    def repriced(self) -> bool:
        return self.price != self.added_price

    @property
    def line_total(self) -> Decimal:
        return self.price * self.quantity


_items = table_of(CartItem)
_products = table_of(Product)

_LINES = (
    sa.select(
        _items.c.product_id,
        _products.c.sku,
        _products.c.title,
        _items.c.quantity,
        _items.c.unit_price,
        _products.c.price,
        _products.c.currency,
        _products.c.active,
        _products.c.unlimited,
        _products.c.max_per_order,
        _items.c.added_at,
        _products.c.translations,
    )
    .join(_products, _products.c.id == _items.c.product_id)
    .where(_items.c.customer_id == sa.bindparam("p_customer_id"))
    .order_by(_items.c.added_at, _items.c.id)
)
_UNITS = sa.select(sa.func.coalesce(sa.func.sum(_items.c.quantity), 0)).where(
    _items.c.customer_id == sa.bindparam("p_customer_id")
)


async def cart_lines(db: Database, customer_id: int) -> list[CartLine]:
    """The cart's lines in the order they were added, with each product's state now."""
    async with db.session() as s:
        rows = (await s.execute(_LINES, {"p_customer_id": customer_id})).all()
        available = await available_in(s, [row.product_id for row in rows if not row.unlimited])
    return _cart_lines(rows, available)


def cart_lines_on(conn: sa.Connection, customer_id: int) -> list[CartLine]:
    """cart_lines inside a transaction body on a Connection (the cart's checkout reads its
    lines in the order's transaction), without the stock counts: every line's `available`
    is None. The order's reservation is the count that matters there."""
    return _cart_lines(conn.execute(_LINES, {"p_customer_id": customer_id}).all(), None)


def _cart_lines(rows: Sequence[Any], available: dict[int, int] | None) -> list[CartLine]:
    return [
        CartLine(
            product_id=row.product_id,
            sku=row.sku,
            title=row.title,
            quantity=row.quantity,
            added_price=row.unit_price,
            price=row.price,
            currency=row.currency,
            active=row.active,
            available=None
            if row.unlimited or available is None
            else available.get(row.product_id, 0),
            max_per_order=row.max_per_order,
            added_at=row.added_at,
            translations=row.translations,
        )
        for row in rows
    ]


async def cart_units(db: Database, customer_id: int) -> int:
    """How many units the cart holds, over all its lines."""
    async with db.session() as s:
        return int(await s.scalar(_UNITS, {"p_customer_id": customer_id}) or 0)


async def add_to_cart(
    db: Database,
    customer_id: int,
    product_id: int,
    quantity: int,
    unit_price: Decimal,
    *,
    cap: int,
) -> int:
    """Add `quantity` units (to the line already there, if any), at most `cap` in the line;
    returns the line's quantity now. A new line remembers `unit_price`; a line already there
    keeps the price it was added at (its repricing stays visible)."""
    if quantity < 1 or cap < 1:
        raise ValueError("quantity and cap must be positive")
    async with db.transaction() as s:
        insert = upsert_insert(s, _items).values(
            customer_id=customer_id,
            product_id=product_id,
            quantity=min(quantity, cap),
            unit_price=to_money(unit_price),
            added_at=utcnow(),
        )
        stmt = insert.on_conflict_do_update(
            index_elements=["customer_id", "product_id"],
            set_={
                "quantity": sa.func.min(_items.c.quantity + quantity, cap)
                if dialect_of(s) == "sqlite"
                else sa.func.least(_items.c.quantity + quantity, cap)
            },
        ).returning(_items.c.quantity)
        return int(await s.scalar(stmt) or 0)


async def set_cart_quantity(db: Database, customer_id: int, product_id: int, quantity: int) -> bool:
    """The line's quantity becomes `quantity` (below 1: the line is removed). False when the
    cart has no such line."""
    if quantity < 1:
        return await remove_from_cart(db, customer_id, product_id)
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(_items)
            .where(_items.c.customer_id == customer_id, _items.c.product_id == product_id)
            .values(quantity=quantity)
            .returning(_items.c.id)
        )
        return res.first() is not None


async def remove_from_cart(db: Database, customer_id: int, product_id: int) -> bool:
    async with db.transaction() as s:
        res = await s.execute(
            sa.delete(_items)
            .where(_items.c.customer_id == customer_id, _items.c.product_id == product_id)
            .returning(_items.c.id)
        )
        return res.first() is not None


async def empty_cart(
    db: Database, customer_id: int, product_ids: Collection[int] | None = None
) -> int:
    """Remove every line (or only those of `product_ids`: the lines an order took, leaving
    what was added meanwhile); returns how many were removed."""
    stmt = sa.delete(_items).where(_items.c.customer_id == customer_id)
    if product_ids is not None:
        stmt = stmt.where(_items.c.product_id.in_(list(product_ids)))
    async with db.transaction() as s:
        res = await s.execute(stmt.returning(_items.c.id))
        return len(res.all())
