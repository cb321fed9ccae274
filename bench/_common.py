"""Helpers shared by the benches in bench/ (not a benchmark itself).

Settings for a ShopContext built by the real composition root (``bot.app.build_context``) on
a throwaway database, the product to sell, percentiles, a throwaway PostgreSQL database, and
a Telegram session that answers getMe only (bench/webhook.py: settling sends nothing to
Telegram; bench/checkout.py talks to the loopback FakeTelegram instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # ahead of bench/ itself, whose storage.py is a bench

import asyncpg  # noqa: E402
from aiogram import Bot  # noqa: E402
from aiogram.client.session.base import BaseSession  # noqa: E402
from aiogram.methods import (  # noqa: E402
    GetMe,
    TelegramMethod,
)
from aiogram.types import User  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

import storage  # noqa: E402
from bot.config import Settings, load_settings  # noqa: E402

# The token of the repository's signature vectors; any well-formed token would do.
CP_TOKEN = "123456789:AAzQcZWQqQAbsfgPnOLr4FHC8Doa4L7KryC"
BOT_TOKEN = "42:BENCH-token_for_the_getme_only_session"
BOT_ID = 42
BOT_USERNAME = "bench_shop_bot"
# The bot token of the benches that run the loopback FakeTelegram.
TG_TOKEN = "42:BENCH-token_for_the_loopback_telegram"
ADMIN_ID = 900
PG_ADMIN = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


class GetMeOnly(BaseSession):
    """The Telegram network edge for bench/webhook.py: answers getMe (build_context asks it
    once) and fails anything else — settling a webhook sends nothing to Telegram (the
    outbox worker does, and it is not running there)."""

    def __init__(self) -> None:
        super().__init__()
        self._me = User(id=BOT_ID, is_bot=True, first_name="Shop", username=BOT_USERNAME)

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        if isinstance(method, GetMe):
            return self._me
        raise AssertionError(f"the bench did not expect {method.__api_method__}")

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        pass


def getme_only_bot() -> Bot:
    return Bot(BOT_TOKEN, session=GetMeOnly())


def bench_settings(database_url: str, cryptopay_url: str, **extra: Any) -> Settings:
    """Settings as an operator would write them, pointed at loopback fakes (CRYPTOPAY_RATE_LIMIT
    left at its default: no cap of ours)."""
    values: dict[str, Any] = {
        "BOT_TOKEN": BOT_TOKEN,
        "CRYPTOPAY_TOKEN": CP_TOKEN,
        "CRYPTOPAY_NETWORK": "testnet",
        "CRYPTOPAY_API_URL": cryptopay_url,
        "DATABASE_URL": database_url,
        "ADMIN_IDS": str(ADMIN_ID),
        "SHOP_CURRENCY": "USD",
        "ACCEPTED_ASSETS": "USDT,TON,BTC",
        "INVOICE_TTL_SECONDS": "900",
        "MAX_UNPAID_ORDERS": "1000",
        "AUTO_MIGRATE": "true",
        "LOG_LEVEL": "WARNING",
    }
    values.update(extra)
    return load_settings(**values)


async def seed_product(db: storage.Database, sku: str, codes: int, price: str) -> storage.Product:
    """One active product with `codes` distinct codes, no per-order cap."""
    await storage.upsert_catalog(
        db,
        storage.CatalogData(
            "USD",
            [storage.CategoryData("bench", "Bench")],
            [
                storage.ProductData(
                    sku,
                    "bench",
                    "Bench Key",
                    "A key for the benchmark.",
                    Decimal(price),
                    codes=[f"{sku.upper()}-{i:06d}" for i in range(codes)],
                )
            ],
        ),
    )
    product = await storage.get_product(db, sku)
    assert product is not None and product.id is not None
    return product


async def run_pool(
    n: int, concurrency: int, job: Callable[[int], Awaitable[object]]
) -> tuple[float, list[float]]:
    """Run job(0..n-1) on `concurrency` workers: (elapsed seconds, per-job latencies)."""
    next_index = iter(range(n))
    latencies: list[float] = []

    async def worker() -> None:
        for i in next_index:
            started = time.perf_counter()
            await job(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def pg_admin(sql: str) -> None:
    dsn = make_url(PG_ADMIN).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_pg_database(prefix: str) -> AsyncIterator[str | None]:
    """Yield the URL of a new empty PostgreSQL database (dropped afterwards), or None with a
    note printed when the server is unreachable."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        await pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"postgresql: skipped, server unreachable ({type(exc).__name__}: {exc})")
        yield None
        return
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
