"""What the storefront's routes share: the shop, the key initData is checked with, the
shopper's language lookup, and a few small per-process caches."""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import web

from bot.context import ShopContext
from bot.i18n import ChoiceLookup
from bot.webapp.auth import WebAppUser
from storage import SearchEntry, search_index

CHECKED_MAX = 4096  # initData strings whose signature was checked (one per open page)
PAGES_MAX = 2048  # catalog pages kept (category × page × language)
# How long a catalog page is reused: its stock counts may be this stale on a listing; the
# product page and Checkout always read the stock itself.
PAGE_TTL_SECONDS = 2.0
# How long the titles search scans are reused (one pass over the catalog, not one per
# keystroke): a new or renamed product is found this much later; one taken off sale never
# shows (the results are read again, active ones only).
SEARCH_TTL_SECONDS = 10.0


@dataclass
class WebAppState:
    ctx: ShopContext
    key: bytes  # secret_key(BOT_TOKEN)
    languages: ChoiceLookup
    max_age: int
    checked: OrderedDict[str, tuple[WebAppUser, int]] = field(default_factory=OrderedDict)
    _locks: weakref.WeakValueDictionary[int, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    pages: OrderedDict[tuple[str, ...], tuple[float, bytes]] = field(default_factory=OrderedDict)
    _search: tuple[float, list[SearchEntry]] | None = None
    _search_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def search_index(self, now: float) -> list[SearchEntry]:
        """The titles search scans, read at most once per SEARCH_TTL_SECONDS (a crowd
        typing at once waits for the one read)."""
        if self._search is not None and self._search[0] > now:
            return self._search[1]
        async with self._search_lock:
            if self._search is not None and self._search[0] > now:
                return self._search[1]
            index = await search_index(self.ctx.db)
            self._search = (now + SEARCH_TTL_SECONDS, index)
            return index

    def cached_page(self, key: tuple[str, ...], now: float) -> bytes | None:
        found = self.pages.get(key)
        if found is None or found[0] < now:
            return None
        return found[1]

    def keep_page(self, key: tuple[str, ...], body: bytes, now: float) -> None:
        self.pages[key] = (now + PAGE_TTL_SECONDS, body)
        self.pages.move_to_end(key)
        while len(self.pages) > PAGES_MAX:
            self.pages.popitem(last=False)

    def remember(self, init_data: str, user: WebAppUser) -> None:
        """A checked initData, with its auth_date (its age is checked on every call)."""
        auth_date = int(dict(parse_qsl(init_data)).get("auth_date", "0"))
        self.checked[init_data] = (user, auth_date)
        while len(self.checked) > CHECKED_MAX:
            self.checked.popitem(last=False)

    def checkout_lock(self, user_id: int) -> asyncio.Lock:
        """One checkout at a time per shopper (a double tap places one order)."""
        lock = self._locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[user_id] = lock
        return lock


WEBAPP_KEY = web.AppKey("webapp", WebAppState)
