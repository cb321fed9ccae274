"""Benchmark: the goods of 300 paid orders through the real outbox worker, against a Telegram
that takes 100 ms to answer every call.

The shop is the production wiring: the context from ``bot.app.build_context`` (migrations
included) on a temporary SQLite file, the Bot from ``bot.app.create_bot`` with the session
middlewares ``run_bot`` adds, and ``bot.runtime.delivery.OutboxWorker`` as the jobs start it.
Telegram is bot/sandbox' FakeTelegram on loopback with ``latency = 0.1`` (the real Bot API
answers in 50–150 ms); Crypto Pay is FakeCryptoPay. The 300 orders are paid the way Crypto
Pay pays them: a signed ``invoice_paid`` webhook each, POSTed to the real aiohttp app by
bench/_load.py in its own process (bench/webhook.py builds the orders and the bodies), which
queues each buyer's goods and each order's admin notice. Then the worker starts and the
clock runs until the last buyer has their goods.

Telegram allows a bot about TELEGRAM_RATE_LIMIT (30) messages a second; the worker is meant
to use that whole budget however slow each call is, so the figure is messages/s against the
configured limit. Checked at the end: every buyer got exactly one goods message with their
order's code, every order is delivered, every admin notice arrived (in a few coalesced
messages), nothing is left in the outbox.

Run from the repository root: ``python bench/delivery.py``.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from aiohttp import web

from bench._common import ADMIN_ID, BOT_USERNAME, CP_TOKEN, TG_TOKEN, bench_settings
from bench.webhook import FIRST_USER, pending_orders, post_all
from bot.app import build_context, create_bot, freeze_startup_heap
from bot.context import ShopContext
from bot.runtime.delivery import OutboxWorker
from bot.runtime.metrics import TelegramMetrics
from bot.runtime.telegram_pacer import FloodControlObserver
from bot.sandbox.cryptopay import FakeCryptoPay
from bot.sandbox.telegram import FakeTelegram
from bot.web import build_web_app
from storage import Order, OrderStatus, OutboxMessage

ORDERS = 300
LATENCY = 0.1  # seconds added to every Bot API call
DONE_TIMEOUT = 120.0
HEADLINE = re.compile(r"Order #(\d+) is paid")
NOTICE = re.compile(r"Order #(\d+) paid")


async def pay_all(ctx: ShopContext, cp: FakeCryptoPay) -> list[int]:
    """ORDERS pending orders, then their invoice_paid webhooks through the real web app."""
    deliveries = await pending_orders(ctx, cp, ORDERS)
    runner = web.AppRunner(build_web_app(ctx), handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        await post_all(
            f"http://{host}:{port}{ctx.settings.cryptopay_webhook_path}", deliveries, "settled"
        )
    finally:
        await runner.cleanup()
    return [d.order_id for d in deliveries]


async def outbox_counts(ctx: ShopContext) -> Counter[tuple[str, str]]:
    async with ctx.db.session() as s:
        rows = await s.execute(
            sa.select(OutboxMessage.kind, OutboxMessage.status, sa.func.count()).group_by(
                OutboxMessage.kind, OutboxMessage.status
            )
        )
        return Counter({(kind, status.value): n for kind, status, n in rows.all()})


async def delivered(ctx: ShopContext, ids: list[int]) -> int:
    async with ctx.db.session() as s:
        n = await s.scalar(
            sa.select(sa.func.count())
            .select_from(Order)
            .where(Order.id.in_(ids), Order.status == OrderStatus.DELIVERED)  # type: ignore[union-attr]
        )
    return int(n or 0)


def goods_in_chats(tg: FakeTelegram) -> Counter[int]:
    """How many goods messages each chat holds, by the order they name."""
    found: Counter[int] = Counter()
    for (chat_id, _), message in tg.messages.items():
        match = HEADLINE.search(message.text or message.caption or "")
        if message.outgoing and chat_id != ADMIN_ID and match:
            found[int(match.group(1))] += 1
    return found


def admin_noticed(tg: FakeTelegram) -> Counter[int]:
    """How often the admin's chat names each order as paid."""
    texts = [m.text or "" for m in tg.users[ADMIN_ID].chat_messages()]
    return Counter(int(n) for text in texts for n in NOTICE.findall(text))


async def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_delivery_") as tmp:
        async with (
            FakeCryptoPay(token=CP_TOKEN) as cp,
            FakeTelegram(token=TG_TOKEN, bot_username=BOT_USERNAME) as tg,
        ):
            settings = bench_settings(
                f"sqlite+aiosqlite:///{tmp}/shop.db",
                cp.base_url,
                BOT_TOKEN=TG_TOKEN,
                TELEGRAM_API_URL=tg.base_url,
            )
            for user_id in [ADMIN_ID, *range(FIRST_USER, FIRST_USER + ORDERS)]:
                tg.user(user_id, f"user{user_id}")
            bot = create_bot(settings)
            ctx = await build_context(settings, bot)
            bot.session.middleware(TelegramMetrics(ctx.metrics))  # as run_bot does
            bot.session.middleware(FloodControlObserver(ctx.pacer))
            worker = OutboxWorker(ctx)
            try:
                order_ids = await pay_all(ctx, cp)
                queued = await outbox_counts(ctx)
                assert queued[("goods", "pending")] == ORDERS, queued
                print(f"setup: {ORDERS} orders paid by webhook in {time.perf_counter() - t0:.1f}s")
                freeze_startup_heap()  # as run_bot does before it serves
                tg.latency = LATENCY
                started = time.perf_counter()
                worker.start()
                await tg.wait_until(
                    lambda: len(goods_in_chats(tg)) >= ORDERS or None,
                    timeout=DONE_TIMEOUT,
                    what="every buyer's goods",
                )
                elapsed = time.perf_counter() - started
                # The admin notices (lower priority) follow; then nothing may be left.
                await tg.wait_until(
                    lambda: len(admin_noticed(tg)) >= ORDERS or None,
                    timeout=DONE_TIMEOUT,
                    what="every admin notice",
                )
                await worker.stop()
                final = await outbox_counts(ctx)
                n_delivered = await delivered(ctx, order_ids)
            finally:
                await worker.stop()
                await ctx.close()
                await bot.session.close()
    per_chat = goods_in_chats(tg)
    twice = sorted(o for o, n in per_chat.items() if n > 1)
    lost = sorted(set(order_ids) - set(per_chat))
    admin_texts = [m.text or "" for m in tg.users[ADMIN_ID].chat_messages()]
    noticed = admin_noticed(tg)
    assert not twice, f"sent twice: {twice}"
    assert not lost, f"never sent: {lost}"
    assert n_delivered == ORDERS, f"{n_delivered} of {ORDERS} orders delivered"
    assert noticed == dict.fromkeys(order_ids, 1), "admin notices lost or repeated"
    # ("admin", "sent"): the low-stock alert, once, as the sales empty the product.
    assert set(final) <= {("goods", "sent"), ("admin_paid", "sent"), ("admin", "sent")}, final
    assert final[("admin", "sent")] <= 1, final
    assert final[("goods", "sent")] == ORDERS and final[("admin_paid", "sent")] == ORDERS, final
    per_s = ORDERS / elapsed
    limit = settings.telegram_rate_limit
    print(
        f"{ORDERS} goods messages in {elapsed:.1f}s with {LATENCY * 1000:.0f} ms per Bot API "
        f"call: {per_s:.1f} messages/s (limit {limit:.0f}/s); at most "
        f"{tg.max_in_flight.get('sendMessage', 0)} sends in flight; none sent twice, none "
        f"lost, every order delivered; the {ORDERS} admin notices arrived in "
        f"{len(admin_texts)} messages; total {time.perf_counter() - t0:.1f}s"
    )
    print(f"RESULT delivery per_s={per_s:.1f} limit={limit:.0f} ratio={per_s / limit:.2f}")


async def bounded() -> None:
    await asyncio.wait_for(main(), timeout=600)


if __name__ == "__main__":
    asyncio.run(bounded())
