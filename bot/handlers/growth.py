"""The owner's growth tools (PRODUCT.md §4.2) behind the admin filter: /export, /referrals.
(/stats, with its chart, is in bot/handlers/admin.py.)"""

from __future__ import annotations

import os
import tempfile

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import FSInputFile, Message

from bot.config import Settings
from bot.context import ShopContext
from bot.handlers.admin import IsAdmin
from bot.screens import admin as views
from bot.screens.texts import en_growth as tg
from bot.shop import admin as actions
from bot.shop.export import BadRange, split_range_args, write_orders_csv


def build_router(settings: Settings) -> Router:
    router = Router(name="growth")
    router.message.filter(IsAdmin(settings.admin_ids), F.chat.type == "private")

    @router.message(Command("export"))
    async def export_command(message: Message, command: CommandObject, ctx: ShopContext) -> None:
        assert message.from_user is not None
        args = command.args or ""
        try:
            span = split_range_args(args, ctx.clock().date())
        except BadRange as error:
            if error.reason == "order":
                text = tg.EXPORT_BAD_ORDER
            elif len(args.split()) > 2:
                text = tg.EXPORT_USAGE
            else:
                text = tg.export_bad_date(error.value)
            await message.answer(text)
            await actions.audit(ctx, message.from_user.id, "export", args, "refused")
            return
        if message.bot is not None:
            await message.bot.send_chat_action(message.chat.id, "upload_document")
        # Written to a temporary file page by page, then uploaded from it: a long range is
        # never held in memory.
        handle, path = tempfile.mkstemp(prefix="orders-", suffix=".csv")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                count = await write_orders_csv(ctx.db, out, span)
            await message.answer_document(
                FSInputFile(path, filename=span.file_name),
                caption=tg.export_caption(count, span.first, span.last),
            )
        finally:
            os.unlink(path)
        details = f"{span.first} {span.last}"
        await actions.audit(ctx, message.from_user.id, "export", details, f"{count} orders")

    @router.message(Command("referrals"))
    async def referrals_command(message: Message, ctx: ShopContext) -> None:
        assert message.from_user is not None
        await message.answer(await views.referrals_text(ctx))
        await actions.audit(ctx, message.from_user.id, "referrals", "", "shown")

    return router
