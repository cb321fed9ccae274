"""Where a Buy tap's milliseconds go: bench/checkout.py's Buy taps, with parts taken away.

The same shop as bench/checkout.py (its composition root, FakeTelegram and FakeCryptoPay on
loopback, in this process, on a SQLite file), ROUNDS rounds of CUSTOMERS concurrent Buy taps
in each of four setups, the setups alternating within a round:

- ``floor``: bench/checkout.py's floor (a Dispatcher whose one handler edits and answers);
- ``checkout``: the real checkout;
- ``no database``: the checkout with its storage calls answered from memory (the product
  as seeded, an order numbered in memory, the invoice and the order message recorded as
  if written) — what the checkout would cost if its database work were free;
- ``no database, no invoice``: that, and createInvoice answered with one invoice made
  before the round (no HTTP).

For each: the best round's taps per second, and the median round's process CPU per tap
(the process is bound to one core by the GIL, and CPU time is steadier than the wall clock
on a shared machine; the fakes' share of the work is in both). The floor's CPU includes
putting its taps up (bench/checkout.py's run_floor does both): its rate is the figure.

Run from the repository root: ``python bench/checkout_breakdown.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.checkout as bc
import bot.handlers.shop as shop_handlers
import bot.shop.checkout as checkout_module
from bench._common import CP_TOKEN, bench_settings, seed_product
from bot.app import build_context, create_bot, create_dispatcher, freeze_startup_heap
from bot.context import ShopContext
from bot.sandbox.cryptopay import FakeCryptoPay
from bot.sandbox.telegram import FakeTelegram
from storage import Order, OrderStatus, Product

CUSTOMERS = 500
ROUNDS = 3
SETUPS = ("floor", "checkout", "no database", "no database, no invoice")


def without_database(product: Product) -> dict[str, Callable[..., Any]]:
    """The checkout's storage calls, answered from memory."""
    ids = itertools.count(50_000_000)

    async def place_product_order(
        db: Any, buyer: Any, sku: str, quantity: int, expires_at: Any, check: Any, **_: Any
    ) -> tuple[Product, Order]:
        check(product)
        order = Order(
            id=next(ids),
            customer_id=1,
            total=product.price * quantity,
            currency=product.currency,
            status=OrderStatus.PENDING,
            expires_at=expires_at,
        )
        return product, order

    async def attach_invoice(*_: Any, **__: Any) -> bool:
        return True

    async def record_order_message(*_: Any, **__: Any) -> OrderStatus:
        return OrderStatus.PENDING

    return {
        "place_product_order": place_product_order,
        "attach_invoice": attach_invoice,
        "record_order_message": record_order_message,
    }


async def one_round(
    ctx: ShopContext, dp: Any, tg: FakeTelegram, setup: str, first: int, product: Product
) -> tuple[float, float]:
    """(taps per second, process CPU ms per tap) of one round of `setup`."""
    if setup == "floor":
        started = time.process_time()
        per_s = await bc.run_floor(ctx, tg, first, CUSTOMERS)
        return per_s, (time.process_time() - started) * 1000 / CUSTOMERS
    saved = {
        name: getattr(module, name)
        for module in (checkout_module, shop_handlers)
        for name in ("place_product_order", "attach_invoice", "record_order_message")
        if hasattr(module, name)
    }
    async with bc.fresh_cryptopay(ctx):
        create_invoice = ctx.cryptopay.create_invoice
        try:
            if setup != "checkout":
                for name, fake in without_database(product).items():
                    module = shop_handlers if name == "record_order_message" else checkout_module
                    setattr(module, name, fake)
            if setup == "no database, no invoice":
                invoice = await create_invoice(
                    currency_type="fiat", fiat="USD", amount=Decimal(1), accepted_assets=["USDT"]
                )

                async def made_before(**_: Any) -> Any:
                    return invoice

                ctx.cryptopay.create_invoice = made_before  # type: ignore[method-assign]
            taps = await bc.buy_taps(tg, ctx.bot, first, CUSTOMERS)
            started = time.process_time()
            per_s, _ = await bc.feed_all(dp, ctx.bot, taps)
            return per_s, (time.process_time() - started) * 1000 / CUSTOMERS
        finally:
            ctx.cryptopay.create_invoice = create_invoice  # type: ignore[method-assign]
            for name, real in saved.items():
                module = shop_handlers if name == "record_order_message" else checkout_module
                setattr(module, name, real)


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_breakdown_") as tmp:
        async with (
            FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp,
            FakeTelegram(token=bc.TG_TOKEN, bot_username="bench_shop_bot") as tg,
        ):
            settings = bench_settings(
                f"sqlite+aiosqlite:///{tmp}/shop.db",
                cp.base_url,
                BOT_TOKEN=bc.TG_TOKEN,
                TELEGRAM_API_URL=tg.base_url,
            )
            bot = create_bot(settings)
            ctx = await build_context(settings, bot)
            try:
                product = await seed_product(ctx.db, bc.SKU, (ROUNDS + 1) * CUSTOMERS, bc.PRICE)
                dp = create_dispatcher(ctx)
                freeze_startup_heap()
                await bc.run_checkouts(ctx, dp, tg, 0, bc.WARMUP)
                rates: dict[str, list[float]] = {s: [] for s in SETUPS}
                cpu: dict[str, list[float]] = {s: [] for s in SETUPS}
                first = 1_000_000
                for round_no in range(ROUNDS):
                    order = SETUPS if round_no % 2 == 0 else tuple(reversed(SETUPS))
                    for setup in order:
                        per_s, ms = await one_round(ctx, dp, tg, setup, first, product)
                        rates[setup].append(per_s)
                        cpu[setup].append(ms)
                        first += CUSTOMERS
                floor = max(rates["floor"])
                for setup in SETUPS:
                    best = max(rates[setup])
                    print(
                        f"{setup:24s} {best:5.0f}/s  ({1000 / best:5.2f} ms a tap, "
                        f"{best / floor:.2f} of the floor), "
                        f"CPU {statistics.median(cpu[setup]):5.2f} ms a tap"
                    )
            finally:
                await ctx.close()
                await bot.session.close()


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(), timeout=600))
