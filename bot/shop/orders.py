"""A shopper's own orders: list, details with goods, Check payment, Cancel."""

from __future__ import annotations

import logging
from enum import Enum

from bot import keyboards
from bot.context import ShopContext
from bot.shop.catalog_view import Screen
from bot.shop.messages import goods
from bot.texts import texts as t
from payments import CryptoPayError
from storage import (
    OPEN,
    WITH_GOODS,
    OrderDetails,
    OrderStatus,
    get_customer,
    get_order,
    list_customer_orders,
    release_order,
)

log = logging.getLogger("bot.orders")

PAGE_SIZE = 8


class OrderAccess(Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    NOT_YOURS = "not_yours"


async def orders_screen(ctx: ShopContext, user_id: int, before: int = 0) -> Screen:
    customer = await get_customer(ctx.db, user_id)
    orders = []
    if customer is not None and customer.id is not None:
        orders = await list_customer_orders(
            ctx.db, customer.id, before_id=before or None, limit=PAGE_SIZE + 1
        )
    next_before = None
    if len(orders) > PAGE_SIZE:
        orders = orders[:PAGE_SIZE]
        next_before = orders[-1].id
    if not orders and not before:
        return Screen(t.ORDERS_EMPTY, keyboards.main_menu())
    labels = [
        (o.id, t.order_line(o.id, o.status, o.total, o.currency, o.created_at))
        for o in orders
        if o.id is not None
    ]
    markup = keyboards.orders_page(labels, next_before=next_before, is_first_page=not before)
    return Screen(t.ORDERS_TITLE, markup)


async def own_order(
    ctx: ShopContext, user_id: int, order_id: int
) -> tuple[OrderAccess, OrderDetails | None]:
    """The order, only if `user_id` bought it: callback data is never trusted."""
    details = await get_order(ctx.db, order_id)
    if details is None:
        return OrderAccess.NOT_FOUND, None
    if details.customer.telegram_id != user_id:
        log.warning(
            "order button pressed by someone else", extra={"order_id": order_id, "user_id": user_id}
        )
        return OrderAccess.NOT_YOURS, None
    return OrderAccess.OK, details


def goods_of(details: OrderDetails) -> list[str]:
    """The goods again, once the order was paid (not while pending, expired or in review)."""
    order = details.order
    # An attention reason means it went to a human instead of being sold: refunded from
    # there, it never had goods (an unlimited product's content must not show).
    if order.status not in WITH_GOODS or order.attention_reason is not None:
        return []
    return goods(details.lines, details.products, details.codes)


def render_order(details: OrderDetails) -> Screen:
    order = details.order
    assert order.id is not None
    lines = [
        (
            details.products[line.product_id].title if line.product_id in details.products else "?",
            line.quantity,
        )
        for line in details.lines
    ]
    text = t.order_details(
        order_id=order.id,
        status=order.status,
        lines=lines,
        total=order.total,
        currency=order.currency,
        created=order.created_at,
        deadline=order.expires_at,
        paid_asset=order.paid_asset,
        paid_amount=order.paid_amount,
        goods=goods_of(details),
    )
    pending = order.status in OPEN
    markup = keyboards.order_view(order.id, pay_url=order.bot_invoice_url, pending=pending)
    return Screen(text, markup)


async def order_screen(
    ctx: ShopContext, user_id: int, order_id: int
) -> tuple[OrderAccess, Screen | None]:
    access, details = await own_order(ctx, user_id, order_id)
    return access, None if details is None else render_order(details)


async def cancel_order(ctx: ShopContext, user_id: int, order_id: int) -> tuple[OrderAccess, str]:
    access, details = await own_order(ctx, user_id, order_id)
    if details is None:
        return access, ""
    order = details.order
    if not await release_order(ctx.db, order_id, OrderStatus.CANCELLED):
        fresh = await get_order(ctx.db, order_id)
        status = fresh.order.status if fresh else order.status
        return access, t.cannot_cancel(order_id, status)
    if order.invoice_id is not None:
        try:
            await ctx.cryptopay.delete_invoice(order.invoice_id)
        except CryptoPayError as error:  # best effort: an unpaid invoice expires by itself
            log.info(
                "deleteInvoice failed after cancel",
                extra={"order_id": order_id, "error": error.name},
            )
    log.info("order cancelled by the buyer", extra={"order_id": order_id})
    return access, t.order_cancelled(order_id)


async def check_payment(ctx: ShopContext, user_id: int, order_id: int) -> tuple[OrderAccess, str]:
    """Ask Crypto Pay now and settle the order if it is paid."""
    from bot.shop.settlement import recheck_order

    access, details = await own_order(ctx, user_id, order_id)
    if details is None:
        return access, ""
    order = details.order
    if order.status not in OPEN or order.invoice_id is None:
        return access, t.order_status_note(order_id, order.status)
    try:
        invoice_status = await recheck_order(ctx, order, source="check")
    except CryptoPayError:
        return access, t.PAYMENTS_DOWN
    return access, t.payment_status(order_id, invoice_status)
