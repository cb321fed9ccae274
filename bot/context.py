"""The long-lived objects every use case needs, built once by the composition root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiogram import Bot
from redis.asyncio import Redis

from bot.catalog_file import CatalogFileError, load_catalog
from bot.catalog_sync import import_catalog_file, shop_is_empty
from bot.config import Settings
from bot.runtime.metrics import Metrics
from bot.runtime.tap_throttle import RecentChecks, TapThrottle
from bot.runtime.telegram_pacer import TelegramPacer
from payments import CryptoPayClient, ExchangeRateCache
from storage import Database

log = logging.getLogger("bot")

DEMO_CATALOG = Path(__file__).resolve().parent.parent / "examples" / "catalog.toml"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ShopContext:
    settings: Settings
    db: Database
    cryptopay: CryptoPayClient
    rates: ExchangeRateCache
    bot: Bot
    bot_username: str = ""
    clock: Callable[[], datetime] = utcnow
    metrics: Metrics = field(default_factory=Metrics)
    # With REDIS_URL: state shared between replicas (rates, refund confirmations, Buy guard).
    redis: Redis | None = None
    # Set after a settle commits, so the outbox worker sends at once instead of at its next sweep.
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a broadcast starts or stops, so the broadcast runner acts at once.
    broadcast_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Telegram's send limits, shared by every queued sender (the outbox, broadcasts).
    pacer: TelegramPacer = field(default_factory=TelegramPacer)
    # A shopper's Buy / Check payment / Cancel taps at a human pace, and Check payment's
    # answers kept a few seconds (both in this process; see bot/runtime/tap_throttle.py).
    taps: TapThrottle = field(default_factory=TapThrottle)
    payment_checks: RecentChecks = field(default_factory=RecentChecks)

    @property
    def bot_url(self) -> str:
        return f"https://t.me/{self.bot_username}" if self.bot_username else "https://t.me"

    async def seed_demo_catalog(self) -> None:
        """Import the demo shop into an empty database on testnet, so a fresh install has
        something to try. Never on mainnet: its DEMO codes would be sold for real money."""
        if not await shop_is_empty(self.db):
            return
        if self.settings.cryptopay_network != "testnet":
            log.warning(
                "empty catalog; import yours with python -m bot catalog import FILE "
                "(the demo catalog is only imported on testnet)"
            )
            return
        if not DEMO_CATALOG.exists():
            log.warning("empty catalog; import one with python -m bot catalog import FILE")
            return
        try:
            catalog = load_catalog(DEMO_CATALOG, self.settings.shop_currency)
        except CatalogFileError as error:
            log.warning("demo catalog not imported: %s", error)
            return
        summary = await import_catalog_file(self.db, catalog)
        log.info(
            "empty catalog on testnet: imported the demo catalog %s (%s)", DEMO_CATALOG, summary
        )

    async def close(self) -> None:
        await self.cryptopay.aclose()
        await self.db.dispose()
        if self.redis is not None:
            await self.redis.aclose()
