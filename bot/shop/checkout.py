"""Checkout: order row first, units reserved (all or nothing), then one Crypto Pay invoice."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict

from bot.context import ShopContext
from bot.i18n import localized
from bot.screens.texts import texts as t
from payments import CryptoPayError, Invoice
from storage import (
    ORDER_DEPENDENT,
    Buyer,
    Order,
    OrderStatus,
    Product,
    PromoRefusal,
    PromoRefused,
    StockShort,
    TooManyAbandoned,
    TooManyOpenOrders,
    TooManyUnits,
    attach_invoice,
    place_order,
    place_product_order,
    release_order,
    save_promo,
)

log = logging.getLogger("bot.checkout")


class CheckoutRefusal(StrEnum):
    PRODUCT_GONE = "product_gone"
    OUT_OF_STOCK = "out_of_stock"
    TOO_MANY_UNPAID = "too_many_unpaid"
    PAYMENTS_DOWN = "payments_down"
    TOO_MANY_UNITS = "too_many_units"  # MAX_RESERVED_UNITS: `held`, `limit`
    TOO_MANY_ABANDONED = "too_many_abandoned"  # MAX_ABANDONED_PER_HOUR: `retry_at`
    CART_EMPTY = "cart_empty"
    CART_CHANGED = "cart_changed"  # a price (or a line) changed since the cart was shown
    OVER_LIMIT = "over_limit"  # a line is over its product's max_per_order
    PROMO = "promo"  # the saved promo code no longer applies: it was removed


@dataclass(frozen=True)
class CheckoutLine:
    """One line of an order about to be placed, at the price the shopper was shown."""

    product_id: int
    title: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class CheckoutResult:
    refusal: CheckoutRefusal | None = None
    order_id: int | None = None
    item: str = ""  # the first line's title; refused: the product at fault
    quantity: int = 0
    total: Decimal = Decimal(0)
    currency: str = ""
    deadline: datetime | None = None
    pay_url: str | None = None
    left: int | None = None  # out of stock: the units still available, when counted
    held: int | None = None  # too many units: those already in unpaid orders, when counted
    limit: int | None = None  # too many units: MAX_RESERVED_UNITS
    retry_at: datetime | None = None  # too many abandoned: when Buy works again
    items: tuple[tuple[str, int], ...] = ()  # (title, quantity) of every line placed
    discount: Decimal = Decimal(0)
    promo_code: str | None = None
    promo_refusal: PromoRefusal | None = None
    promo_minimum: Decimal | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


class Refused(Exception):
    """A check on what the order's transaction read (Buy's product, the cart's lines)
    refused the checkout: `result` says why."""

    def __init__(self, result: CheckoutResult) -> None:
        super().__init__(str(result.refusal))
        self.result = result


async def checkout(ctx: ShopContext, buyer: Buyer, sku: str, quantity: int) -> CheckoutResult:
    """Buy: `quantity` units of one product, now, at its price as the order's transaction
    reads it (no read transaction of its own)."""
    limit = ctx.settings.max_reserved_units
    read: list[Product] = []

    def check(product: Product | None) -> None:
        if product is None or not product.active or product.id is None:
            raise Refused(CheckoutResult(CheckoutRefusal.PRODUCT_GONE))
        # The quantity comes from callback data, which anyone can forge: checked here
        # against max_per_order and the shopper's cap, and again (held units, stock) by
        # the order's transaction.
        if quantity < 1 or (product.max_per_order is not None and quantity > product.max_per_order):
            raise Refused(CheckoutResult(CheckoutRefusal.OUT_OF_STOCK))
        if quantity > limit:
            raise Refused(CheckoutResult(CheckoutRefusal.TOO_MANY_UNITS, limit=limit))
        read.append(product)

    async def place(expires_at: datetime, saved_promo: bool) -> Order:
        _, order = await place_product_order(
            ctx.db,
            buyer,
            sku,
            quantity,
            expires_at,
            check,
            **order_caps(ctx),
            saved_promo=saved_promo,
        )
        return order

    def lines() -> list[CheckoutLine]:
        return [
            CheckoutLine(product.id, _title(product), quantity, product.price)
            for product in read[-1:]
            if product.id is not None
        ]

    try:
        return await place_checkout(ctx, buyer, place, lines, lambda: read[-1].currency)
    except Refused as refused:
        if refused.result.refusal == CheckoutRefusal.TOO_MANY_UNITS:
            ctx.metrics.checkouts.labels(result="too_many_units").inc()
        return refused.result


async def place_lines(
    ctx: ShopContext,
    buyer: Buyer,
    lines: Sequence[CheckoutLine],
    currency: str,
    *,
    clear_cart: bool = False,
) -> CheckoutResult:
    """The cart's checkout: one order for all `lines`, every unit reserved in one
    transaction (all or nothing), then one Crypto Pay invoice for the total. A line short
    of stock refuses the whole order, naming that line's product. With `clear_cart`, the
    lines' products leave the buyer's cart when the invoice is recorded (in that
    transaction): only a checkout that succeeded empties the cart."""
    specs = [(line.product_id, line.quantity, line.unit_price) for line in lines]

    async def place(expires_at: datetime, saved_promo: bool) -> Order:
        order = await place_order(
            ctx.db,
            buyer,
            specs,
            currency,
            expires_at,
            **order_caps(ctx),
            report_short=True,
            saved_promo=saved_promo,
        )
        assert order is not None  # (report_short raises instead)
        return order

    return await place_checkout(
        ctx, buyer, place, lambda: list(lines), lambda: currency, clear_cart=clear_cart
    )


async def place_checkout(
    ctx: ShopContext,
    buyer: Buyer,
    place: Callable[[datetime, bool], Awaitable[Order]],
    placed_lines: Callable[[], Sequence[CheckoutLine]],
    currency_of: Callable[[], str],
    *,
    clear_cart: bool = False,
) -> CheckoutResult:
    """The one checkout of Buy and of the cart: `place(expires_at, saved_promo)` writes the
    order (refusals raise, having written nothing), then one Crypto Pay invoice for its
    total. `placed_lines()` and `currency_of()` are read once the order's transaction ran
    (or refused a line)."""
    ttl = ctx.settings.invoice_ttl_seconds
    expires_at = ctx.clock() + timedelta(seconds=ttl)
    try:
        try:
            # The buyer's saved code, if any, is read and taken in the order's transaction.
            order = await place(expires_at, True)
        except PromoRefused as refused:
            if refused.reason not in ORDER_DEPENDENT:
                raise
            # Not for these products or this amount (the card or the cart said so): the
            # full price, and the code stays for an order it fits.
            order = await place(expires_at, False)
    except PromoRefused as refused:
        # The code stopped applying since the card showed its discount: never charge a
        # price the shopper was not shown. The code goes, the checkout is refused once, and
        # the card shows the full price again.
        await save_promo(ctx.db, buyer, None)
        ctx.metrics.checkouts.labels(result="promo_refused").inc()
        minimum = refused.terms.min_total if refused.terms else None
        return CheckoutResult(
            CheckoutRefusal.PROMO,
            promo_code=refused.code,
            promo_refusal=refused.reason,
            promo_minimum=minimum,
            currency=currency_of(),
        )
    except TooManyOpenOrders:
        ctx.metrics.checkouts.labels(result="too_many_unpaid").inc()
        return CheckoutResult(CheckoutRefusal.TOO_MANY_UNPAID)
    except TooManyUnits as refused:
        ctx.metrics.checkouts.labels(result="too_many_units").inc()
        return CheckoutResult(
            CheckoutRefusal.TOO_MANY_UNITS,
            held=refused.held,
            limit=ctx.settings.max_reserved_units,
        )
    except TooManyAbandoned as refused:
        ctx.metrics.checkouts.labels(result="too_many_abandoned").inc()
        return CheckoutResult(CheckoutRefusal.TOO_MANY_ABANDONED, retry_at=refused.until)
    except StockShort as short:
        ctx.metrics.checkouts.labels(result="out_of_stock").inc()
        title = next((ln.title for ln in placed_lines() if ln.product_id == short.product_id), "")
        if short.gone:
            return CheckoutResult(CheckoutRefusal.PRODUCT_GONE, item=title)
        return CheckoutResult(CheckoutRefusal.OUT_OF_STOCK, item=title, left=short.available)
    assert order.id is not None
    lines, currency = placed_lines(), currency_of()
    items = tuple((line.title, line.quantity) for line in lines)

    try:
        invoice = await ctx.cryptopay.create_invoice(
            currency_type="fiat",
            fiat=currency,
            amount=order.total.normalize(),  # 19.98, not 19.98000000
            accepted_assets=list(ctx.settings.accepted_assets),
            expires_in=ttl,
            payload=str(order.id),
            description=t.invoice_description_items(order.id, items),
            paid_btn_name="openBot",
            paid_btn_url=ctx.bot_url,
            allow_comments=False,
        )
    except CryptoPayError as error:
        log.warning(
            "createInvoice failed; order cancelled and units released",
            extra={"order_id": order.id, "error": error.name},
        )
        await release_order(ctx.db, order.id, OrderStatus.CANCELLED)
        ctx.metrics.checkouts.labels(result="payments_down").inc()
        return CheckoutResult(CheckoutRefusal.PAYMENTS_DOWN)
    except BaseException:
        await release_order(ctx.db, order.id, OrderStatus.CANCELLED)
        raise

    try:
        attached = await attach_invoice(
            ctx.db,
            order.id,
            invoice_id=invoice.invoice_id,
            invoice_hash=invoice.hash,
            bot_invoice_url=pay_link(invoice),
            mini_app_url=invoice.mini_app_invoice_url,
            web_app_url=invoice.web_app_invoice_url,
            clear_cart=clear_cart,
        )
    except Exception:
        log.exception("could not record the invoice; withdrawing it", extra={"order_id": order.id})
        attached = False
    if not attached:
        # Nobody can pay an invoice we could not record: withdraw it and give the stock back.
        await _withdraw(ctx, order.id, invoice.invoice_id)
        ctx.metrics.checkouts.labels(result="not_recorded").inc()
        return CheckoutResult(CheckoutRefusal.PAYMENTS_DOWN)
    ctx.metrics.checkouts.labels(result="created").inc()
    log.info("order placed", extra={"order_id": order.id, "invoice_id": invoice.invoice_id})
    return CheckoutResult(
        order_id=order.id,
        item=lines[0].title,
        quantity=lines[0].quantity,
        total=order.total,
        currency=order.currency,
        deadline=order.expires_at,
        pay_url=pay_link(invoice),
        items=items,
        discount=order.discount,
        promo_code=order.promo_code,
    )


class OrderCaps(TypedDict):
    max_open: int
    max_units: int
    max_abandoned: int


def order_caps(ctx: ShopContext) -> OrderCaps:
    """place_order's per-shopper caps from the settings (every checkout passes them)."""
    return {
        "max_open": ctx.settings.max_unpaid_orders,
        "max_units": ctx.settings.max_reserved_units,
        "max_abandoned": ctx.settings.max_abandoned_per_hour,
    }


async def _withdraw(ctx: ShopContext, order_id: int, invoice_id: int) -> None:
    try:
        await ctx.cryptopay.delete_invoice(invoice_id)
    except CryptoPayError as error:
        log.warning("deleteInvoice failed (%s)", error.name, extra={"order_id": order_id})
    try:
        await release_order(ctx.db, order_id, OrderStatus.CANCELLED)
    except Exception:  # the database is down: the expiry job releases it later
        log.exception("could not cancel the order", extra={"order_id": order_id})


def pay_link(invoice: Invoice) -> str:
    return invoice.url or invoice.web_app_invoice_url or invoice.mini_app_invoice_url or ""


def _title(product: Product) -> str:
    """The product's title in the buyer's language (the catalog's translation, if any)."""
    return localized(product.translations, "title", product.title)


def promo_refusal_text(result: CheckoutResult) -> str:
    """Why Buy's promo code did not apply, in one sentence."""
    assert result.promo_refusal is not None
    return t.promo_refusal(
        result.promo_refusal, result.promo_code or "", result.promo_minimum, result.currency
    )
