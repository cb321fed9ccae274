"""Benchmark: the Mini App's catalog API with 10,000 products, against the same aiohttp
app's empty route; and the storefront's first screen in bytes transferred.

The shop's side is the production wiring: ``bot.app.build_context`` (migrations included),
``bot.web.build_web_app`` plus ``bot.webapp.add_webapp``, served by AppRunner/TCPSite on
127.0.0.1 (ephemeral port), on SQLite. The catalog: 10 categories of 1,000 products, 3 codes
each (30,000 stock units). Each request is what the page sends when a shopper opens a
category: ``GET /app/api/catalog?category=<slug>`` with ``Authorization: tma <initData>``
(signed initData, validated on every call), answered with the first page of 20 products and
their stock counts. The requests come from a load generator in its own process (this file
with ``--load``; aiohttp, one keep-alive connection per worker, concurrency 20), so the shop
does not share its CPU with the sender. Baseline: the same server answering 200 from an empty
route, with the same generator, headers, concurrency and number of requests. A category page
is the same for every shopper of a language, so the API keeps each one for 2 s
(bot/webapp/state.py): the figure is mostly that cache; the line above the RESULT also gives
the rate with the cache off (every request reads the database: four queries).

First screen: what a phone downloads to show the catalog (index.html, the CSS, the four JS
modules, gzip as a browser asks for it, and the session and catalog API answers), photos
excluded; Telegram's own script is not counted (Telegram's CDN, cached by the client).

Run from the repository root: ``python bench/miniapp.py``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

from bench._common import BOT_TOKEN, CP_TOKEN, bench_settings, getme_only_bot
from bot.app import build_context, freeze_startup_heap
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.sandbox.cryptopay import FakeCryptoPay
from bot.sandbox.webapp import sign_init_data
from bot.web import build_web_app
from bot.webapp import add_webapp
from bot.webapp import state as webapp_state

CATEGORIES = 10
PER_CATEGORY = 1_000
REQUESTS = 3_000
UNCACHED_REQUESTS = 600
WARMUP = 300
CONCURRENCY = 20
EMPTY_PATH = "/bench/empty"
FIRST_SCREEN = ("", "app.css", "app.js", "api.js", "telegram.js", "ui.js")


def catalog_toml() -> str:
    parts = ['currency = "USD"\n']
    for c in range(CATEGORIES):
        parts.append(f'[[categories]]\nslug = "cat{c}"\ntitle = "Category {c}"\n')
    for c in range(CATEGORIES):
        for p in range(PER_CATEGORY):
            sku = f"p{c}-{p:04d}"
            parts.append(
                f'[[products]]\nsku = "{sku}"\ncategory = "cat{c}"\n'
                f'title = "Product {c}-{p:04d}"\nprice = "{1 + p % 50}.99"\n'
                f'codes = ["{sku}-A", "{sku}-B", "{sku}-C"]\n'
            )
    return "\n".join(parts)


async def empty(request: web.Request) -> web.Response:
    return web.Response()


async def load(url: str, n: int, concurrency: int, header: str) -> dict[str, Any]:
    """The generator's side (its own process): n GETs, `concurrency` workers."""
    remaining = iter(range(n))
    wrong: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": header, "Accept-Encoding": "gzip"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            for _ in remaining:
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        wrong.append(str(response.status))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "n_wrong": len(wrong), "wrong": wrong[:5]}


async def run_load(url: str, n: int, header: str) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--load",
        url,
        str(n),
        str(CONCURRENCY),
        header,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, f"the load generator failed ({proc.returncode})"
    report = json.loads(out)
    assert report["n_wrong"] == 0, f"{report['n_wrong']} wrong answers: {report['wrong']}"
    return n / float(report["elapsed"])


async def first_screen_bytes(base: str, header: str) -> int:
    total = 0
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for name in FIRST_SCREEN:
            async with http.get(f"{base}/app/{name}", headers={"Accept-Encoding": "gzip"}) as r:
                assert r.status == 200, name
                total += len(await r.read()) + sum(
                    len(k) + len(v) + 4 for k, v in r.headers.items()
                )
        for api in ("session", "catalog", "catalog?category=cat0"):
            async with http.get(
                f"{base}/app/api/{api}",
                headers={"Authorization": header, "Accept-Encoding": "gzip"},
            ) as r:
                assert r.status == 200, api
                total += len(await r.read()) + sum(
                    len(k) + len(v) + 4 for k, v in r.headers.items()
                )
    return total


async def main() -> str:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_miniapp_") as tmp:
        async with FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp:
            settings = bench_settings(f"sqlite+aiosqlite:///{tmp}/shop.db", cp.base_url)
            bot = getme_only_bot()
            ctx = await build_context(settings, bot)
            runner: web.AppRunner | None = None
            try:
                await import_catalog_file(ctx.db, parse_catalog(catalog_toml(), "USD"))
                setup_s = time.perf_counter() - t0
                app = build_web_app(ctx)
                add_webapp(app, ctx)
                app.router.add_get(EMPTY_PATH, empty)
                freeze_startup_heap()
                runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                host, port = runner.addresses[0][:2]
                base = f"http://{host}:{port}"
                user = {"id": 7_000_001, "first_name": "Bench", "language_code": "en"}
                header = "tma " + sign_init_data(BOT_TOKEN, user)
                catalog_url = f"{base}/app/api/catalog?category=cat3"
                await run_load(catalog_url, WARMUP, header)
                await run_load(base + EMPTY_PATH, WARMUP, header)
                baselines = [await run_load(base + EMPTY_PATH, REQUESTS, header)]
                per_s = await run_load(catalog_url, REQUESTS, header)
                baselines.append(await run_load(base + EMPTY_PATH, REQUESTS, header))
                # The same without the page cache: every request reads the database.
                webapp_state.PAGE_TTL_SECONDS, kept = 0.0, webapp_state.PAGE_TTL_SECONDS
                try:
                    uncached = await run_load(catalog_url, UNCACHED_REQUESTS, header)
                finally:
                    webapp_state.PAGE_TTL_SECONDS = kept
                screen = await first_screen_bytes(base, header)
            finally:
                if runner is not None:
                    await runner.cleanup()
                await ctx.close()
                await bot.session.close()
    baseline = max(baselines)
    print(
        f"catalog API, {CATEGORIES * PER_CATEGORY:,} products: {per_s:,.0f} requests/s at "
        f"concurrency {CONCURRENCY} (a page of 20 with stock counts, initData checked); empty "
        f"route {baseline:,.0f} requests/s; with every page read from the database (no "
        f"{webapp_state.PAGE_TTL_SECONDS:g} s page cache) {uncached:,.0f} requests/s; "
        f"first screen {screen / 1024:.1f} KB transferred "
        f"(gzip, headers included); setup {setup_s:.1f}s, total {time.perf_counter() - t0:.1f}s"
    )
    return (
        f"RESULT miniapp_catalog per_s={per_s:.0f} baseline={baseline:.0f} "
        f"ratio={per_s / baseline:.2f} first_screen_kb={screen / 1024:.1f}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        url, n, concurrency, header = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        print(json.dumps(asyncio.run(load(url, n, concurrency, header))))
    else:
        print(asyncio.run(asyncio.wait_for(main(), timeout=600)))
