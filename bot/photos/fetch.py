"""Making the bot's own copy of a product photo: an https URL is fetched once, a Telegram
file_id is downloaded through the Bot API (getFile + the file URL). A failure is one clear
log line (and a line in the CLI's summary), never a crash; the next round tries again."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import aiohttp
import httpx

from bot.catalog_file import photo_kind
from bot.photos.images import MAX_BYTES, NotAnImage, check_image
from storage import Database, PhotoImage, PhotoToFetch, photos_to_fetch, store_fetched_photo

log = logging.getLogger("bot.photos")

FETCH_TIMEOUT = 20.0  # seconds, for one URL or one Bot API download
MAX_REDIRECTS = 3
FETCH_CONCURRENCY = 4  # photos fetched at once (a catalog of URLs imports in a quarter the time)
RETRY_AFTER_FAILURE = 3600.0  # seconds before a failed source is tried again by the job
# Telegram's getFile serves files up to 20 MB; ours are capped lower anyway.
_USER_AGENT = "cryptopay-shop-bot (product photo fetcher)"


class FetchFailed(Exception):
    """Why a photo could not be copied, worded for the shop owner."""


@dataclass
class PhotoFetcher:
    """`bot` is aiogram's Bot (file_ids); without it only URLs can be fetched (the CLI)."""

    bot: Any = None
    transport: httpx.AsyncBaseTransport | None = None  # tests inject one
    timeout: float = FETCH_TIMEOUT
    max_bytes: int = MAX_BYTES

    async def fetch(self, source: str) -> PhotoImage:
        kind = photo_kind(source)
        if kind == "url":
            data = await self._url(source)
        elif kind == "file_id":
            data = await self._telegram(source)
        else:
            raise FetchFailed("a path is read when the catalog is imported: import it again")
        try:
            return await asyncio.to_thread(check_image, data)
        except NotAnImage as error:
            raise FetchFailed(str(error)) from None

    async def _url(self, url: str) -> bytes:
        timeout = httpx.Timeout(self.timeout)
        headers = {"User-Agent": _USER_AGENT, "Accept": "image/*"}
        async with httpx.AsyncClient(
            transport=self.transport, timeout=timeout, headers=headers
        ) as client:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._follow(client, url)
            except TimeoutError:
                raise FetchFailed(f"no answer within {self.timeout:g} s") from None
            except httpx.HTTPError as error:
                raise FetchFailed(f"cannot be fetched ({type(error).__name__})") from None

    async def _follow(self, client: httpx.AsyncClient, url: str) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            if not url.startswith("https://"):
                raise FetchFailed("redirected to a URL that is not https")
            async with client.stream("GET", url) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise FetchFailed(f"the server answered HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchFailed(f"larger than {self.max_bytes // (1024 * 1024)} MB")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise FetchFailed(f"larger than {self.max_bytes // (1024 * 1024)} MB")
                return bytes(body)
        raise FetchFailed("too many redirects")

    async def _telegram(self, file_id: str) -> bytes:
        if self.bot is None:
            raise FetchFailed("a Telegram file_id is downloaded by the running bot")
        # Here, not at the top: the CLI fetches URLs without loading aiogram (seconds).
        from aiogram.exceptions import TelegramAPIError

        try:
            file = await self.bot.get_file(file_id, request_timeout=int(self.timeout))
            if file.file_size is not None and file.file_size > self.max_bytes:
                raise FetchFailed(f"larger than {self.max_bytes // (1024 * 1024)} MB")
            if not file.file_path:
                raise FetchFailed("Telegram gives no download for it (too large)")
            out = io.BytesIO()
            # download_file, not download(): that would ask getFile a second time.
            await self.bot.download_file(file.file_path, destination=out, timeout=int(self.timeout))
        except TelegramAPIError as error:
            raise FetchFailed(f"Telegram refused it: {error.message}") from None
        except (TimeoutError, OSError, aiohttp.ClientError) as error:
            raise FetchFailed(f"the download failed ({type(error).__name__})") from None
        return out.getvalue()


@dataclass
class FetchReport:
    stored: list[str] = field(default_factory=list)  # skus
    failed: list[tuple[str, str]] = field(default_factory=list)  # (sku, reason)


@dataclass
class PhotoCopier:
    """Copies every product photo we do not hold yet; a source that failed waits
    RETRY_AFTER_FAILURE before the next try (in this process)."""

    db: Database
    fetcher: PhotoFetcher
    clock: Callable[[], float] = time.monotonic
    _failed_at: dict[tuple[int, str], float] = field(default_factory=dict)

    async def run(self, *, batch: int = 50) -> FetchReport:
        report = FetchReport()
        now = self.clock()
        due = [
            item
            for item in await photos_to_fetch(self.db, limit=batch + len(self._failed_at))
            if now - self._failed_at.get((item.product_id, item.source), -1e18)
            >= RETRY_AFTER_FAILURE
        ][:batch]
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def copy(item: PhotoToFetch) -> None:
            async with gate:
                await self._copy(item, report)

        await asyncio.gather(*(copy(item) for item in due))
        # in the order of the products, whatever order the fetches finished in
        order = {item.sku: n for n, item in enumerate(due)}
        report.stored.sort(key=order.__getitem__)
        report.failed.sort(key=lambda failure: order[failure[0]])
        return report

    async def _copy(self, item: PhotoToFetch, report: FetchReport) -> None:
        key = (item.product_id, item.source)
        try:
            image = await self.fetcher.fetch(item.source)
        except FetchFailed as error:
            self._failed_at[key] = self.clock()
            report.failed.append((item.sku, str(error)))
            log.warning(
                "photo of product %r not copied from %s: %s", item.sku, _shown(item.source), error
            )
            return
        self._failed_at.pop(key, None)
        # Downloaded by a file_id: this bot can send it by that id (no upload needed).
        by_id = item.source if photo_kind(item.source) == "file_id" else None
        if await store_fetched_photo(self.db, item.product_id, item.source, image, by_id):
            report.stored.append(item.sku)
            log.info("photo of product %r copied (%d bytes)", item.sku, len(image.content))


def _shown(source: str) -> str:
    """The source for a log line: a URL without its query (it may carry a token)."""
    if photo_kind(source) == "url":
        return source.split("?", 1)[0]
    return "Telegram file " + source[:12] + "…"
