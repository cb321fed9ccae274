"""/broadcast and /broadcasts (admins only): the message, an optional button line, a preview
exactly as customers get it with the audience, then Send; the progress message's Stop.

The draft lives in the FSM state (Redis with REDIS_URL), so any replica takes the next step.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, MessageEntity
from aiogram.utils.text_decorations import html_decoration

from bot.callbacks import BroadcastDraftButton, BroadcastStep, BroadcastStop
from bot.config import Settings
from bot.context import ShopContext
from bot.handlers.admin import IsAdmin
from bot.handlers.common import alert_text, show
from bot.screens import broadcast as views
from bot.screens.outgoing import Outgoing, broadcast_outgoing
from bot.screens.texts import en_broadcast as tb
from bot.shop import admin as actions
from bot.shop.broadcasts import parse_button_line, start_broadcast
from storage import (
    BroadcastCounts,
    audience_size,
    broadcast_counts,
    get_broadcast,
    recent_broadcasts,
    set_progress_message,
    stop_broadcast,
)


class BroadcastDraft(StatesGroup):
    message = State()
    button = State()
    preview = State()


async def send_outgoing(bot: Bot, chat_id: int, out: Outgoing) -> None:
    if out.photo is not None:
        await bot.send_photo(
            chat_id, out.photo, caption=out.text or None, reply_markup=out.reply_markup
        )
    else:
        await bot.send_message(chat_id, out.text, reply_markup=out.reply_markup)


def html_of(text: str, entities: list[MessageEntity] | None) -> str:
    """`text` (a beginning of a message's text) as HTML, its entities cut to it (their
    offsets and lengths count UTF-16 code units)."""
    size = len(text.encode("utf-16-le")) // 2
    kept = [
        e.model_copy(update={"length": min(e.length, size - e.offset)})
        for e in entities or []
        if e.offset < size
    ]
    return html_decoration.unparse(text, kept)


async def with_button_line(
    ctx: ShopContext, text: str, entities: list[MessageEntity] | None, *, need_text: bool = False
) -> dict[str, str]:
    """The draft's text (HTML) and, when the message's last line is a good button line,
    that button (the line left out of the text)."""
    head, newline, last = text.rpartition("\n")
    if newline and (head.strip() or not need_text) and "|" in last:
        line = await parse_button_line(ctx.db, ctx.bot_url, last)
        if line.error is None:
            return {"text": html_of(head.rstrip(), entities), "markup": line.markup_json()}
    return {"text": html_of(text, entities) if text else ""}


def build_router(settings: Settings) -> Router:
    router = Router(name="broadcast")
    is_admin = IsAdmin(settings.admin_ids)
    router.message.filter(is_admin, F.chat.type == "private")
    router.callback_query.filter(is_admin)
    drafting = StateFilter(BroadcastDraft.message, BroadcastDraft.button, BroadcastDraft.preview)

    @router.message(Command("broadcast"))
    async def broadcast_command(message: Message, state: FSMContext) -> None:
        await state.set_state(BroadcastDraft.message)
        await state.set_data({})
        await message.answer(tb.BROADCAST_ASK, reply_markup=views.cancel_only())

    @router.message(Command("cancel"), drafting)
    async def cancel_command(message: Message, state: FSMContext) -> None:
        await state.clear()
        await message.answer(tb.BROADCAST_CANCELLED)

    # Commands still work while a draft is open; any other message is the next step. The
    # preview comes at once; a button line sent after it puts that button under it.
    # The message's own last line may be the button line too.
    @router.message(BroadcastDraft.message, F.photo)
    async def photo_entered(message: Message, state: FSMContext, ctx: ShopContext) -> None:
        assert message.photo
        data = await with_button_line(ctx, message.caption or "", message.caption_entities)
        await preview(message, state, ctx, {**data, "photo": message.photo[-1].file_id})

    @router.message(BroadcastDraft.message, F.text, ~F.text.startswith("/"))
    async def text_entered(message: Message, state: FSMContext, ctx: ShopContext) -> None:
        assert message.text is not None
        data = await with_button_line(ctx, message.text, message.entities, need_text=True)
        await preview(message, state, ctx, {**data, "photo": None})

    @router.message(BroadcastDraft.preview, F.text, ~F.text.startswith("/"))
    async def button_after_preview(message: Message, state: FSMContext, ctx: ShopContext) -> None:
        assert message.text is not None
        line = await parse_button_line(
            ctx.db, ctx.bot_url, message.text, format_error=tb.BUTTON_LINE_FORMAT_AT_PREVIEW
        )
        if line.error is not None:
            await message.answer(line.error)
            return
        await preview(message, state, ctx, {**await state.get_data(), "markup": line.markup_json()})

    @router.message(BroadcastDraft.preview, ~F.text)
    async def not_a_button_line(message: Message) -> None:
        await message.answer(tb.BUTTON_LINE_FORMAT_AT_PREVIEW)

    @router.message(BroadcastDraft.message, ~F.text)
    async def not_a_broadcast(message: Message) -> None:
        await message.answer(tb.BROADCAST_NOT_TEXT, reply_markup=views.cancel_only())

    # A draft left at the former "Add a button?" step (its state kept in Redis across an
    # upgrade) still finishes: a button line or No button gives the preview.
    @router.message(BroadcastDraft.button, F.text, ~F.text.startswith("/"))
    async def button_entered(message: Message, state: FSMContext, ctx: ShopContext) -> None:
        assert message.text is not None
        line = await parse_button_line(ctx.db, ctx.bot_url, message.text)
        if line.error is not None:
            await message.answer(line.error, reply_markup=views.button_step())
            return
        await preview(message, state, ctx, {**await state.get_data(), "markup": line.markup_json()})

    @router.message(BroadcastDraft.button, ~F.text)
    async def button_not_text(message: Message) -> None:
        await message.answer(tb.BUTTON_LINE_FORMAT, reply_markup=views.button_step())

    async def preview(
        message: Message, state: FSMContext, ctx: ShopContext, data: dict[str, Any]
    ) -> None:
        """The draft `data` exactly as customers would get it, then the audience and Send /
        Cancel. A draft Telegram refuses (a button link it rejects, say) is not kept: the
        admin is told why, and the draft stays as it was."""
        assert message.bot is not None
        out = broadcast_outgoing(data.get("text", ""), data.get("photo"), data.get("markup"))
        try:
            await send_outgoing(message.bot, message.chat.id, out)
        except TelegramBadRequest as error:
            await message.answer(tb.preview_refused(error.message))
            return
        buyers_only = bool(data.get("buyers_only"))  # a button added keeps the audience
        await state.set_data({**data, "buyers_only": buyers_only})
        await state.set_state(BroadcastDraft.preview)
        text, markup = await controls(ctx, buyers_only=buyers_only)
        await message.answer(text, reply_markup=markup)

    async def controls(ctx: ShopContext, *, buyers_only: bool) -> tuple[str, InlineKeyboardMarkup]:
        everyone = await audience_size(ctx.db, buyers_only=False)
        buyers = await audience_size(ctx.db, buyers_only=True)
        n = buyers if buyers_only else everyone
        text = tb.preview_note(buyers_only, n) + "\n\n" + tb.BUTTON_HINT
        return text, views.preview_controls(everyone, buyers, buyers_only)

    @router.callback_query(BroadcastDraftButton.filter(F.step == BroadcastStep.CANCEL))
    async def cancel_button(query: CallbackQuery, state: FSMContext) -> None:
        await state.clear()
        await show(query, tb.BROADCAST_CANCELLED)
        await query.answer()

    @router.callback_query(
        BroadcastDraftButton.filter(F.step == BroadcastStep.NO_BUTTON), BroadcastDraft.button
    )
    async def no_button(query: CallbackQuery, state: FSMContext, ctx: ShopContext) -> None:
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_reply_markup(reply_markup=None)
            await preview(query.message, state, ctx, await state.get_data())

    @router.callback_query(
        BroadcastDraftButton.filter(F.step.in_({BroadcastStep.EVERYONE, BroadcastStep.BUYERS})),
        BroadcastDraft.preview,
    )
    async def audience(
        query: CallbackQuery,
        callback_data: BroadcastDraftButton,
        state: FSMContext,
        ctx: ShopContext,
    ) -> None:
        buyers_only = callback_data.step == BroadcastStep.BUYERS
        await state.update_data(buyers_only=buyers_only)
        text, markup = await controls(ctx, buyers_only=buyers_only)
        await show(query, text, markup)
        await query.answer()

    @router.callback_query(
        BroadcastDraftButton.filter(F.step == BroadcastStep.SEND), BroadcastDraft.preview
    )
    async def send(query: CallbackQuery, state: FSMContext, ctx: ShopContext) -> None:
        data = await state.get_data()
        buyers_only = bool(data.get("buyers_only"))
        if not await audience_size(ctx.db, buyers_only=buyers_only):
            await query.answer(alert_text(tb.BROADCAST_NOBODY), show_alert=True)
            return
        await state.clear()
        # The message with Send becomes the progress message; a second tap of it (both taps
        # of a double tap arrive, handled at once) starts nothing.
        draft = query.message.message_id if isinstance(query.message, Message) else None
        broadcast = await start_broadcast(
            ctx.db,
            query.from_user.id,
            data.get("text", ""),
            data.get("photo"),
            data.get("markup"),
            buyers_only=buyers_only,
            draft_message_id=draft,
        )
        await query.answer()
        if broadcast is None:
            return
        assert broadcast.id is not None
        text = views.progress_text(broadcast, BroadcastCounts(), ctx.clock(), ctx.pacer.per_second)
        shown = await show(query, text, views.stop_button(broadcast.id))
        if shown is not None and shown.message_id != draft:
            await set_progress_message(ctx.db, broadcast.id, shown.message_id)
        ctx.broadcast_wakeup.set()
        details = f"#{broadcast.id} audience={'buyers' if buyers_only else 'everyone'}"
        await actions.audit(ctx, query.from_user.id, "broadcast.send", details, "started")

    @router.callback_query(BroadcastDraftButton.filter())
    async def draft_gone(query: CallbackQuery) -> None:
        await query.answer(alert_text(tb.BROADCAST_DRAFT_GONE), show_alert=True)

    @router.callback_query(BroadcastStop.filter())
    async def stop(query: CallbackQuery, callback_data: BroadcastStop, ctx: ShopContext) -> None:
        broadcast_id = callback_data.broadcast_id
        if not await stop_broadcast(ctx.db, broadcast_id, ctx.clock()):
            await query.answer(alert_text(tb.BROADCAST_ALREADY_OVER), show_alert=True)
            return
        await query.answer()
        broadcast = await get_broadcast(ctx.db, broadcast_id)
        assert broadcast is not None
        counts = (await broadcast_counts(ctx.db, [broadcast_id]))[broadcast_id]
        await show(query, views.report_text(broadcast, counts, ctx.clock()))
        await actions.audit(
            ctx, query.from_user.id, "broadcast.stop", f"#{broadcast_id}", "stopped"
        )

    @router.message(Command("broadcasts"))
    async def broadcasts_command(message: Message, ctx: ShopContext) -> None:
        rows = await recent_broadcasts(ctx.db)
        counts = await broadcast_counts(ctx.db, [b.id for b in rows if b.id is not None])
        await message.answer(
            views.broadcasts_text([(b, counts[b.id]) for b in rows if b.id is not None])
        )

    return router
