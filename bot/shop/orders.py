"""A shopper's own orders: which are theirs, Check payment, Cancel."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from bot.context import ShopContext
from bot.shop.settlement import recheck_order
from payments import CryptoPayError
from storage import OPEN, OrderDetails, OrderStatus, get_order, release_order

log = logging.getLogger("bot.orders")


class OrderAccess(Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    NOT_YOURS = "not_yours"


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


@dataclass(frozen=True)
class Cancellation:
    cancelled: bool
    status: str  # the order's status now (what stopped it, when it was not cancelled)


async def cancel_order(
    ctx: ShopContext, user_id: int, order_id: int
) -> tuple[OrderAccess, Cancellation | None]:
    access, details = await own_order(ctx, user_id, order_id)
    if details is None:
        return access, None
    order = details.order
    if not await release_order(ctx.db, order_id, OrderStatus.CANCELLED, abandoned=True):
        fresh = await get_order(ctx.db, order_id)
        status = fresh.order.status if fresh else order.status
        return access, Cancellation(False, status)
    if order.invoice_id is not None:
        try:
            await ctx.cryptopay.delete_invoice(order.invoice_id)
        except CryptoPayError as error:  # best effort: an unpaid invoice expires by itself
            log.info(
                "deleteInvoice failed after cancel",
                extra={"order_id": order_id, "error": error.name},
            )
    log.info("order cancelled by the buyer", extra={"order_id": order_id})
    return access, Cancellation(True, OrderStatus.CANCELLED)


@dataclass(frozen=True)
class PaymentCheck:
    status: str  # the order's status when it was not open, so nothing was asked
    invoice_status: str | None = None  # what Crypto Pay says of the invoice, when asked
    payments_down: bool = False  # Crypto Pay could not be asked


async def check_payment(
    ctx: ShopContext, user_id: int, order_id: int
) -> tuple[OrderAccess, PaymentCheck | None]:
    """Ask Crypto Pay now (or take its answer of the last few seconds) and settle the order
    if it is paid."""
    access, details = await own_order(ctx, user_id, order_id)
    if details is None:
        return access, None
    order = details.order
    if order.status not in OPEN or order.invoice_id is None:
        return access, PaymentCheck(order.status)
    checks = ctx.payment_checks
    async with checks.turn(order_id):
        # Crypto Pay's word of a few seconds ago stands: a burst of taps costs one call.
        invoice_status = checks.get(order_id, ctx.clock().timestamp())
        if invoice_status is None:
            try:
                invoice_status = await recheck_order(ctx, order, source="check")
            except CryptoPayError:
                return access, PaymentCheck(order.status, payments_down=True)
            checks.put(order_id, invoice_status, ctx.clock().timestamp())
    # Nothing can be paid on an expired invoice: release the reservation now, so the order
    # shows as expired (with Buy again) instead of a Pay button that leads nowhere.
    if invoice_status == "expired" and await release_order(
        ctx.db, order_id, OrderStatus.EXPIRED, abandoned=True
    ):
        log.info("order expired: its invoice has", extra={"order_id": order_id})
    return access, PaymentCheck(order.status, invoice_status)
