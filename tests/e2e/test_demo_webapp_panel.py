"""The demo page's Mini App panel in headless Chromium, against a stand-in storefront at the
bot's `/app/`: it opens as Telegram opens a Mini App (signed initData for the demo user in
the URL hash, telegram-web-app.js from the page), and the storefront's openTelegramLink of
an invoice opens the pay page. (The real storefront comes with the Mini App work; the
subprocess test covers the chat.)"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web

from bot.sandbox import FakeCryptoPay, FakeTelegram
from bot.sandbox.demo.server import DemoServer, Persona
from tests.conftest import unavailable
from tests.e2e.test_demo_browser import CHROMIUM, shot

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

BOT_TOKEN = "777:panel-test-token"
CP_TOKEN = "42:panel-test-token"

STOREFRONT = """<!doctype html><html><head><meta charset="utf-8">
<script src="{script}"></script></head><body>
<h1 id="hello"></h1><p id="check">checking…</p>
<button id="pay">Pay the invoice</button>
<script>
const app = window.Telegram.WebApp;
document.getElementById("hello").textContent = "Hello " + app.initDataUnsafe.user.first_name;
fetch("/app/api/check", {{headers: {{Authorization: "tma " + app.initData}}}})
  .then((r) => r.json())
  .then((b) => {{ document.getElementById("check").textContent = b.result; }});
document.getElementById("pay").onclick = () => app.openTelegramLink("{invoice_url}");
app.MainButton.setText("Checkout").show();
</script></body></html>"""


def valid_init_data(init_data: str, token: str) -> bool:
    """Telegram's documented check, written out here independently of the sandbox."""
    fields = dict(parse_qsl(init_data, keep_blank_values=True))
    given = fields.pop("hash", "")
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(given, expected) and json.loads(fields["user"])["id"] == 1


@pytest.fixture
async def panel_world() -> AsyncIterator[tuple[DemoServer, dict]]:
    async with (
        FakeTelegram(token=BOT_TOKEN, bot_username="demo_shop_bot") as tg,
        FakeCryptoPay(token=CP_TOKEN) as cp,
    ):
        async with aiohttp.ClientSession(headers={"Crypto-Pay-API-Token": CP_TOKEN}) as http:
            async with http.post(
                f"{cp.base_url}/createInvoice", json={"asset": "USDT", "amount": "3"}
            ) as resp:
                invoice = (await resp.json())["result"]
        servers: dict[str, DemoServer] = {}

        async def storefront(request: web.Request) -> web.Response:
            page = STOREFRONT.format(
                script=f"{servers['demo'].origin}/telegram-web-app.js",
                invoice_url=invoice["mini_app_invoice_url"],
            )
            return web.Response(text=page, content_type="text/html")

        async def check(request: web.Request) -> web.Response:
            init_data = request.headers.get("Authorization", "").removeprefix("tma ")
            ok = valid_init_data(init_data, BOT_TOKEN)
            return web.json_response({"result": "initData valid" if ok else "initData INVALID"})

        shop = web.Application()
        shop.router.add_get("/app/", storefront)
        shop.router.add_get("/app/api/check", check)
        runner = web.AppRunner(shop)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        bot_origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
        personas = [
            Persona("shopper", "Shopper", tg.user(1, "Sam")),
            Persona("admin", "Admin", tg.user(2, "Ada")),
        ]
        demo = servers["demo"] = DemoServer(tg, cp, personas, bot_origin=bot_origin)
        await demo.start()
        try:
            yield demo, invoice
        finally:
            await demo.stop()
            await runner.cleanup()


async def test_the_panel_opens_the_mini_app_and_its_invoice(panel_world) -> None:
    if not os.path.exists(CHROMIUM):
        unavailable("Chromium", f"{CHROMIUM} is not installed")
    from playwright.async_api import async_playwright, expect

    demo, invoice = panel_world
    expect.set_options(timeout=10_000)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 820})
        try:
            await page.goto(demo.url)
            await page.get_by_test_id("open-webapp").click()
            panel = page.get_by_test_id("webapp-panel")
            await expect(panel).to_be_visible()
            app = page.frame_locator("[data-testid=webapp-frame]")
            await expect(app.locator("#hello")).to_have_text("Hello Sam")
            await expect(app.locator("#check")).to_have_text("initData valid")
            await expect(panel.get_by_role("button", name="Checkout")).to_be_visible()
            await shot(page, "12-mini-app-panel")
            await app.get_by_role("button", name="Pay the invoice").click()
            await expect(page.get_by_test_id("pay-overlay")).to_be_visible()
            pay_page = page.frame_locator("[data-testid=pay-frame]")
            await expect(pay_page.locator(".amount")).to_have_text("3 USDT")
        finally:
            await browser.close()
    assert invoice["hash"] in demo.cp.pay_page_url(invoice["hash"])
