"""Admin commands on their own router behind the admin filter: for anyone else they do not exist."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot.callbacks import (
    AdminAction,
    AdminOrder,
    AdminOrderAt,
    AdminOrdersPage,
    RefundConfirm,
    RefundDecision,
    parse_id,
)
from bot.config import Settings
from bot.context import ShopContext
from bot.handlers.common import alert_text, show
from bot.runtime.refund_confirmations import PendingRefunds
from bot.screens import admin as views
from bot.screens import keyboards
from bot.screens.texts import en_admin as ta
from bot.shop import admin as actions
from bot.shop.promos import promo_command
from bot.shop.refunds import execute_refund, plan_refund, split_refund_args
from bot.shop.sales import sales_overview
from payments import CryptoPayError


class IsAdmin(Filter):
    def __init__(self, admin_ids: frozenset[int]) -> None:
        self.admin_ids = admin_ids

    async def __call__(self, event: Message | CallbackQuery, **_: Any) -> bool:
        user = event.from_user
        return user is not None and user.id in self.admin_ids


log = logging.getLogger("bot.admin")


def _order_id(args: str | None) -> int | None:
    return parse_id((args or "").strip().lstrip("#"))


def build_router(settings: Settings) -> Router:
    router = Router(name="admin")
    is_admin = IsAdmin(settings.admin_ids)
    router.message.filter(is_admin, F.chat.type == "private")
    router.callback_query.filter(is_admin)

    async def ask_refund(
        target: Message,
        ctx: ShopContext,
        confirmations: PendingRefunds,
        admin_id: int,
        args: str,
        order_id: int | None = None,
    ) -> None:
        rest = ""
        if order_id is None:
            order_id, rest = split_refund_args(args)
        if order_id is None:
            await target.answer(ta.REFUND_USAGE)
            await actions.audit(ctx, admin_id, "refund.request", args, "usage")
            return
        plan, text = await plan_refund(ctx, admin_id, order_id, rest)
        if plan is None:
            await target.answer(text)
            await actions.audit(ctx, admin_id, "refund.request", args, "refused")
            return
        token = await confirmations.put(plan, ctx.clock())
        await target.answer(text, reply_markup=keyboards.refund_confirm(token))
        details = f"order={order_id} amount={plan.amount} {plan.asset} reason={plan.reason}"
        await actions.audit(ctx, admin_id, "refund.request", details, "awaiting confirmation")

    @router.message(Command("help"))
    async def help_command(message: Message, ctx: ShopContext) -> None:
        await message.answer(ta.admin_help(ctx.bot_username))

    @router.message(Command("refund"))
    async def refund_command(
        message: Message,
        command: CommandObject,
        ctx: ShopContext,
        confirmations: PendingRefunds,
    ) -> None:
        assert message.from_user is not None
        await ask_refund(message, ctx, confirmations, message.from_user.id, command.args or "")

    @router.callback_query(RefundConfirm.filter())
    async def refund_decision(
        query: CallbackQuery,
        callback_data: RefundConfirm,
        ctx: ShopContext,
        confirmations: PendingRefunds,
    ) -> None:
        admin_id = query.from_user.id
        plan = await confirmations.take(callback_data.token, admin_id, ctx.clock())
        if plan is None:
            await query.answer(ta.CONFIRMATION_GONE, show_alert=True)
            return
        details = f"order={plan.order_id} amount={plan.amount} {plan.asset}"
        if callback_data.decision == RefundDecision.CANCEL:
            await show(query, ta.REFUND_CANCELLED)
            await query.answer()
            await actions.audit(ctx, admin_id, "refund.cancel", details, "cancelled")
            return
        await query.answer(ta.REFUND_SENDING)
        outcome = await execute_refund(ctx, plan, callback_data.token)
        await show(query, outcome.text)
        result = outcome.state.value
        if outcome.transfer_id is not None:
            result += f" transfer={outcome.transfer_id}"
        await actions.audit(ctx, admin_id, "refund.confirm", details, result)

    @router.message(Command("order"))
    async def order_command(message: Message, command: CommandObject, ctx: ShopContext) -> None:
        assert message.from_user is not None
        order_id = _order_id(command.args)
        if order_id is None:
            await message.answer(ta.ORDER_USAGE)
            return
        screen = await views.order_screen(ctx, order_id)
        await show(message, screen or ta.order_not_found(order_id))
        result = "shown" if screen else "not found"
        await actions.audit(ctx, message.from_user.id, "order.view", str(order_id), result)

    @router.callback_query(AdminOrder.filter())
    @router.callback_query(AdminOrderAt.filter())
    async def order_button(
        query: CallbackQuery,
        callback_data: AdminOrder | AdminOrderAt,
        ctx: ShopContext,
        confirmations: PendingRefunds,
    ) -> None:
        admin_id, order_id = query.from_user.id, callback_data.order_id
        page = None
        if isinstance(callback_data, AdminOrderAt):
            page = AdminOrdersPage(status=callback_data.status, before=callback_data.before)
        if callback_data.action == AdminAction.REFUND:
            await query.answer()
            if isinstance(query.message, Message):
                await ask_refund(
                    query.message, ctx, confirmations, admin_id, str(order_id), order_id
                )
            return
        if callback_data.action == AdminAction.RECHECK:
            note = await actions.recheck(ctx, admin_id, order_id)
            await query.answer(alert_text(note), show_alert=True)
        else:
            await query.answer()
            await actions.audit(ctx, admin_id, "order.view", str(order_id), "shown")
        screen = await views.order_screen(ctx, order_id, page)
        await show(query, screen or ta.order_not_found(order_id))

    @router.message(Command("orders"))
    async def orders_command(message: Message, command: CommandObject, ctx: ShopContext) -> None:
        assert message.from_user is not None
        status = None
        if command.args:
            status = views.parse_status(command.args)
            if status is None:
                await message.answer(ta.unknown_status(command.args, views.STATUS_NAMES))
                return
        await show(message, await views.orders_list_screen(ctx, status, 0))
        await actions.audit(ctx, message.from_user.id, "orders.list", command.args or "", "shown")

    @router.callback_query(AdminOrdersPage.filter())
    async def orders_page(
        query: CallbackQuery, callback_data: AdminOrdersPage, ctx: ShopContext
    ) -> None:
        status = views.parse_status(callback_data.status) if callback_data.status else None
        await show(query, await views.orders_list_screen(ctx, status, callback_data.before))
        await query.answer()

    @router.message(Command("stats"))
    async def stats_command(message: Message, ctx: ShopContext) -> None:
        assert message.from_user is not None
        sales = await sales_overview(ctx.db, ctx.clock(), ctx.settings.shop_currency)
        await show(message, await views.stats_screen(ctx, sales))
        try:
            png, caption = await views.sales_chart(sales)
        except Exception:  # the figures are sent already; a chart that fails is logged
            log.exception("could not draw the sales chart")
        else:
            await message.answer_photo(BufferedInputFile(png, "sales.png"), caption=caption)
        await actions.audit(ctx, message.from_user.id, "stats", "", "shown")

    @router.message(Command("balance"))
    async def balance_command(message: Message, ctx: ShopContext) -> None:
        assert message.from_user is not None
        try:
            text, result = await views.balance_text(ctx), "shown"
        except CryptoPayError as error:
            text, result = ta.cryptopay_down(error.name), f"error {error.name}"
        await message.answer(text)
        await actions.audit(ctx, message.from_user.id, "balance", "", result)

    @router.message(Command("stock"))
    async def stock_command(message: Message, command: CommandObject, ctx: ShopContext) -> None:
        assert message.from_user is not None
        sku = (command.args or "").strip()
        if not sku:
            await message.answer(await views.stock_list_text(ctx))
            await actions.audit(ctx, message.from_user.id, "stock.list", "", "shown")
            return
        if " " in sku:
            await message.answer(ta.STOCK_USAGE)
            return
        await message.answer(await views.stock_text(ctx, sku))
        await actions.audit(ctx, message.from_user.id, "stock.view", sku, "shown")

    @router.message(F.document)
    async def stock_upload(message: Message, ctx: ShopContext) -> None:
        assert message.from_user is not None and message.document is not None
        document = message.document
        sku = (message.caption or "").strip().split(maxsplit=1)
        name = f"{document.file_name or '?'} ({document.file_size or '?'} bytes)"
        if not sku:
            await message.answer(ta.UPLOAD_NO_SKU)
            return
        if not (document.file_name or "").lower().endswith(".txt"):
            text, result = ta.UPLOAD_NOT_TXT, "refused: not .txt"
        elif (document.file_size or 0) > actions.MAX_UPLOAD_BYTES:
            text, result = ta.upload_too_big(actions.MAX_UPLOAD_BYTES), "refused: too big"
        else:
            assert message.bot is not None
            data = await message.bot.download(document.file_id)
            assert data is not None
            upload = await actions.upload_codes(
                ctx, sku[0], data.read(actions.MAX_UPLOAD_BYTES + 1)
            )
            text = upload.text
            result = f"added={upload.added} skipped={upload.skipped}" if upload.ok else "refused"
        await message.answer(text)
        await actions.audit(ctx, message.from_user.id, "stock.upload", f"{sku[0]} {name}", result)

    @router.message(Command("promo"))
    async def promo(message: Message, command: CommandObject, ctx: ShopContext) -> None:
        assert message.from_user is not None
        await message.answer(await promo_command(ctx, message.from_user.id, command.args or ""))

    @router.message(Command("recheck"))
    async def recheck_command(message: Message, command: CommandObject, ctx: ShopContext) -> None:
        assert message.from_user is not None
        order_id = _order_id(command.args)
        if order_id is None:
            await message.answer(ta.RECHECK_USAGE)
            return
        await message.answer(await actions.recheck(ctx, message.from_user.id, order_id))

    return router
