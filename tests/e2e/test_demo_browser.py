"""`python -m bot demo` in headless Chromium: a shopper buys and pays on the pay page, the
admin sees the paid order and refunds it, the shopper is told; the same purchase through the
real Mini App storefront in the page's panel. A screenshot of every step goes to
test-output/screenshots/demo/.

The browser is Debian's chromium (.ci/run installs it); Playwright drives it through
`executable_path`, never a browser of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.e2e.conftest import REPO, base_env, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "test-output" / "screenshots" / "demo"
STEP_MS = 15_000
URL_LINE = re.compile(r"open (http://127\.0\.0\.1:\d+/) in your browser")


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    url: str
    line: str
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@contextlib.asynccontextmanager
async def start_demo(tmp_path: Path, *args: str) -> AsyncIterator[Demo]:
    """The demo process, started where a developer's .env and environment hold other
    values: none of them may reach it."""
    leak_db = tmp_path / "leak.db"
    (tmp_path / ".env").write_text(
        "BOT_TOKEN=111:from-the-dot-env\nADMIN_IDS=10001\n"
        f"DATABASE_URL=sqlite+aiosqlite:///{leak_db}\n"
    )
    env = base_env(
        BOT_TOKEN="222:from-the-environment",
        CRYPTOPAY_TOKEN="333:from-the-environment",
        DATABASE_URL=f"sqlite+aiosqlite:///{leak_db}",
        REDIS_URL="redis://127.0.0.1:1/0",
        ADMIN_IDS="10001",
        TELEGRAM_API_URL="https://api.telegram.org",
        PHOTO_FETCH_URLS="true",
    )
    stderr_path = tmp_path / "demo.stderr.log"
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "demo", "--port", str(free_port()), *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    assert proc.stdout is not None
    try:
        raw = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        line = raw.decode()
        found = URL_LINE.search(line)
        assert found, f"no URL line: {line!r}\n{stderr_path.read_text()}"
        yield Demo(proc, found.group(1), line, stderr_path)
        assert not leak_db.exists(), "the demo used DATABASE_URL from the environment or .env"
    finally:
        if proc.poll() is None:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    async with start_demo(tmp_path) as found:
        yield found


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, read from /proc (IPv4
    addresses as dotted quads; any IPv6 listener shows as "ipv6")."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            if table == "tcp6":
                found.append(("ipv6", int(port, 16)))
            else:
                quad = ".".join(str(b) for b in reversed(bytes.fromhex(address)))
                found.append((quad, int(port, 16)))
    return found


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


def bot_message(page, text: str):
    return page.locator("[data-testid=bot-message]", has_text=text).last


async def tap(message, label: str | re.Pattern[str]) -> None:
    await message.get_by_role("button", name=label, exact=isinstance(label, str)).click()


async def test_buy_pay_refund_in_the_browser(demo: Demo) -> None:
    if not os.path.exists(CHROMIUM):
        unavailable("Chromium", f"{CHROMIUM} is not installed")
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=STEP_MS)
    # Exactly one line on standard output: the URL.
    assert demo.line.count("\n") == 1 and "local demo" in demo.line
    # The page, both stand-ins and the shop's own server: all on 127.0.0.1, nothing else.
    sockets = listening_sockets(demo.proc.pid)
    assert len(sockets) == 4, sockets
    assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 820})
        try:
            await page.goto(demo.url)
            await expect(page.get_by_test_id("banner")).to_contain_text("Local demo")
            await expect(page.get_by_test_id("status")).to_contain_text("Connected")
            await shot(page, "01-empty-chat")

            # The shopper: /start typed in the box, then through the catalog to a card.
            await page.get_by_test_id("composer-input").fill("/start")
            await page.get_by_test_id("composer-input").press("Enter")
            welcome = bot_message(page, "Welcome")
            await expect(welcome).to_be_visible()
            await expect(welcome.locator("b", has_text="Catalog")).to_be_visible()  # <b> rendered
            await shot(page, "02-welcome")
            await tap(welcome, "Catalog")
            await tap(bot_message(page, "Game keys"), re.compile("Game keys"))
            await tap(bot_message(page, "Steam"), re.compile("Steam"))
            await tap(bot_message(page, "Witcher 3"), re.compile("Witcher 3"))
            card = bot_message(page, "Quantity: 1")
            await expect(card).to_contain_text("$9.99")
            await shot(page, "03-product-card")

            await tap(card, "Buy")
            order = bot_message(page, "Order #")
            await expect(order).to_contain_text("$9.99")
            found = re.search(r"Order #(\d+)", await order.inner_text())
            assert found
            order_id = int(found.group(1))
            await shot(page, "04-order-with-pay")

            # Pay opens the Crypto Pay stand-in's page for this invoice.
            await tap(order, "Pay")
            overlay = page.get_by_test_id("pay-overlay")
            await expect(overlay).to_be_visible()
            pay_page = page.frame_locator("[data-testid=pay-frame]")
            await expect(pay_page.locator("[data-status]")).to_have_text("active")
            await expect(pay_page.locator(".amount")).to_have_text("9.99 USD")
            await shot(page, "05-pay-page")
            await pay_page.get_by_role("button", name="Pay", exact=True).click()
            await expect(pay_page.locator("[data-status]")).to_have_text("paid")
            await expect(pay_page.get_by_role("status")).to_contain_text("webhook answered 200")
            await shot(page, "06-paid")
            await page.get_by_test_id("pay-close").click()
            await expect(overlay).to_be_hidden()

            goods = bot_message(page, f"Order #{order_id} is paid")
            await expect(goods).to_contain_text("DEMO-W3-")
            await shot(page, "07-goods-in-chat")

            # The admin: a paid-order notice (and the unread badge on the way there).
            await expect(page.get_by_test_id("unread-admin")).to_be_visible()
            await page.get_by_test_id("persona-admin").click()
            notice = bot_message(page, f"Order #{order_id} paid")
            await expect(notice).to_contain_text("Buyer: @demo_sam")
            await shot(page, "08-admin-paid-notice")

            await page.get_by_test_id("composer-input").fill(f"/refund {order_id}")
            await page.get_by_test_id("send").click()
            preview = page.locator("[data-testid=bot-message]").filter(
                has=page.get_by_role("button", name="Confirm")
            )
            await expect(preview.last).to_be_visible()
            await shot(page, "09-refund-preview")
            await tap(preview.last, "Confirm")
            await expect(bot_message(page, "Transfer id")).to_contain_text(f"#{order_id}")
            await shot(page, "10-refund-sent")

            # The shopper is told.
            await page.get_by_test_id("persona-shopper").click()
            told = bot_message(page, f"for order #{order_id} was sent")
            await expect(told).to_contain_text("refund")
            await shot(page, "11-buyer-told")
        finally:
            await browser.close()

    # Ctrl-C stops it cleanly.
    demo.proc.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(demo.proc.wait, 20)
    assert code == 0, demo.stderr
    assert "Traceback" not in demo.stderr, demo.stderr
    assert demo.proc.stdout is not None
    assert demo.proc.stdout.read() == b"", "more than the one URL line on standard output"


async def test_let_it_expire_then_check_payment(demo: Demo) -> None:
    """The pay page's other button: the invoice expires at the stand-in (no webhook), and
    Check payment in the chat finds out and releases the order."""
    if not os.path.exists(CHROMIUM):
        unavailable("Chromium", f"{CHROMIUM} is not installed")
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=STEP_MS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 820})
        try:
            await page.goto(demo.url)
            await page.get_by_test_id("composer-input").fill("/start p_portal2")
            await page.get_by_test_id("composer-input").press("Enter")
            card = bot_message(page, "Portal 2")
            await tap(card, "Buy")
            order = bot_message(page, "Order #")
            found = re.search(r"Order #(\d+)", await order.inner_text())
            assert found
            await tap(order, "Pay")
            pay_page = page.frame_locator("[data-testid=pay-frame]")
            await pay_page.get_by_role("button", name="Let it expire").click()
            await expect(pay_page.locator("[data-status]")).to_have_text("expired")
            await shot(page, "13-let-it-expire")
            await page.get_by_test_id("pay-close").click()
            await tap(bot_message(page, f"Order #{found.group(1)}"), "Check payment")
            # Check payment answers with an alert (answerCallbackQuery, show_alert).
            await expect(page.get_by_test_id("alert-text")).to_contain_text(
                "the invoice has expired"
            )
            await shot(page, "14-expired-in-chat")
        finally:
            await browser.close()


async def test_the_chat_keeps_the_newest_message_in_sight(demo: Demo) -> None:
    """The chat follows its newest message, also when the layout changes after it was drawn
    (a product photo loading, a phone-sized window); a keyboard's words are not cut short;
    on a phone-sized window the switch between the shopper and the admin is whole."""
    if not os.path.exists(CHROMIUM):
        unavailable("Chromium", f"{CHROMIUM} is not installed")
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=STEP_MS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 820})
        box = page.get_by_test_id("composer-input")
        helps = page.locator("[data-testid=bot-message]", has_text="How it works")
        try:
            await page.goto(demo.url)
            await box.fill("/help")
            await box.press("Enter")
            await expect(helps).to_have_count(1)
            # A card whose photo loads after the message is drawn, so the chat grows under it.
            await box.fill("/start p_witcher3")
            await box.press("Enter")
            photo = bot_message(page, "Witcher 3").locator("img.photo")
            await expect(photo).to_be_visible()
            await photo.evaluate(
                "i => i.complete && i.naturalHeight ? 0 : new Promise(r => i.onload = r)"
            )
            await box.fill("/help")
            await box.press("Enter")
            await expect(helps).to_have_count(2)
            await expect(helps.last.locator(".meta")).to_be_in_viewport()
            await shot(page, "19-newest-in-sight")

            # A keyboard's buttons show their whole words (the message widens for them).
            await box.fill("/language")
            await box.press("Enter")
            choose = bot_message(page, "Choose your language")
            await expect(choose.get_by_role("button")).to_have_count(2)
            for button in await choose.get_by_role("button").all():
                clipped = await button.evaluate("b => b.scrollWidth > b.clientWidth")
                assert not clipped, await button.inner_text()
            await expect(choose.locator(".meta")).to_be_in_viewport()

            # A phone: the chat reflows taller and still ends at its newest message; the
            # persona switch above it is not squeezed out of sight.
            await page.set_viewport_size({"width": 420, "height": 800})
            await expect(choose.locator(".keyboard")).to_be_in_viewport()
            await expect(page.get_by_test_id("composer-input")).to_be_in_viewport()
            sidebar = page.locator(".sidebar")
            assert await sidebar.evaluate("s => s.scrollHeight <= s.clientHeight")
            await shot(page, "20-phone")
            await page.get_by_test_id("persona-admin").click()
            await expect(page.get_by_test_id("persona-admin")).to_have_attribute(
                "aria-selected", "true"
            )
        finally:
            await browser.close()


ONLINE_PRODUCT = """
[[products]]
sku = "online"
category = "{category}"
title = "Photo on the web"
price = "2.00"
photo = "https://127.0.0.1:{port}/online.jpg"
codes = ["ONLINE-1"]
"""


async def test_the_mini_app_storefront_in_the_panel(tmp_path: Path) -> None:
    """The bot's menu button opens the real storefront in the panel for the demo shopper;
    the page's MainButton/BackButton drive it; checkout opens the pay page; paid, the
    storefront shows the goods and they arrive once in the chat. A catalog photo given as an
    https URL (a socket here that counts connections) is never fetched."""
    if not os.path.exists(CHROMIUM):
        unavailable("Chromium", f"{CHROMIUM} is not installed")
    from playwright.async_api import async_playwright, expect

    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "examples", catalog)
    category = re.search(r'slug = "([^"]+)"', (catalog / "catalog.toml").read_text())
    assert category
    with (catalog / "catalog.toml").open("a") as toml:
        port = listener.sockets[0].getsockname()[1]
        toml.write(ONLINE_PRODUCT.format(category=category.group(1), port=port))
    expect.set_options(timeout=STEP_MS)
    errors: list[str] = []
    async with (
        start_demo(tmp_path, "--catalog", str(catalog / "catalog.toml")) as demo,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 820})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            await page.goto(demo.url)
            # The menu button the bot set (setChatMenuButton, web_app) sits by the message box.
            menu = page.get_by_test_id("menu-webapp")
            await expect(menu).to_have_text("Open shop")
            await menu.click()
            panel = page.get_by_test_id("webapp-panel")
            await expect(panel.locator("#panel-title")).to_have_text("Demo Shop")
            app = page.frame_locator("[data-testid=webapp-frame]")
            src = await page.get_by_test_id("webapp-frame").get_attribute("src")
            assert src and src.startswith("http://127.0.0.1:") and "#tgWebAppData=" in src
            # The storefront's CSP lets in the demo's telegram-web-app.js (and nothing else).
            response = await page.request.get(src.split("#")[0])
            csp = response.headers["content-security-policy"]
            assert f"script-src 'self' {demo.url}telegram-web-app.js;" in csp

            await app.locator(".chip", has_text="Game keys").click()
            await app.locator(".chip", has_text="Steam").click()
            await app.locator(".card[data-sku='witcher3']").click()
            await expect(app.locator(".product h1")).to_contain_text("Witcher 3")
            main, back = panel.locator("#panel-main"), panel.locator("#panel-back")
            await expect(main).to_have_text("Add to cart")  # Telegram's MainButton, the page's
            await shot(page, "15-mini-app-product")
            await main.click()
            await expect(app.locator("#tab-cart")).to_have_text("Cart (1)")
            await back.click()  # Telegram's BackButton: from the product to the list
            await expect(app.locator(".card[data-sku='portal2'] img")).to_be_visible()
            await shot(page, "16-mini-app-catalog")

            # The product with a URL photo: a placeholder, not a picture fetched from the web.
            await app.locator("#search").fill("web")
            online = app.locator(".card[data-sku='online']")
            await expect(online.locator(".placeholder")).to_be_visible()
            await expect(online.locator("img")).to_have_count(0)

            await app.locator("#tab-cart").click()
            await expect(main).to_have_text("Checkout")
            await main.click()
            # openTelegramLink(mini_app_invoice_url): the pay page of this order's invoice.
            await expect(app.locator(".order[data-status='pending']")).to_be_visible()
            found = re.search(r"Order #(\d+)", await app.locator(".order h1").inner_text())
            assert found
            order_id = int(found.group(1))
            pay_page = page.frame_locator("[data-testid=pay-frame]")
            await expect(pay_page.locator(".amount")).to_have_text("9.99 USD")
            await shot(page, "17-mini-app-pay")
            await pay_page.get_by_role("button", name="Pay", exact=True).click()
            await expect(pay_page.locator("[data-status]")).to_have_text("paid")
            await page.get_by_test_id("pay-close").click()

            # The storefront sees it by itself; the goods arrive in the chat, once.
            await expect(app.locator(".goods li")).to_contain_text("DEMO-W3-")
            goods = bot_message(page, f"Order #{order_id} is paid")
            await expect(goods).to_contain_text("DEMO-W3-")
            await expect(main).to_be_hidden()
            await shot(page, "18-mini-app-paid")
            await expect(page.locator("[data-testid=bot-message]")).to_have_count(1)

            # The URL-photo product's card in the chat: text, no photo.
            await page.get_by_test_id("composer-input").fill("/start p_online")
            await page.get_by_test_id("composer-input").press("Enter")
            card = bot_message(page, "Photo on the web")
            await expect(card).to_contain_text("$2.00")
            await expect(card.locator("img, .photo-missing")).to_have_count(0)
            paid = page.locator("[data-testid=bot-message]", has_text="is paid")
            await expect(paid).to_have_count(1)

            # The Mini App belongs to the shopper's Telegram: switching to the admin closes it.
            await page.get_by_test_id("persona-admin").click()
            await expect(panel).to_be_hidden()
        finally:
            await browser.close()
        demo.proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(demo.proc.wait, 20) == 0, demo.stderr
    listener.close()
    await listener.wait_closed()
    assert connections == [], "the demo connected to a catalog photo's URL"
    assert errors == [], errors  # no CSP violation, no script error, no missing file
