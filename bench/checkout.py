"""Benchmark: 500 distinct customers tap Buy at once, against 500 bare createInvoice calls.

The shop is the real thing up to the network edges: the context comes from the composition
root (``bot.app.build_context``) on a temporary SQLite file, the Bot from ``bot.app.create_bot``
and the Dispatcher from ``bot.app.create_dispatcher``. Both services are the fakes of
bot/sandbox on loopback, in this process: FakeTelegram (TELEGRAM_API_URL) and FakeCryptoPay.
Before each round every customer gets the product card from the bot and taps Buy on it in
the fake, which records the callback query as Telegram does; the 500 callback_query updates
are then parsed and fed to ``dp.feed_update`` all at once (``asyncio.gather``) — what polling
does with a batch, minus the long poll. Each tap's answerCallbackQuery and editMessageText go
to the fake over HTTP. MAX_UNPAID_ORDERS is lifted.
Baseline: 500 ``create_invoice`` calls, all at once, through our CryptoPayClient (configured
as build_context configures it) with the parameters checkout sends. Every measurement gets a
fresh Crypto Pay fake and a fresh, warmed-up client, so neither side pays for invoices the
other made. For context, the same kind of taps also go through a Dispatcher whose one
handler only edits the message and answers (aiogram's own share of a tap, Telegram calls
included). Best of ROUNDS rounds each.

Burst: BURST customers tap Buy at once, with the Crypto Pay client as an operator who never
set CRYPTOPAY_RATE_LIMIT gets it, and the same burst through a client with no limiter of ours
at all; per-tap latency (tap → the message with the invoice link), p95 of each round, median
of BURST_ROUNDS rounds each side, the sides alternating. Each side gets a fresh fake and
client, warmed up, then left idle for a second and a half (so a token bucket, if any, is as
full as an idle shop's).

Cart (``--cart N``, alone): CART_CUSTOMERS customers each with N products in their cart
(put there before the round, not measured) tap the cart screen's Checkout at once, and as
many others tap Buy on a one-product card; CART_ROUNDS rounds each, the sides alternating,
best round each. ``RESULT cart_checkout`` gives both rates and their ratio (the goal: an
N = 3 cart checkout at >= 0.8 of a one-line checkout's rate).

Run from the repository root: ``python bench/checkout.py`` (``--burst``: the burst alone;
``--throughput``: the throughput rounds alone; ``--postgres``: on a throwaway PostgreSQL
database, BENCH_POSTGRES_URL's server, instead of a SQLite file). The RESULT line gives the
checkout's rate, the floor's, and their ratio (the goal of the faster-checkout work: >= 0.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from aiogram import Bot, Dispatcher
from aiogram.types import CallbackQuery, Message, Update

import storage
from bench._common import (
    BOT_USERNAME,
    CP_TOKEN,
    TG_TOKEN,
    bench_settings,
    fresh_pg_database,
    percentile,
    seed_product,
)
from bot.app import (
    build_context,
    create_bot,
    create_cryptopay,
    create_dispatcher,
    freeze_startup_heap,
)
from bot.config import Settings
from bot.context import ShopContext
from bot.runtime.metrics import Metrics
from bot.sandbox.cryptopay import FakeCryptoPay
from bot.sandbox.telegram import FakeTelegram
from bot.screens import keyboards
from bot.screens.cart import cart_screen
from bot.screens.texts import texts as t
from bot.shop.cart import add_item
from payments import CryptoPayClient
from storage import Buyer, Customer, Order

CUSTOMERS = 500
WARMUP = 50
ROUNDS = 3
SKU = "bench-key"
PRICE = "4.99"
FIRST_USER = 7_000_000
BURST = 100
BURST_ROUNDS = 5  # each side
BURST_FIRST = 100_000  # burst buyers' user offsets, past every other round's
_invoice_ranges = itertools.count(10_000_000, 1_000_000)
CART_CUSTOMERS = 300
CART_ROUNDS = 3  # each side
CART_FIRST = 200_000  # cart buyers' user offsets, past every other mode's
CART_SKUS = ("bench-cart-a", "bench-cart-b", "bench-cart-c", "bench-cart-d", "bench-cart-e")

MakeClient = Callable[[Settings, Metrics, str], CryptoPayClient]


async def buy_taps(tg: FakeTelegram, bot: Bot, first: int, n: int) -> list[dict[str, Any]]:
    """Customers first..first+n-1 each get the product card from the bot and tap Buy on it;
    the raw callback_query updates, as Telegram would deliver them."""
    card = keyboards.product_card(sku=SKU, quantity=1, can_buy=True, category_slug="bench")

    async def one(i: int) -> dict[str, Any]:
        user = tg.user(FIRST_USER + first + i, f"Buyer{first + i}")
        sent = await bot.send_message(user.id, "Bench Key", reply_markup=card)
        query_id = await user.tap(sent.message_id, t.BTN_BUY)
        return {"update_id": first + i + 1, "callback_query": tg.callbacks[query_id].query}

    taps: list[dict[str, Any]] = []
    for start in range(0, n, 100):  # setup, not measured: a hundred at a time
        taps += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 100))))
    return taps


async def feed_all(
    dp: Dispatcher, bot: Bot, taps: list[dict[str, Any]]
) -> tuple[float, list[float]]:
    """Parse and feed every tap at once: (taps per second, per-tap latencies)."""
    latencies: list[float] = []

    async def one(raw: dict[str, Any]) -> None:
        started = time.perf_counter()
        await dp.feed_update(bot, Update.model_validate(raw, context={"bot": bot}))
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(raw) for raw in taps))
    return len(taps) / (time.perf_counter() - started), latencies


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
    ctx: ShopContext, dp: Dispatcher, tg: FakeTelegram, first: int, n: int
) -> tuple[float, list[float]]:
    taps = await buy_taps(tg, ctx.bot, first, n)
    per_s, latencies = await feed_all(dp, ctx.bot, taps)
    placed = await count_invoiced(ctx, first, first + n)
    assert placed == n, f"{placed} of {n} checkouts have an invoice"
    return per_s, latencies


async def run_floor(ctx: ShopContext, tg: FakeTelegram, first: int, n: int) -> float:
    """What aiogram alone costs per tap: the same kind of Buy taps through a Dispatcher whose
    one handler does what the shop's Buy handler does on Telegram (edits the message with
    the order keyboard, answers the callback) — no database, no Crypto Pay."""
    dp = Dispatcher()

    @dp.callback_query()
    async def bare_buy(query: CallbackQuery) -> None:
        assert isinstance(query.message, Message)
        await query.message.edit_text("order", reply_markup=keyboards.pending_order(1, ctx.bot_url))
        await query.answer()

    taps = await buy_taps(tg, ctx.bot, first, n)
    per_s, _ = await feed_all(dp, ctx.bot, taps)
    return per_s


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


def as_configured(settings: Settings, metrics: Metrics, base_url: str) -> CryptoPayClient:
    """The client as build_context makes it (bot.app.create_cryptopay)."""
    return create_cryptopay(settings, metrics, base_url=base_url)


def by_default(settings: Settings, metrics: Metrics, base_url: str) -> CryptoPayClient:
    """As build_context makes it for an operator who never set CRYPTOPAY_RATE_LIMIT."""
    default = Settings.model_fields["cryptopay_rate_limit"].default
    unset = settings.model_copy(update={"cryptopay_rate_limit": default})
    return create_cryptopay(unset, metrics, base_url=base_url)


def without_limiter(settings: Settings, metrics: Metrics, base_url: str) -> CryptoPayClient:
    """As create_cryptopay makes it, minus any limiter of ours."""
    return CryptoPayClient(
        settings.cryptopay_token.get_secret_value(),
        base_url,
        timeout=settings.cryptopay_timeout_seconds,
        rate_limit_per_s=None,
        observer=metrics.observe_cryptopay,
    )


@contextlib.asynccontextmanager
async def fresh_cryptopay(
    ctx: ShopContext, make: MakeClient = as_configured, idle: float = 0.0
) -> AsyncIterator[FakeCryptoPay]:
    """A new fake (the fake's per-call work grows with the invoices it holds) and a new
    client from `make`, warmed up, then left `idle` seconds; ctx uses it meanwhile."""
    settings, previous = ctx.settings, ctx.cryptopay
    async with FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp:
        # Invoice ids are unique in our database: each fake numbers from its own range.
        cp._next_invoice_id = next(_invoice_ranges)
        client = make(settings, ctx.metrics, cp.base_url)
        ctx.cryptopay = client
        try:
            await run_bare(ctx, -WARMUP, WARMUP)  # opens the connection pool
            await asyncio.sleep(idle)  # a quiet shop before the burst
            yield cp
        finally:
            ctx.cryptopay = previous
            await client.aclose()


def check_answers(tg: FakeTelegram, taps: int) -> None:
    """Every tap got its callback answered without an alert, and its message edited."""
    answered = [r for r in tg.callbacks.values() if r.answer is not None]
    assert len(answered) == len(tg.callbacks) == taps, f"{len(answered)} of {taps} answered"
    alerts = [r.answer for r in answered if r.answer and r.answer.get("text")]
    assert not alerts, f"taps answered with an alert: {alerts[:3]}"
    edits = len(tg.calls_of("editMessageText"))
    assert edits == taps, f"{edits} order messages for {taps} taps"


async def run_throughput(ctx: ShopContext, dp: Dispatcher, tg: FakeTelegram) -> None:
    engine = "PostgreSQL" if ctx.db.is_postgres else "SQLite"
    t0 = time.perf_counter()
    ours: list[float] = []
    bare: list[float] = []
    floor: list[float] = []
    for round_no in range(ROUNDS):
        first = WARMUP + round_no * CUSTOMERS
        async with fresh_cryptopay(ctx) as fake:
            per_s, latencies = await run_checkouts(ctx, dp, tg, first, CUSTOMERS)
            created = len(fake.calls_of("createInvoice")) - WARMUP
            assert created == CUSTOMERS, f"the fake saw {created} createInvoice"
        ours.append(per_s)
        async with fresh_cryptopay(ctx):
            bare.append(await run_bare(ctx, first, CUSTOMERS))
        # Users of their own, past every round's buyers (buy_taps adds FIRST_USER).
        floor_first = 10 * CUSTOMERS * (round_no + 1)
        floor.append(await run_floor(ctx, tg, floor_first, CUSTOMERS))
        print(
            f"round {round_no + 1}: checkout {ours[-1]:,.0f}/s "
            f"(p50 {percentile(latencies, 50) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.0f} ms), "
            f"bare createInvoice {bare[-1]:,.0f}/s"
        )
    best_ours, best_bare, best_floor = max(ours), max(bare), max(floor)
    print(
        f"{ROUNDS} rounds of {CUSTOMERS} concurrent Buy taps on {engine}, each ending as an order "
        f"with an invoice attached (checked in the database); {time.perf_counter() - t0:.1f}s"
    )
    # Per tap: aiogram's part alone, and what a checkout adds to it besides one createInvoice.
    floor_ms, bare_ms, ours_ms = (1000 / x for x in (best_floor, best_bare, best_ours))
    print(
        f"per tap: aiogram dispatch with its two Telegram calls {floor_ms:.2f} ms "
        f"({best_floor:,.0f}/s alone), createInvoice {bare_ms:.2f} ms, the whole checkout "
        f"{ours_ms:.2f} ms; ratio with no database work at all would be at most "
        f"{floor_ms / (floor_ms + bare_ms):.2f}"
    )
    print(
        f"RESULT checkout per_s={best_ours:.0f} floor={best_floor:.0f} "
        f"ratio_to_floor={best_ours / best_floor:.2f} baseline={best_bare:.0f} "
        f"ratio={best_ours / best_bare:.2f}"
    )


async def seed_cart_products(ctx: ShopContext, skus: Sequence[str], codes: int) -> None:
    """SKU (Buy's product) and the cart's products, `codes` codes each, in one catalog."""
    products = [
        storage.ProductData(
            sku,
            "bench",
            f"Bench Key {sku}",
            "A key for the benchmark.",
            Decimal(PRICE),
            codes=[f"{sku.upper()}-{i:06d}" for i in range(codes)],
        )
        for sku in (SKU, *skus)
    ]
    catalog = storage.CatalogData("USD", [storage.CategoryData("bench", "Bench")], products)
    await storage.upsert_catalog(ctx.db, catalog)


async def cart_taps(
    ctx: ShopContext, tg: FakeTelegram, skus: Sequence[str], first: int, n: int
) -> list[dict[str, Any]]:
    """Customers first..first+n-1 each put one unit of every product of `skus` in their cart,
    get the cart screen from the bot and tap Checkout on it; the raw callback_query updates."""

    async def one(i: int) -> dict[str, Any]:
        user = tg.user(FIRST_USER + first + i, f"Buyer{first + i}")
        buyer = Buyer(user.id, None, "en")
        for sku in skus:
            change = await add_item(ctx, buyer, sku, 1)
            assert change.ok, change
        screen = await cart_screen(ctx, user.id)
        sent = await ctx.bot.send_message(user.id, screen.text, reply_markup=screen.markup)
        query_id = await user.tap(sent.message_id, t.BTN_CHECKOUT)
        return {"update_id": first + i + 1, "callback_query": tg.callbacks[query_id].query}

    taps: list[dict[str, Any]] = []
    for start in range(0, n, 50):  # setup, not measured
        taps += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 50))))
    return taps


async def run_cart(ctx: ShopContext, dp: Dispatcher, tg: FakeTelegram, lines: int) -> None:
    t0 = time.perf_counter()
    skus = CART_SKUS[:lines]
    rates: dict[str, list[float]] = {"cart": [], "one_line": []}
    first = CART_FIRST
    for round_no in range(CART_ROUNDS):
        order = ["cart", "one_line"] if round_no % 2 == 0 else ["one_line", "cart"]
        for side in order:
            async with fresh_cryptopay(ctx) as fake:
                if side == "cart":
                    taps = await cart_taps(ctx, tg, skus, first, CART_CUSTOMERS)
                else:
                    taps = await buy_taps(tg, ctx.bot, first, CART_CUSTOMERS)
                per_s, _ = await feed_all(dp, ctx.bot, taps)
                placed = await count_invoiced(ctx, first, first + CART_CUSTOMERS)
                assert placed == CART_CUSTOMERS, f"{placed} of {CART_CUSTOMERS} have an invoice"
                created = len(fake.calls_of("createInvoice")) - WARMUP
                assert created == CART_CUSTOMERS, f"the fake saw {created} createInvoice"
            rates[side].append(per_s)
            first += CART_CUSTOMERS
        print(
            f"cart round {round_no + 1}: {lines}-line cart checkout {rates['cart'][-1]:,.0f}/s, "
            f"one-line Buy {rates['one_line'][-1]:,.0f}/s"
        )
    cart, one = max(rates["cart"]), max(rates["one_line"])
    print(
        f"{CART_ROUNDS} rounds of {CART_CUSTOMERS} concurrent taps per side on "
        f"{'PostgreSQL' if ctx.db.is_postgres else 'SQLite'}; {time.perf_counter() - t0:.1f}s"
    )
    print(
        f"RESULT cart_checkout lines={lines} per_s={cart:.0f} one_line_per_s={one:.0f} "
        f"ratio={cart / one:.2f}"
    )


async def run_burst(ctx: ShopContext, dp: Dispatcher, tg: FakeTelegram) -> None:
    t0 = time.perf_counter()
    sides: dict[str, MakeClient] = {"default": by_default, "unlimited": without_limiter}
    p95: dict[str, list[float]] = {name: [] for name in sides}
    first = BURST_FIRST
    for round_no in range(BURST_ROUNDS):
        # Alternate which side goes first, so neither always follows the other.
        order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
        for name in order:
            async with fresh_cryptopay(ctx, sides[name], idle=1.5) as fake:
                _, latencies = await run_checkouts(ctx, dp, tg, first, BURST)
                created = len(fake.calls_of("createInvoice")) - WARMUP
                assert created == BURST, f"the fake saw {created} createInvoice"
            first += BURST
            p95[name].append(percentile(latencies, 95) * 1000)
        print(
            f"burst round {round_no + 1}: p95 default {p95['default'][-1]:.0f} ms, "
            f"unlimited {p95['unlimited'][-1]:.0f} ms"
        )
    ours, free = statistics.median(p95["default"]), statistics.median(p95["unlimited"])
    print(
        f"{BURST_ROUNDS} rounds of {BURST} Buy taps at once per side (CRYPTOPAY_RATE_LIMIT "
        f"default: {Settings.model_fields['cryptopay_rate_limit'].default}); "
        f"{time.perf_counter() - t0:.1f}s"
    )
    print(
        f"RESULT checkout_burst p95_ms={ours:.0f} unlimited_p95_ms={free:.0f} "
        f"ratio={ours / free:.2f}"
    )


async def main(
    burst_only: bool = False,
    throughput_only: bool = False,
    postgres: bool = False,
    cart_lines: int = 0,
) -> None:
    t0 = time.perf_counter()
    bursts = 0 if throughput_only else 2 * BURST_ROUNDS * BURST
    sales = WARMUP + bursts + (0 if burst_only else ROUNDS * CUSTOMERS)
    taps = sales + (0 if burst_only else ROUNDS * CUSTOMERS)  # the floor's taps buy nothing
    if cart_lines:
        # Buy's taps and the cart's, each cart buying one unit of each of its products.
        sales = taps = WARMUP + 2 * CART_ROUNDS * CART_CUSTOMERS
    with tempfile.TemporaryDirectory(prefix="bench_checkout_") as tmp:
        async with (
            contextlib.AsyncExitStack() as stack,
            FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp,
            FakeTelegram(token=TG_TOKEN, bot_username=BOT_USERNAME) as tg,
        ):
            if postgres:
                url = await stack.enter_async_context(fresh_pg_database("bench_checkout"))
                if url is None:
                    return
            else:
                url = f"sqlite+aiosqlite:///{tmp}/shop.db"
            settings = bench_settings(
                url,
                cp.base_url,
                BOT_TOKEN=TG_TOKEN,
                TELEGRAM_API_URL=tg.base_url,
            )
            bot = create_bot(settings)
            ctx = await build_context(settings, bot)  # migrates the empty database
            try:
                if cart_lines:
                    await seed_cart_products(ctx, CART_SKUS[:cart_lines], sales)
                else:
                    await seed_product(ctx.db, SKU, sales, PRICE)
                dp = create_dispatcher(ctx)
                freeze_startup_heap()  # as run_bot does before it serves
                # Warm up: SQLite pages, the engine's pool, aiogram's and aiohttp's caches.
                await run_checkouts(ctx, dp, tg, 0, WARMUP)
                print(f"setup and warm-up {time.perf_counter() - t0:.1f}s")
                if cart_lines:
                    await run_cart(ctx, dp, tg, cart_lines)
                    return
                if not burst_only:
                    await run_throughput(ctx, dp, tg)
                if not throughput_only:
                    await run_burst(ctx, dp, tg)
                check_answers(tg, taps)  # the floor's taps too
            finally:
                await ctx.close()
                await bot.session.close()


async def bounded(burst_only: bool, throughput_only: bool, postgres: bool, cart_lines: int) -> None:
    await asyncio.wait_for(main(burst_only, throughput_only, postgres, cart_lines), timeout=420)


if __name__ == "__main__":
    flags = sys.argv[1:]
    cart_lines = int(flags[flags.index("--cart") + 1]) if "--cart" in flags else 0
    if not 0 <= cart_lines <= len(CART_SKUS):
        sys.exit(f"--cart takes 1 to {len(CART_SKUS)} lines")
    asyncio.run(
        bounded("--burst" in flags, "--throughput" in flags, "--postgres" in flags, cart_lines)
    )
