"""`python -m bot demo` in headless Chromium: a shopper buys and pays on the pay page, the
admin sees the paid order and refunds it, the shopper is told. A screenshot of every step
goes to test-output/screenshots/demo/.

The browser is Debian's chromium (.ci/run installs it); Playwright drives it through
`executable_path`, never a browser of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
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


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
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
    )
    stderr_path = tmp_path / "demo.stderr.log"
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "demo", "--port", str(free_port())],
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
