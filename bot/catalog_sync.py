"""Between the catalog file (bot/catalog_file.py) and the catalog tables (storage)."""

from __future__ import annotations

from bot.catalog_file import CatalogFile, CategoryEntry, ProductEntry
from storage import Database
from storage.catalog import (
    CatalogData,
    CatalogImportResult,
    CategoryData,
    ProductData,
    export_catalog,
    upsert_catalog,
)
from storage.listing import count_products


async def import_catalog_file(db: Database, catalog: CatalogFile) -> str:
    """Apply a validated file in one transaction; returns a one-line summary."""
    data = CatalogData(
        currency=catalog.currency,
        categories=[CategoryData(c.slug, c.title, c.parent) for c in catalog.categories],
        products=[
            ProductData(
                sku=p.sku,
                category=p.category,
                title=p.title,
                description=p.description,
                price=p.price,
                currency=catalog.currency,
                photo=p.photo,
                max_per_order=p.max_per_order,
                unlimited=p.unlimited,
                content=p.content,
                codes=list(p.codes),
                active=p.active,
            )
            for p in catalog.products
        ],
    )
    return summarize(await upsert_catalog(db, data))


def summarize(result: CatalogImportResult) -> str:
    return (
        f"{result.categories_created} categories added, {result.categories_updated} updated; "
        f"{result.products_created} products added, {result.products_updated} updated; "
        f"{result.codes_added} codes added, {result.codes_skipped} already known"
    )


async def export_catalog_file(db: Database, currency: str) -> CatalogFile:
    data = await export_catalog(db, currency=currency)
    return CatalogFile(
        currency=data.currency or currency,
        categories=tuple(CategoryEntry(c.slug, c.title, c.parent or None) for c in data.categories),
        products=tuple(
            ProductEntry(
                sku=p.sku,
                category=p.category,
                title=p.title,
                price=p.price,
                description=p.description,
                photo=p.photo,
                max_per_order=p.max_per_order,
                unlimited=p.unlimited,
                content=p.content,
                codes=tuple(p.codes),
                active=p.active,
            )
            for p in data.products
        ),
    )


async def shop_is_empty(db: Database) -> bool:
    return await count_products(db) == 0
