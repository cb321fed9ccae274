"""`catalog export` and photos: what it writes must import again."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bot.catalog_file import CatalogFile, photo_kind
from storage import Database, photos_for_export

IMAGES_DIR = "images"


async def export_photos(
    db: Database, catalog: CatalogFile, folder: Path | None
) -> tuple[CatalogFile, list[str]]:
    """The catalog with each photo as something `catalog import` reads back: an https URL
    stays; with a folder (the export file's), our copy is written to `images/<sku>.<ext>`
    there and named by that path; to stdout, a Telegram file_id stays and a path becomes the
    file_id this bot sends it by (only this bot can use it: export to a file to move a shop).
    Returns notes for the operator."""
    copies = await photos_for_export(db)
    notes: list[str] = []
    products = []
    for product in catalog.products:
        photo = product.photo
        copy = copies.get(product.sku)
        if photo and photo_kind(photo) != "url":
            if folder is not None and copy is not None:
                extension = "png" if copy.image.content_type == "image/png" else "jpg"
                relative = f"{IMAGES_DIR}/{product.sku}.{extension}"
                target = folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(copy.image.content)
                photo = relative
            elif photo_kind(photo) == "path":
                photo = copy.telegram_file_id if copy is not None else None
                if photo is None:
                    notes.append(f"Photo of {product.sku!r} left out: export to a file to keep it.")
        products.append(dataclasses.replace(product, photo=photo, photo_image=None))
    return dataclasses.replace(catalog, products=tuple(products)), notes
