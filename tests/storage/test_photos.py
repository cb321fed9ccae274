"""Product photos in the database (SQLite and PostgreSQL): the copy, its file_id, renditions."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

import storage
from storage import PhotoImage
from storage.models import PhotoRendition, ProductPhoto
from tests.storage.conftest import catalog, product

URL = "https://example.com/w3.jpg"


def image(tag: bytes = b"one") -> PhotoImage:
    content = b"\xff\xd8\xff" + tag  # the bytes are not decoded here: storage keeps them
    return PhotoImage(content, "image/jpeg", hashlib.sha256(content).hexdigest(), 10, 8)


async def product_id(db: storage.Database, sku: str) -> int:
    found = await storage.get_product(db, sku)
    assert found is not None and found.id is not None
    return found.id


async def copies(db: storage.Database) -> list[tuple[int, str, str]]:
    async with db.session() as s:
        rows = await s.execute(
            sa.select(ProductPhoto.product_id, ProductPhoto.source, ProductPhoto.digest)  # type: ignore[call-overload]
        )
        return [tuple(r) for r in rows.all()]


async def test_an_imported_file_is_stored_with_the_catalog_and_reimport_changes_nothing(
    db: storage.Database,
) -> None:
    pic = image()
    cat = catalog(product("w3", ["A"], photo="images/w3.jpg", photo_image=pic), product("p2"))
    first = await storage.upsert_catalog(db, cat)
    assert first.photos_stored == 1
    w3 = await product_id(db, "w3")
    assert await copies(db) == [(w3, "images/w3.jpg", pic.digest)]
    assert await storage.photo_image(db, w3) == pic
    ref = await storage.photo_ref(db, w3)
    assert ref == storage.PhotoRef(w3, "images/w3.jpg", pic.digest, None)
    assert await storage.photo_ref(db, await product_id(db, "p2")) is None
    assert await storage.photos_to_fetch(db) == []

    again = await storage.upsert_catalog(db, cat)
    assert again.photos_stored == 0 and again.products_updated == 0

    # a new picture under the same path replaces the copy
    new = image(b"two")
    res = await storage.upsert_catalog(
        db, catalog(product("w3", ["A"], photo="images/w3.jpg", photo_image=new))
    )
    assert res.photos_stored == 1
    assert await copies(db) == [(w3, "images/w3.jpg", new.digest)]


async def test_a_changed_or_removed_photo_drops_the_stale_copy(db: storage.Database) -> None:
    await storage.upsert_catalog(
        db, catalog(product("w3", photo="images/w3.jpg", photo_image=image()), product("p2"))
    )
    w3 = await product_id(db, "w3")
    await storage.upsert_catalog(db, catalog(product("w3", photo=URL), product("p2")))
    assert await copies(db) == []
    assert await storage.photos_to_fetch(db) == [storage.PhotoToFetch(w3, "w3", URL)]
    ref = await storage.photo_ref(db, w3)
    assert ref == storage.PhotoRef(w3, URL, None, None)  # not copied yet

    fetched = image(b"fetched")
    assert await storage.store_fetched_photo(db, w3, URL, fetched)
    assert await storage.photos_to_fetch(db) == []
    # a fetch of a source that is no longer the product's photo is not kept
    assert not await storage.store_fetched_photo(db, w3, "https://old.example/x.jpg", image())
    assert await copies(db) == [(w3, URL, fetched.digest)]

    await storage.upsert_catalog(db, catalog(product("w3"), product("p2")))
    assert await copies(db) == []
    assert await storage.photo_ref(db, w3) is None
    prod = await storage.get_product(db, "w3")
    assert prod is not None and prod.photo is None


async def test_telegram_file_id_belongs_to_one_picture(db: storage.Database) -> None:
    pic = image()
    await storage.upsert_catalog(db, catalog(product("w3", photo="a.jpg", photo_image=pic)))
    w3 = await product_id(db, "w3")
    assert await storage.remember_file_id(db, w3, pic.digest, "AgAC-first")
    ref = await storage.photo_ref(db, w3)
    assert ref is not None and ref.telegram_file_id == "AgAC-first"
    # an id for a picture that has been replaced meanwhile is not stored
    assert not await storage.remember_file_id(db, w3, "0" * 64, "AgAC-other")
    # a new picture forgets the old picture's id
    await storage.upsert_catalog(db, catalog(product("w3", photo="a.jpg", photo_image=image(b"2"))))
    ref = await storage.photo_ref(db, w3)
    assert ref is not None and ref.telegram_file_id is None


async def test_an_admin_photo_becomes_the_product_photo(db: storage.Database) -> None:
    await storage.upsert_catalog(db, catalog(product("w3")))
    pic = image()
    await storage.set_product_photo(db, "w3", "AgAC-admin", pic, telegram_file_id="AgAC-admin")
    prod = await storage.get_product(db, "w3")
    assert prod is not None and prod.photo == "AgAC-admin"
    ref = await storage.photo_ref(db, await product_id(db, "w3"))
    assert ref is not None and ref.telegram_file_id == "AgAC-admin" and ref.digest == pic.digest
    with pytest.raises(storage.ProductNotFound):
        await storage.set_product_photo(db, "nope", "AgAC-admin", pic)


async def test_renditions_are_kept_per_picture_and_size(db: storage.Database) -> None:
    pic = image()
    await storage.upsert_catalog(db, catalog(product("w3", photo="a.jpg", photo_image=pic)))
    w3 = await product_id(db, "w3")
    assert await storage.photo_digest(db, "w3") == (w3, pic.digest)
    assert await storage.rendition(db, w3, "thumb", pic.digest) is None
    await storage.save_rendition(db, w3, "thumb", pic.digest, b"small")
    await storage.save_rendition(db, w3, "thumb", pic.digest, b"again")  # a racing replica
    await storage.save_rendition(db, w3, "large", pic.digest, b"big")
    assert await storage.rendition(db, w3, "thumb", pic.digest) == b"small"
    assert await storage.count_renditions(db, w3) == 2
    # a rendition of a picture that is no longer the copy is not stored
    await storage.save_rendition(db, w3, "thumb", "f" * 64, b"stale")
    assert await storage.rendition(db, w3, "thumb", "f" * 64) is None

    # replacing the picture drops its renditions (cascade)
    await storage.upsert_catalog(db, catalog(product("w3", photo="a.jpg", photo_image=image(b"2"))))
    assert await storage.count_renditions(db, w3) == 0
    async with db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(PhotoRendition)) == 0


async def test_export_lists_current_copies(db: storage.Database) -> None:
    pic = image()
    await storage.upsert_catalog(
        db,
        catalog(product("w3", photo="images/w3.jpg", photo_image=pic), product("p2", photo=URL)),
    )
    exported = await storage.photos_for_export(db)
    assert list(exported) == ["w3"]
    assert exported["w3"].image == pic and exported["w3"].source == "images/w3.jpg"
    data = await storage.export_catalog(db)
    assert {p.sku: p.photo for p in data.products} == {"w3": "images/w3.jpg", "p2": URL}
