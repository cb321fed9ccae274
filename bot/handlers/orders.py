"""My orders: the list, one order, Check payment and Cancel — each only for the order's buyer."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import BufferedInputFile, CallbackQuery

from bot.callbacks import OrderAction, OrderButton, OrdersPage
from bot.context import ShopContext
from bot.handlers.common import show, show_orders
from bot.i18n import gettext
from bot.screens.orders import cancel_note, cancel_question, order_screen, payment_note
from bot.screens.texts import texts as t
from bot.shop.orders import OrderAccess, cancel_order, check_payment, own_order
from storage import OPEN

# Read in the current language where used: `gettext(DENIED[…])`.
DENIED = {OrderAccess.NOT_FOUND: t.ORDER_NOT_FOUND, OrderAccess.NOT_YOURS: t.NOT_YOUR_ORDER}


def build_router() -> Router:
    router = Router(name="orders")

    @router.callback_query(OrdersPage.filter())
    async def orders_page(
        query: CallbackQuery, callback_data: OrdersPage, ctx: ShopContext
    ) -> None:
        await show_orders(query, ctx, query.from_user.id, callback_data.before)
        await query.answer()

    @router.callback_query(OrderButton.filter())
    async def order_button(
        query: CallbackQuery, callback_data: OrderButton, ctx: ShopContext
    ) -> None:
        user_id, order_id = query.from_user.id, callback_data.order_id
        if callback_data.action == OrderAction.SHOW:
            access, screen = await order_screen(ctx, user_id, order_id)
            if screen is None:
                await query.answer(gettext(DENIED[access]), show_alert=True)
                return
            await show(query, screen)
            await query.answer()
            if screen.document is not None:  # goods too long for one message
                name, data = screen.document
                await ctx.bot.send_document(user_id, BufferedInputFile(data, name))
        elif callback_data.action == OrderAction.ASK_CANCEL and await _still_open(
            query, ctx, order_id
        ):
            await show(query, cancel_question(order_id))
            await query.answer()
        elif not await ctx.taps.allow(user_id, ctx.clock().timestamp()):
            await query.answer(t.TAPS_THROTTLED)  # Check payment / Cancel cost Crypto Pay calls
        else:
            note = None
            if callback_data.action in (OrderAction.CANCEL, OrderAction.ASK_CANCEL):
                access, cancellation = await cancel_order(ctx, user_id, order_id)
                if cancellation is not None:
                    note = cancel_note(order_id, cancellation)
            else:
                access, check = await check_payment(ctx, user_id, order_id)
                if check is not None:
                    note = payment_note(order_id, check)
            if note is None:
                await query.answer(gettext(DENIED[access]), show_alert=True)
                return
            _, screen = await order_screen(ctx, user_id, order_id)
            if screen is not None:
                await show(query, screen)
            await query.answer(note, show_alert=True)

    return router


async def _still_open(query: CallbackQuery, ctx: ShopContext, order_id: int) -> bool:
    """Whether Cancel should ask first: the buyer's own order, still open. (Otherwise the
    cancel path answers: not found, not yours, or why it can no longer be cancelled.)"""
    _, details = await own_order(ctx, query.from_user.id, order_id)
    return details is not None and details.order.status in OPEN
