"""TelegramPacer: the bot's global pace, each chat's pace, priority, flood control."""

from __future__ import annotations

import asyncio
import time

from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendMessage

from bot.runtime.telegram_pacer import FloodControlObserver, TelegramPacer


async def granted_at(pacer: TelegramPacer, chat: int, priority: int = 0) -> float:
    await pacer.turn(chat, priority=priority)
    return time.monotonic()


async def test_global_pace_spaces_sends_across_chats() -> None:
    pacer = TelegramPacer(50)
    times = sorted(await asyncio.gather(*(granted_at(pacer, chat) for chat in range(1, 21))))
    # Never ahead of the 1/50 s grid that starts with the first send.
    for n, granted in enumerate(times):
        assert granted - times[0] >= n / 50 - 0.002
    assert times[-1] - times[0] < 2  # and it does get going


async def test_a_chat_has_its_own_pace_private_and_group() -> None:
    pacer = TelegramPacer(1000)
    private = [asyncio.create_task(granted_at(pacer, 5)) for _ in range(3)]
    group = [asyncio.create_task(granted_at(pacer, -100)) for _ in range(2)]
    p = await asyncio.gather(*private)
    g = await asyncio.gather(*group)
    assert p[1] - p[0] >= 0.99 and p[2] - p[1] >= 0.99  # one a second
    assert g[1] - g[0] >= 2.99  # twenty a minute


async def test_priority_goes_first_when_slots_are_scarce() -> None:
    pacer = TelegramPacer(20)
    pacer.flood_control(0.2)  # nobody may send for a moment: both wait
    order: list[str] = []

    async def send(name: str, chat: int, priority: int) -> None:
        await pacer.turn(chat, priority=priority)
        order.append(name)

    admin = asyncio.create_task(send("admin", 900, 1))  # tasks start in this order:
    goods = asyncio.create_task(send("goods", 1001, 0))  # the admin notice asks first
    await asyncio.gather(admin, goods)
    assert order == ["goods", "admin"]


async def test_flood_control_holds_the_chat_and_the_whole_bot() -> None:
    pacer = TelegramPacer(1000)
    started = time.monotonic()
    pacer.flood_control(0.5, chat_id=5)
    assert pacer.paused_for() > 0.4
    other, same = await asyncio.gather(granted_at(pacer, 6), granted_at(pacer, 5))
    assert other - started >= 0.49 and same - started >= 0.49


async def test_a_waiter_that_gives_up_does_not_block_the_others() -> None:
    pacer = TelegramPacer(5)
    await pacer.turn(1)
    quitter = asyncio.create_task(pacer.turn(2))
    follower = asyncio.create_task(granted_at(pacer, 3))
    await asyncio.sleep(0)  # one loop turn: both are queued (no timing involved)
    quitter.cancel()
    started = time.monotonic()
    await asyncio.wait_for(follower, 2)
    assert time.monotonic() - started < 0.3  # the next slot (0.2 s), not two (0.4 s)


async def test_the_observer_tells_the_pacer_about_any_429() -> None:
    pacer = TelegramPacer()
    observer = FloodControlObserver(pacer)
    method = SendMessage(chat_id=77, text="hi")

    async def flooded(bot: Bot, m: SendMessage) -> None:
        raise TelegramRetryAfter(method=m, message="Too Many Requests", retry_after=3)

    bot = Bot("42:TEST-token")
    try:
        try:
            await observer(flooded, bot, method)  # type: ignore[arg-type]
        except TelegramRetryAfter:
            pass
        else:
            raise AssertionError("the 429 must go on to the caller")
    finally:
        await bot.session.close()
    assert 2.5 < pacer.paused_for() <= 3
