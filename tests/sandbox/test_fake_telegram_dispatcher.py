"""A real aiogram Dispatcher talking to the fake: long polling and webhook mode."""

from __future__ import annotations

import asyncio

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.sandbox import FakeTelegram

TOKEN = "77:DISPATCH"


def build_router() -> Router:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Buy", callback_data="buy:1")]]
        )
        await message.answer("<b>Welcome</b>, pick one", reply_markup=keyboard)

    @router.callback_query(F.data.startswith("buy:"))
    async def buy(query: CallbackQuery) -> None:
        await query.message.edit_text("Order #1 created")
        await query.answer("Reserved")

    return router


def make_bot(tg: FakeTelegram) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    return Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode="HTML"))


async def run_conversation(tg: FakeTelegram) -> None:
    alice = tg.user(501, "Alice", username="alice")
    await alice.send("/start")
    menu = await alice.wait_for_message("Welcome")
    assert menu.text == "Welcome, pick one" and menu.raw_text.startswith("<b>")
    query_id = await alice.tap(menu, "Buy")
    edited = await alice.wait_for_message("Order #1")
    assert edited.message_id == menu.message_id and edited.reply_markup is None
    assert (await alice.wait_for_answer(query_id))["text"] == "Reserved"
    assert [m.text for m in alice.chat_messages()] == ["Order #1 created"]


async def test_long_polling_dispatcher() -> None:
    async with FakeTelegram(token=TOKEN) as tg:
        bot = make_bot(tg)
        dp = Dispatcher()
        dp.include_router(build_router())
        polling = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, close_bot_session=False)
        )
        try:
            await run_conversation(tg)
            offsets = [p.get("offset") for p in tg.calls_of("getUpdates")]
            assert any(o not in (None, "") for o in offsets)  # updates were confirmed
        finally:
            await dp.stop_polling()
            await asyncio.wait_for(polling, 5)
            await bot.session.close()


async def test_webhook_dispatcher() -> None:
    async with FakeTelegram(token=TOKEN) as tg:
        bot = make_bot(tg)
        dp = Dispatcher()
        dp.include_router(build_router())
        app = web.Application()
        SimpleRequestHandler(dp, bot, secret_token="topsecret").register(app, "/telegram/webhook")
        setup_application(app, dp, bot=bot)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        try:
            url = f"http://127.0.0.1:{port}/telegram/webhook"
            await bot.set_webhook(url, secret_token="topsecret")
            await run_conversation(tg)
            assert all(d["status"] == 200 for d in tg.webhook_deliveries)
            # A wrong secret is refused by aiogram, and the fake records the failure.
            tg.webhook["secret_token"] = "wrong"
            await tg.user(502, "Bob").send("/start")
            assert tg.webhook_deliveries[-1]["status"] == 401
            assert "401" in (await bot.get_webhook_info()).last_error_message
        finally:
            await runner.cleanup()
