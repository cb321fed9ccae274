"""Read side of the catalog: keyset-paginated listings, lookups and stock counts.

Pages are keyset pages: ``after`` is the id of the last row of the previous page, rows are
ordered by (position, id), so page 5,000 costs what page 1 costs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import snapshot, table_of
from storage.catalog import StockCounts
from storage.database import Database
from storage.enums import StockStatus
from storage.models import Category, Product, StockUnit


async def get_category(db: Database, slug: str) -> Category | None:
    async with db.session() as s:
        return await s.scalar(sa.select(Category).where(col(Category.slug) == slug))


async def list_categories(
    db: Database, parent_slug: str | None = None, *, after: int | None = None, limit: int = 20
) -> list[Category]:
    """Children of `parent_slug` (top level when None), ordered by (position, id)."""
    async with db.session() as s:
        stmt = sa.select(Category)
        if parent_slug is None:
            stmt = stmt.where(col(Category.parent_id).is_(None))
        else:
            parent_id = await s.scalar(
                sa.select(col(Category.id)).where(col(Category.slug) == parent_slug)
            )
            if parent_id is None:
                return []
            stmt = stmt.where(col(Category.parent_id) == parent_id)
        if after is not None:
            pos = await s.scalar(sa.select(col(Category.position)).where(col(Category.id) == after))
            if pos is None:
                return []
            stmt = stmt.where(
                sa.tuple_(col(Category.position), col(Category.id)) > sa.tuple_(pos, after)
            )
        stmt = stmt.order_by(col(Category.position), col(Category.id)).limit(limit)
        return list((await s.scalars(stmt)).all())


async def list_products(
    db: Database, category_slug: str, *, after: int | None = None, limit: int = 20
) -> list[Product]:
    """Active products of a category, ordered by (position, id)."""
    async with db.session() as s:
        cat_id = await s.scalar(
            sa.select(col(Category.id)).where(col(Category.slug) == category_slug)
        )
        if cat_id is None:
            return []
        stmt = sa.select(Product).where(
            col(Product.category_id) == cat_id, col(Product.active).is_(True)
        )
        if after is not None:
            pos = await s.scalar(sa.select(col(Product.position)).where(col(Product.id) == after))
            if pos is None:
                return []
            stmt = stmt.where(
                sa.tuple_(col(Product.position), col(Product.id)) > sa.tuple_(pos, after)
            )
        stmt = stmt.order_by(col(Product.position), col(Product.id)).limit(limit)
        return list((await s.scalars(stmt)).all())


async def count_products(
    db: Database, category_slug: str | None = None, *, active_only: bool = True
) -> int:
    async with db.session() as s:
        stmt = sa.select(sa.func.count()).select_from(Product)
        if category_slug is not None:
            stmt = stmt.join(Category, col(Category.id) == col(Product.category_id)).where(
                col(Category.slug) == category_slug
            )
        if active_only:
            stmt = stmt.where(col(Product.active).is_(True))
        return int(await s.scalar(stmt) or 0)


_products = table_of(Product)
_PRODUCT_BY_SKU = sa.select(*_products.c).where(_products.c.sku == sa.bindparam("p_sku"))


async def get_product(db: Database, sku: str) -> Product | None:
    """The product (a read-only snapshot: every Buy tap reads one, and an ORM load cost
    more than the query)."""
    async with db.session() as s:
        row = (await s.execute(_PRODUCT_BY_SKU, {"p_sku": sku})).first()
    return None if row is None else snapshot(Product, row._mapping)


async def stock_counts_many(db: Database, product_ids: Sequence[int]) -> dict[int, StockCounts]:
    """(available, reserved, sold) per product; products without units get zeros."""
    counts: dict[int, dict[str, int]] = {pid: {} for pid in product_ids}
    if not product_ids:
        return {}
    async with db.session() as s:
        rows = await s.execute(
            sa.select(col(StockUnit.product_id), col(StockUnit.status), sa.func.count())
            .where(col(StockUnit.product_id).in_(list(product_ids)))
            .group_by(col(StockUnit.product_id), col(StockUnit.status))
        )
        for pid, status, n in rows.all():
            counts[pid][StockStatus(status).value] = int(n)
    return {
        pid: StockCounts(c.get("available", 0), c.get("reserved", 0), c.get("sold", 0))
        for pid, c in counts.items()
    }


_units = table_of(StockUnit)
_AVAILABLE = (
    sa.select(_units.c.product_id, sa.func.count())
    .where(
        _units.c.product_id.in_(sa.bindparam("p_product_ids", expanding=True)),
        _units.c.status == StockStatus.AVAILABLE,
    )
    .group_by(_units.c.product_id)
)


async def available_in(s: AsyncSession, product_ids: Sequence[int]) -> dict[int, int]:
    """Units on sale per product of `product_ids`, in the caller's session (products
    without any are left out)."""
    if not product_ids:
        return {}
    rows = await s.execute(_AVAILABLE, {"p_product_ids": list(product_ids)})
    return {int(pid): int(n) for pid, n in rows.all()}


async def stock_counts(db: Database, product_id: int) -> StockCounts:
    return (await stock_counts_many(db, [product_id]))[product_id]


async def get_category_by_id(db: Database, category_id: int) -> Category | None:
    async with db.session() as s:
        return await s.get(Category, category_id)
