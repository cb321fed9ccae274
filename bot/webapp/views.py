"""What the storefront's JSON says of products, carts and orders (plain dicts of plain text:
the page never renders HTML from the server). Money is a decimal string plus the amount
formatted for the shopper's language."""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from bot.context import ShopContext
from bot.i18n import localized
from bot.screens.catalog import approximations
from bot.screens.messages import goods_by_product, items
from bot.screens.orders import goods_of
from bot.screens.texts import en_webapp as tw
from bot.screens.texts import texts as t
from bot.shop.cart import CartView, line_cap
from bot.shop.promos import refusal_text
from storage import OPEN, Category, Order, OrderDetails, Product

Json = dict[str, Any]


def decimal_string(amount: Decimal) -> str:
    """Exact, without the column's trailing zeros, at least to cents: 9.99, 10.00, 0.125."""
    text = format(amount.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def money(amount: Decimal, currency: str) -> Json:
    return {"amount": decimal_string(amount), "text": plain_text(t.money(amount, currency))}


def plain_text(html_text: str) -> str:
    """One of the chat's texts (HTML) as plain text for the page."""
    for tag in ("<b>", "</b>", "<i>", "</i>", "<s>", "</s>", "<code>", "</code>"):
        html_text = html_text.replace(tag, "")
    return html.unescape(html_text)


def photo_urls(product: Product, held: bool) -> Json | None:
    """The photo routes (bot/webapp's neighbour serves them) when we hold a copy of the
    product's photo; without one (a URL not fetched yet, or never: PHOTO_FETCH_URLS=false)
    the page draws its placeholder rather than a broken image. Relative to the page (/app/),
    so they stay under WEBAPP_URL's path when a proxy serves this server under one."""
    if not product.photo or not held:
        return None
    base = f"photos/{quote(product.sku, safe='')}"
    return {"thumb": f"{base}/thumb", "large": f"{base}/large"}


def stock_text(available: int | None) -> str:
    if available is None:
        return tw.AVAILABLE
    return tw.in_stock(available) if available > 0 else tw.SOLD_OUT


def category(cat: Category) -> Json:
    return {"slug": cat.slug, "title": localized(cat.translations, "title", cat.title)}


def product_row(product: Product, available: int | None, photo_held: bool) -> Json:
    return {
        "sku": product.sku,
        "title": localized(product.translations, "title", product.title),
        "price": money(product.price, product.currency),
        "in_stock": available,
        "stock_text": stock_text(available),
        "photo": photo_urls(product, photo_held),
    }


def product_page(
    ctx: ShopContext,
    product: Product,
    available: int | None,
    category_slug: str | None,
    photo_held: bool,
) -> Json:
    row = product_row(product, available, photo_held)
    row.update(
        description=localized(product.translations, "description", product.description),
        category=category_slug,
        max_quantity=max(0, line_cap(product.max_per_order, available)),
        approx=[
            {"asset": asset, "text": f"≈ {t.approx(amount)} {asset}"}
            for asset, amount in approximations(ctx, product.price, product.currency)
        ],
    )
    return row


def cart(view: CartView) -> Json:
    priced = view.priced
    promo: Json | None = None
    total = view.total
    if priced is not None and priced.code is not None:
        if priced.applies:
            total = priced.total
            promo = {
                "code": priced.code.upper(),
                "label": tw.discount(priced.code),
                "discount": money(priced.discount, view.currency),
            }
        else:
            promo = {"code": priced.code.upper(), "refusal": plain_text(refusal_text(priced))}
    return {
        "lines": [
            {
                "product_id": ln.product_id,
                "sku": ln.sku,
                "title": ln.title,
                "quantity": ln.quantity,
                "price": money(ln.price, ln.currency),
                "line_total": money(ln.line_total, ln.currency),
                "added_price": money(ln.added_price, ln.currency) if ln.repriced else None,
                "active": ln.active,
                "available": ln.available,
                "max_quantity": line_cap(ln.max_per_order, ln.available),
                "note": _line_note(ln.active, ln.available, ln.quantity),
            }
            for ln in view.lines
        ],
        "units": view.units,
        "subtotal": money(view.total, view.currency),
        "total": money(total, view.currency),
        "promo": promo,
        "fingerprint": view.fingerprint,
    }


def _line_note(active: bool, available: int | None, quantity: int) -> str | None:
    if not active:
        return plain_text(t.PRODUCT_GONE)
    if available is not None and available < quantity:
        return tw.in_stock(available) if available > 0 else tw.SOLD_OUT
    return None


def order_row(order: Order, lines: list[tuple[str, int]]) -> Json:
    assert order.id is not None
    return {
        "id": order.id,
        "status": str(order.status),
        "status_text": plain_text(t.status_text(order.status)),
        "title": tw.order_title(order.id),
        "total": decimal_string(order.total),
        "total_text": plain_text(t.money(order.total, order.currency)),
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "items": [{"title": title, "quantity": qty} for title, qty in lines],
    }


def order_page(details: OrderDetails) -> Json:
    order = details.order
    row = order_row(order, items(details))
    pending = order.status in OPEN
    row["pending"] = pending
    if pending:
        row["pay"] = {
            "mini_app_invoice_url": order.mini_app_url,
            "bot_invoice_url": order.bot_invoice_url,
        }
        row["deadline_text"] = tw.PAY_BY.format(time=t.when(order.expires_at))
        row["confirm_cancel"] = plain_text(t.confirm_cancel(row["id"]))  # the chat's question
    if order.discount and order.promo_code:
        row["promo"] = {
            "label": tw.discount(order.promo_code),
            "discount": money(order.discount, order.currency),
        }
    if goods_of(details):
        row["goods"] = [
            {"title": title, "items": goods}
            for title, goods in goods_by_product(details.lines, details.products, details.codes)
        ]
    else:
        row["goods"] = []
    return row
