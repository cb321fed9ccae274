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

CHECKED_MAX = 4096  # initData strings whose signature was checked (one per open page)


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
