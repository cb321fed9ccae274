"""Product photos: the bot's own copy of each (in the database, so every replica has it),
Telegram's file_id for our upload of it, and the resized versions the Mini App shows.

`products.photo` holds where the photo came from (an https URL, a Telegram file_id, a path
in a catalog file); it is non-empty exactly when the product has a photo. The copy in
`product_photos` is made from that source, once: a copy whose `source` differs is stale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import chunks, table_of, upsert_insert
from storage.database import Database
from storage.models import PhotoRendition, Product, ProductPhoto
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class PhotoImage:
    """An image checked to be one (bot/photos/images.py makes these)."""

    content: bytes
    content_type: str  # "image/jpeg", "image/png"
    digest: str  # SHA-256 of content, hex
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class PhotoRef:
    """What a product card needs to know to send the photo, without the bytes."""

    product_id: int
    source: str  # products.photo
    digest: str | None  # of our copy; None when we hold none (yet)
    telegram_file_id: str | None  # Telegram's id of our upload of that copy


class PhotoToFetch(NamedTuple):
    product_id: int
    sku: str
    source: str


class PhotoExport(NamedTuple):
    sku: str
    source: str
    image: PhotoImage
    telegram_file_id: str | None


_PHOTOS = table_of(ProductPhoto)
_RENDITIONS = table_of(PhotoRendition)


async def store_photo_in(
    s: AsyncSession,
    product_id: int,
    source: str,
    image: PhotoImage,
    telegram_file_id: str | None = None,
) -> bool:
    """Keep `image` as the product's copy, made from `source` (in the caller's transaction).
    A different image drops Telegram's file_id and the resized versions of the old one.
    `telegram_file_id`: an id this bot can already send the image by (the source itself when
    it was downloaded by that file_id). Returns whether anything changed."""
    row = (
        await s.execute(
            sa.select(_PHOTOS.c.source, _PHOTOS.c.digest).where(_PHOTOS.c.product_id == product_id)
        )
    ).first()
    if row is not None and row.source == source and row.digest == image.digest:
        return False
    values = {
        "source": source,
        "content": image.content,
        "content_type": image.content_type,
        "digest": image.digest,
        "width": image.width,
        "height": image.height,
        "telegram_file_id": telegram_file_id,
        "updated_at": utcnow(),
    }
    if row is not None and row.digest == image.digest:  # same picture, new source: keep the id
        same = {"source": source}
        if telegram_file_id:
            same["telegram_file_id"] = telegram_file_id
        await s.execute(sa.update(_PHOTOS).where(_PHOTOS.c.product_id == product_id).values(same))
        return True
    await s.execute(sa.delete(_PHOTOS).where(_PHOTOS.c.product_id == product_id))
    await s.execute(sa.insert(_PHOTOS).values(product_id=product_id, **values))
    return True


async def drop_stale_photos_in(s: AsyncSession, product_ids: Sequence[int]) -> None:
    """Copies of these products that are not of their `products.photo` (changed or emptied)
    go, in the caller's transaction."""
    current = sa.exists().where(
        col(Product.id) == _PHOTOS.c.product_id, col(Product.photo) == _PHOTOS.c.source
    )
    for part in chunks(product_ids):
        await s.execute(sa.delete(_PHOTOS).where(_PHOTOS.c.product_id.in_(part), ~current))


async def set_product_photo(
    db: Database, sku: str, source: str, image: PhotoImage, telegram_file_id: str | None = None
) -> None:
    """An admin's photo: it becomes the product's photo and our copy at once.
    Raises ProductNotFound."""
    from storage.catalog import ProductNotFound  # storage.catalog imports this module

    async with db.transaction() as s:
        product_id = await s.scalar(sa.select(col(Product.id)).where(col(Product.sku) == sku))
        if product_id is None:
            raise ProductNotFound(sku)
        await s.execute(
            sa.update(Product)
            .where(col(Product.id) == product_id)
            .values(photo=source, updated_at=utcnow())
        )
        await store_photo_in(s, product_id, source, image, telegram_file_id)


async def store_fetched_photo(
    db: Database,
    product_id: int,
    source: str,
    image: PhotoImage,
    telegram_file_id: str | None = None,
) -> bool:
    """A copy fetched from `source`; kept only if that is still the product's photo."""
    async with db.transaction() as s:
        current = await s.scalar(sa.select(col(Product.photo)).where(col(Product.id) == product_id))
        if current != source:
            return False
        return await store_photo_in(s, product_id, source, image, telegram_file_id)


async def photos_to_fetch(db: Database, *, limit: int = 100) -> list[PhotoToFetch]:
    """Products with a photo of which we hold no copy of the current source."""
    stmt = (
        sa.select(col(Product.id), col(Product.sku), col(Product.photo))
        .select_from(Product)
        .outerjoin(_PHOTOS, _PHOTOS.c.product_id == col(Product.id))
        .where(
            col(Product.photo).is_not(None),
            col(Product.photo) != "",
            sa.or_(_PHOTOS.c.product_id.is_(None), _PHOTOS.c.source != col(Product.photo)),
        )
        .order_by(col(Product.id))
        .limit(limit)
    )
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    return [PhotoToFetch(int(r[0] or 0), str(r[1]), str(r[2])) for r in rows]


async def photo_ref(db: Database, product_id: int) -> PhotoRef | None:
    """None when the product has no photo."""
    stmt = (
        sa.select(
            col(Product.photo), _PHOTOS.c.source, _PHOTOS.c.digest, _PHOTOS.c.telegram_file_id
        )
        .select_from(Product)
        .outerjoin(_PHOTOS, _PHOTOS.c.product_id == col(Product.id))
        .where(col(Product.id) == product_id)
    )
    async with db.session() as s:
        row = (await s.execute(stmt)).first()
    if row is None or not row.photo:
        return None
    if row.source != row.photo:  # no copy yet, or a stale one
        return PhotoRef(product_id, row.photo, None, None)
    return PhotoRef(product_id, row.photo, row.digest, row.telegram_file_id)


async def photo_image(db: Database, product_id: int) -> PhotoImage | None:
    stmt = sa.select(
        _PHOTOS.c.content,
        _PHOTOS.c.content_type,
        _PHOTOS.c.digest,
        _PHOTOS.c.width,
        _PHOTOS.c.height,
    ).where(_PHOTOS.c.product_id == product_id)
    async with db.session() as s:
        row = (await s.execute(stmt)).first()
    return None if row is None else PhotoImage(*row)


async def remember_file_id(db: Database, product_id: int, digest: str, file_id: str | None) -> bool:
    """Telegram's id for our upload of the copy with `digest` (None: forget it); ignored when
    the copy has changed meanwhile."""
    async with db.transaction() as s:
        result = await s.execute(
            sa.update(_PHOTOS)
            .where(_PHOTOS.c.product_id == product_id, _PHOTOS.c.digest == digest)
            .values(telegram_file_id=file_id)
        )
    return bool(getattr(result, "rowcount", 0))


async def photo_digest(db: Database, sku: str) -> tuple[int, str] | None:
    """(product id, digest of our copy) of an active product with a current copy."""
    stmt = (
        sa.select(col(Product.id), _PHOTOS.c.digest)
        .select_from(Product)
        .join(_PHOTOS, _PHOTOS.c.product_id == col(Product.id))
        .where(
            col(Product.sku) == sku,
            col(Product.active).is_(True),
            _PHOTOS.c.source == col(Product.photo),
        )
    )
    async with db.session() as s:
        row = (await s.execute(stmt)).first()
    return None if row is None else (int(row[0]), str(row[1]))


async def rendition(db: Database, product_id: int, size: str, digest: str) -> bytes | None:
    stmt = sa.select(_RENDITIONS.c.content).where(
        _RENDITIONS.c.product_id == product_id,
        _RENDITIONS.c.size == size,
        _RENDITIONS.c.digest == digest,
    )
    async with db.session() as s:
        return await s.scalar(stmt)


async def save_rendition(
    db: Database, product_id: int, size: str, digest: str, content: bytes
) -> None:
    """Kept for `digest` (a rendition of an older copy is replaced; a replica that made the
    same one at the same time changes nothing)."""
    async with db.transaction() as s:
        current = await s.scalar(
            sa.select(_PHOTOS.c.digest).where(_PHOTOS.c.product_id == product_id)
        )
        if current != digest:
            return
        await s.execute(
            sa.delete(_RENDITIONS).where(
                _RENDITIONS.c.product_id == product_id,
                _RENDITIONS.c.size == size,
                _RENDITIONS.c.digest != digest,
            )
        )
        stmt = upsert_insert(s, _RENDITIONS).values(
            product_id=product_id, size=size, digest=digest, content=content, created_at=utcnow()
        )
        await s.execute(stmt.on_conflict_do_nothing(index_elements=["product_id", "size"]))


async def count_renditions(db: Database, product_id: int) -> int:
    async with db.session() as s:
        found = await s.scalar(
            sa.select(sa.func.count()).where(_RENDITIONS.c.product_id == product_id)
        )
    return int(found or 0)


async def photos_for_export(db: Database) -> dict[str, PhotoExport]:
    """Every current copy, by sku (for `catalog export`)."""
    stmt = (
        sa.select(
            col(Product.sku),
            _PHOTOS.c.source,
            _PHOTOS.c.content,
            _PHOTOS.c.content_type,
            _PHOTOS.c.digest,
            _PHOTOS.c.width,
            _PHOTOS.c.height,
            _PHOTOS.c.telegram_file_id,
        )
        .select_from(Product)
        .join(_PHOTOS, _PHOTOS.c.product_id == col(Product.id))
        .where(_PHOTOS.c.source == col(Product.photo))
    )
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    return {
        r.sku: PhotoExport(r.sku, r.source, PhotoImage(*r[2:7]), r.telegram_file_id) for r in rows
    }
