"""The storefront's JSON API (`/app/api/…`): the chat's use cases, over HTTP.

Every call carries `Authorization: tma <initData>`; the caller is the validated user and no
one else (an order or a cart of another buyer is 404, as if it did not exist). Errors are
`{"error": "<a sentence for the shopper, in their language>"}`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.context import ShopContext
from bot.i18n import current_language, language_of, localized, use_language
from bot.screens.texts import en_webapp as tw
from bot.screens.texts import texts as t
from bot.shop import cart as shop_cart
from bot.shop.checkout import CheckoutRefusal, CheckoutResult, promo_refusal_text
from bot.shop.customers import remember
from bot.shop.orders import OrderAccess, cancel_order, check_payment, own_order
from bot.shop.promos import refusal_text
from bot.webapp import views
from bot.webapp.auth import InitDataError, WebAppUser, unsafe_language, validate_init_data
from bot.webapp.state import WEBAPP_KEY, WebAppState
from storage import (
    DATABASE_ERRORS,
    Buyer,
    catalog_page,
    get_category_by_id,
    get_customer,
    get_product,
    list_customer_orders,
    order_items,
    search_products,
    stock_counts,
    stock_counts_many,
)

log = logging.getLogger("bot.webapp")

PAGE_SIZE = 20
MAX_BODY = 16 * 1024
Handler = Callable[[web.Request, ShopContext, WebAppUser], Awaitable[Any]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": views.plain_text(message)}, status=status)


def authorize(state: WebAppState, header: str, now: float) -> WebAppUser:
    scheme, _, init_data = header.partition(" ")
    if scheme.lower() != "tma":
        raise InitDataError("no tma authorization")
    init_data = init_data.strip()
    # A page sends the same initData with every call: its check is kept, its age is not.
    cached = state.checked.get(init_data)
    if cached is not None:
        user, auth_date = cached
        if now - auth_date <= state.max_age:
            return user
        raise InitDataError("initData is too old")
    user = validate_init_data(init_data, state.key, max_age=state.max_age, now=now)
    state.remember(init_data, user)
    return user


def endpoint(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Authorization, the shopper's language, and errors as JSON, around an API handler."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        state = request.app[WEBAPP_KEY]
        ctx = state.ctx
        header = request.headers.get("Authorization", "")
        try:
            user = authorize(state, header, ctx.clock().timestamp())
        except InitDataError as refused:
            log.info("Mini App call refused: %s", refused, extra={"path": request.path})
            language = language_of(
                None, unsafe_language(header.partition(" ")[2]), ctx.settings.default_language
            )
            with use_language(language):
                stale = "too old" in str(refused)
                return error(401, tw.SESSION_OLD if stale else tw.OPEN_FROM_TELEGRAM)
        choice = await state.languages(user.id)
        language = language_of(choice, user.language_code, ctx.settings.default_language)
        with use_language(language):
            try:
                body = await handler(request, ctx, user)
            except ApiError as refused:
                return error(refused.status, refused.message)
            except DATABASE_ERRORS:
                log.exception("database unavailable for a Mini App call")
                return error(503, t.SOMETHING_WRONG)
            except Exception:
                log.exception("Mini App call failed", extra={"path": request.path})
                return error(500, t.SOMETHING_WRONG)
            if isinstance(body, web.StreamResponse):
                return body
            response = web.json_response(body)
            response.headers["Cache-Control"] = "no-store"
            return response

    return wrapped


def buyer(user: WebAppUser) -> Buyer:
    return Buyer(user.id, user.username, user.language_code)


async def read_json(request: web.Request) -> dict[str, Any]:
    if (request.content_length or 0) > MAX_BODY:
        raise ApiError(413, tw.BAD_REQUEST)
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise ApiError(400, tw.BAD_REQUEST) from None
    if not isinstance(data, dict):
        raise ApiError(400, tw.BAD_REQUEST)
    return data


def int_of(value: Any, *, low: int = 0, high: int = 2**31 - 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, tw.BAD_REQUEST) from None
    if not low <= number <= high:
        raise ApiError(400, tw.BAD_REQUEST)
    return number


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
    return {
        "category": None if page.category is None else views.category(page.category),
        "categories": [views.category(c) for c in page.subcategories],
        "products": [
            views.product_row(p, None if p.unlimited else page.available.get(p.id or 0, 0))
            for p in page.products
        ],
        "next": page.next_after,
    }


async def search(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    text = request.query.get("q", "")[:100]
    products = await search_products(ctx.db, text, limit=PAGE_SIZE)
    counted = [p.id for p in products if p.id is not None and not p.unlimited]
    counts = await stock_counts_many(ctx.db, counted)
    return {
        "products": [
            views.product_row(p, None if p.unlimited else counts[p.id].available)
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
    return views.product_page(ctx, found, available, cat.slug if cat else None)


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


async def checkout(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    """The chat's Checkout (bot/shop/cart.py checkout_cart), for the cart the page shows."""
    data = await read_json(request)
    seen = data.get("fingerprint")
    if not isinstance(seen, str) or not seen:
        raise ApiError(400, tw.BAD_REQUEST)
    state = request.app[WEBAPP_KEY]
    if not await ctx.taps.allow(user.id, ctx.clock().timestamp()):
        raise ApiError(429, t.TAPS_THROTTLED)
    lock = state.checkout_lock(user.id)
    if lock.locked():
        raise ApiError(409, t.PLACING)
    async with lock:
        await remember(ctx, buyer(user))
        result = await shop_cart.checkout_cart(ctx, buyer(user), seen)
    if not result.ok:
        raise ApiError(409, refusal_sentence(ctx, result))
    assert result.order_id is not None
    _access, details = await own_order(ctx, user.id, result.order_id)
    if details is None:
        raise ApiError(500, t.SOMETHING_WRONG)
    return views.order_page(details)


def refusal_sentence(ctx: ShopContext, result: CheckoutResult) -> str:
    """Why Checkout placed nothing, in the chat's words."""
    refusal = result.refusal
    if refusal == CheckoutRefusal.OUT_OF_STOCK and result.item:
        return t.cart_short(result.item, result.left or 0)
    if refusal == CheckoutRefusal.PRODUCT_GONE:
        return t.cart_product_gone(result.item) if result.item else t.PRODUCT_GONE
    if refusal == CheckoutRefusal.OVER_LIMIT:
        return t.cart_over_limit(result.item, result.left or 0)
    if refusal == CheckoutRefusal.CART_CHANGED:
        return t.CART_CHANGED
    if refusal == CheckoutRefusal.CART_EMPTY:
        return t.CART_EMPTY
    if refusal == CheckoutRefusal.PROMO:
        return t.cart_promo_dropped(promo_refusal_text(result))
    if refusal == CheckoutRefusal.TOO_MANY_UNPAID:
        return t.too_many_unpaid(ctx.settings.max_unpaid_orders)
    if refusal == CheckoutRefusal.TOO_MANY_UNITS:
        return t.too_many_units(result.held, result.limit or ctx.settings.max_reserved_units)
    if refusal == CheckoutRefusal.TOO_MANY_ABANDONED and result.retry_at is not None:
        return t.ordering_paused(result.retry_at)
    if refusal == CheckoutRefusal.PAYMENTS_DOWN:
        return t.PAYMENTS_DOWN
    return t.OUT_OF_STOCK


# --- orders ---------------------------------------------------------------------------------


async def orders(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    """The caller's orders, newest first (`?before=<id>` for the next page)."""
    before = request.query.get("before")
    customer = await get_customer(ctx.db, user.id)
    if customer is None or customer.id is None:
        return []
    found = await list_customer_orders(
        ctx.db, customer.id, before_id=int_of(before) if before else None, limit=PAGE_SIZE
    )
    lines = await order_items(ctx.db, [o.id for o in found if o.id is not None])
    return [
        views.order_row(
            o, [(localized(tr, "title", title), q) for title, q, tr in lines.get(o.id, [])]
        )
        for o in found
        if o.id is not None
    ]


async def _own(ctx: ShopContext, user: WebAppUser, raw_id: str) -> int:
    order_id = int_of(raw_id, low=1)
    access, _ = await own_order(ctx, user.id, order_id)
    if access is not OrderAccess.OK:  # another buyer's order reads as no order at all
        raise ApiError(404, tw.ORDER_GONE)
    return order_id


async def order(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    order_id = int_of(request.match_info["order_id"], low=1)
    _access, details = await own_order(ctx, user.id, order_id)
    if details is None:  # another buyer's order reads as no order at all
        raise ApiError(404, tw.ORDER_GONE)
    return views.order_page(details)


async def order_check(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    """Check payment: Crypto Pay is asked now (as the chat's button does)."""
    order_id = await _own(ctx, user, request.match_info["order_id"])
    if not await ctx.taps.allow(user.id, ctx.clock().timestamp()):
        raise ApiError(429, t.TAPS_THROTTLED)
    _access, checked = await check_payment(ctx, user.id, order_id)
    if checked is not None and checked.payments_down:
        raise ApiError(503, t.CHECK_PAYMENTS_DOWN)
    return await order(request, ctx, user)


async def order_cancel(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    order_id = await _own(ctx, user, request.match_info["order_id"])
    _access, cancellation = await cancel_order(ctx, user.id, order_id)
    if cancellation is not None and not cancellation.cancelled:
        raise ApiError(409, t.cannot_cancel(order_id, cancellation.status))
    return await order(request, ctx, user)


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
