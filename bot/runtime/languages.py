"""Each customer's /language choice, cached so that picking an update's language costs no
database query: the database holds the choice (it survives restarts), and this cache —
in Redis with REDIS_URL, so every replica sees a switch at once, else in this process —
answers for it. A miss reads the database once and fills the cache."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from storage import Database, chosen_language

log = logging.getLogger("bot.languages")

KEY = "shop:language:{}"
TTL_SECONDS = 7 * 86400
FORGET_AT = 100_000  # past this many customers remembered in this process, start afresh


class LanguageChoices:
    """The choice per Telegram user id: a language code, or "" for none made."""

    def __init__(self, db: Database, redis: Redis | None = None) -> None:
        self.db = db
        self.redis = redis
        self.known: dict[int, str] = {}

    async def choice(self, telegram_id: int) -> str:
        if self.redis is None:
            cached = self.known.get(telegram_id)
        else:
            try:
                raw = await self.redis.get(KEY.format(telegram_id))
            except RedisError:
                log.warning("Redis unavailable: reading the language from the database")
                raw = None
            cached = None if raw is None else (raw.decode() if isinstance(raw, bytes) else raw)
        if cached is not None:
            return cached
        stored = await chosen_language(self.db, telegram_id)
        # An unknown user ("never wrote") is cached as "none made" too: /language fills it in.
        await self.remember(telegram_id, stored or "")
        return stored or ""

    async def remember(self, telegram_id: int, choice: str) -> None:
        if self.redis is None:
            if len(self.known) >= FORGET_AT:
                self.known.clear()
            self.known[telegram_id] = choice
            return
        try:
            await self.redis.set(KEY.format(telegram_id), choice, ex=TTL_SECONDS)
        except RedisError:
            log.warning("Redis unavailable: the language choice is cached nowhere")
