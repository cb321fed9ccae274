"""The cart's use cases: plain values in (a Buyer or a Telegram user id, a sku, a quantity).

Prices: a line remembers the price it was added at, and the cart shows the price now (with
the old one beside it when it changed). Checkout charges the prices the shopper last saw:
the cart screen carries a short fingerprint of its lines (product, quantity, price, on sale),
and Checkout refuses (`CART_CHANGED`, the fresh cart shown) when the cart is no longer what
that screen showed — so a repricing between the screen and the tap is never charged
unseen.
The fingerprint also covers the saved promo code's discount: a code that stops applying
between the screen and the tap refuses Checkout once (`PROMO`, the sentence saying why),
never a price the shopper was not shown.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from bot.context import ShopContext
from bot.i18n import localized
from bot.screens.texts import texts as t
from bot.shop.checkout import (
    CheckoutLine,
    CheckoutRefusal,
    CheckoutResult,
    Refused,
    order_caps,
    place_checkout,
    place_lines,
)
from bot.shop.customers import remember
from bot.shop.promos import CODE_RE, Priced, price_lines
from storage import (
    ORDER_DEPENDENT,
    Buyer,
    CartLine,
    Order,
    PromoRefusal,
    add_to_cart,
    cart_lines,
    cart_units,
    empty_cart,
    get_customer,
    get_product,
    place_cart_order,
    remove_from_cart,
    save_promo,
    saved_promo,
    set_cart_quantity,
    stock_counts,
)

MAX_QUANTITY = 1000  # a line's quantity when neither stock nor max_per_order caps it


class CartRefusal(StrEnum):
    PRODUCT_GONE = "product_gone"
    SOLD_OUT = "sold_out"
    CART_FULL = "cart_full"
    NOT_IN_CART = "not_in_cart"
    AT_LIMIT = "at_limit"  # + on a line already at its cap
    AT_MIN = "at_min"  # − on a line of 1 (Remove removes it)


@dataclass(frozen=True)
class CartChange:
    refusal: CartRefusal | None = None
    title: str = ""
    quantity: int = 0  # the line's quantity now

    @property
    def ok(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True)
class CartView:
    lines: list[CartLine]
    total: Decimal  # of the lines that can be bought (on sale)
    currency: str
    units: int
    fingerprint: str  # what Checkout compares with the cart it finds
    priced: Priced | None = None  # with the shopper's saved promo code, when there is one

    @property
    def empty(self) -> bool:
        return not self.lines


def line_cap(max_per_order: int | None, available: int | None) -> int:
    """The most a line may hold: max_per_order and the stock, as on the product card."""
    cap = max_per_order or MAX_QUANTITY
    return cap if available is None else min(cap, available)


LINES_PRINT = 10  # the fingerprint's first digits: the lines; the rest: the discount


def fingerprint(lines: list[CartLine], priced: Priced | None = None) -> str:
    """10 hex digits over each line's product, quantity, price and whether it is on sale;
    6 more over the promo code and its discount when one applies (none: the full price)."""
    state = ";".join(
        f"{ln.product_id}:{ln.quantity}:{ln.price.normalize()}:{int(ln.active)}" for ln in lines
    )
    printed = hashlib.sha256(state.encode()).hexdigest()[:LINES_PRINT]
    if priced is not None and priced.applies and priced.discount:
        promo = f"{(priced.code or '').lower()}:{priced.discount.normalize()}"
        printed += hashlib.sha256(promo.encode()).hexdigest()[:6]
    return printed


async def _customer_id(ctx: ShopContext, telegram_id: int) -> int | None:
    customer = await get_customer(ctx.db, telegram_id)
    return None if customer is None else customer.id


async def _lines(ctx: ShopContext, customer_id: int) -> list[CartLine]:
    """The cart's lines, each titled in the shopper's language (the catalog's translation)."""
    return [
        replace(ln, title=localized(ln.translations, "title", ln.title))
        for ln in await cart_lines(ctx.db, customer_id)
    ]


async def view_cart(ctx: ShopContext, telegram_id: int) -> CartView:
    customer_id = await _customer_id(ctx, telegram_id)
    lines = [] if customer_id is None else await _lines(ctx, customer_id)
    total = sum((ln.line_total for ln in lines if ln.active), Decimal(0))
    currency = lines[0].currency if lines else ctx.settings.shop_currency
    units = sum(ln.quantity for ln in lines)
    priced = None
    on_sale = [(ln.sku, ln.quantity) for ln in lines if ln.active]
    if on_sale and await saved_promo(ctx.db, telegram_id) is not None:
        # Checkout's own functions: the discount shown is the one the order will take.
        priced = await price_lines(ctx, telegram_id, on_sale)
    return CartView(lines, total, currency, units, fingerprint(lines, priced), priced)


async def apply_cart_code(ctx: ShopContext, buyer: Buyer, code: str) -> Priced | None:
    """The shopper typed `code` on the cart screen: saved for Checkout when it applies to
    the cart's products now; refused (and not saved) otherwise. None: the cart has nothing
    on sale to price."""
    code = code.strip()
    if not CODE_RE.match(code):
        return Priced(Decimal(0), Decimal(0), Decimal(0), "", code, PromoRefusal.UNKNOWN)
    customer_id = await _customer_id(ctx, buyer.telegram_id)
    lines = [] if customer_id is None else await cart_lines(ctx.db, customer_id)
    on_sale = [(ln.sku, ln.quantity) for ln in lines if ln.active]
    if not on_sale:
        return None
    priced = await price_lines(ctx, buyer.telegram_id, on_sale, code)
    if priced.applies:
        await save_promo(ctx.db, buyer, code)
    return priced


async def units_in_cart(ctx: ShopContext, telegram_id: int) -> int:
    """The menu's count: units over all lines (Cart (3) is three keys, of one or more
    products)."""
    customer_id = await _customer_id(ctx, telegram_id)
    return 0 if customer_id is None else await cart_units(ctx.db, customer_id)


async def add_item(ctx: ShopContext, buyer: Buyer, sku: str, quantity: int) -> CartChange:
    """Add to cart: `quantity` units, on top of what the line holds, capped as on the card."""
    product = await get_product(ctx.db, sku)
    if product is None or not product.active or product.id is None:
        return CartChange(CartRefusal.PRODUCT_GONE)
    available = None if product.unlimited else (await stock_counts(ctx.db, product.id)).available
    cap = line_cap(product.max_per_order, available)
    title = localized(product.translations, "title", product.title)
    if cap < 1:
        return CartChange(CartRefusal.SOLD_OUT, title)
    customer = await remember(ctx, buyer)
    assert customer.id is not None
    lines = await cart_lines(ctx.db, customer.id)
    if len(lines) >= t.CART_LINES_MAX and all(ln.product_id != product.id for ln in lines):
        return CartChange(CartRefusal.CART_FULL, title)
    in_cart = await add_to_cart(
        ctx.db, customer.id, product.id, max(1, quantity), product.price, cap=cap
    )
    return CartChange(title=title, quantity=in_cart)


async def step_item(ctx: ShopContext, telegram_id: int, product_id: int, delta: int) -> CartChange:
    """− and + on a line: one unit less or more, within 1 and the line's cap."""
    customer_id = await _customer_id(ctx, telegram_id)
    lines = [] if customer_id is None else await _lines(ctx, customer_id)
    line = next((ln for ln in lines if ln.product_id == product_id), None)
    if customer_id is None or line is None:
        return CartChange(CartRefusal.NOT_IN_CART)
    wanted = line.quantity + delta
    if wanted < 1:
        return CartChange(CartRefusal.AT_MIN, line.title, line.quantity)
    if delta > 0 and wanted > line_cap(line.max_per_order, line.available):
        return CartChange(CartRefusal.AT_LIMIT, line.title, line.quantity)
    await set_cart_quantity(ctx.db, customer_id, product_id, wanted)
    return CartChange(title=line.title, quantity=wanted)


async def remove_item(ctx: ShopContext, telegram_id: int, product_id: int) -> bool:
    customer_id = await _customer_id(ctx, telegram_id)
    return customer_id is not None and await remove_from_cart(ctx.db, customer_id, product_id)


async def empty(ctx: ShopContext, telegram_id: int) -> int:
    customer_id = await _customer_id(ctx, telegram_id)
    return 0 if customer_id is None else await empty_cart(ctx.db, customer_id)


async def checkout_cart(ctx: ShopContext, buyer: Buyer, seen: str | None = None) -> CheckoutResult:
    """Checkout: one order with one line per product and one invoice for the total, at the
    prices the cart shows now. `seen` is the fingerprint of the cart screen the shopper
    tapped (None: the caller shows the cart as it is); a different cart is refused with
    CART_CHANGED. On success the lines ordered leave the cart; refused, it is left as it
    was.

    The cart is read in the order's transaction; when the shopper has a promo code saved,
    it is priced with the code first (view_cart, as the screen was) and then placed."""
    read: list[list[CartLine]] = []

    def check(lines: list[CartLine], code: str | None) -> list[tuple[int, int, Decimal]]:
        if code is not None:
            raise _SavedCode
        read.append(lines)
        if not lines:
            raise Refused(CheckoutResult(CheckoutRefusal.CART_EMPTY))
        if seen is not None and seen != fingerprint(lines):
            raise Refused(CheckoutResult(CheckoutRefusal.CART_CHANGED))
        bad = _bad_line(lines, lines[0].currency)
        if bad is not None:
            raise bad
        return [(ln.product_id, ln.quantity, ln.price) for ln in lines]

    async def place(expires_at: datetime, saved_promo: bool) -> Order:
        _, order = await place_cart_order(
            ctx.db, buyer, lambda lines: lines[0].currency, expires_at, check, **order_caps(ctx)
        )
        return order

    def placed() -> list[CheckoutLine]:
        return [CheckoutLine(ln.product_id, _title(ln), ln.quantity, ln.price) for ln in read[-1]]

    try:
        # Placed, the lines leave the cart in the invoice's transaction.
        return await place_checkout(
            ctx, buyer, place, placed, lambda: read[-1][0].currency, clear_cart=True
        )
    except Refused as refused:
        return refused.result
    except _BadLine as bad:
        return _line_refused(bad, _title(bad.line))
    except _SavedCode:
        return await _checkout_priced(ctx, buyer, seen)


class _SavedCode(Exception):
    """The shopper has a promo code saved: the cart is priced with it before the order."""


class _BadLine(Exception):
    """A line that cannot be ordered (see _bad_line)."""

    def __init__(self, line: CartLine, refusal: CheckoutRefusal) -> None:
        super().__init__(line.sku)
        self.line, self.refusal = line, refusal


def _title(line: CartLine) -> str:
    return localized(line.translations, "title", line.title)


def _bad_line(lines: list[CartLine], currency: str) -> _BadLine | None:
    """The first line no longer on sale (or in another currency), or over max_per_order."""
    for line in lines:
        if not line.active or line.currency != currency:
            return _BadLine(line, CheckoutRefusal.PRODUCT_GONE)
        if line.max_per_order is not None and line.quantity > line.max_per_order:
            return _BadLine(line, CheckoutRefusal.OVER_LIMIT)
    return None


def _line_refused(bad: _BadLine, title: str) -> CheckoutResult:
    if bad.refusal == CheckoutRefusal.OVER_LIMIT:
        return CheckoutResult(bad.refusal, item=title, left=bad.line.max_per_order)
    return CheckoutResult(bad.refusal, item=title)


async def _checkout_priced(ctx: ShopContext, buyer: Buyer, seen: str | None) -> CheckoutResult:
    """checkout_cart for a shopper with a saved code: the cart as the screen showed it
    (view_cart, the code's discount included), then the order with the code."""
    view = await view_cart(ctx, buyer.telegram_id)
    if view.empty:
        return CheckoutResult(CheckoutRefusal.CART_EMPTY)
    if seen is not None and seen != view.fingerprint:
        priced = view.priced
        if (
            seen[:LINES_PRINT] == view.fingerprint[:LINES_PRINT]
            and priced is not None
            and priced.refusal is not None
            and priced.refusal not in ORDER_DEPENDENT
        ):
            # The same lines, but the code the screen discounted was switched off, expired
            # or used up since (price_lines has removed it): refused once, saying why.
            return CheckoutResult(
                CheckoutRefusal.PROMO,
                promo_code=priced.code,
                promo_refusal=priced.refusal,
                promo_minimum=priced.minimum,
                currency=view.currency,
            )
        return CheckoutResult(CheckoutRefusal.CART_CHANGED)
    bad = _bad_line(view.lines, view.currency)
    if bad is not None:
        return _line_refused(bad, bad.line.title)  # (view_cart titles lines in the language)
    lines = [CheckoutLine(ln.product_id, ln.title, ln.quantity, ln.price) for ln in view.lines]
    # Placed, the lines leave the cart in the invoice's transaction (place_lines).
    return await place_lines(ctx, buyer, lines, view.currency, clear_cart=True)
