"""A shopper's own orders: which are theirs, Check payment, Cancel."""

from __future__ import annotations

import logging
from enum import Enum

from bot.context import ShopContext
from bot.screens.texts import texts as t
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
