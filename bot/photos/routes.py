"""`GET /app/photos/{sku}/{size}`: a product photo resized for the Mini App (`thumb` fits in
320×320, `large` in 1024×1024), as JPEG. Each size is made once per photo and kept in the
database (every replica serves the same bytes); a request never re-encodes a stored one."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import web

from bot.photos.images import SIZES, resized
from storage import (
    DATABASE_ERRORS,
    Database,
    photo_digest,
    photo_image,
    rendition,
    save_rendition,
)

log = logging.getLogger("bot.photos")

PATH = "/app/photos/{sku}/{size}"
# A photo's URL stays the same when the photo is replaced: browsers revalidate (ETag, 304)
# after a day at most; the bytes for one ETag never change.
CACHE_CONTROL = "public, max-age=86400"


@dataclass
class Renditions:
    db: Database
    encoded: int = 0  # resized images made by this process (the route's tests read it)
    _locks: dict[tuple[int, str], asyncio.Lock] = field(default_factory=dict)

    async def get(self, product_id: int, size: str, digest: str) -> bytes | None:
        """The stored rendition, made and stored first if missing. Requests arriving while
        it is being made wait for it instead of making it again."""
        stored = await rendition(self.db, product_id, size, digest)
        if stored is not None:
            return stored
        async with self._locks.setdefault((product_id, size), asyncio.Lock()):
            stored = await rendition(self.db, product_id, size, digest)
            if stored is not None:
                return stored
            image = await photo_image(self.db, product_id)
            if image is None or image.digest != digest:
                return None
            content = await asyncio.to_thread(resized, image.content, size)
            self.encoded += 1
            await save_rendition(self.db, product_id, size, digest, content)
            return content


RENDITIONS_KEY = web.AppKey("photo_renditions", Renditions)


def add_photo_routes(app: web.Application, db: Database) -> None:
    app[RENDITIONS_KEY] = Renditions(db)
    app.router.add_get(PATH, product_photo)


def _missing(message: str) -> web.Response:
    return web.json_response({"error": message}, status=404)


async def product_photo(request: web.Request) -> web.StreamResponse:
    sku, size = request.match_info["sku"], request.match_info["size"]
    if size not in SIZES:
        return _missing(f"unknown size {size!r}: thumb or large")
    renditions = request.app[RENDITIONS_KEY]
    try:
        found = await photo_digest(renditions.db, sku)
        if found is None:
            return _missing("this product has no photo")
        product_id, digest = found
        etag = f'"{digest[:32]}-{size}"'
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
        if etag in _etags(request.headers.get("If-None-Match", "")):
            return web.Response(status=304, headers=headers)
        content = await renditions.get(product_id, size, digest)
    except DATABASE_ERRORS:
        log.exception("database unavailable while serving a product photo")
        return web.json_response({"error": "temporarily unavailable"}, status=503)
    if content is None:  # replaced meanwhile: the next request gets the new one
        return _missing("this product's photo is changing; try again")
    return web.Response(body=content, content_type="image/jpeg", headers=headers)


def _etags(header: str) -> set[str]:
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
    return tags
