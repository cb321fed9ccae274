"""Benchmark: 500 distinct customers tap Buy at once, against 500 bare createInvoice calls.

The shop is the real thing up to the network edges: the context comes from the composition
root (``bot.app.build_context``) on a temporary SQLite file, the Dispatcher from
``bot.app.create_dispatcher``, and each tap is a callback_query Update fed to
``dp.feed_update`` (all 500 through ``asyncio.gather``). Crypto Pay is the FakeCryptoPay of
tests/fakes on loopback, in this process; Telegram answers instantly (bench/_common.py).
MAX_UNPAID_ORDERS and CRYPTOPAY_RATE_LIMIT are lifted (the latter is Crypto Pay's own limit of
calls per second; left at its default the bench would measure the token bucket).
Baseline: 500 ``create_invoice`` calls, all at once, through our CryptoPayClient (configured
as build_context configures it) with the parameters checkout sends. Every measurement gets a
fresh fake and a fresh, warmed-up client, so neither side pays for invoices the other made.
For context, the same taps also go through a Dispatcher whose one handler only edits the
message and answers (aiogram's own share of a tap). Best of ROUNDS rounds each.

Run from the repository root: ``python bench/checkout.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from aiogram import Dispatcher
from aiogram.types import CallbackQuery, Chat, Message, Update, User

from bench._common import (
    BOT_ID,
    CP_TOKEN,
    bench_settings,
    instant_bot,
    percentile,
    seed_product,
)
from bot import keyboards
from bot.app import build_context, create_dispatcher, freeze_startup_heap
from bot.callbacks import ProductAction, ProductCard
from bot.context import ShopContext
from payments import CryptoPayClient
from storage.models import Customer, Order
from storage.types import utcnow
from tests.fakes.cryptopay import FakeCryptoPay

CUSTOMERS = 500
WARMUP = 50
ROUNDS = 3
SKU = "bench-key"
PRICE = "4.99"
FIRST_USER = 7_000_000
_invoice_ranges = itertools.count(10_000_000, 1_000_000)


def buy_update(n: int) -> Update:
    """Customer n taps Buy on the product card the bot showed them."""
    user_id = FIRST_USER + n
    card = Message(
        message_id=1_000 + n,
        date=utcnow(),
        chat=Chat(id=user_id, type="private"),
        from_user=User(id=BOT_ID, is_bot=True, first_name="Shop"),
        text="Bench Key",
    )
    query = CallbackQuery(
        id=f"cq{n}",
        from_user=User(id=user_id, is_bot=False, first_name=f"Buyer{n}", language_code="en"),
        chat_instance=f"ci{n}",
        message=card,
        data=ProductCard(action=ProductAction.BUY, sku=SKU, qty=1).pack(),
    )
    return Update(update_id=n + 1, callback_query=query)


async def timed(job: Awaitable[object], latencies: list[float]) -> None:
    started = time.perf_counter()
    await job
    latencies.append(time.perf_counter() - started)


async def count_invoiced(ctx: ShopContext, first: int, last: int) -> int:
    """Orders with an invoice attached among customers FIRST_USER+first .. FIRST_USER+last-1."""
    async with ctx.db.session() as s:
        n = await s.scalar(
            sa.select(sa.func.count())
            .select_from(Order)
            .join(Customer, Customer.id == Order.customer_id)
            .where(
                Customer.telegram_id >= FIRST_USER + first,
                Customer.telegram_id < FIRST_USER + last,
                Order.invoice_id.is_not(None),  # type: ignore[union-attr]
            )
        )
    return int(n or 0)


async def run_checkouts(
    ctx: ShopContext, dp: Dispatcher, first: int, n: int
) -> tuple[float, list[float]]:
    updates = [buy_update(first + i) for i in range(n)]
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(timed(dp.feed_update(ctx.bot, u), latencies) for u in updates))
    elapsed = time.perf_counter() - started
    placed = await count_invoiced(ctx, first, first + n)
    assert placed == n, f"{placed} of {n} checkouts have an invoice"
    return n / elapsed, latencies


async def run_floor(ctx: ShopContext, first: int, n: int) -> float:
    """What aiogram alone costs per tap: the same Buy updates through a Dispatcher whose one
    handler does what the shop's Buy handler does on Telegram (edits the message with the
    order keyboard, answers the callback) — no database, no Crypto Pay. For context only:
    a checkout is this plus its database work plus one createInvoice."""
    dp = Dispatcher()

    @dp.callback_query()
    async def bare_buy(query: CallbackQuery) -> None:
        assert isinstance(query.message, Message)
        await query.message.edit_text("order", reply_markup=keyboards.pending_order(1, ctx.bot_url))
        await query.answer()

    updates = [buy_update(first + i) for i in range(n)]
    started = time.perf_counter()
    await asyncio.gather(*(dp.feed_update(ctx.bot, u) for u in updates))
    return n / (time.perf_counter() - started)


async def run_bare(ctx: ShopContext, first: int, n: int) -> float:
    """The same createInvoice requests checkout makes, straight through the client."""
    settings = ctx.settings

    async def one(i: int) -> None:
        invoice = await ctx.cryptopay.create_invoice(
            currency_type="fiat",
            fiat="USD",
            amount=Decimal(PRICE),
            accepted_assets=list(settings.accepted_assets),
            expires_in=settings.invoice_ttl_seconds,
            payload=str(900_000 + first + i),
            description=f"Order #{900_000 + first + i}: Bench Key × 1",
            paid_btn_name="openBot",
            paid_btn_url=ctx.bot_url,
            allow_comments=False,
        )
        assert invoice.invoice_id > 0

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


@contextlib.asynccontextmanager
async def fresh_cryptopay(ctx: ShopContext) -> AsyncIterator[FakeCryptoPay]:
    """A new fake (the fake's per-call work grows with the invoices it holds) and a new
    client configured as build_context configures it, warmed up; ctx uses it meanwhile."""
    settings, previous = ctx.settings, ctx.cryptopay
    async with FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp:
        # Invoice ids are unique in our database: each fake numbers from its own range.
        cp._next_invoice_id = next(_invoice_ranges)
        client = CryptoPayClient(
            settings.cryptopay_token.get_secret_value(),
            cp.base_url,
            timeout=settings.cryptopay_timeout_seconds,
            rate_limit_per_s=settings.cryptopay_rate_limit,
        )
        ctx.cryptopay = client
        try:
            await run_bare(ctx, -WARMUP, WARMUP)  # opens the connection pool
            yield cp
        finally:
            ctx.cryptopay = previous
            await client.aclose()


async def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_checkout_") as tmp:
        async with FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp:
            settings = bench_settings(f"sqlite+aiosqlite:///{tmp}/shop.db", cp.base_url)
            bot, telegram = instant_bot()
            ctx = await build_context(settings, bot)  # migrates the empty database
            try:
                await seed_product(ctx.db, SKU, WARMUP + ROUNDS * CUSTOMERS, PRICE)
                dp = create_dispatcher(ctx)
                freeze_startup_heap()  # as run_bot does before it serves
                # Warm up: SQLite pages, the engine's pool, aiogram's handler caches.
                await run_checkouts(ctx, dp, 0, WARMUP)
                print(f"setup and warm-up {time.perf_counter() - t0:.1f}s")
                ours: list[float] = []
                bare: list[float] = []
                floor: list[float] = []
                for round_no in range(ROUNDS):
                    first = WARMUP + round_no * CUSTOMERS
                    async with fresh_cryptopay(ctx) as fake:
                        per_s, latencies = await run_checkouts(ctx, dp, first, CUSTOMERS)
                        created = len(fake.calls_of("createInvoice")) - WARMUP
                        assert created == CUSTOMERS, f"the fake saw {created} createInvoice"
                    ours.append(per_s)
                    async with fresh_cryptopay(ctx):
                        bare.append(await run_bare(ctx, first, CUSTOMERS))
                    floor.append(await run_floor(ctx, first, CUSTOMERS))
                    print(
                        f"round {round_no + 1}: checkout {ours[-1]:,.0f}/s "
                        f"(p50 {percentile(latencies, 50) * 1000:.0f} ms, "
                        f"p99 {percentile(latencies, 99) * 1000:.0f} ms), "
                        f"bare createInvoice {bare[-1]:,.0f}/s"
                    )
                answers = telegram.counts.get("answerCallbackQuery", 0)
                edits = telegram.counts.get("editMessageText", 0)
                total = WARMUP + 2 * ROUNDS * CUSTOMERS  # the floor's taps answer too
                assert answers == total, f"{answers} callback answers for {total} taps"
                assert edits == total, f"{edits} order messages for {total} taps"
                assert not any(telegram.answer_texts), "a tap was answered with an alert"
            finally:
                await ctx.close()
                await bot.session.close()
    best_ours, best_bare, best_floor = max(ours), max(bare), max(floor)
    print(
        f"{ROUNDS} rounds of {CUSTOMERS} concurrent Buy taps on SQLite, each ending as an order "
        f"with an invoice attached (checked in the database); {time.perf_counter() - t0:.1f}s"
    )
    # Per tap: aiogram's part alone, and what a checkout adds to it besides one createInvoice.
    floor_ms, bare_ms, ours_ms = (1000 / x for x in (best_floor, best_bare, best_ours))
    print(
        f"per tap: aiogram dispatch with its two Telegram calls {floor_ms:.2f} ms "
        f"({best_floor:,.0f}/s alone), createInvoice {bare_ms:.2f} ms, the whole checkout "
        f"{ours_ms:.2f} ms; ratio with no database work at all would be at most "
        f"{bare_ms / (floor_ms + bare_ms):.2f}"
    )
    print(
        f"RESULT checkout per_s={best_ours:.0f} baseline={best_bare:.0f} "
        f"ratio={best_ours / best_bare:.2f}"
    )


async def bounded() -> None:
    await asyncio.wait_for(main(), timeout=300)


if __name__ == "__main__":
    asyncio.run(bounded())
