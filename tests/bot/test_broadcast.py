"""/broadcast through the real Dispatcher: the draft, the button line, the preview as
customers get it, the audience, Send / Cancel / Stop, and the sending itself through the real
runner and outbox worker (the Telegram edge is the recording session)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import EditMessageText, SendMessage, SendPhoto
from aiogram.types import Chat, Message, MessageEntity, PhotoSize, Update, User

from bot.callbacks import BroadcastDraftButton, BroadcastStep, BroadcastStop
from bot.runtime.broadcasts import BroadcastRunner
from bot.runtime.delivery import OutboxWorker
from bot.screens.messages import GOODS
from bot.shop.broadcasts import start_broadcast
from storage import (
    Broadcast,
    OutboxDraft,
    OutboxMessage,
    enqueue,
    get_customer,
    set_blocked,
    upsert_customer,
)
from tests.bot.conftest import ADMIN_ID, Shop, _now, button_texts, markup_buttons, next_id
from tests.bot.test_delivery import paid_orders

CUSTOMERS = list(range(3001, 3011))  # ten customers who started the bot


async def customers(shop: Shop, ids: list[int] = CUSTOMERS) -> None:
    for user in ids:
        await upsert_customer(shop.ctx.db, user, None, "en")


async def admin_sends(shop: Shop, **fields: Any) -> None:
    """A message from the admin: text with entities, or a photo with a caption."""
    message = Message(
        message_id=next_id(),
        date=_now(),
        chat=Chat(id=ADMIN_ID, type="private"),
        from_user=User(id=ADMIN_ID, is_bot=False, first_name="Admin"),
        **fields,
    )
    await shop.dp.feed_update(shop.bot, Update(update_id=next_id(), message=message))


async def tap(shop: Shop, step: BroadcastStep) -> Update:
    return await shop.press(BroadcastDraftButton(step=step), user=ADMIN_ID)


def sent_to(shop: Shop, chat: int) -> list[Any]:
    return [
        m
        for m in shop.session.accepted
        if isinstance(m, SendMessage | SendPhoto) and m.chat_id == chat
    ]


async def run_to_end(shop: Shop, rounds: int = 40) -> BroadcastRunner:
    """The runner and the outbox worker, round after round, until the broadcast reports."""
    worker = OutboxWorker(shop.ctx)
    runner = BroadcastRunner(shop.ctx, worker)
    for _ in range(rounds):
        await runner.tick()
        while await worker.drain_once():
            pass
        shop.clock.advance(4)  # past a 429's retry_after and the progress interval
        (broadcast,) = await shop.rows(Broadcast)
        if broadcast.status != "running":
            await runner.tick()
            while await worker.drain_once():
                pass
            return runner
    raise AssertionError("the broadcast did not end")


async def draft_text(shop: Shop, button_line: str | None = None) -> None:
    await shop.send("/broadcast", user_id=ADMIN_ID)
    assert "Send the message for your customers" in shop.last_text().text
    text = "Big sale today! New keys in stock."
    bold = MessageEntity(type="bold", offset=0, length=14)
    await admin_sends(shop, text=text, entities=[bold])
    # The preview at once, with Send; a button line after it puts a button under it.
    controls = shop.last_text()
    assert "Above is the preview" in controls.text
    assert "To put a button under it, send one line" in controls.text
    assert "Send" in button_texts(controls)
    if button_line is not None:
        await shop.send(button_line, user_id=ADMIN_ID)


async def test_a_text_broadcast_goes_to_every_customer_once_as_previewed(shop: Shop) -> None:
    await customers(shop)
    await set_blocked(shop.ctx.db, CUSTOMERS[-1], True)  # blocked the bot before: skipped
    await draft_text(shop, "Open the shop | p_multi")

    # The preview: exactly the message customers get, then the audience and the buttons.
    preview = [m for m in sent_to(shop, ADMIN_ID) if "Big sale" in m.text]
    assert len(preview) == 2  # without the button, then with it
    assert preview[0].reply_markup is None
    del preview[0]
    assert preview[0].text == "<b>Big sale today</b>! New keys in stock."
    (button,) = markup_buttons(preview[0])
    assert button.text == "Open the shop"
    assert button.url == "https://t.me/test_shop_bot?start=p_multi"
    controls = shop.last_text()
    assert "Audience: <b>everyone</b>, 9 customers" in controls.text
    assert button_texts(controls) == ["✓ Everyone (9)", "Buyers only (0)", "Send", "Cancel"]

    await tap(shop, BroadcastStep.SEND)
    progress = shop.last_text()
    assert "Broadcast #1" in progress.text and button_texts(progress) == ["Stop"]
    await run_to_end(shop)

    for user in CUSTOMERS[:-1]:
        (got,) = sent_to(shop, user)
        assert got.text == preview[0].text
        assert markup_buttons(got)[0].url == button.url
    assert sent_to(shop, CUSTOMERS[-1]) == []
    edits = [m for m in shop.session.requests if isinstance(m, EditMessageText)]
    final = [e for e in edits if e.message_id == progress.message_id][-1]
    assert "Broadcast #1</b> is done" in final.text and "Delivered: 9" in final.text
    report = [m for m in sent_to(shop, ADMIN_ID) if "is done" in m.text]
    assert len(report) == 1 and "Blocked the bot: 0\nFailed: 0" in report[0].text

    await shop.send("/broadcasts", user_id=ADMIN_ID)
    listing = shop.last_text().text
    assert "#1 · " in listing and "everyone · done" in listing
    assert "delivered 9 of 9, blocked 0, failed 0" in listing


async def test_403_marks_the_customer_blocked_and_429_waits(shop: Shop) -> None:
    await customers(shop)
    await draft_text(shop)
    await tap(shop, BroadcastStep.SEND)
    blocked = "Forbidden: bot was blocked by the user"
    shop.session.fail["sendMessage"] = [
        lambda m: TelegramForbiddenError(method=m, message=blocked),
        lambda m: TelegramRetryAfter(method=m, message="Too Many Requests", retry_after=1),
    ]
    await run_to_end(shop)

    calls = [
        m for m in shop.session.requests if isinstance(m, SendMessage) and m.chat_id in CUSTOMERS
    ]
    first, second = calls[0].chat_id, calls[1].chat_id
    assert isinstance(first, int) and isinstance(second, int)
    assert sent_to(shop, first) == []
    customer = await get_customer(shop.ctx.db, first)
    assert customer is not None and customer.blocked_bot
    assert len(sent_to(shop, second)) == 1  # waited out, then sent once
    for user in CUSTOMERS:
        assert len(sent_to(shop, user)) == (0 if user == first else 1)
    report = [m for m in sent_to(shop, ADMIN_ID) if "is done" in m.text]
    assert "Delivered: 9\nBlocked the bot: 1\nFailed: 0" in report[0].text

    # The next broadcast skips the customer who blocked the bot.
    await draft_text(shop)
    assert "Audience: <b>everyone</b>, 9 customers" in shop.last_text().text


async def test_buyers_only_goes_to_customers_with_a_paid_order(shop: Shop) -> None:
    await customers(shop)
    buyers = CUSTOMERS[:2]
    await paid_orders(shop, buyers)
    while await OutboxWorker(shop.ctx).drain_once():  # their goods out of the way
        pass
    await draft_text(shop)
    await tap(shop, BroadcastStep.BUYERS)
    controls = shop.last_text()
    assert "Audience: <b>buyers only</b>, 2 customers" in controls.text
    assert button_texts(controls)[:2] == ["Everyone (10)", "✓ Buyers only (2)"]
    await tap(shop, BroadcastStep.SEND)
    await run_to_end(shop)
    for user in CUSTOMERS:
        got = [m for m in sent_to(shop, user) if "Big sale" in m.text]
        assert len(got) == (1 if user in buyers else 0)


async def test_a_photo_goes_by_its_file_id_with_its_caption(shop: Shop) -> None:
    await customers(shop, CUSTOMERS[:3])
    await shop.send("/broadcast", user_id=ADMIN_ID)
    photo = [
        PhotoSize(file_id="small-id", file_unique_id="s", width=90, height=90),
        PhotoSize(file_id="LARGE-file-id", file_unique_id="l", width=1280, height=1280),
    ]
    italic = MessageEntity(type="italic", offset=4, length=3)
    await admin_sends(shop, photo=photo, caption="New toy!", caption_entities=[italic])
    await shop.send("Docs | https://example.com/new", user_id=ADMIN_ID)
    previews = [m for m in shop.session.requests if isinstance(m, SendPhoto)]
    assert len(previews) == 2  # without the button, then with it
    preview = previews[-1]
    assert preview.chat_id == ADMIN_ID
    assert preview.photo == "LARGE-file-id" and preview.caption == "New <i>toy</i>!"
    await tap(shop, BroadcastStep.SEND)
    await run_to_end(shop)
    for user in CUSTOMERS[:3]:
        (got,) = sent_to(shop, user)
        assert isinstance(got, SendPhoto)
        assert got.photo == "LARGE-file-id" and got.caption == "New <i>toy</i>!"
        assert markup_buttons(got)[0].url == "https://example.com/new"


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("Open the shop", "A button line is"),
        ("a | b | c", "A button line is"),
        (" | https://example.com", "The button needs a text"),
        ("x" * 65 + " | https://example.com", "at most 64 characters"),
        ("Shop | example.com", "starts with https://"),
        ("Shop | ftp://example.com/file", "starts with https://"),
        ("Shop | https://", "starts with https://"),
        ("Shop | p_nosuchsku", "There is no product <code>nosuchsku</code>"),
        ("Shop | p_<b>", "There is no product <code>&lt;b&gt;</code>"),
    ],
)
async def test_a_bad_button_line_is_refused_with_a_sentence(
    shop: Shop, line: str, answer: str
) -> None:
    await customers(shop, CUSTOMERS[:1])
    await draft_text(shop, line)
    refusal = shop.last_text()
    assert answer in refusal.text
    # The preview stays open: a good line now gives the preview with the button.
    await shop.send("Shop | https://example.com/sale", user_id=ADMIN_ID)
    assert "Above is the preview" in shop.last_text().text
    previews = [m for m in sent_to(shop, ADMIN_ID) if "Big sale" in m.text]
    assert markup_buttons(previews[-1])[0].url == "https://example.com/sale"


async def test_the_preview_comes_at_once_and_send_goes_without_a_button(shop: Shop) -> None:
    """The message alone gives the preview and Send (the button line is optional); the
    chosen audience stays when a button is added after it."""
    await customers(shop)
    await paid_orders(shop, CUSTOMERS[:1])
    while await OutboxWorker(shop.ctx).drain_once():
        pass
    await draft_text(shop)
    await tap(shop, BroadcastStep.BUYERS)
    await shop.send("Shop | https://example.com/sale", user_id=ADMIN_ID)
    assert "Audience: <b>buyers only</b>, 1 customer" in shop.last_text().text
    await shop.send("no button line here", user_id=ADMIN_ID)
    assert "tap Send to go without a button" in shop.last_text().text
    await tap(shop, BroadcastStep.SEND)
    await run_to_end(shop)
    (got,) = [m for m in sent_to(shop, CUSTOMERS[0]) if "Big sale" in m.text]
    assert markup_buttons(got)[0].url == "https://example.com/sale"
    assert not [m for m in sent_to(shop, CUSTOMERS[1]) if "Big sale" in m.text]


async def test_cancel_sends_nothing(shop: Shop) -> None:
    await customers(shop)
    await draft_text(shop)
    await tap(shop, BroadcastStep.CANCEL)
    assert "Broadcast cancelled" in shop.last_text().text
    assert await shop.rows(Broadcast) == []
    # The old preview's Send no longer works.
    update = await tap(shop, BroadcastStep.SEND)
    (answer,) = shop.answers_to(update)
    assert answer.show_alert and "no longer open" in (answer.text or "")
    assert await shop.rows(Broadcast) == []


async def test_stop_ends_it_and_reports(shop: Shop) -> None:
    await customers(shop)
    await draft_text(shop)
    await tap(shop, BroadcastStep.SEND)
    worker = OutboxWorker(shop.ctx)
    runner = BroadcastRunner(shop.ctx, worker)
    await runner.tick()  # every recipient enqueued
    assert len(await shop.rows(OutboxMessage, OutboxMessage.broadcast_id == 1)) == 10
    progress = shop.last_text()
    assert isinstance(progress, EditMessageText)
    assert "Sent: 0 · failed: 0 · left: 10\nTime left: about 1 second" in progress.text
    assert button_texts(progress) == ["Stop"]
    edits = len(shop.session.calls("editMessageText"))
    await runner.tick()  # within 3 s of the last edit: not edited again
    assert len(shop.session.calls("editMessageText")) == edits
    await shop.press(BroadcastStop(broadcast_id=1), user=ADMIN_ID)
    assert "Broadcast #1</b> was stopped." in shop.last_text().text
    await runner.tick()
    assert await worker.drain_once() == 0
    assert all(sent_to(shop, user) == [] for user in CUSTOMERS)
    async with shop.ctx.db.session() as s:
        statuses = await s.scalars(
            sa.select(OutboxMessage.last_error).where(OutboxMessage.broadcast_id == 1)
        )
        assert set(statuses) == {"stopped"}
    update = await shop.press(BroadcastStop(broadcast_id=1), user=ADMIN_ID)
    assert "already ended" in (shop.answers_to(update)[0].text or "")


async def test_only_admins_can_broadcast(shop: Shop) -> None:
    await customers(shop)
    await shop.send("/broadcast", user_id=CUSTOMERS[0])
    assert "Send the message for your customers" not in shop.last_text().text
    assert await shop.rows(Broadcast) == []
    # An admin's running broadcast: a customer's forged Stop leaves it running.
    broadcast = await start_broadcast(shop.ctx.db, ADMIN_ID, "News", None, None, buyers_only=False)
    assert broadcast is not None
    await shop.press(BroadcastStop(broadcast_id=broadcast.id), user=CUSTOMERS[0])
    (row,) = await shop.rows(Broadcast)
    assert row.status == "running"


async def test_a_double_tap_on_send_starts_one_broadcast(shop: Shop) -> None:
    """Telegram delivers both taps of a double tap, and the dispatcher handles them at
    once: the draft's Send must start the broadcast once, or everyone gets it twice."""
    await customers(shop)
    await draft_text(shop)
    controls = next_id()  # the message under the preview, with Send
    taps = [
        shop.callback(BroadcastDraftButton(step=BroadcastStep.SEND), ADMIN_ID, controls)
        for _ in range(2)
    ]
    await asyncio.gather(*(shop.dp.feed_update(shop.bot, update) for update in taps))
    assert len(await shop.rows(Broadcast)) == 1
    await run_to_end(shop)
    for user in CUSTOMERS:
        assert len(sent_to(shop, user)) == 1


async def test_a_customers_goods_go_ahead_of_their_broadcast_message(shop: Shop) -> None:
    """Claimed together, the chat's own message (goods) is sent before the broadcast's,
    which waits for the low-priority turn."""
    await customers(shop, [3001])
    broadcast = await start_broadcast(shop.ctx.db, ADMIN_ID, "News", None, None, buyers_only=False)
    assert broadcast is not None
    worker = OutboxWorker(shop.ctx)
    runner = BroadcastRunner(shop.ctx, worker)
    await runner.tick()  # the lease, and the recipient enqueued
    await enqueue(shop.ctx.db, [OutboxDraft(3001, "Your goods for #1", kind=GOODS)])
    shop.clock.advance(1)
    while await worker.drain_once():
        pass
    assert [m.text for m in sent_to(shop, 3001)] == ["Your goods for #1", "News"]


async def test_the_messages_last_line_may_be_its_button_line(shop: Shop) -> None:
    await customers(shop, CUSTOMERS[:2])
    await shop.send("/broadcast", user_id=ADMIN_ID)
    text = "Big sale 🎉 today!\nShop | https://example.com/sale?a=1&b=2"
    bold = MessageEntity(type="bold", offset=9, length=2)  # the emoji: two UTF-16 units
    await admin_sends(shop, text=text, entities=[bold])
    assert "Above is the preview" in shop.last_text().text
    (preview,) = [m for m in sent_to(shop, ADMIN_ID) if "Big sale" in m.text]
    assert preview.text == "Big sale <b>🎉</b> today!"
    (button,) = markup_buttons(preview)
    assert (button.text, button.url) == ("Shop", "https://example.com/sale?a=1&b=2")
    # A last line that is no good button line stays part of the text.
    await shop.send("/broadcast", user_id=ADMIN_ID)
    await admin_sends(shop, text="Big sale\nprices | lower than ever")
    previews = [m for m in sent_to(shop, ADMIN_ID) if "Big sale" in m.text]
    assert previews[-1].text == "Big sale\nprices | lower than ever"
    assert previews[-1].reply_markup is None


async def test_a_draft_telegram_refuses_is_not_kept(shop: Shop) -> None:
    """Telegram refuses the preview (here a button link it rejects): the admin is told,
    and the draft stays as it was, so Send cannot send everyone a refused message."""
    await customers(shop, CUSTOMERS[:2])
    await draft_text(shop)
    refused = "Bad Request: BUTTON_URL_INVALID"
    shop.session.fail["sendMessage"] = [lambda m: TelegramBadRequest(method=m, message=refused)]
    await shop.send("Shop | https://example.invalid/sale", user_id=ADMIN_ID)
    assert shop.last_text().text.startswith(f"Telegram refused this ({refused})")
    await tap(shop, BroadcastStep.SEND)
    await run_to_end(shop)
    for user in CUSTOMERS[:2]:
        (got,) = sent_to(shop, user)
        assert got.reply_markup is None  # the draft as it was: no button


async def test_a_message_telegram_refuses_asks_for_another(shop: Shop) -> None:
    await shop.send("/broadcast", user_id=ADMIN_ID)
    refused = "Bad Request: can't parse entities"
    shop.session.fail["sendMessage"] = [lambda m: TelegramBadRequest(method=m, message=refused)]
    await admin_sends(shop, text="Big sale")
    assert shop.last_text().text.startswith("Telegram refused this")
    await admin_sends(shop, text="Big sale, take two")  # still the message step
    assert "Above is the preview" in shop.last_text().text
