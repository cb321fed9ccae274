"""The Mini App's JSON API and static files against the real aiohttp app, the real database
and the Crypto Pay stand-in: the chat's cart and checkout, one buyer never sees another's."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

import storage
from bot.sandbox.webapp import sign_init_data
from bot.shop.cart import add_item, view_cart
from bot.web import build_web_app
from bot.webapp import add_webapp
from storage import Buyer, OrderStatus
from tests.bot.conftest import ALICE, BOB, BOT_TOKEN, Shop


def auth(
    user_id: int = ALICE, *, language: str = "en", age: int = 0, token: str = BOT_TOKEN
) -> dict[str, str]:
    user = {"id": user_id, "first_name": f"User{user_id}", "language_code": language}
    data = sign_init_data(token, user, auth_date=int(time.time()) - age)
    return {"Authorization": f"tma {data}"}


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_web_app(shop.ctx)
    add_webapp(app, shop.ctx)
    async with TestClient(TestServer(app)) as c:
        shop.cp.webhook_url = str(c.make_url(shop.ctx.settings.cryptopay_webhook_path))
        yield c


async def call(
    client: TestClient[Any, Any], path: str, body: Any = None, *, status: int = 200, **who: Any
) -> Any:
    headers = auth(**who)
    if body is None:
        resp = await client.get(f"/app/api/{path}", headers=headers)
    else:
        resp = await client.post(f"/app/api/{path}", json=body, headers=headers)
    data = await resp.json()
    assert resp.status == status, data
    assert resp.content_type == "application/json"
    if status == 200:
        assert resp.headers["Cache-Control"] == "no-store"
    return data


# --- who may call ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer abc"},
        {"Authorization": "tma "},
        {"Authorization": "tma user=%7B%22id%22%3A1001%7D&auth_date=1&hash=00"},
    ],
)
async def test_missing_or_forged_initdata_is_401_json(
    client: TestClient[Any, Any], headers: dict[str, str]
) -> None:
    resp = await client.get("/app/api/orders", headers=headers)
    assert resp.status == 401
    body = await resp.json()
    assert "open the shop from the bot" in body["error"]


async def test_tampered_user_is_401(client: TestClient[Any, Any]) -> None:
    header = auth(ALICE)["Authorization"]
    forged = header.replace("%22id%22%3A1001", "%22id%22%3A1002")
    assert forged != header
    resp = await client.get("/app/api/cart", headers={"Authorization": forged})
    assert resp.status == 401


async def test_another_bots_initdata_is_401(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/app/api/cart", headers=auth(token="77:another-bot"))
    assert resp.status == 401


async def test_stale_initdata_is_401_and_says_so(client: TestClient[Any, Any], shop: Shop) -> None:
    max_age = shop.ctx.settings.webapp_init_max_age_seconds
    assert max_age == 86400
    resp = await client.get("/app/api/session", headers=auth(age=max_age + 5))
    assert resp.status == 401
    assert "too old" in (await resp.json())["error"]
    fresh = await client.get("/app/api/session", headers=auth(age=max_age - 60))
    assert fresh.status == 200


async def test_an_unknown_api_route_is_a_json_404(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/app/api/nope", headers=auth())
    assert resp.status == 404
    assert "error" in await resp.json()


# --- the shop ----------------------------------------------------------------------------------


async def test_session_speaks_the_shoppers_language(client: TestClient[Any, Any]) -> None:
    en = await call(client, "session")
    assert en["language"] == "en" and en["texts"]["add_to_cart"] == "Add to cart"
    ru = await call(client, "session", language="ru", user_id=BOB)
    assert ru["language"] == "ru"
    assert ru["texts"]["add_to_cart"] == "В корзину"
    assert ru["texts"]["checkout"] == "Оформить заказ"
    assert set(ru["texts"]) == set(en["texts"])
    # Every word of the page is Russian (needs the translations of /work/prompts/ru-webapp.json).
    same = [k for k in en["texts"] if en["texts"][k] == ru["texts"][k]]
    assert same == [], same


async def test_catalog_categories_products_and_stock(client: TestClient[Any, Any]) -> None:
    top = await call(client, "catalog")
    assert [c["slug"] for c in top["categories"]] == ["games", "gifts"]
    assert top["products"] == []
    games = await call(client, "catalog?category=games")
    assert games["category"]["title"] == "Game keys"
    assert [c["slug"] for c in games["categories"]] == ["indie"]
    rows = {p["sku"]: p for p in games["products"]}
    assert rows["solo"]["price"] == {"amount": "9.99", "text": "$9.99"}
    assert rows["solo"]["in_stock"] == 1
    assert rows["multi"]["in_stock"] == 5
    assert rows["guide"]["in_stock"] is None
    assert rows["solo"]["photo"] is None  # no photo: the page draws a placeholder
    gone = await client.get("/app/api/catalog?category=nope", headers=auth())
    assert gone.status == 404


async def test_catalog_pages_by_keyset(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.webapp import api

    monkeypatch.setattr(api, "PAGE_SIZE", 4)
    page1 = await call(client, "catalog?category=gifts")
    page2 = await call(client, f"catalog?category=gifts&after={page1['next']}")
    skus = [p["sku"] for p in page1["products"] + page2["products"]]
    assert skus == [f"gift{n:02d}" for n in range(8)]
    monkeypatch.setattr(api, "PAGE_SIZE", 20)
    page3 = await call(client, f"catalog?category=gifts&after={page2['next']}")
    assert [p["sku"] for p in page3["products"]] == ["gift08", "gift09"]
    assert page3["next"] is None


async def test_a_catalog_page_is_reused_for_a_moment_then_read_again(
    client: TestClient[Any, Any], shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.webapp import state

    first = await call(client, "catalog?category=games")
    assert {p["sku"]: p["in_stock"] for p in first["products"]}["multi"] == 5
    cart = await call(client, "cart/items", {"sku": "multi", "quantity": 2})
    await call(client, "checkout", {"fingerprint": cart["fingerprint"]})  # 2 reserved
    assert (await call(client, "products/multi"))["in_stock"] == 3  # the page itself: exact
    again = await call(client, "catalog?category=games", user_id=BOB)
    assert {p["sku"]: p["in_stock"] for p in again["products"]}["multi"] == 5  # kept
    monkeypatch.setattr(state, "PAGE_TTL_SECONDS", 0.0)
    client.app[state.WEBAPP_KEY].pages.clear()
    fresh = await call(client, "catalog?category=games")
    assert {p["sku"]: p["in_stock"] for p in fresh["products"]}["multi"] == 3


async def test_search_by_title_is_case_insensitive(client: TestClient[Any, Any]) -> None:
    found = await call(client, "search?q=KEY")
    assert {p["sku"] for p in found["products"]} == {"solo", "multi"}
    assert (await call(client, "search?q=zzz"))["products"] == []


async def test_product_page_has_price_approximations_and_a_cap(
    client: TestClient[Any, Any],
) -> None:
    page = await call(client, "products/multi")
    assert page["title"] == "Multi Key"
    assert page["max_quantity"] == 3  # max_per_order under the stock of 5
    assert [a["asset"] for a in page["approx"]] == ["USDT", "TON", "BTC"]
    assert all(a["text"].startswith("≈ ") for a in page["approx"])
    gone = await client.get("/app/api/products/nope", headers=auth())
    assert gone.status == 404


# --- cart, checkout, orders --------------------------------------------------------------------


async def test_the_cart_is_the_chats_cart(client: TestClient[Any, Any], shop: Shop) -> None:
    await add_item(shop.ctx, Buyer(ALICE, None, None), "solo", 1)  # added in the chat
    cart = await call(client, "cart/items", {"sku": "multi", "quantity": 2})
    assert [(ln["sku"], ln["quantity"]) for ln in cart["lines"]] == [("solo", 1), ("multi", 2)]
    assert cart["total"]["amount"] == "14.99"
    view = await view_cart(shop.ctx, ALICE)  # and the chat sees the page's line
    assert {ln.sku: ln.quantity for ln in view.lines} == {"solo": 1, "multi": 2}
    assert cart["fingerprint"] == view.fingerprint
    multi = next(ln for ln in cart["lines"] if ln["sku"] == "multi")
    stepped = await call(client, f"cart/lines/{multi['product_id']}", {"delta": 1})
    assert next(ln for ln in stepped["lines"] if ln["sku"] == "multi")["quantity"] == 3
    capped = await call(client, f"cart/lines/{multi['product_id']}", {"delta": 1})
    assert capped["note"] == "That is the most you can buy in one order."
    removed = await call(client, f"cart/lines/{multi['product_id']}/remove", {})
    assert [ln["sku"] for ln in removed["lines"]] == ["solo"]
    # Bob's cart is his own, and Alice's lines are not his to change.
    assert (await call(client, "cart", user_id=BOB))["lines"] == []
    solo_id = removed["lines"][0]["product_id"]
    await call(client, f"cart/lines/{solo_id}/remove", {}, status=404, user_id=BOB)
    assert [ln["sku"] for ln in (await call(client, "cart"))["lines"]] == ["solo"]


async def test_sold_out_and_bad_input_are_friendly_json(client: TestClient[Any, Any]) -> None:
    await call(client, "cart/items", {"sku": "solo", "quantity": 1})
    await call(client, "cart/items", {"sku": "nope"}, status=404)
    bad = await call(client, "cart/items", {"sku": "multi", "quantity": "lots"}, status=400)
    assert bad["error"]
    resp = await client.post("/app/api/cart/items", data=b"{not json", headers=auth())
    assert resp.status == 400


async def test_checkout_places_one_order_and_invoice_then_shows_goods_once_paid(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    await call(client, "cart/items", {"sku": "multi", "quantity": 2})
    cart = await call(client, "cart/items", {"sku": "guide", "quantity": 1})
    order = await call(client, "checkout", {"fingerprint": cart["fingerprint"]})
    assert order["status"] == "pending" and order["pending"] is True
    assert Decimal(order["total"]) == Decimal("6.25")
    (created,) = shop.cp.created_invoices
    assert str(created["payload"]) == str(order["id"])
    invoice = next(iter(shop.cp.invoices.values()))
    assert order["pay"]["mini_app_invoice_url"] == invoice["mini_app_invoice_url"]
    assert order["pay"]["bot_invoice_url"]
    assert order["goods"] == []
    assert (await call(client, "cart"))["lines"] == []  # placed: the lines left the cart

    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    paid = await call(client, f"orders/{order['id']}")
    assert paid["status"] in ("paid", "delivered") and not paid["pending"]
    goods = {g["title"]: g["items"] for g in paid["goods"]}
    assert len(goods["Multi Key"]) == 2 and all(c.startswith("MULTI-") for c in goods["Multi Key"])
    assert goods["Speedrun Guide"] == ["https://example.com/guide.pdf"]


async def test_checkout_refuses_a_cart_that_changed_since_the_page_showed_it(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    cart = await call(client, "cart/items", {"sku": "multi", "quantity": 1})
    await add_item(shop.ctx, Buyer(ALICE, None, None), "guide", 1)  # in the chat meanwhile
    refused = await call(client, "checkout", {"fingerprint": cart["fingerprint"]}, status=409)
    assert "changed" in refused["error"]
    assert shop.cp.created_invoices == []
    await call(client, "checkout", {}, status=400)


async def test_orders_are_the_callers_newest_first_and_anothers_order_is_404(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    ids = []
    for sku in ("multi", "guide"):
        cart = await call(client, "cart/items", {"sku": sku, "quantity": 1})
        ids.append((await call(client, "checkout", {"fingerprint": cart["fingerprint"]}))["id"])
    orders = await call(client, "orders")
    assert [o["id"] for o in orders] == ids[::-1]
    assert all({"id", "status", "total"} <= set(o) for o in orders)
    assert orders[0]["total"] == "1.25" and orders[0]["status"] == "pending"

    assert await call(client, "orders", user_id=BOB) == []
    for path in (f"orders/{ids[0]}",):
        bob = await call(client, path, status=404, user_id=BOB)
        assert "not found" in bob["error"]
    await call(client, f"orders/{ids[0]}/cancel", {}, status=404, user_id=BOB)
    await call(client, f"orders/{ids[0]}/check", {}, status=404, user_id=BOB)
    assert (await shop.order(ids[0])).status == OrderStatus.PENDING
    await call(client, "orders/999999", status=404)

    cancelled = await call(client, f"orders/{ids[0]}/cancel", {})
    assert cancelled["status"] == "cancelled"


async def place_orders(shop: Shop, telegram_id: int, n: int) -> list[int]:
    """`n` pending orders of the unlimited guide, oldest first (storage-level: the checkout's
    caps on open orders are not what is tested here)."""
    customer = await storage.upsert_customer(shop.ctx.db, telegram_id, None, "en")
    guide = await storage.get_product(shop.ctx.db, "guide")
    assert customer.id is not None and guide is not None and guide.id is not None
    ids = []
    for _ in range(n):
        order = await storage.create_order(
            shop.ctx.db,
            customer.id,
            [(guide.id, 1, guide.price)],
            "USD",
            storage.utcnow() + timedelta(minutes=15),
        )
        assert order is not None and order.id is not None
        ids.append(order.id)
    return ids


async def test_orders_page_by_twenty_and_before_gives_the_older_ones(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    """My orders' Show more: a page holds the 20 newest, `?before=<last id>` the rest."""
    ids = await place_orders(shop, ALICE, 25)
    await place_orders(shop, BOB, 3)  # another buyer's, between nobody's pages
    first = await call(client, "orders")
    assert [o["id"] for o in first] == ids[::-1][:20]
    rest = await call(client, f"orders?before={first[-1]['id']}")
    assert [o["id"] for o in rest] == ids[::-1][20:]
    assert await call(client, f"orders?before={rest[-1]['id']}") == []


async def test_checkout_is_throttled_like_the_chats_taps(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    statuses = []
    for _ in range(12):
        resp = await client.post(
            "/app/api/checkout", json={"fingerprint": "0" * 10}, headers=auth()
        )
        statuses.append(resp.status)
    assert 429 in statuses
    assert statuses[0] == 409  # the first is heard (and refused: the cart is empty)


# --- the static storefront -------------------------------------------------------------------


async def test_storefront_is_served_with_a_csp_for_its_files_and_telegrams_script(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    script = shop.ctx.settings.webapp_script_url
    assert script == "https://telegram.org/js/telegram-web-app.js"
    resp = await client.get("/app/", headers={"Accept-Encoding": "gzip"})
    assert resp.status == 200
    html = await resp.text()
    assert f'<script src="{script}">' in html
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert f"script-src 'self' {script};" in csp
    assert "img-src 'self';" in csp and "connect-src 'self'" in csp
    js = await client.get("/app/app.js", headers={"Accept-Encoding": "gzip"})
    assert js.status == 200 and js.headers["Content-Encoding"] == "gzip"
    assert js.headers["Content-Type"].startswith("text/javascript")
    again = await client.get("/app/app.js", headers={"If-None-Match": js.headers["ETag"]})
    assert again.status == 304
    assert (await client.get("/app/../bot/config.py")).status == 404
    assert (await client.get("/app/nope.js")).status == 404


async def test_first_screen_is_under_100_kb_transferred(client: TestClient[Any, Any]) -> None:
    total = 0
    for name in ("", "app.css", "app.js", "api.js", "telegram.js", "ui.js"):
        resp = await client.get(
            f"/app/{name}", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        )
        assert resp.status == 200
        total += len(await resp.read())
    session = await client.get("/app/api/session", headers=auth())
    total += len(await session.read())
    assert total < 100 * 1024, total


async def test_a_configured_script_url_is_the_only_script_origin(shop: Shop) -> None:
    local = "http://127.0.0.1:9999/telegram-web-app.js"
    shop.ctx.settings = shop.ctx.settings.model_copy(update={"webapp_script_url": local})
    app = build_web_app(shop.ctx)
    add_webapp(app, shop.ctx)
    async with TestClient(TestServer(app)) as c:
        resp = await c.get("/app/")
        assert f'<script src="{local}">' in await resp.text()
        assert f"script-src 'self' {local};" in resp.headers["Content-Security-Policy"]
        assert "telegram.org" not in resp.headers["Content-Security-Policy"]


async def test_a_page_open_past_the_limit_is_refused_though_its_check_was_kept(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    headers = auth()
    assert (await client.get("/app/api/cart", headers=headers)).status == 200
    shop.clock.advance(shop.ctx.settings.webapp_init_max_age_seconds + 1)
    resp = await client.get("/app/api/cart", headers=headers)
    assert resp.status == 401
    assert "too old" in (await resp.json())["error"]


async def test_a_promo_code_on_the_page_discounts_the_invoice(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    from tests.bot.test_promos import promo

    assert "SAVE10" in await promo(shop, "add SAVE10 10%")
    await call(client, "cart/items", {"sku": "multi", "quantity": 2})  # $5.00
    unknown = await call(client, "cart/promo", {"code": "NOPE"}, status=409)
    assert "NOPE" in unknown["error"]
    cart = await call(client, "cart/promo", {"code": "save10"})
    assert cart["promo"]["code"] == "SAVE10"
    assert cart["promo"]["discount"]["amount"] == "0.50"
    assert cart["total"]["amount"] == "4.50" and cart["subtotal"]["amount"] == "5.00"
    order = await call(client, "checkout", {"fingerprint": cart["fingerprint"]})
    assert order["total"] == "4.50"
    assert order["promo"]["discount"]["amount"] == "0.50"
    (created,) = shop.cp.created_invoices
    assert Decimal(created["amount"]) == Decimal("4.50")
