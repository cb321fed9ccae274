"""Checkout: order row first, units reserved (all or nothing), then one Crypto Pay invoice."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from bot.context import ShopContext
from bot.screens.texts import texts as t
from payments import CryptoPayError, Invoice
from storage import (
    ORDER_DEPENDENT,
    Buyer,
    OrderStatus,
    PromoRefusal,
    PromoRefused,
    TooManyOpenOrders,
    attach_invoice,
    get_product,
    place_order,
    release_order,
    save_promo,
    saved_promo,
    stock_counts,
)

log = logging.getLogger("bot.checkout")


class CheckoutRefusal(StrEnum):
    PRODUCT_GONE = "product_gone"
    OUT_OF_STOCK = "out_of_stock"
    TOO_MANY_UNPAID = "too_many_unpaid"
    PAYMENTS_DOWN = "payments_down"
    PROMO = "promo"  # the saved promo code no longer applies: it was removed


@dataclass(frozen=True)
class CheckoutResult:
    refusal: CheckoutRefusal | None = None
    order_id: int | None = None
    item: str = ""
    quantity: int = 0
    total: Decimal = Decimal(0)
    currency: str = ""
    deadline: datetime | None = None
    pay_url: str | None = None
    left: int | None = None  # out of stock: the units still available, when counted
    discount: Decimal = Decimal(0)
    promo_code: str | None = None
    promo_refusal: PromoRefusal | None = None
    promo_minimum: Decimal | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


async def checkout(ctx: ShopContext, buyer: Buyer, sku: str, quantity: int) -> CheckoutResult:
    product = await get_product(ctx.db, sku)
    if product is None or not product.active or product.id is None:
        return CheckoutResult(CheckoutRefusal.PRODUCT_GONE)
    if quantity < 1 or (product.max_per_order is not None and quantity > product.max_per_order):
        return CheckoutResult(CheckoutRefusal.OUT_OF_STOCK)
    ttl = ctx.settings.invoice_ttl_seconds
    expires_at = ctx.clock() + timedelta(seconds=ttl)
    promo = await saved_promo(ctx.db, buyer.telegram_id)
    lines = [(product.id, quantity, product.price)]
    try:
        try:
            order = await place_order(
                ctx.db,
                buyer,
                lines,
                product.currency,
                expires_at,
                max_open=ctx.settings.max_unpaid_orders,
                promo=promo,
            )
        except PromoRefused as refused:
            if refused.reason not in ORDER_DEPENDENT:
                raise
            # Not for this product or amount (the card said so): the full price, and the
            # code stays for an order it fits.
            order = await place_order(
                ctx.db,
                buyer,
                lines,
                product.currency,
                expires_at,
                max_open=ctx.settings.max_unpaid_orders,
            )
    except PromoRefused as refused:
        # The code stopped applying since the card showed its discount: never charge a
        # price the shopper was not shown. The code goes, Buy is refused once, and the
        # card shows the full price again.
        await save_promo(ctx.db, buyer, None)
        ctx.metrics.checkouts.labels(result="promo_refused").inc()
        minimum = refused.terms.min_total if refused.terms else None
        return CheckoutResult(
            CheckoutRefusal.PROMO,
            promo_code=promo,
            promo_refusal=refused.reason,
            promo_minimum=minimum,
            currency=product.currency,
        )
    except TooManyOpenOrders:
        ctx.metrics.checkouts.labels(result="too_many_unpaid").inc()
        return CheckoutResult(CheckoutRefusal.TOO_MANY_UNPAID)
    if order is None or order.id is None:
        ctx.metrics.checkouts.labels(result="out_of_stock").inc()
        left = None if product.unlimited else (await stock_counts(ctx.db, product.id)).available
        return CheckoutResult(CheckoutRefusal.OUT_OF_STOCK, left=left)

    try:
        invoice = await ctx.cryptopay.create_invoice(
            currency_type="fiat",
            fiat=product.currency,
            amount=order.total.normalize(),  # 19.98, not 19.98000000
            accepted_assets=list(ctx.settings.accepted_assets),
            expires_in=ttl,
            payload=str(order.id),
            description=t.invoice_description(order.id, product.title, quantity),
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
        item=product.title,
        quantity=quantity,
        total=order.total,
        currency=order.currency,
        deadline=order.expires_at,
        pay_url=pay_link(invoice),
        discount=order.discount,
        promo_code=order.promo_code,
    )


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


def promo_refusal_text(result: CheckoutResult) -> str:
    """Why Buy's promo code did not apply, in one sentence."""
    assert result.promo_refusal is not None
    return t.promo_refusal(
        result.promo_refusal, result.promo_code or "", result.promo_minimum, result.currency
    )
