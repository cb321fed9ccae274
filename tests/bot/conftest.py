"""A real ShopContext for handler, webhook and job tests.

Real: a temporary SQLite file brought up by the migrations, our Crypto Pay client talking
over loopback HTTP to the FakeCryptoPay server, the rates cache, the aiogram Dispatcher and
the aiohttp app. The one double is the Telegram network edge: a "recording session" that
keeps every Bot API request and answers like Telegram would.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    GetFile,
    GetMe,
    SendDocument,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import CallbackQuery, Chat, File, InputFile, Message, Update, User
from redis.asyncio import Redis

from bot.app import create_dispatcher
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.config import load_settings
from bot.context import ShopContext
from bot.runtime.telegram_pacer import TelegramPacer
from bot.sandbox.cryptopay import FakeCryptoPay
from payments import CryptoPayClient, ExchangeRateCache
from storage import Database, Order, OutboxMessage, PaymentEvent, StockUnit, upgrade
from tests.conftest import connect_redis

# The token of the signature vectors, so that they verify against our context.
CP_TOKEN = "123456789:AAzQcZWQqQAbsfgPnOLr4FHC8Doa4L7KryC"
BOT_TOKEN = "42:TEST-token_for_the_recording_session"
BOT_ID = 42
BOT_USERNAME = "test_shop_bot"
ADMIN_ID = 900
ALICE = 1001
BOB = 1002
VECTORS = Path("/work/shared/cryptopay/vectors")
if not VECTORS.exists():  # a checkout without the shared folder: the repo's own copy
    VECTORS = Path(__file__).resolve().parent.parent / "payments" / "vectors"

CATALOG = """
currency = "USD"

[[categories]]
slug = "games"
title = "Game keys"

[[categories]]
slug = "indie"
title = "Indie games"
parent = "games"

[[categories]]
slug = "gifts"
title = "Gift cards"

[[products]]
sku = "solo"
category = "games"
title = "Solo Key"
description = "Exactly one key left."
price = "9.99"
codes = ["SOLO-0001"]

[[products]]
sku = "multi"
category = "games"
title = "Multi Key"
description = "Several keys, at most three per order."
price = "2.50"
max_per_order = 3
codes = ["MULTI-1", "MULTI-2", "MULTI-3", "MULTI-4", "MULTI-5"]

[[products]]
sku = "guide"
category = "games"
title = "Speedrun Guide"
price = "1.25"
unlimited = true
content = "https://example.com/guide.pdf"

[[products]]
sku = "indie1"
category = "indie"
title = "Indie One"
price = "4.00"
codes = ["INDIE-A", "INDIE-B"]
""" + "".join(
    f"""
[[products]]
sku = "gift{n:02d}"
category = "gifts"
title = "Gift card {n:02d}"
price = "1.00"
codes = ["GIFT-{n:02d}"]
"""
    for n in range(10)
)

_ids = itertools.count(1)


def next_id() -> int:
    """Unique update/message ids across the whole run (bot.handlers.shop keys its double-tap
    guard by (user, message) in a module-level dict)."""
    return next(_ids) + 10_000


def _now() -> datetime:
    return datetime.now(UTC)


class RecordingSession(BaseSession):
    """The Telegram network edge: records every request and answers like the Bot API.

    `fail[api_method]` is a list of exceptions (or factories taking the method) raised by the
    next calls of that method, one per call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.latency = 0.0  # seconds each call takes (the network and Telegram)
        self.in_flight: dict[int, int] = {}  # chat → calls to it being answered now
        self.max_in_flight = 0  # the most calls answered at once, over all chats
        self.max_in_flight_per_chat = 0
        self.requests: list[TelegramMethod[Any]] = []
        self.fail: dict[str, list[Any]] = {}
        self.accepted: list[TelegramMethod[Any]] = []  # the calls that "succeeded"
        self.files: dict[str, bytes] = {}  # file_id → content, for getFile and downloads
        # (method, file name, bytes) of every file uploaded (sendDocument, sendPhoto)
        self.uploads: list[tuple[str, str | None, bytes]] = []
        self._message_ids = itertools.count(500_000)

    def calls(self, api_method: str) -> list[Any]:
        return [m for m in self.requests if m.__api_method__ == api_method]

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        self.requests.append(method)
        if self.latency:
            chat = int(getattr(method, "chat_id", None) or 0)
            self.in_flight[chat] = self.in_flight.get(chat, 0) + 1
            self.max_in_flight = max(self.max_in_flight, sum(self.in_flight.values()))
            self.max_in_flight_per_chat = max(self.max_in_flight_per_chat, self.in_flight[chat])
            try:
                await asyncio.sleep(self.latency)
            finally:
                self.in_flight[chat] -= 1
        queue = self.fail.get(method.__api_method__)
        if queue:
            error = queue.pop(0)
            raise error(method) if callable(error) and not isinstance(error, Exception) else error
        self.accepted.append(method)
        for upload in (getattr(method, "document", None), getattr(method, "photo", None)):
            if isinstance(upload, InputFile):
                data = b"".join([chunk async for chunk in upload.read(bot)])
                self.uploads.append((method.__api_method__, upload.filename, data))
        me = User(id=BOT_ID, is_bot=True, first_name="Shop", username=BOT_USERNAME)
        if isinstance(method, GetMe):
            return me
        if isinstance(method, AnswerCallbackQuery):
            return True
        if isinstance(method, GetFile):
            content = self.files[method.file_id]
            return File(
                file_id=method.file_id,
                file_unique_id=f"u-{method.file_id}",
                file_size=len(content),
                file_path=f"documents/{method.file_id}",
            )
        if isinstance(method, SendMessage | SendDocument | SendPhoto | EditMessageText):
            chat_id = method.chat_id if method.chat_id is not None else 0
            message_id = getattr(method, "message_id", None) or next(self._message_ids)
            return Message(
                message_id=message_id,
                date=_now(),
                chat=Chat(id=int(chat_id), type="private"),
                from_user=me,
                text=getattr(method, "text", None),
                caption=getattr(method, "caption", None),
            )
        return True

    async def stream_content(  # type: ignore[override]
        self, url: str, *args: Any, chunk_size: int = 65536, **kwargs: Any
    ) -> Any:
        content = self.files[url.rsplit("/documents/", 1)[1]]
        for start in range(0, len(content), chunk_size):
            yield content[start : start + chunk_size]

    async def close(self) -> None:
        pass


@dataclass
class Clock:
    """ctx.clock: real time plus an offset the test moves."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Shop:
    """Everything a test touches."""

    ctx: ShopContext
    cp: FakeCryptoPay
    session: RecordingSession
    bot: Bot
    clock: Clock
    dp: Dispatcher
    tmp_path: Path

    # --- feeding updates ---------------------------------------------------------------------

    async def send(
        self, text: str, user_id: int = ALICE, *, language_code: str | None = None
    ) -> Update:
        user = User(
            id=user_id, is_bot=False, first_name=f"User{user_id}", language_code=language_code
        )
        message = Message(
            message_id=next_id(),
            date=_now(),
            chat=Chat(id=user_id, type="private"),
            from_user=user,
            text=text,
        )
        update = Update(update_id=next_id(), message=message)
        await self.dp.feed_update(self.bot, update)
        return update

    def callback(
        self,
        data: Any,
        user: int = ALICE,
        message_id: int | None = None,
        *,
        language_code: str | None = None,
    ) -> Update:
        tg_user = User(id=user, is_bot=False, first_name=f"User{user}", language_code=language_code)
        packed = data if isinstance(data, str) else data.pack()
        on = Message(
            message_id=message_id or next_id(),
            date=_now(),
            chat=Chat(id=user, type="private"),
            from_user=User(id=BOT_ID, is_bot=True, first_name="Shop"),
            text="(an earlier screen)",
        )
        query = CallbackQuery(
            id=str(next_id()), from_user=tg_user, chat_instance="ci", message=on, data=packed
        )
        return Update(update_id=next_id(), callback_query=query)

    async def press(
        self,
        data: Any,
        user: int = ALICE,
        message_id: int | None = None,
        *,
        language_code: str | None = None,
    ) -> Update:
        update = self.callback(data, user, message_id, language_code=language_code)
        await self.dp.feed_update(self.bot, update)
        return update

    # --- what the bot said -------------------------------------------------------------------

    def answers_to(self, update: Update) -> list[AnswerCallbackQuery]:
        assert update.callback_query is not None
        return [
            m
            for m in self.session.calls("answerCallbackQuery")
            if m.callback_query_id == update.callback_query.id
        ]

    def last_text(self) -> Any:
        """The last sendMessage or editMessageText."""
        for m in reversed(self.session.requests):
            if isinstance(m, SendMessage | EditMessageText):
                return m
        raise AssertionError("the bot sent no message")

    # --- database --------------------------------------------------------------------------

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        async with self.ctx.db.session() as s:
            return list((await s.execute(sa.select(model).where(*where))).scalars().all())

    async def order(self, order_id: int) -> Order:
        (found,) = await self.rows(Order, Order.id == order_id)
        return found

    async def orders(self) -> list[Order]:
        return await self.rows(Order)

    async def units(self, order_id: int) -> list[StockUnit]:
        return await self.rows(StockUnit, StockUnit.order_id == order_id)

    async def outbox(self, order_id: int | None = None, kind: str | None = None) -> list[Any]:
        where = []
        if order_id is not None:
            where.append(OutboxMessage.order_id == order_id)
        if kind is not None:
            where.append(OutboxMessage.kind == kind)
        return await self.rows(OutboxMessage, *where)

    async def events(self) -> list[PaymentEvent]:
        return await self.rows(PaymentEvent)


def markup_buttons(method: Any) -> list[Any]:
    markup = method.reply_markup
    return [b for row in (markup.inline_keyboard if markup else []) for b in row]


def button_texts(method: Any) -> list[str]:
    return [b.text for b in markup_buttons(method)]


async def _fast_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


def make_settings(tmp_path: Path, cp: FakeCryptoPay, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "BOT_TOKEN": BOT_TOKEN,
        "CRYPTOPAY_TOKEN": CP_TOKEN,
        "CRYPTOPAY_NETWORK": "testnet",
        "CRYPTOPAY_API_URL": cp.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/shop.db",
        "ADMIN_IDS": str(ADMIN_ID),
        "SHOP_CURRENCY": "USD",
        "ACCEPTED_ASSETS": "USDT,TON,BTC",
        "INVOICE_TTL_SECONDS": "900",
        "MAX_UNPAID_ORDERS": "3",
        "AUTO_MIGRATE": "true",
    }
    values.update(extra)
    return load_settings(**values)


@pytest.fixture
async def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Shop]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    async with FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp:
        settings = make_settings(tmp_path, cp)
        db = Database(settings.database_url)
        await upgrade(db)
        await import_catalog_file(db, parse_catalog(CATALOG, "USD"))
        cryptopay = CryptoPayClient(
            CP_TOKEN,
            cp.base_url,
            timeout=5.0,
            max_attempts=2,
            total_deadline=5.0,
            backoff_base=0.01,
            backoff_max=0.01,
            sleep=_fast_sleep,
        )
        rates = ExchangeRateCache(cryptopay, ttl_seconds=60)
        await rates.refresh()
        session = RecordingSession()
        bot = Bot(
            BOT_TOKEN,
            session=session,
            default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
        )
        clock = Clock()
        ctx = ShopContext(
            settings=settings,
            db=db,
            cryptopay=cryptopay,
            rates=rates,
            bot=bot,
            bot_username=BOT_USERNAME,
            clock=clock,
            # Telegram's pace on the test's clock: moving the clock past a wait ends it.
            pacer=TelegramPacer(clock=lambda: clock().timestamp()),
        )
        dp = create_dispatcher(ctx)
        try:
            yield Shop(ctx, cp, session, bot, clock, dp, tmp_path)
        finally:
            await ctx.close()


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A client of the real Redis at 127.0.0.1:6379 (skipped when unreachable, except
    under CI=true)."""
    client = await connect_redis(REDIS_URL)
    yield client
    await client.aclose()
