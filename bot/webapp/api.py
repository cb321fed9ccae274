"""The storefront's JSON API (`/app/api/…`): the chat's use cases over HTTP. Every call
is framed by bot/webapp/endpoint.py (initData checked; the caller is the validated user and no
one else); Checkout and orders are in bot/webapp/orders_api.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from bot.context import ShopContext
from bot.i18n import current_language
from bot.screens.texts import en_webapp as tw
from bot.screens.texts import texts as t
from bot.shop import cart as shop_cart
from bot.shop.customers import remember
from bot.shop.promos import refusal_text
from bot.webapp import views
from bot.webapp.auth import WebAppUser
from bot.webapp.endpoint import ApiError, buyer, endpoint, int_of, read_json
from bot.webapp.orders_api import checkout, order, order_cancel, order_check, orders
from bot.webapp.state import WEBAPP_KEY
from storage import (
    active_products,
    catalog_page,
    get_category_by_id,
    get_product,
    photos_held,
    search_matches,
    stock_counts,
    stock_counts_many,
)

PAGE_SIZE = 20


# --- the shop ---------------------------------------------------------------------------


async def session(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    return {
        "language": current_language(),
        "currency": ctx.settings.shop_currency,
        "texts": tw.page_texts(),
        "cart_units": await shop_cart.units_in_cart(ctx, user.id),
    }


async def catalog(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    """A category page, the same for every shopper of a language: kept a moment
    (PAGE_TTL_SECONDS), so a crowd opening the shop costs the database one read a page."""
    slug = request.query.get("category", "")
    after = request.query.get("after")
    state = request.app[WEBAPP_KEY]
    key = (slug, after or "", current_language())
    now = time.monotonic()
    body = state.cached_page(key, now)
    if body is None:
        body = json.dumps(await catalog_json(ctx, slug, after), ensure_ascii=False).encode()
        state.keep_page(key, body, now)
    return web.Response(body=body, content_type="application/json")


async def catalog_json(ctx: ShopContext, slug: str, after: str | None) -> dict[str, Any]:
    page = await catalog_page(ctx.db, slug, after=int_of(after) if after else None, limit=PAGE_SIZE)
    if page is None:
        raise ApiError(404, t.CATEGORY_GONE)
    held = await photos_held(ctx.db, [p.id for p in page.products if p.id is not None and p.photo])
    return {
        "category": None if page.category is None else views.category(page.category),
        "categories": [views.category(c) for c in page.subcategories],
        "products": [
            views.product_row(
                p, None if p.unlimited else page.available.get(p.id or 0, 0), p.id in held
            )
            for p in page.products
        ],
        "next": page.next_after,
    }


async def search(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    text = request.query.get("q", "")[:100]
    if not text.strip():
        return {"products": []}
    index = await request.app[WEBAPP_KEY].search_index(time.monotonic())
    products = await active_products(ctx.db, search_matches(index, text, limit=PAGE_SIZE))
    counted = [p.id for p in products if p.id is not None and not p.unlimited]
    counts = await stock_counts_many(ctx.db, counted)
    held = await photos_held(ctx.db, [p.id for p in products if p.id is not None and p.photo])
    return {
        "products": [
            views.product_row(p, None if p.unlimited else counts[p.id].available, p.id in held)
            for p in products
            if p.id is not None
        ]
    }


async def product(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    found = await get_product(ctx.db, request.match_info["sku"])
    if found is None or not found.active or found.id is None:
        raise ApiError(404, t.PRODUCT_GONE)
    available = None if found.unlimited else (await stock_counts(ctx.db, found.id)).available
    cat = await get_category_by_id(ctx.db, found.category_id)
    held = bool(found.photo) and found.id in await photos_held(ctx.db, [found.id])
    return views.product_page(ctx, found, available, cat.slug if cat else None, held)


# --- the cart (the chat's cart: bot/shop/cart.py) -----------------------------------------


async def cart_view(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    return views.cart(await shop_cart.view_cart(ctx, user.id))


async def cart_add(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    data = await read_json(request)
    sku = str(data.get("sku", ""))
    quantity = int_of(data.get("quantity", 1), low=1, high=shop_cart.MAX_QUANTITY)
    change = await shop_cart.add_item(ctx, buyer(user), sku, quantity)
    if change.refusal == shop_cart.CartRefusal.SOLD_OUT:
        raise ApiError(409, t.cart_short(change.title, 0))
    if change.refusal == shop_cart.CartRefusal.CART_FULL:
        raise ApiError(409, t.CART_FULL)
    if change.refusal is not None:
        raise ApiError(404, t.PRODUCT_GONE)
    view = views.cart(await shop_cart.view_cart(ctx, user.id))
    view["note"] = t.added_to_cart(change.title, change.quantity)
    return view


async def cart_step(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    data = await read_json(request)
    product_id = int_of(request.match_info["product_id"])
    delta = int_of(data.get("delta"), low=-1, high=1)
    note = None
    if delta:
        change = await shop_cart.step_item(ctx, user.id, product_id, delta)
        if change.refusal == shop_cart.CartRefusal.NOT_IN_CART:
            raise ApiError(404, t.CART_LINE_GONE)
        note = {
            shop_cart.CartRefusal.AT_LIMIT: t.QTY_LIMIT,
            shop_cart.CartRefusal.AT_MIN: t.QTY_MIN,
        }.get(change.refusal)  # type: ignore[arg-type]
    view = views.cart(await shop_cart.view_cart(ctx, user.id))
    view["note"] = note
    return view


async def cart_remove(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    if not await shop_cart.remove_item(ctx, user.id, int_of(request.match_info["product_id"])):
        raise ApiError(404, t.CART_LINE_GONE)
    return views.cart(await shop_cart.view_cart(ctx, user.id))


async def cart_empty(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    await shop_cart.empty(ctx, user.id)
    return views.cart(await shop_cart.view_cart(ctx, user.id))


async def cart_promo(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    data = await read_json(request)
    await remember(ctx, buyer(user))
    priced = await shop_cart.apply_cart_code(ctx, buyer(user), str(data.get("code", ""))[:64])
    if priced is None:
        raise ApiError(409, t.CART_EMPTY)
    if not priced.applies:
        raise ApiError(409, refusal_text(priced))
    view = views.cart(await shop_cart.view_cart(ctx, user.id))
    view["note"] = tw.PROMO_APPLIED
    return view


def add_api_routes(app: web.Application) -> None:
    routes = [
        ("GET", "/app/api/session", session),
        ("GET", "/app/api/catalog", catalog),
        ("GET", "/app/api/search", search),
        ("GET", "/app/api/products/{sku}", product),
        ("GET", "/app/api/cart", cart_view),
        ("POST", "/app/api/cart/items", cart_add),
        ("POST", "/app/api/cart/lines/{product_id}", cart_step),
        ("POST", "/app/api/cart/lines/{product_id}/remove", cart_remove),
        ("POST", "/app/api/cart/empty", cart_empty),
        ("POST", "/app/api/cart/promo", cart_promo),
        ("POST", "/app/api/checkout", checkout),
        ("GET", "/app/api/orders", orders),
        ("GET", "/app/api/orders/{order_id}", order),
        ("POST", "/app/api/orders/{order_id}/check", order_check),
        ("POST", "/app/api/orders/{order_id}/cancel", order_cancel),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, endpoint(handler))
    app.router.add_route("*", "/app/api/{tail:.*}", not_found)


async def not_found(request: web.Request) -> web.Response:
    return web.json_response({"error": "no such API route"}, status=404)
