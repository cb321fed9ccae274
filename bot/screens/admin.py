"""What the admin commands show: an order, order lists, stats, balance, stock."""

from __future__ import annotations

import asyncio
from functools import partial
from html import escape

from bot.callbacks import AdminOrdersPage
from bot.context import ShopContext
from bot.i18n import current_language
from bot.screens import keyboards
from bot.screens.catalog import Screen
from bot.screens.messages import MAX_INLINE_TEXT, buyer_text, goods
from bot.screens.sales_chart import chart_labels, render_sales_chart
from bot.screens.texts import en_admin as ta
from bot.screens.texts import en_growth as tg
from bot.screens.texts import texts as t
from bot.shop.refunds import already_refunding, refund_lines
from bot.shop.sales import CHART_DAYS, SalesOverview
from storage import (
    STATES,
    OrderStatus,
    all_products,
    can,
    get_order,
    get_product,
    list_orders,
    order_overviews,
    orders_by_status,
    orders_needing_attention,
    referral_summary,
    refunds_for_order,
    stock_counts,
    stock_counts_many,
    top_referrers,
)

ORDERS_PAGE = 10
MAX_ATTENTION_BUTTONS = 40  # Telegram allows 100 buttons under a message


async def order_screen(
    ctx: ShopContext, order_id: int, page: AdminOrdersPage | None = None
) -> Screen | None:
    """The order in full; opened from a page of /orders (`page`), with ◀ Orders back to it."""
    details = await get_order(ctx.db, order_id)
    if details is None:
        return None
    order = details.order
    refunds = await refunds_for_order(ctx.db, order_id)
    products = details.products
    lines = [
        (products[ln.product_id].sku, products[ln.product_id].title, ln.quantity, ln.unit_price)
        for ln in details.lines
        if ln.product_id in products
    ]
    paid = fee = None
    if order.paid_amount is not None:
        paid = f"{t.plain(order.paid_amount)} {escape(order.paid_asset or '')}"
    if order.fee_amount is not None:
        fee = f"{t.plain(order.fee_amount)} {escape(order.fee_asset or '')}"
    delivered = goods(details.lines, details.products, details.codes)
    view = partial(
        ta.order_view,
        order_id=order_id,
        status=order.status,
        buyer_text=buyer_text(details),
        lines=lines,
        total=order.total,
        currency=order.currency,
        created=order.created_at,
        expires=order.expires_at,
        invoice_id=order.invoice_id,
        paid=paid,
        fee=fee,
        paid_at=order.paid_at,
        delivered_at=order.delivered_at,
        attention=order.attention_reason,
        refunds=refund_lines(refunds),
        discount=order.discount,
        promo_code=order.promo_code,
    )
    text = view(goods=delivered)
    if len(text) > MAX_INLINE_TEXT:  # long codes or content: Telegram takes 4,096 at most
        text = view(goods=[]) + "\n" + ta.goods_not_shown(len(delivered))
    refundable = (
        can(order.status, OrderStatus.REFUNDED)
        and order.paid_amount is not None
        and order.paid_amount > already_refunding(refunds)
    )
    return Screen(text, keyboards.admin_order(order_id, refundable=refundable, page=page))


# What /orders [status] accepts, in the order the table lists them.
STATUS_NAMES = tuple(s.value for s in STATES)


def parse_status(text: str) -> OrderStatus | None:
    name = text.strip().lower()
    return OrderStatus(name) if name in STATUS_NAMES else None


async def orders_list_screen(ctx: ShopContext, status: OrderStatus | None, before: int) -> Screen:
    orders = await list_orders(ctx.db, status, before_id=before or None, limit=ORDERS_PAGE + 1)
    next_before = None
    if len(orders) > ORDERS_PAGE:
        orders = orders[:ORDERS_PAGE]
        next_before = orders[-1].id
    overviews = await order_overviews(ctx.db, [o.id for o in orders if o.id is not None])
    rows = []
    for o in orders:
        seen = overviews.get(o.id or 0)
        if o.id is None or seen is None:
            continue
        label = ta.order_row(
            o.id, o.status, o.total, o.currency, seen.buyer_id, seen.buyer_username, seen.lines
        )
        rows.append((o.id, label))
    text = ta.orders_title(status.value if status else None)
    if not rows:
        text += "\n" + ta.ORDERS_EMPTY
    markup = keyboards.admin_orders_page(
        rows, status=status.value if status else "", before=before, next_before=next_before
    )
    return Screen(text, markup)


async def stats_screen(ctx: ShopContext, sales: SalesOverview) -> Screen:
    """The sales (the same series as the chart's), referrals, and the orders needing
    attention, each a button that opens it."""
    currency = sales.currency
    attention = [o.id for o in await orders_needing_attention(ctx.db) if o.id is not None]
    text = ta.stats(
        currency=currency,
        periods=sales.periods,
        by_status=await orders_by_status(ctx.db),
        attention=attention,
    )
    referred = await referral_summary(ctx.db, currency)
    if referred.referred:
        line = tg.referrals_line(referred.referred, referred.converted, referred.revenue, currency)
        text += "\n\n" + line
    return Screen(text, keyboards.admin_open_orders(attention[:MAX_ATTENTION_BUTTONS]))


async def sales_chart(sales: SalesOverview) -> tuple[bytes, str]:
    """/stats' chart (PNG, drawn in a worker thread) and its caption with the totals."""
    labels = chart_labels(
        sales.days,
        current_language(),
        title=tg.CHART_TITLE,
        revenue=tg.CHART_REVENUE,
        orders=tg.CHART_ORDERS,
        axis=tg.chart_revenue_axis(sales.currency),
    )
    png = await asyncio.to_thread(render_sales_chart, sales.days, labels)
    count, revenue = sales.total(CHART_DAYS)
    first, last = sales.days[0].day, sales.days[-1].day
    return png, tg.chart_caption(count, revenue, sales.currency, first, last)


async def referrals_text(ctx: ShopContext) -> str:
    currency = ctx.settings.shop_currency
    rows = await top_referrers(ctx.db, currency)
    return tg.referrals(
        [(r.telegram_id, r.username, r.referred, r.converted, r.revenue) for r in rows], currency
    )


async def balance_text(ctx: ShopContext) -> str:
    balances = await ctx.cryptopay.get_balance()
    rows = sorted(
        ((b.currency_code, b.available, b.onhold) for b in balances),
        key=lambda row: (row[1] == 0 and row[2] == 0, row[0]),
    )
    return ta.balance(rows)


async def stock_text(ctx: ShopContext, sku: str) -> str:
    product = await get_product(ctx.db, sku)
    if product is None or product.id is None:
        return ta.unknown_sku(sku)
    counts = await stock_counts(ctx.db, product.id)
    return ta.stock(
        product.sku,
        product.title,
        product.unlimited,
        counts.available,
        counts.reserved,
        counts.sold,
    )


STOCK_LIST_MAX = 60  # lines of /stock that fit one message


async def stock_list_text(ctx: ShopContext) -> str:
    products = [p for p in await all_products(ctx.db) if p.id is not None]
    if not products:
        return ta.STOCK_NO_PRODUCTS
    shown = products[:STOCK_LIST_MAX]
    counts = await stock_counts_many(ctx.db, [p.id for p in shown if p.id is not None])
    rows = [
        (
            p.sku,
            p.title,
            p.active,
            p.unlimited,
            counts[p.id].available if p.id in counts else 0,
            counts[p.id].reserved if p.id in counts else 0,
        )
        for p in shown
    ]
    return ta.stock_list(rows, ctx.settings.low_stock_threshold, more=len(products) - len(shown))
