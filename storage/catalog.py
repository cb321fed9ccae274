"""Catalog: categories, products and their stock codes."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import chunks, dialect_of, table_of, upsert_insert
from storage.database import DATABASE_ERRORS, Database
from storage.enums import StockStatus
from storage.models import Category, Product, StockUnit
from storage.photos import PhotoImage, drop_stale_photos_in, store_photo_in
from storage.types import to_money, utcnow

log = logging.getLogger(__name__)

# An import or code upload adding this many rows refreshes the planner's statistics at
# once (PostgreSQL); smaller ones are left to autovacuum.
ANALYZE_AFTER_ROWS = 1_000
# PostgreSQL: one catalog import at a time (two replicas seeding an empty database at start-up
# would both insert the same slugs; the second, waiting here, then finds them and updates).
IMPORT_LOCK_KEY = 0x5707CA7
# Codes an upload adds per transaction: 65,536 codes in one transaction held SQLite's write
# lock (every other writer of the shop) for the whole upload; 2,000 take ~0.1 s.
CODE_BATCH = 2_000


class CatalogError(ValueError):
    """The catalog cannot be imported as given (nothing was written)."""


class ProductNotFound(LookupError):
    pass


@dataclass(slots=True)
class CategoryData:
    slug: str
    title: str
    parent: str | None = None  # slug of the parent; None or "" for a top-level category
    # {"ru": {"title": …}}: the title in other languages
    translations: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class ProductData:
    sku: str
    category: str
    title: str
    description: str
    price: Decimal
    currency: str | None = None  # None: the catalog's currency
    photo: str | None = None
    # The picture itself when the catalog file carried it (a local file); a URL or file_id
    # is fetched afterwards (bot/photos), outside the import's transaction.
    photo_image: PhotoImage | None = None
    max_per_order: int | None = None
    unlimited: bool = False
    content: str | None = None
    codes: list[str] = field(default_factory=list)
    active: bool = True
    # {"ru": {"title": …, "description": …}}: other languages' versions
    translations: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class CatalogData:
    currency: str
    categories: list[CategoryData] = field(default_factory=list)
    products: list[ProductData] = field(default_factory=list)


@dataclass(slots=True)
class CatalogImportResult:
    categories_created: int = 0
    categories_updated: int = 0
    products_created: int = 0
    products_updated: int = 0
    codes_added: int = 0
    codes_skipped: int = 0
    photos_stored: int = 0


class StockCounts(NamedTuple):
    available: int
    reserved: int
    sold: int


def _validate(catalog: CatalogData, known_slugs: set[str]) -> None:
    slugs = [c.slug for c in catalog.categories]
    dupes = {s for s, n in Counter(slugs).items() if n > 1}
    if dupes:
        raise CatalogError(f"duplicate category slug(s): {', '.join(sorted(dupes))}")
    skus = [p.sku for p in catalog.products]
    dupes = {s for s, n in Counter(skus).items() if n > 1}
    if dupes:
        raise CatalogError(f"duplicate product sku(s): {', '.join(sorted(dupes))}")
    all_slugs = known_slugs | set(slugs)
    for c in catalog.categories:
        if c.parent and c.parent not in all_slugs:
            raise CatalogError(f"category {c.slug!r}: unknown parent {c.parent!r}")
    for p in catalog.products:
        if p.category not in all_slugs:
            raise CatalogError(f"product {p.sku!r}: unknown category {p.category!r}")
        try:
            price = to_money(p.price)
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise CatalogError(f"product {p.sku!r}: bad price {p.price!r}: {exc}") from exc
        if price < 0:
            raise CatalogError(f"product {p.sku!r}: negative price")


def _check_cycles(parent_of: dict[str, str | None]) -> None:
    for start in parent_of:
        seen = {start}
        node = parent_of.get(start)
        while node:
            if node in seen:
                raise CatalogError(f"category {start!r}: parent chain loops through {node!r}")
            seen.add(node)
            node = parent_of.get(node)


async def upsert_catalog(db: Database, catalog: CatalogData) -> CatalogImportResult:
    """Upsert categories by slug and products by sku, add unknown codes; one transaction
    (after a bulk import, a second one refreshes PostgreSQL's statistics).

    Codes already known for a product (whatever their status) are skipped: a sold code is
    never re-added or resold, and nothing is ever deleted. Products missing from the file are
    left as they are.
    """
    result = CatalogImportResult()
    async with db.transaction() as s:
        if db.is_postgres:  # SQLite's writers are one at a time already (BEGIN IMMEDIATE)
            await s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": IMPORT_LOCK_KEY})
        cats = {c.slug: c for c in (await s.scalars(sa.select(Category))).all()}
        _validate(catalog, set(cats))
        slug_by_id = {c.id: slug for slug, c in cats.items()}
        parent_of = {slug: slug_by_id.get(c.parent_id) for slug, c in cats.items()}
        parent_of.update({cd.slug: cd.parent or None for cd in catalog.categories})
        _check_cycles(parent_of)
        created: set[str] = set()
        for pos, cd in enumerate(catalog.categories):
            if cd.slug not in cats:
                cats[cd.slug] = Category(slug=cd.slug, title=cd.title, position=pos)
                s.add(cats[cd.slug])
                created.add(cd.slug)
        await s.flush()
        for pos, cd in enumerate(catalog.categories):
            cat = cats[cd.slug]
            parent_id = cats[cd.parent].id if cd.parent else None
            wanted = (cd.title, pos, parent_id, cd.translations or None)
            if (cat.title, cat.position, cat.parent_id, cat.translations) != wanted:
                cat.title, cat.position, cat.parent_id, cat.translations = wanted
                result.categories_updated += cd.slug not in created
        result.categories_created = len(created)
        await s.flush()
        await _upsert_products(s, catalog, {k: v.id for k, v in cats.items()}, result)
    if result.products_created + result.codes_added >= ANALYZE_AFTER_ROWS:
        await _refresh_statistics(db)
    return result


async def _refresh_statistics(db: Database) -> None:
    """After a bulk import (committed either way: statistics are only an optimisation)."""
    try:
        await db.analyze(table_of(Category).name, table_of(Product).name, table_of(StockUnit).name)
    except DATABASE_ERRORS as error:
        log.warning("catalog imported; refreshing planner statistics failed: %s", error)


async def _upsert_products(
    s: AsyncSession,
    catalog: CatalogData,
    cat_ids: dict[str, int | None],
    result: CatalogImportResult,
) -> None:
    now = utcnow()
    wanted: dict[str, dict[str, Any]] = {}
    for pos, pd in enumerate(catalog.products):
        wanted[pd.sku] = {
            "sku": pd.sku,
            "category_id": cat_ids[pd.category],
            "title": pd.title,
            "description": pd.description or "",
            "price": to_money(pd.price),
            "currency": pd.currency or catalog.currency,
            "photo": pd.photo or None,
            "max_per_order": pd.max_per_order,
            "unlimited": pd.unlimited,
            "content": pd.content,
            "active": pd.active,
            "position": pos,
            "translations": pd.translations or None,
        }
    ids: dict[str, int] = {}
    updates: list[dict[str, Any]] = []
    for part in chunks(list(wanted)):
        for prod in (await s.scalars(sa.select(Product).where(col(Product.sku).in_(part)))).all():
            assert prod.id is not None
            ids[prod.sku] = prod.id
            values = wanted[prod.sku]
            if any(getattr(prod, k) != v for k, v in values.items()):
                updates.append({"id": prod.id, **values, "updated_at": now})
    new_rows = [
        {**v, "created_at": now, "updated_at": now} for k, v in wanted.items() if k not in ids
    ]
    for part_rows in chunks(new_rows):
        rows = await s.execute(
            sa.insert(Product).returning(col(Product.id), col(Product.sku)), list(part_rows)
        )
        ids.update({sku: int(pid) for pid, sku in rows.all() if pid is not None})
    if updates:
        await s.execute(sa.update(Product), updates)
    result.products_created += len(new_rows)
    result.products_updated += len(updates)
    for pd in catalog.products:
        if pd.photo and pd.photo_image is not None:
            result.photos_stored += await store_photo_in(s, ids[pd.sku], pd.photo, pd.photo_image)
    if updates:  # a new product has no copy to drop
        await drop_stale_photos_in(s, [u["id"] for u in updates])
    for pd in catalog.products:
        if pd.codes:
            added, skipped = await _add_codes(s, ids[pd.sku], pd.codes)
            result.codes_added += added
            result.codes_skipped += skipped


async def _add_codes(s: AsyncSession, product_id: int, codes: Iterable[str]) -> tuple[int, int]:
    given = [c.strip() for c in codes]
    unique = list(dict.fromkeys(c for c in given if c))
    if dialect_of(s) == "postgresql":
        # The lookup below runs as one prepared statement many times while the table grows:
        # after five runs PostgreSQL may settle on a generic plan made for a nearly empty
        # table (a sequential scan), and a 65,536-code upload took 144 s instead of ~5.
        await s.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
    known: set[str] = set()
    for part in chunks(unique):
        known.update(
            (
                await s.scalars(
                    sa.select(col(StockUnit.code)).where(
                        col(StockUnit.product_id) == product_id, col(StockUnit.code).in_(part)
                    )
                )
            ).all()
        )
    fresh = [c for c in unique if c not in known]
    now = utcnow()
    added = 0
    units = table_of(StockUnit)  # Core, not the ORM's bulk insert: a third of the time
    for part in chunks(fresh):
        stmt = upsert_insert(s, units).on_conflict_do_nothing(index_elements=["product_id", "code"])
        rows = [
            {
                "product_id": product_id,
                "code": c,
                "status": StockStatus.AVAILABLE,
                "created_at": now,
            }
            for c in part
        ]
        res = await s.execute(stmt.returning(units.c.id), rows)
        added += len(res.all())
    return added, len(given) - added


async def add_codes(
    db: Database, sku: str, codes: Sequence[str], *, batch: int | None = None
) -> tuple[int, int]:
    """Add stock codes to a product: (added, skipped). Known, blank or repeated codes are
    skipped. Raises ProductNotFound. A bulk upload refreshes PostgreSQL's statistics.

    Each `batch` (default CODE_BATCH) of distinct codes is its own transaction, so other
    writers (a checkout, a settlement; on SQLite every writer) wait for one batch, not for
    the whole upload. A code already stored is never added again, so an upload that failed
    part-way can simply be sent again."""
    async with db.session() as s:
        pid = await s.scalar(sa.select(col(Product.id)).where(col(Product.sku) == sku))
    if pid is None:
        raise ProductNotFound(sku)
    given = [c.strip() for c in codes]
    unique = list(dict.fromkeys(c for c in given if c))
    added = 0
    for part in chunks(unique, batch or CODE_BATCH):
        async with db.transaction() as s:
            part_added, _ = await _add_codes(s, pid, part)
        added += part_added
    if added >= ANALYZE_AFTER_ROWS:
        await _refresh_statistics(db)
    return added, len(given) - added


async def export_catalog(db: Database, *, currency: str | None = None) -> CatalogData:
    """The catalog in import form. Codes are the unsold ones (available + reserved): a sold
    code is the buyer's, never stock again. `currency` defaults to the first product's."""
    async with db.session() as s:
        cats = (
            await s.scalars(sa.select(Category).order_by(col(Category.position), col(Category.id)))
        ).all()
        slug_of = {c.id: c.slug for c in cats}
        prods = (
            await s.scalars(sa.select(Product).order_by(col(Product.position), col(Product.id)))
        ).all()
        codes: dict[int, list[str]] = {}
        rows = await s.execute(
            sa.select(col(StockUnit.product_id), col(StockUnit.code))
            .where(col(StockUnit.status) != StockStatus.SOLD)
            .order_by(col(StockUnit.id))
        )
        for pid, code in rows.all():
            codes.setdefault(pid, []).append(code)
    cur = currency or (prods[0].currency if prods else "")
    return CatalogData(
        currency=cur,
        categories=[
            CategoryData(
                c.slug,
                c.title,
                slug_of.get(c.parent_id) if c.parent_id else None,
                dict(c.translations or {}),
            )
            for c in cats
        ],
        products=[
            ProductData(
                sku=p.sku,
                category=slug_of[p.category_id],
                title=p.title,
                description=p.description,
                price=p.price,
                currency=p.currency,
                photo=p.photo,
                max_per_order=p.max_per_order,
                unlimited=p.unlimited,
                content=p.content,
                codes=codes.get(p.id or 0, []),
                active=p.active,
                translations=dict(p.translations or {}),
            )
            for p in prods
        ],
    )
