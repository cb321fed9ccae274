"""Each customer's /language choice, kept where picking an update's language costs no
database query. The database holds the choices (they survive restarts); they are read once,
on the first update a process handles, into this process's memory — or, with REDIS_URL, into
a Redis hash every replica reads, so a switch on one replica holds on all of them at once.
A customer missing from it made no choice. /language writes the database and the cache."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from storage import Database, chosen_language, language_choices

log = logging.getLogger("bot.languages")

KEY = "shop:language"  # a hash: Telegram id → language code


class LanguageChoices:
    def __init__(self, db: Database, redis: Redis | None = None) -> None:
        self.db = db
        self.redis = redis
        self.known: dict[int, str] = {}
        self._loaded = False
        self._lock = asyncio.Lock()

    async def _load(self) -> None:
        async with self._lock:
            if self._loaded:
                return
            stored = await language_choices(self.db)
            if self.redis is None:
                self.known.update({k: v for k, v in stored.items() if k not in self.known})
            elif stored:
                # HSETNX: a choice another replica wrote meanwhile is newer than this read.
                async with self.redis.pipeline(transaction=False) as pipe:
                    for telegram_id, choice in stored.items():
                        pipe.hsetnx(KEY, str(telegram_id), choice)
                    await pipe.execute()
            self._loaded = True

    async def choice(self, telegram_id: int) -> str:
        """The customer's choice, or "" for none made."""
        try:
            if not self._loaded:
                await self._load()
            if self.redis is None:
                return self.known.get(telegram_id, "")
            raw = await self.redis.hget(KEY, str(telegram_id))
        except RedisError:
            log.warning("Redis unavailable: reading the language from the database")
            return await chosen_language(self.db, telegram_id) or ""
        if raw is None:
            return ""
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def remember(self, telegram_id: int, choice: str) -> None:
        """After the choice is stored in the database."""
        if self.redis is None:
            self.known[telegram_id] = choice
            return
        try:
            await self.redis.hset(KEY, str(telegram_id), choice)
        except RedisError:
            log.warning("Redis unavailable: other replicas keep the old language until restarted")
