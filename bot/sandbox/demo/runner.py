"""`python -m bot demo`: the real shop (bot.app.run_bot, the composition root) against the
stand-ins of Telegram and Crypto Pay, all in this process, all on 127.0.0.1.

    stand-ins (FakeTelegram, FakeCryptoPay) → catalog import → run_bot → the demo page

The shop polls the FakeTelegram for updates and calls the FakeCryptoPay; the FakeCryptoPay
posts its signed webhooks to the shop's own server; the page (DemoServer) plays the two
Telegram users. Ctrl-C reaches run_bot's signal handler, which stops the shop cleanly; the
stand-ins and the page stop after it.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import storage
from bot.app import run_bot
from bot.catalog_file import CatalogFile, CatalogFileError, load_catalog
from bot.catalog_sync import import_catalog_file
from bot.config import Settings
from bot.sandbox.cryptopay import FakeCryptoPay
from bot.sandbox.demo.server import DemoServer, Persona
from bot.sandbox.demo.settings import (
    ADMIN_ID,
    LOOPBACK_HOST,
    SHOPPER_ID,
    demo_settings,
    demo_tokens,
)
from bot.sandbox.telegram import FakeTelegram
from storage import Database, upgrade

DEFAULT_PORT = 8000
READY_SECONDS = 60.0
# The Crypto Pay app's balance, so that /refund has something to pay with.
BALANCES = {"USDT": Decimal("1000"), "TON": Decimal("500"), "BTC": Decimal("0.05")}


class DemoError(Exception):
    """The demo cannot start for a reason the user can fix; the message says which."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK_HOST, 0))
        return int(s.getsockname()[1])


def read_catalog(path: Path) -> CatalogFile:
    try:
        return load_catalog(path, "USD")
    except CatalogFileError as error:
        raise DemoError(f"Catalog not loaded: {error}") from None
    except OSError as error:
        raise DemoError(f"Cannot read the catalog {path}: {error.strerror}.") from None


async def run_demo(
    catalog_path: Path,
    *,
    port: int | None = None,
    database_url: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run until SIGINT/SIGTERM; prints one line with the page's URL once the shop is up."""
    catalog = read_catalog(catalog_path)
    bot_token, cryptopay_token = demo_tokens()
    with tempfile.TemporaryDirectory(prefix="shop-demo-") as tmp:
        db_url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        async with (
            FakeTelegram(
                token=bot_token, bot_username="demo_shop_bot", bot_first_name="Demo Shop"
            ) as tg,
            FakeCryptoPay(token=cryptopay_token, network="testnet", balances=BALANCES) as cp,
        ):
            personas = [
                Persona("shopper", "Shopper", tg.user(SHOPPER_ID, "Sam", username="demo_sam")),
                Persona("admin", "Admin", tg.user(ADMIN_ID, "Ada", username="demo_ada")),
            ]
            bot_port = free_port()
            bot_origin = f"http://{LOOPBACK_HOST}:{bot_port}"
            demo = await start_page(tg, cp, personas, bot_origin, port)
            try:
                settings = settings_for(
                    demo, bot_token, cryptopay_token, tg, cp, db_url, bot_port, catalog.currency
                )
                await import_catalog(settings.database_url, catalog)
                cp.webhook_url = f"{bot_origin}{settings.cryptopay_webhook_path}"
                return await run_shop(settings, tg, demo, out)
            finally:
                await demo.stop()


def settings_for(
    demo: DemoServer,
    bot_token: str,
    cryptopay_token: str,
    tg: FakeTelegram,
    cp: FakeCryptoPay,
    database_url: str,
    bot_port: int,
    currency: str,
) -> Settings:
    try:
        return demo_settings(
            bot_token=bot_token,
            cryptopay_token=cryptopay_token,
            telegram_api_url=tg.base_url,
            cryptopay_api_url=cp.base_url,
            database_url=database_url,
            port=bot_port,
            webapp_script_url=f"{demo.origin}/telegram-web-app.js",
            SHOP_CURRENCY=currency,
        )
    except ValueError as error:
        raise DemoError(f"The demo cannot start: {error}.") from None


async def start_page(
    tg: FakeTelegram,
    cp: FakeCryptoPay,
    personas: list[Persona],
    bot_origin: str,
    port: int | None,
) -> DemoServer:
    """The page on `port`; without one, on 8000 or, if that is taken, any free port."""
    for candidate in [port] if port is not None else [DEFAULT_PORT, 0]:
        demo = DemoServer(tg, cp, personas, bot_origin=bot_origin, port=candidate)
        try:
            await demo.start()
        except OSError:
            await demo.stop()
            continue
        return demo
    raise DemoError(f"Port {port} on 127.0.0.1 is in use; pick another with --port N.")


async def import_catalog(database_url: str, catalog: CatalogFile) -> None:
    db = Database(database_url)
    try:
        if not await db.ping():
            raise DemoError("Cannot reach the database given with --db; is it running?")
        await upgrade(db)
        # A live shop's database would be worked on as the demo's own: its pending orders
        # checked against the Crypto Pay stand-in, its queued messages (goods among them)
        # "sent" to the Telegram stand-in and lost to their buyers.
        strangers = await storage.count_customers_besides(db, (SHOPPER_ID, ADMIN_ID))
        if strangers:
            raise DemoError(
                f"The database given with --db holds a shop's customers ({strangers} not the "
                "demo's); the demo would treat their orders and messages as its own. Give it "
                "an empty database (or one only the demo used)."
            )
        await import_catalog_file(db, catalog)
    finally:
        await db.dispose()


async def run_shop(settings: Settings, tg: FakeTelegram, demo: DemoServer, out: TextIO) -> int:
    """run_bot until it stops; the URL line goes out once the shop polls for updates."""
    since = len(tg.calls)
    shop = asyncio.create_task(run_bot(settings))
    ready = asyncio.create_task(tg.wait_for_call("getUpdates", since=since, timeout=READY_SECONDS))
    await asyncio.wait({shop, ready}, return_when=asyncio.FIRST_COMPLETED)
    if shop.done():
        ready.cancel()
        return shop.result()
    try:
        ready.result()
    except AssertionError:
        raise DemoError(f"The demo shop did not start within {READY_SECONDS:.0f}s.") from None
    print(
        f"Demo shop: open {demo.url} in your browser (a local demo: stand-ins of Telegram "
        "and Crypto Pay on 127.0.0.1, no tokens, no real money; Ctrl-C stops it)",
        file=out,
        flush=True,
    )
    return await shop
