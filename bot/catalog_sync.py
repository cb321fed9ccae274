"""Between the catalog file (bot/catalog_file.py) and the catalog tables (storage)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from bot.catalog_file import CatalogFile, CategoryEntry, ProductEntry
from storage import (
    CatalogData,
    CatalogImportResult,
    CategoryData,
    Database,
    ProductData,
    count_products,
    export_catalog,
    upsert_catalog,
)

_PRODUCT_FIELDS = [f.name for f in fields(ProductEntry)]


def _product_fields(product: ProductEntry | ProductData) -> dict[str, Any]:
    """The fields both shapes share (sku, title, price, codes, …)."""
    return {name: getattr(product, name) for name in _PRODUCT_FIELDS}


async def import_catalog_file(db: Database, catalog: CatalogFile) -> str:
    """Apply a validated file in one transaction; returns a one-line summary."""
    data = CatalogData(
        currency=catalog.currency,
        categories=[
            CategoryData(c.slug, c.title, c.parent, c.translations) for c in catalog.categories
        ],
        products=[
            ProductData(
                **_product_fields(p) | {"codes": list(p.codes), "currency": catalog.currency}
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
        categories=tuple(
            CategoryEntry(c.slug, c.title, c.parent or None, c.translations)
            for c in data.categories
        ),
        products=tuple(
            ProductEntry(**_product_fields(p) | {"codes": tuple(p.codes)}) for p in data.products
        ),
    )


async def shop_is_empty(db: Database) -> bool:
    return await count_products(db) == 0
