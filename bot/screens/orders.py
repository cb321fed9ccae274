"""A shopper's orders as the chat shows them: the list, and one order with its goods."""

from __future__ import annotations

from bot.context import ShopContext
from bot.i18n import localized
from bot.screens import keyboards
from bot.screens.catalog import Screen, approximations
from bot.screens.messages import MAX_INLINE_TEXT, goods, goods_by_product, items
from bot.screens.texts import texts as t
from bot.shop.checkout import CheckoutResult
from bot.shop.orders import Cancellation, OrderAccess, PaymentCheck, own_order
from storage import (
    OPEN,
    WITH_GOODS,
    OrderDetails,
    OrderStatus,
    get_customer,
    list_customer_orders,
    order_items,
)

PAGE_SIZE = 8


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
    items = await order_items(ctx.db, [o.id for o in orders if o.id is not None])

    def named(order_id: int) -> list[tuple[str, int]]:
        return [(localized(tr, "title", title), qty) for title, qty, tr in items.get(order_id, [])]

    labels = [
        (o.id, t.order_row(o.id, named(o.id), o.total, o.currency, o.status, o.created_at))
        for o in orders
        if o.id is not None
    ]
    markup = keyboards.orders_page(labels, next_before=next_before, is_first_page=not before)
    return Screen(t.ORDERS_TITLE, markup)


def goods_of(details: OrderDetails) -> list[str]:
    """The goods again, once the order was paid (not while pending, expired or in review)."""
    order = details.order
    # An attention reason means it went to a human instead of being sold: refunded from
    # there, it never had goods (an unlimited product's content must not show).
    if order.status not in WITH_GOODS or order.attention_reason is not None:
        return []
    return goods(details.lines, details.products, details.codes)


def render_order(details: OrderDetails, support: str | None = None) -> Screen:
    order = details.order
    assert order.id is not None
    delivered = goods_of(details)
    text = _order_text(details, delivered)
    document = None
    if len(text) > MAX_INLINE_TEXT:  # Telegram refuses a message past 4,096 characters
        text = _order_text(details, []) + "\n\n" + t.goods_in_file(len(delivered))
        document = (f"order-{order.id}.txt", ("\n".join(delivered) + "\n").encode())
    text = t.with_support(text, support, order.id)
    pending = order.status in OPEN
    if order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED):
        markup = keyboards.closed_order(first_sku(details))
    else:
        markup = keyboards.order_view(order.id, pay_url=order.bot_invoice_url, pending=pending)
    return Screen(text, markup, document=document)


def first_sku(details: OrderDetails) -> str | None:
    """The product to buy again: the order's first, if the catalog still has it."""
    for line in details.lines:
        product = details.products.get(line.product_id)
        if product is not None:
            return product.sku
    return None


def _order_text(details: OrderDetails, delivered: list[str]) -> str:
    if delivered and len({line.product_id for line in details.lines}) > 1:
        # Several products: their goods under each title, as in the goods message.
        groups = goods_by_product(details.lines, details.products, details.codes)
        return _order_text(details, []) + "\n\n" + t.order_goods_grouped(groups)
    order = details.order
    assert order.id is not None
    return t.order_details(
        order_id=order.id,
        status=order.status,
        lines=items(details),
        total=order.total,
        currency=order.currency,
        created=order.created_at,
        deadline=order.expires_at,
        paid_asset=order.paid_asset,
        paid_amount=order.paid_amount,
        goods=delivered,
        discount=order.discount,
        promo_code=order.promo_code,
    )


async def order_screen(
    ctx: ShopContext, user_id: int, order_id: int
) -> tuple[OrderAccess, Screen | None]:
    access, details = await own_order(ctx, user_id, order_id)
    return access, None if details is None else render_order(details, ctx.settings.support_contact)


def cancel_note(order_id: int, cancellation: Cancellation) -> str:
    if cancellation.cancelled:
        return t.order_cancelled(order_id)
    return t.cannot_cancel(order_id, cancellation.status)


def payment_note(order_id: int, check: PaymentCheck) -> str:
    if check.payments_down:
        return t.CHECK_PAYMENTS_DOWN
    if check.invoice_status is None:
        return t.order_status_note(order_id, check.status)
    return t.payment_status(order_id, check.invoice_status)


def order_placed(ctx: ShopContext, result: CheckoutResult) -> Screen:
    """The order message Buy answers with: the total (and about how much in each asset),
    how long the buyer has, and Pay, Check payment, Cancel."""
    assert result.order_id is not None and result.deadline is not None
    text = t.order_created_items(
        result.order_id,
        result.items or ((result.item, result.quantity),),
        result.total,
        result.currency,
        result.deadline,
        ttl_seconds=ctx.settings.invoice_ttl_seconds,
        approximations=approximations(ctx, result.total, result.currency),
        discount=result.discount,
        promo_code=result.promo_code,
    )
    text = t.with_support(text, ctx.settings.support_contact, result.order_id)
    markup = keyboards.pending_order(result.order_id, result.pay_url or ctx.bot_url)
    return Screen(text, markup)


def cancel_question(order_id: int) -> Screen:
    return Screen(t.confirm_cancel(order_id), keyboards.confirm_cancel(order_id))
