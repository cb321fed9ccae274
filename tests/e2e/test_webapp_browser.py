"""The Mini App in a real browser (Debian's chromium via Playwright) against the real
``python -m bot`` process and the Telegram and Crypto Pay stand-ins: search, product pages,
two products in the cart, checkout opening the invoice in Telegram, payment at the stand-in,
the goods on the page — and once in the chat. Screenshots in light and dark theme go to
test-output/screenshots/."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import storage
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.sandbox.webapp import sign_init_data
from storage import Database
from tests.e2e.conftest import BOT_TOKEN, REPO, BotProcess, Shop
from tests.e2e.flows import STEP, WITCHER_CODES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCRIPT_URL = "https://telegram.org/js/telegram-web-app.js"
STUB = (REPO / "bot" / "sandbox" / "telegram_web_app.js").read_text()
SHOTS = REPO / "test-output" / "screenshots"
PORTAL_CODES = {"DEMO-P2-AAAA-1111", "DEMO-P2-BBBB-2222"}
WAIT_MS = STEP * 1000

LIGHT = {
    "bg_color": "#ffffff",
    "text_color": "#000000",
    "hint_color": "#999999",
    "link_color": "#2481cc",
    "button_color": "#2481cc",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#efeff3",
}
DARK = {
    "bg_color": "#17212b",
    "text_color": "#f5f5f5",
    "hint_color": "#708499",
    "link_color": "#6ab3f3",
    "button_color": "#5288c1",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#232e3c",
    "section_bg_color": "#17212b",
}


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (.ci/run installs it)")
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def open_store(
    browser: Any,
    bot: BotProcess,
    user: dict[str, Any],
    theme: dict[str, str],
    platform: str | None = None,
    version: str = "8.0",
) -> Any:
    """A phone-sized page opened as Telegram opens a Mini App: signed initData and the theme
    in the URL hash, Telegram's script answered by the stand-in."""
    context = await browser.new_context(
        viewport={"width": 390, "height": 760}, device_scale_factor=2
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]

    async def telegram_script(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/javascript", body=STUB)

    await page.route(SCRIPT_URL, telegram_script)
    init_data = sign_init_data(BOT_TOKEN, user)
    fragment = (
        f"tgWebAppData={quote(init_data, safe='')}"
        f"&tgWebAppThemeParams={quote(json.dumps(theme), safe='')}&tgWebAppVersion={version}"
    )
    if platform:
        fragment += f"&tgWebAppPlatform={platform}"
    await page.goto(f"{bot.url}/app/#{fragment}")
    return page


async def stub_calls(page: Any, method: str) -> list[list[Any]]:
    return [c["args"] for c in await page.evaluate("TelegramStub.calls") if c["method"] == method]


async def shoot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5000  # an image with something in it
    return path


async def search_and_add(page: Any, text: str, sku: str) -> None:
    await page.fill("#search", text)
    await page.click(f".results .card[data-sku='{sku}']", timeout=WAIT_MS)
    await page.wait_for_selector(".product h1", timeout=WAIT_MS)
    await page.click(".product button.primary")


async def test_shop_in_the_mini_app_paid_and_delivered_on_the_page_and_once_in_chat(
    shop: Shop, browser: Any
) -> None:
    bot = await shop.launch(WEBAPP_URL="https://shop.example.com")
    # The chat's way in: the menu button opens the storefront.
    menu = await shop.tg.wait_for_call("setChatMenuButton", timeout=STEP)
    button = menu[1]["menu_button"] if isinstance(menu, tuple) else menu["menu_button"]
    button = json.loads(button) if isinstance(button, str) else button
    assert (
        button["type"] == "web_app" and button["web_app"]["url"] == "https://shop.example.com/app/"
    )

    alice = shop.tg.user(5301, "Alice", username="alice")
    page = await open_store(
        browser, bot, {"id": 5301, "first_name": "Alice", "language_code": "en"}, LIGHT
    )
    await page.wait_for_selector(".chip", timeout=WAIT_MS)
    assert await stub_calls(page, "ready") == [[]]
    await page.click(".chip >> text=Game keys")
    await page.click(".chip >> text=Steam", timeout=WAIT_MS)
    await page.wait_for_selector(".card[data-sku='portal2']", timeout=WAIT_MS)
    await shoot(page, "catalog-light")

    # Search, a product page, Add to cart; then a second product.
    await search_and_add(page, "witch", "witcher3")
    await page.wait_for_selector("#tab-cart >> text=Cart (1)", timeout=WAIT_MS)
    assert "$9.99" in await page.inner_text(".product .price")
    await shoot(page, "product-light")
    await search_and_add(page, "PORTAL", "portal2")
    await page.click(".product .stepper button[aria-label='+']")  # quantity 2 of Portal 2
    await page.click(".product button.primary")
    await page.wait_for_selector("#tab-cart >> text=Cart (3)", timeout=WAIT_MS)

    # The cart (the chat's cart) and Checkout: the invoice opens inside Telegram.
    await page.click("#tab-cart")
    await page.wait_for_selector(".cart .line[data-sku='portal2']", timeout=WAIT_MS)
    assert await page.inner_text(".cart [data-role='total']") == "$18.99"  # 9.99 + 2 × 4.50
    await shoot(page, "cart-light")
    await page.click(".cart button.primary")
    await page.wait_for_selector(".order[data-status='pending']", timeout=WAIT_MS)
    (created,) = shop.cp.created_invoices
    order_id = int(created["payload"])
    invoice = next(i for i in shop.cp.invoices.values() if i["payload"] == str(order_id))
    assert await stub_calls(page, "openTelegramLink") == [[invoice["mini_app_invoice_url"]]]
    assert f"Order #{order_id}" in await page.inner_text(".order h1")

    # Paid at the stand-in: the page sees it by itself and shows the goods.
    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    await page.wait_for_selector(".goods li", timeout=WAIT_MS)
    shown = set(await page.locator(".goods li").all_inner_texts())
    assert len(shown & WITCHER_CODES) == 1 and PORTAL_CODES <= shown
    await shoot(page, "order-paid-light")

    # The goods message arrives in the chat too, once.
    await alice.wait_for_message(f"Order #{order_id} is paid", timeout=15, since=0)
    await shop.wait_for_db(
        f"SELECT status FROM outbox WHERE order_id = {order_id} AND kind = 'goods'",
        lambda rows: rows != [] and all(r[0] == "sent" for r in rows),
        timeout=STEP,
        what="the goods outbox row marked sent",
    )
    paid = [m for m in alice.chat_messages() if f"Order #{order_id} is paid" in (m.text or "")]
    assert len(paid) == 1
    assert page.errors == []  # type: ignore[attr-defined]  # no CSP violation, no script error

    # Dark theme: the same screens.
    dark = await open_store(
        browser, bot, {"id": 5301, "first_name": "Alice", "language_code": "en"}, DARK
    )
    await dark.wait_for_selector(".chip", timeout=WAIT_MS)
    bg = await dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(35, 46, 60)"  # secondary_bg_color of the dark theme
    await dark.click(".chip >> text=Game keys")
    await dark.click(".chip >> text=Steam", timeout=WAIT_MS)
    await dark.wait_for_selector(".card[data-sku='portal2']", timeout=WAIT_MS)
    await shoot(dark, "catalog-dark")
    await dark.click(".card[data-sku='witcher3']")
    await dark.wait_for_selector(".product h1", timeout=WAIT_MS)
    await shoot(dark, "product-dark")
    await dark.click("#tab-orders")
    await dark.click(f"[data-order='{order_id}']", timeout=WAIT_MS)
    await dark.wait_for_selector(".goods li", timeout=WAIT_MS)
    await shoot(dark, "order-paid-dark")
    assert dark.errors == []  # type: ignore[attr-defined]

    # A Russian reader: the page in Russian, product titles from the catalog's [products.ru].
    boris = {"id": 5302, "first_name": "Борис", "language_code": "ru"}
    ru = await open_store(browser, bot, boris, LIGHT)
    await ru.wait_for_selector(".chip", timeout=WAIT_MS)
    assert await ru.inner_text("#tab-catalog") == "Каталог"
    await ru.fill("#search", "ключ")
    await ru.click(".results .card[data-sku='witcher3']", timeout=WAIT_MS)
    await ru.wait_for_selector(".product h1", timeout=WAIT_MS)
    assert await ru.inner_text(".product h1") == "The Witcher 3 GOTY (ключ Steam)"
    assert await ru.inner_text(".product button.primary") == "В корзину"
    await shoot(ru, "product-ru-light")

    assert await bot.terminate() == 0
    assert "Traceback" not in bot.stderr


async def test_inside_a_telegram_client_the_main_and_back_buttons_drive_the_page(
    shop: Shop, browser: Any
) -> None:
    bot = await shop.launch()
    user = {"id": 5303, "first_name": "Cleo", "language_code": "en"}
    page = await open_store(browser, bot, user, LIGHT, platform="android")
    await page.wait_for_selector(".chip", timeout=WAIT_MS)
    assert await page.evaluate("Telegram.WebApp.BackButton.isVisible") is False
    await page.fill("#search", "portal")
    await page.click(".results .card[data-sku='portal2']", timeout=WAIT_MS)
    await page.wait_for_selector(".product h1", timeout=WAIT_MS)
    # Telegram's own button is the page's main action; the page's copy is hidden.
    assert await page.evaluate("Telegram.WebApp.MainButton.isVisible") is True
    assert await page.evaluate("Telegram.WebApp.MainButton.text") == "Add to cart"
    assert not await page.is_visible(".product button.primary")
    assert await page.evaluate("Telegram.WebApp.BackButton.isVisible") is True
    # A double tap on Telegram's button adds once (the page's own button is disabled
    # meanwhile; Telegram's is not).
    adds: list[str] = []
    page.on("request", lambda r: adds.append(r.url) if "/api/cart/items" in r.url else None)
    await page.evaluate("() => { TelegramStub.clickMainButton(); TelegramStub.clickMainButton(); }")
    await page.wait_for_selector("#tab-cart >> text=Cart (1)", timeout=WAIT_MS)
    assert len(adds) == 1, adds
    # Back: from the product to the search results.
    await page.evaluate("TelegramStub.clickBackButton()")
    await page.wait_for_selector(".results .card[data-sku='portal2']", timeout=WAIT_MS)
    await page.click("#tab-cart")
    await page.wait_for_selector(".cart .line[data-sku='portal2']", timeout=WAIT_MS)
    assert await page.evaluate("Telegram.WebApp.MainButton.text") == "Checkout"
    await page.evaluate("TelegramStub.clickMainButton()")
    await page.wait_for_selector(".order[data-status='pending']", timeout=WAIT_MS)
    assert await page.evaluate("Telegram.WebApp.MainButton.text") == "Pay"
    assert len(shop.cp.created_invoices) == 1
    invoice = next(iter(shop.cp.invoices.values()))
    links = await stub_calls(page, "openTelegramLink")
    assert links == [[invoice["mini_app_invoice_url"]]]
    await page.evaluate("TelegramStub.clickMainButton()")  # Pay again: the same invoice
    assert await stub_calls(page, "openTelegramLink") == links * 2

    # Waiting for the payment, the page asks quietly: the same page stays (no jump to the
    # top), Telegram's Pay button is not hidden and shown again at every poll.
    order_id = int(invoice["payload"])
    await page.evaluate("document.querySelector('.order').dataset.seen = 'yes'")
    hidden = len(await stub_calls(page, "MainButton.hide"))
    for _ in range(2):  # the second poll is asked only once the first one was handled
        async with page.expect_request(
            lambda r: r.url.endswith(f"/app/api/orders/{order_id}") and r.method == "GET",
            timeout=WAIT_MS,
        ):
            pass
    assert await page.get_attribute(".order", "data-seen") == "yes"
    assert len(await stub_calls(page, "MainButton.hide")) == hidden
    assert await page.evaluate("Telegram.WebApp.MainButton.isVisible") is True

    # Cancel asks the chat's question; once cancelled there is nothing left to pay.
    await page.click(".order button.danger")  # the stub answers OK to showConfirm
    await page.wait_for_selector(".order[data-status='cancelled']", timeout=WAIT_MS)
    (asked,) = await stub_calls(page, "showConfirm")
    assert asked[0].startswith(f"Cancel order #{order_id}?"), asked
    assert await page.evaluate("Telegram.WebApp.MainButton.isVisible") is False
    assert page.errors == []  # type: ignore[attr-defined]
    assert await bot.terminate() == 0


async def test_an_old_telegram_client_gets_the_pages_own_back_button_and_confirm(
    shop: Shop, browser: Any
) -> None:
    bot = await shop.launch()
    user = {"id": 5304, "first_name": "Dora", "language_code": "en"}
    page = await open_store(browser, bot, user, LIGHT, platform="android", version="6.0")
    await page.wait_for_selector(".chip", timeout=WAIT_MS)
    # As Telegram's script does before 6.2: a popup throws (and there is no BackButton).
    await page.evaluate(
        "() => { Telegram.WebApp.showConfirm = function () {"
        " throw new Error('WebAppMethodUnsupported'); }; }"
    )
    await page.fill("#search", "portal")
    await page.click(".results .card[data-sku='portal2']", timeout=WAIT_MS)
    await page.wait_for_selector(".product h1", timeout=WAIT_MS)
    assert await page.is_visible("#back")  # the page's own: Telegram's needs 6.1
    assert await stub_calls(page, "BackButton.show") == []
    await page.evaluate("TelegramStub.clickMainButton()")  # MainButton exists since 6.0
    await page.wait_for_selector("#tab-cart >> text=Cart (1)", timeout=WAIT_MS)
    await page.click("#back")
    await page.wait_for_selector(".results .card[data-sku='portal2']", timeout=WAIT_MS)
    await page.click("#tab-cart")
    await page.wait_for_selector(".cart .line[data-sku='portal2']", timeout=WAIT_MS)
    await page.evaluate("TelegramStub.clickMainButton()")
    await page.wait_for_selector(".order[data-status='pending']", timeout=WAIT_MS)

    asked: list[str] = []

    async def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", answer)
    await page.click(".order button.danger")
    await page.wait_for_selector(".order[data-status='cancelled']", timeout=WAIT_MS)
    assert len(asked) == 1 and asked[0].startswith("Cancel order #"), asked

    # Removing the cart's last line leaves nothing to check out: no Checkout button either.
    await page.fill("#search", "portal")
    await page.click(".results .card[data-sku='portal2']", timeout=WAIT_MS)
    await page.wait_for_selector(".product h1", timeout=WAIT_MS)
    await page.evaluate("TelegramStub.clickMainButton()")
    await page.wait_for_selector("#tab-cart >> text=Cart (1)", timeout=WAIT_MS)
    await page.click("#tab-cart")
    await page.wait_for_selector(".cart .line[data-sku='portal2']", timeout=WAIT_MS)
    assert await page.evaluate("Telegram.WebApp.MainButton.isVisible") is True
    await page.click(".cart .line button.danger")
    await page.wait_for_selector("#view .empty", timeout=WAIT_MS)
    assert await page.evaluate("Telegram.WebApp.MainButton.isVisible") is False
    assert page.errors == []  # type: ignore[attr-defined]
    assert await bot.terminate() == 0


async def test_my_orders_show_more_pages_past_the_newest_twenty(shop: Shop, browser: Any) -> None:
    bot = await shop.launch()  # migrated, the demo catalog seeded
    telegram_id = 5305
    db = Database(f"sqlite+aiosqlite:///{shop.db_path}")
    try:
        customer = await storage.upsert_customer(db, telegram_id, "erin", "en")
        guide = await storage.get_product(db, "guide")  # unlimited: any number of orders
        assert customer.id is not None and guide is not None and guide.id is not None
        ids = []
        for _ in range(23):
            order = await storage.create_order(
                db,
                customer.id,
                [(guide.id, 1, guide.price)],
                "USD",
                storage.utcnow() + timedelta(minutes=15),
            )
            assert order is not None and order.id is not None
            ids.append(order.id)
    finally:
        await db.dispose()

    page = await open_store(
        browser, bot, {"id": telegram_id, "first_name": "Erin", "language_code": "en"}, LIGHT
    )
    await page.wait_for_selector(".chip", timeout=WAIT_MS)
    await page.click("#tab-orders")
    await page.wait_for_selector("#orders-more", timeout=WAIT_MS)
    shown = "els => els.map(e => Number(e.dataset.order))"
    assert await page.eval_on_selector_all("[data-order]", shown) == ids[::-1][:20]
    assert await page.inner_text("#orders-more") == "Show more"
    await page.click("#orders-more")
    await page.wait_for_selector(f"[data-order='{ids[0]}']", timeout=WAIT_MS)
    assert await page.eval_on_selector_all("[data-order]", shown) == ids[::-1]
    assert not await page.is_visible("#orders-more")  # a short page: nothing older
    assert page.errors == []  # type: ignore[attr-defined]
    assert await bot.terminate() == 0


async def test_a_category_show_more_pages_past_the_first_twenty(shop: Shop, browser: Any) -> None:
    bot = await shop.launch()  # migrated, the demo catalog seeded
    products = "".join(
        f'[[products]]\nsku = "bulk-{n:02}"\ncategory = "bulk"\ntitle = "Bulk {n:02}"\n'
        f'price = "1.00"\ncodes = ["BULK-{n:02}"]\n\n'
        for n in range(23)
    )
    catalog = f'currency = "USD"\n\n[[categories]]\nslug = "bulk"\ntitle = "Bulk"\n\n{products}'
    db = Database(f"sqlite+aiosqlite:///{shop.db_path}")
    try:
        await import_catalog_file(db, parse_catalog(catalog, "USD"))
    finally:
        await db.dispose()

    page = await open_store(
        browser, bot, {"id": 5306, "first_name": "Finn", "language_code": "en"}, LIGHT
    )
    await page.wait_for_selector(".chip", timeout=WAIT_MS)
    await page.click(".chip:has-text('Bulk')")
    await page.wait_for_selector("[data-sku='bulk-00']", timeout=WAIT_MS)
    shown = "els => els.map(e => e.dataset.sku)"
    first = await page.eval_on_selector_all("[data-sku]", shown)
    assert len(first) == 20 and "bulk-22" not in first
    await page.click("button:has-text('Show more')")
    await page.wait_for_selector("[data-sku='bulk-22']", timeout=WAIT_MS)
    every = await page.eval_on_selector_all("[data-sku]", shown)
    assert sorted(every) == [f"bulk-{n:02}" for n in range(23)]
    assert not await page.is_visible("button:has-text('Show more')")  # the last page
    assert page.errors == []  # type: ignore[attr-defined]
    assert await bot.terminate() == 0
