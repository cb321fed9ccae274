"""Benchmark: 2,000 signed invoice_paid webhooks for 2,000 pending orders, at concurrency 50,
against the real aiohttp app, on SQLite and on PostgreSQL.

The shop's side is the production wiring: ``bot.app.build_context`` (migrations included) and
``bot.web.build_web_app`` served by AppRunner/TCPSite on 127.0.0.1 (ephemeral port). The
orders are written through the storage API beforehand (a customer each, one unit reserved
each, an invoice id of ours attached). Each webhook body is what Crypto Pay sends: compact
JSON of an ``invoice_paid`` update with the paid fiat invoice, signed with HMAC-SHA-256 keyed
by SHA-256(token) in ``crypto-pay-api-signature``. The requests come from a load generator in
its own process (bench/_load.py, aiohttp, one keep-alive connection per worker), as Crypto
Pay's do: the shop does not share its CPU with the sender. Baseline: the same server
answering 200 from an empty route, with the same load generator, bodies, concurrency and
number of requests.

Settling writes what to tell the buyer and the admins to the outbox; the outbox worker
(delivery to Telegram) is not running here, so this measures the webhook up to the commit.
At a fixed concurrency the mean latency is concurrency / throughput (Little's law): p99 under
100 ms at concurrency 50 needs well over 500 settlements/s.

Run from the repository root: ``python bench/webhook.py``. The PostgreSQL database is
created and dropped here (skipped with a note when the server is unreachable;
``BENCH_POSTGRES_URL`` overrides the admin URL).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from aiohttp import web

import storage
from bench._common import (
    BOT_USERNAME,
    CP_TOKEN,
    bench_settings,
    fresh_pg_database,
    getme_only_bot,
    percentile,
    run_pool,
    seed_product,
)
from bot.app import build_context, freeze_startup_heap
from bot.context import ShopContext
from bot.sandbox._cp_data import iso
from bot.sandbox.cryptopay import FakeCryptoPay
from bot.web import build_web_app
from storage import Order, OrderStatus, OutboxMessage

ORDERS = 2_000
WARMUP = 100
CONCURRENCY = 50
SKU = "bench-key"
PRICE = "4.99"
FIRST_USER = 8_000_000
FIRST_INVOICE = 40_000_000
EMPTY_PATH = "/bench/empty"


@dataclass(frozen=True)
class Delivery:
    order_id: int
    body: bytes
    headers: dict[str, str]


def webhook(
    cp: FakeCryptoPay, order_id: int, invoice_id: int, total: Decimal, update_id: int
) -> Delivery:
    """The invoice_paid update Crypto Pay would POST for this order, signed."""
    now = datetime.now(UTC)
    code = f"IVb{invoice_id:09d}"
    amount = format(total.normalize(), "f")
    fee = format((total * Decimal("0.03")).normalize(), "f")
    invoice = {
        "invoice_id": invoice_id,
        "hash": code,
        "currency_type": "fiat",
        "fiat": "USD",
        "amount": amount,
        "accepted_assets": ["USDT", "TON", "BTC"],
        "paid_asset": "USDT",
        "paid_amount": amount,
        "paid_fiat_rate": "1.00000000",
        "fee_asset": "USDT",
        "fee_amount": fee,
        "fee_in_usd": f"{Decimal(fee):.8f}",
        "pay_url": f"https://t.me/CryptoTestnetBot?start={code}",
        "bot_invoice_url": f"https://t.me/CryptoTestnetBot?start={code}",
        "mini_app_invoice_url": f"https://t.me/CryptoTestnetBot/app?startapp=invoice-{code}",
        "web_app_invoice_url": f"https://testnet-app.send.tg/invoices/{code}",
        "description": f"Order #{order_id}: Bench Key × 1",
        "status": "paid",
        "created_at": iso(now - timedelta(minutes=2)),
        "allow_comments": False,
        "allow_anonymous": True,
        "expiration_date": iso(now + timedelta(minutes=13)),
        "paid_usd_rate": "1.00000000",
        "paid_at": iso(now - timedelta(seconds=1)),
        "paid_anonymously": False,
        "payload": str(order_id),
        "paid_btn_name": "openBot",
        "paid_btn_url": f"https://t.me/{BOT_USERNAME}",
    }
    update = {
        "update_id": update_id,
        "update_type": "invoice_paid",
        "request_date": iso(now),
        "payload": invoice,
    }
    body, headers = cp.signed_update(update)  # compact JSON, signed, as Crypto Pay sends
    return Delivery(order_id, body, headers)


async def pending_orders(ctx: ShopContext, cp: FakeCryptoPay, n: int) -> list[Delivery]:
    """n pending orders, one unit reserved and an invoice attached each; their webhooks."""
    product = await seed_product(ctx.db, SKU, n, PRICE)
    assert product.id is not None
    product_id, price = product.id, product.price
    expires = storage.utcnow() + timedelta(minutes=15)
    deliveries: list[Delivery | None] = [None] * n

    async def one(i: int) -> None:
        customer = await storage.upsert_customer(ctx.db, FIRST_USER + i, f"buyer{i}", "en")
        assert customer.id is not None
        order = await storage.create_order(
            ctx.db, customer.id, [(product_id, 1, price)], "USD", expires
        )
        assert order is not None and order.id is not None
        invoice_id = FIRST_INVOICE + order.id
        attached = await storage.attach_invoice(
            ctx.db,
            order.id,
            invoice_id=invoice_id,
            invoice_hash=f"IVb{invoice_id:09d}",
            bot_invoice_url=f"https://t.me/CryptoTestnetBot?start=IVb{invoice_id:09d}",
        )
        assert attached
        deliveries[i] = webhook(cp, order.id, invoice_id, order.total, 30_000 + i)

    await run_pool(n, 20, one)
    return [d for d in deliveries if d is not None]


async def post_all(url: str, deliveries: list[Delivery], expect: str) -> tuple[float, list[float]]:
    """POST every delivery at CONCURRENCY from the load generator's own process (bench/
    _load.py): (requests per second, latencies in seconds). Every answer must be as
    `expect`ed ("settled" or "ok")."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as f:
        for d in deliveries:
            f.write(json.dumps({"body": d.body.decode(), "headers": d.headers}) + "\n")
        f.flush()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("_load.py")),
            url,
            f.name,
            str(CONCURRENCY),
            expect,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
    assert proc.returncode == 0, f"the load generator failed ({proc.returncode})"
    report = json.loads(out)
    assert report["n_wrong"] == 0, f"{report['n_wrong']} unexpected answers: {report['wrong']}"
    assert len(report["latencies"]) == len(deliveries)
    return len(deliveries) / report["elapsed"], report["latencies"]


async def empty(request: web.Request) -> web.Response:
    return web.Response()


async def count_paid(ctx: ShopContext, ids: list[int]) -> int:
    async with ctx.db.session() as s:
        n = await s.scalar(
            sa.select(sa.func.count())
            .select_from(Order)
            .where(Order.id.in_(ids), Order.status == OrderStatus.PAID)  # type: ignore[union-attr]
        )
    return int(n or 0)


async def count_outbox(ctx: ShopContext) -> int:
    async with ctx.db.session() as s:
        return int(await s.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) or 0)


async def run_engine(name: str, url: str) -> str:
    t0 = time.perf_counter()
    async with FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp:  # getMe at start only
        bot = getme_only_bot()
        ctx = await build_context(bench_settings(url, cp.base_url), bot)
        runner: web.AppRunner | None = None
        try:
            deliveries = await pending_orders(ctx, cp, WARMUP + ORDERS)
            warmup, measured = deliveries[:WARMUP], deliveries[WARMUP:]
            setup_s = time.perf_counter() - t0
            app = build_web_app(ctx)
            app.router.add_post(EMPTY_PATH, empty)
            freeze_startup_heap()  # as run_bot does before it serves
            runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            base = f"http://{host}:{port}"
            hook_url = base + ctx.settings.cryptopay_webhook_path
            empty_url = base + EMPTY_PATH
            await post_all(hook_url, warmup, "settled")
            await post_all(empty_url, warmup, "ok")
            baselines = [(await post_all(empty_url, measured, "ok"))[0]]
            per_s, latencies = await post_all(hook_url, measured, "settled")
            baselines.append((await post_all(empty_url, measured, "ok"))[0])
            paid = await count_paid(ctx, [d.order_id for d in deliveries])
            assert paid == len(deliveries), f"{paid} of {len(deliveries)} orders paid"
            outbox = await count_outbox(ctx)
        finally:
            if runner is not None:
                await runner.cleanup()
            await ctx.close()
            await bot.session.close()
    baseline = max(baselines)
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    print(
        f"{name}: {ORDERS} webhooks at concurrency {CONCURRENCY}: {per_s:,.0f} settlements/s, "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; empty route {baseline:,.0f} requests/s; "
        f"every order paid; {outbox} outbox messages written, none sent (the outbox worker "
        f"is not running in this bench); setup {setup_s:.1f}s, "
        f"total {time.perf_counter() - t0:.1f}s"
    )
    return (
        f"RESULT webhook_{name} per_s={per_s:.0f} p99_ms={p99:.1f} baseline={baseline:.0f} "
        f"ratio={per_s / baseline:.2f}"
    )


async def main() -> None:
    engines = os.environ.get("BENCH_ENGINES", "sqlite,postgresql")
    lines: list[str] = []
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory(prefix="bench_webhook_") as tmp:
            lines.append(await run_engine("sqlite", f"sqlite+aiosqlite:///{tmp}/shop.db"))
    if "postgresql" in engines:
        async with fresh_pg_database("bench_webhook") as url:
            if url is None:
                lines.append("RESULT webhook_postgresql skipped=unreachable")
            else:
                lines.append(await run_engine("postgresql", url))
    for line in lines:
        print(line)


async def bounded() -> None:
    await asyncio.wait_for(main(), timeout=600)


if __name__ == "__main__":
    asyncio.run(bounded())
