"""The storefront's Checkout (the chat's own: bot/shop/cart.py checkout_cart) and the
shopper's orders; another buyer's order answers 404, as if it did not exist."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.context import ShopContext
from bot.i18n import localized
from bot.screens.texts import en_webapp as tw
from bot.screens.texts import texts as t
from bot.shop import cart as shop_cart
from bot.shop.checkout import CheckoutRefusal, CheckoutResult, promo_refusal_text
from bot.shop.customers import remember
from bot.shop.orders import OrderAccess, cancel_order, check_payment, own_order
from bot.webapp import views
from bot.webapp.auth import WebAppUser
from bot.webapp.endpoint import ApiError, buyer, int_of, read_json
from bot.webapp.state import WEBAPP_KEY
from storage import (
    get_customer,
    list_customer_orders,
    order_items,
)

PAGE_SIZE = 20


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


async def order(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    order_id = int_of(request.match_info["order_id"], low=1)
    _access, details = await own_order(ctx, user.id, order_id)
    if details is None:  # another buyer's order reads as no order at all
        raise ApiError(404, tw.ORDER_GONE)
    return views.order_page(details)


async def order_check(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    """Check payment: Crypto Pay is asked now (as the chat's button does)."""
    order_id = int_of(request.match_info["order_id"], low=1)
    if not await ctx.taps.allow(user.id, ctx.clock().timestamp()):
        raise ApiError(429, t.TAPS_THROTTLED)
    access, checked = await check_payment(ctx, user.id, order_id)
    if access is not OrderAccess.OK:  # another buyer's order reads as no order at all
        raise ApiError(404, tw.ORDER_GONE)
    if checked is not None and checked.payments_down:
        raise ApiError(503, t.CHECK_PAYMENTS_DOWN)
    return await order(request, ctx, user)


async def order_cancel(request: web.Request, ctx: ShopContext, user: WebAppUser) -> Any:
    order_id = int_of(request.match_info["order_id"], low=1)
    access, cancellation = await cancel_order(ctx, user.id, order_id)
    if access is not OrderAccess.OK:  # another buyer's order reads as no order at all
        raise ApiError(404, tw.ORDER_GONE)
    if cancellation is not None and not cancellation.cancelled:
        raise ApiError(409, t.cannot_cancel(order_id, cancellation.status))
    return await order(request, ctx, user)
