"""The fake Bot API against aiogram's real client: every answer must pass aiogram's models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web

from bot.sandbox import FakeTelegram

TOKEN = "42:TEST-token"


def kb(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=t, callback_data=d) for t, d in row] for row in rows
        ]
    )


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="shop_bot") as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    bot = Bot(TOKEN, session=session)
    yield bot
    await session.close()


async def test_get_me_and_wrong_token(tg: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 42 and me.is_bot and me.username == "shop_bot"
    assert me.can_join_groups is not None and me.supports_inline_queries is False
    other = Bot("42:WRONG", session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    with pytest.raises(TelegramUnauthorizedError):
        await other.get_me()
    await other.session.close()


async def test_unknown_method_is_404_envelope(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}/bot{TOKEN}/frobnicate") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        # Method names are case-insensitive, GET with a query string works, like Telegram.
        async with http.get(f"{tg.base_url}/bot{TOKEN}/GETME") as resp:
            body = await resp.json()
            assert body["ok"] is True and body["result"]["id"] == 42


async def test_send_edit_tap_answer_flow(tg: FakeTelegram, bot: Bot) -> None:
    alice = tg.user(1001, "Alice", username="alice")
    sent = await bot.send_message(
        1001, "<b>Menu</b> &amp; more", parse_mode="HTML", reply_markup=kb([("Buy", "buy:1")])
    )
    assert sent.text == "Menu & more" and sent.chat.id == 1001 and sent.from_user.id == 42
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "buy:1"

    query_id = await alice.tap(sent, "Buy")
    updates = await bot.get_updates(timeout=1)
    assert len(updates) == 1
    cq = updates[0].callback_query
    assert cq.id == query_id and cq.data == "buy:1" and cq.from_user.id == 1001
    assert cq.message.message_id == sent.message_id

    assert await bot.answer_callback_query(query_id, text="ok") is True
    assert (await alice.wait_for_answer(query_id))["text"] == "ok"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("123456")

    edited = await bot.edit_message_text(
        "Order #7", chat_id=1001, message_id=sent.message_id, reply_markup=kb([("Pay", "pay:7")])
    )
    assert edited.text == "Order #7" and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Order #7",
            chat_id=1001,
            message_id=sent.message_id,
            reply_markup=kb([("Pay", "pay:7")]),
        )
    await bot.edit_message_reply_markup(chat_id=1001, message_id=sent.message_id)
    current = alice.last_message()
    assert current.text == "Order #7" and current.reply_markup is None and current.edits == 2
    assert [m.text for m in alice.chat_messages()] == ["Order #7"]
    assert len(tg.calls_of("editMessageText")) == 2


async def test_validation_errors_like_telegram(tg: FakeTelegram, bot: Bot) -> None:
    tg.user(5, "Bob")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(5, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(5, "hi", reply_markup=kb([("B", "d" * 65)]))
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "hi")
    with pytest.raises(TelegramBadRequest, match="Unsupported start tag"):
        await bot.send_message(5, "a <div>b</div>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=5, message_id=77)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}/bot{TOKEN}/sendMessage", data={"chat_id": "5"}) as r:
            assert r.status == 400
            assert (await r.json())["description"] == "Bad Request: message text is empty"


async def test_send_document_records_upload(tg: FakeTelegram, bot: Bot) -> None:
    carol = tg.user(7, "Carol")
    doc = BufferedInputFile(b"CODE-1\nCODE-2\n", filename="codes.txt")
    msg = await bot.send_document(7, doc, caption="Your codes")
    assert msg.document.file_name == "codes.txt" and msg.caption == "Your codes"
    recorded = await carol.wait_for_message("Your codes", since=0)
    assert recorded.file.content == b"CODE-1\nCODE-2\n"
    photo = await bot.send_photo(7, "https://example.com/p.jpg", caption="pic")
    assert photo.photo[-1].width == 800
    assert await bot.delete_message(7, msg.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(7, msg.message_id)


async def test_user_message_long_poll_and_offset(tg: FakeTelegram, bot: Bot) -> None:
    dave = tg.user(8, "Dave", username="dave")
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_for_call("getUpdates")
    await dave.send("/start p_witcher3")
    updates = await asyncio.wait_for(poll, 2)  # returns as soon as the update is queued
    assert updates[0].message.text == "/start p_witcher3"
    assert updates[0].message.entities[0].type == "bot_command"
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == []
    assert tg.pending_updates == []

    await dave.send("hello")
    assert await bot.get_updates(allowed_updates=["callback_query"], timeout=0) == []


async def test_user_document_download(tg: FakeTelegram, bot: Bot) -> None:
    admin = tg.user(9, "Admin")
    await admin.send_document("stock.txt", b"A\nB\n", caption="/stock x")
    [update] = await bot.get_updates()
    file = await bot.get_file(update.message.document.file_id)
    data = await bot.download_file(file.file_path)
    assert data.read() == b"A\nB\n"


async def test_fault_injection_and_blocking(tg: FakeTelegram, bot: Bot) -> None:
    tg.user(10, "Eve")
    tg.user(11, "Frank")
    tg.fail_next("sendMessage", status=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(10, "hi")
    assert info.value.retry_after == 3
    tg.fail_next("sendMessage", status=500, times=2, for_chat=11)
    await bot.send_message(10, "not affected")
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(11, "hi")
    await bot.send_message(11, "third time lucky")
    tg.block(10)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(10, "hi")
    tg.fail_next("getMe", status=404)
    with pytest.raises(TelegramNotFound):
        await bot.get_me()


async def test_webhook_mode(tg: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[dict, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/tg", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/tg", secret_token="s3cr3t")
        info = await bot.get_webhook_info()
        assert info.url.endswith("/tg") and info.pending_update_count == 0
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        await tg.user(12, "Gina").send("/start")
        assert received[0][0]["message"]["text"] == "/start" and received[0][1] == "s3cr3t"
        assert tg.webhook_deliveries[0]["status"] == 200
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_webhook_targets_take_turns(tg: FakeTelegram, bot: Bot) -> None:
    """A load balancer in front of replicas: updates alternate between the target URLs."""
    received: list[tuple[str, str | None]] = []

    def hook(name: str):
        async def handle(request: web.Request) -> web.Response:
            update = await request.json()
            secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
            received.append((f"{name}:{update['message']['text']}", secret))
            return web.json_response({})

        return handle

    app = web.Application()
    app.router.add_post("/a", hook("a"))
    app.router.add_post("/b", hook("b"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        assert await bot.set_webhook(f"{base}/a", secret_token="lb")
        tg.webhook_targets = [f"{base}/a", f"{base}/b"]
        for text in ("1", "2", "3"):
            await tg.user(14, "Ivy").send(text)
        assert received == [("a:1", "lb"), ("b:2", "lb"), ("a:3", "lb")]
        assert [d["url"] for d in tg.webhook_deliveries] == [f"{base}/a", f"{base}/b", f"{base}/a"]
    finally:
        await runner.cleanup()


async def test_in_flight_peaks_and_clear_faults(tg: FakeTelegram, bot: Bot) -> None:
    tg.user(15, "Jon")
    tg.fail_next("sendMessage", status=None, delay=0.3, times=2)
    await asyncio.gather(bot.send_message(15, "a"), bot.send_message(15, "b"))
    assert tg.max_in_flight["sendMessage"] == 2 and tg.in_flight["sendMessage"] == 0
    tg.fail_next("sendMessage", status=500, times=5)
    tg.clear_faults()
    assert (await bot.send_message(15, "c")).text == "c"


async def test_concurrent_get_updates_conflict(tg: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_for_call("getUpdates")
    second = asyncio.create_task(bot.get_updates(timeout=5))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 2)
    await tg.user(13, "Hal").send("x")
    assert len(await asyncio.wait_for(second, 2)) == 1


async def test_commands_menu_and_misc(tg: FakeTelegram, bot: Bot) -> None:
    from aiogram.types import BotCommand, MenuButtonCommands

    assert await bot.set_my_commands([BotCommand(command="start", description="Start")])
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert await bot.delete_my_commands()
    assert await bot.set_chat_menu_button(menu_button=MenuButtonCommands())
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])
    assert await bot.close() is True
    assert await bot.log_out() is True


async def test_latency_and_a_client_that_goes_away(tg: FakeTelegram, bot: Bot) -> None:
    alice = tg.user(1001, "Alice")
    tg.latency = 0.3
    started = asyncio.get_running_loop().time()
    await bot.send_message(alice.id, "slow but there")
    assert asyncio.get_running_loop().time() - started >= 0.3
    # A client that gives up before the call arrives: nothing reaches the chat.
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TimeoutError):
            await http.post(
                f"{tg.base_url}/bot{TOKEN}/sendMessage",
                json={"chat_id": alice.id, "text": "never arrives"},
                timeout=aiohttp.ClientTimeout(total=0.1),
            )
    await tg.wait_until(lambda: tg.abandoned or None, timeout=5, what="the call abandoned")
    assert [p["text"] for _, p in tg.abandoned] == ["never arrives"]
    assert [m.text for m in alice.chat_messages()] == ["slow but there"]
