"""Search of the catalog by title, in every language the catalog carries.

Matched in Python with `str.casefold`, not with SQL: SQLite's LOWER() folds ASCII only (a
Russian title would not match its own lower case) and the translations are JSON. Only the
few columns a match needs are read, then the matching products in full.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col

from storage.database import Database
from storage.models import Product


def _titles(title: str, translations: dict[str, dict[str, str]] | None) -> list[str]:
    return [title, *((version or {}).get("title", "") for version in (translations or {}).values())]


async def search_products(db: Database, text: str, *, limit: int = 20) -> list[Product]:
    """Active products whose title (or a translated title) contains `text`, in catalog
    order (position, id); at most `limit`."""
    needle = text.strip().casefold()
    if not needle:
        return []
    async with db.session() as s:
        rows = await s.execute(
            sa.select(col(Product.id), col(Product.title), col(Product.translations))
            .where(col(Product.active).is_(True))
            .order_by(col(Product.position), col(Product.id))
        )
        found = [
            pid
            for pid, title, translations in rows.all()
            if any(needle in t.casefold() for t in _titles(title, translations))
        ][:limit]
        if not found:
            return []
        products = (await s.scalars(sa.select(Product).where(col(Product.id).in_(found)))).all()
    by_id = {p.id: p for p in products}
    return [by_id[pid] for pid in found if pid in by_id]
