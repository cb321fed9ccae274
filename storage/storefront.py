"""What the Mini App storefront reads: a category page in one transaction, and search by title.

A page is the category, its subcategories, a keyset page of its products (ordered by
(position, id), as the chat lists them) and their units on sale: one session, four
statements, Core rows (the storefront serves many shoppers at once; see bench/miniapp.py).

Search matches in Python with `str.casefold`, not in SQL: SQLite's LOWER() folds ASCII only
(a Russian title would not match its own lower case) and the translations are JSON. Only the
few columns a match needs are read, then the matching products in full.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from storage._sql import snapshot, table_of
from storage.database import Database
from storage.listing import available_in
from storage.models import Category, Product

_categories = table_of(Category)
_products = table_of(Product)


@dataclass(frozen=True)
class CatalogPage:
    category: Category | None  # None: the top level
    subcategories: list[Category]
    products: list[Product]
    available: dict[int, int]  # product id → units on sale (products with stock only)
    next_after: int | None  # the last product's id when there is a next page


async def catalog_page(
    db: Database,
    slug: str = "",
    *,
    after: int | None = None,
    limit: int = 20,
    max_subcategories: int = 100,
) -> CatalogPage | None:
    """A page of category `slug` ("" the top level: its categories, no products); None when
    there is no such category. `after`: the last product id of the previous page (then no
    subcategories: they head the first page only)."""
    async with db.session() as s:
        category = None
        if slug:
            row = (
                await s.execute(sa.select(_categories).where(_categories.c.slug == slug))
            ).first()
            if row is None:
                return None
            category = snapshot(Category, row._mapping)
        subcategories: list[Category] = []
        if after is None:
            parent = _categories.c.parent_id
            rows = await s.execute(
                sa.select(_categories)
                .where(parent.is_(None) if category is None else parent == category.id)
                .order_by(_categories.c.position, _categories.c.id)
                .limit(max_subcategories)
            )
            subcategories = [snapshot(Category, r._mapping) for r in rows]
        products: list[Product] = []
        if category is not None:
            stmt = sa.select(_products).where(
                _products.c.category_id == category.id, _products.c.active.is_(True)
            )
            if after is not None:
                position = (
                    sa.select(_products.c.position).where(_products.c.id == after).scalar_subquery()
                )
                stmt = stmt.where(
                    sa.tuple_(_products.c.position, _products.c.id) > sa.tuple_(position, after)
                )
            rows = await s.execute(
                stmt.order_by(_products.c.position, _products.c.id).limit(limit + 1)
            )
            products = [snapshot(Product, r._mapping) for r in rows]
        more = len(products) > limit
        products = products[:limit]
        counted = [p.id for p in products if not p.unlimited and p.id is not None]
        available = dict.fromkeys(counted, 0) | await available_in(s, counted)
    next_after = products[-1].id if more and products else None
    return CatalogPage(category, subcategories, products, available, next_after)


@dataclass(frozen=True)
class SearchEntry:
    product_id: int
    titles: tuple[str, ...]  # the title and its translations, casefolded


async def search_index(db: Database) -> list[SearchEntry]:
    """Every active product's titles, casefolded, in catalog order (position, id): what a
    search by title scans. Reading it costs a pass over the whole catalog, so the storefront
    keeps it a few seconds rather than reading it per keystroke."""
    async with db.session() as s:
        rows = (
            await s.execute(
                sa.select(_products.c.id, _products.c.title, _products.c.translations)
                .where(_products.c.active.is_(True))
                .order_by(_products.c.position, _products.c.id)
            )
        ).all()
    return [
        SearchEntry(
            int(pid),
            tuple(
                t.casefold()
                for t in (
                    title,
                    *((v or {}).get("title", "") for v in (translations or {}).values()),
                )
                if t
            ),
        )
        for pid, title, translations in rows
    ]


def search_matches(index: list[SearchEntry], text: str, *, limit: int = 20) -> list[int]:
    """The ids of the products whose title contains `text` (any case), in catalog order."""
    needle = text.strip().casefold()
    if not needle:
        return []
    found: list[int] = []
    for entry in index:
        if any(needle in title for title in entry.titles):
            found.append(entry.product_id)
            if len(found) >= limit:
                break
    return found


async def active_products(db: Database, product_ids: list[int]) -> list[Product]:
    """The products of `product_ids` still on sale, in the order given."""
    if not product_ids:
        return []
    async with db.session() as s:
        rows = await s.execute(
            sa.select(_products).where(
                _products.c.id.in_(product_ids), _products.c.active.is_(True)
            )
        )
        by_id = {r.id: snapshot(Product, r._mapping) for r in rows}
    return [by_id[pid] for pid in product_ids if pid in by_id]


async def search_products(db: Database, text: str, *, limit: int = 20) -> list[Product]:
    """Active products whose title (or a translated title) contains `text`, in catalog
    order (position, id); at most `limit`."""
    if not text.strip():
        return []
    return await active_products(db, search_matches(await search_index(db), text, limit=limit))
