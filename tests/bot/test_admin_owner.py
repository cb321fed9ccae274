"""The owner's chat (issue #14): admin /help and commands, /orders rows and back path,
/stock without a sku, the low-stock alert, and admin alerts with what to do next."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import SendMessage, SetMyCommands
from aiogram.types import BotCommandScopeChat, BotCommandScopeDefault

from bot.app import set_commands
from bot.i18n import LANGUAGE_CODES
from bot.runtime.delivery import OutboxWorker
from bot.screens.outgoing import compose
from bot.screens.texts import en_admin as ta
from bot.screens.texts import texts as t
from bot.shop.stock_alerts import alert_low_stock
from storage import Order, OrderStatus, OutboxKind, OutboxMessage, get_order
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, Shop, button_texts, markup_buttons
from tests.bot.test_admin import send_document
from tests.bot.test_help_when_wrong import payment_under_review
from tests.bot.test_refunds import paid_order, place


async def low_stock_alerts(shop: Shop) -> list[str]:
    rows = await shop.outbox(kind=OutboxKind.ADMIN)
    return [r.text for r in rows if "Low stock" in r.text]


async def test_low_stock_alert_comes_once_per_fall_not_once_per_sale(shop: Shop) -> None:
    # "multi" has 5 codes; LOW_STOCK_THRESHOLD is 3 by default.
    await paid_order(shop, "multi", 1)
    assert await low_stock_alerts(shop) == []
    await paid_order(shop, "multi", 1)
    (alert,) = await low_stock_alerts(shop)
    assert "Multi Key" in alert and "3 codes left" in alert and "<code>multi</code>" in alert
    await paid_order(shop, "multi", 1)
    await paid_order(shop, "multi", 1)
    assert len(await low_stock_alerts(shop)) == 1

    # A restock arms it again: the next fall to the threshold alerts once more.
    await send_document(shop, "codes.txt", b"NEW-1\nNEW-2\nNEW-3\n", "multi")  # 1 + 3 = 4
    assert len(await low_stock_alerts(shop)) == 1
    await paid_order(shop, "multi", 1)
    await paid_order(shop, "multi", 1)
    alerts = await low_stock_alerts(shop)
    assert len(alerts) == 2 and "3 codes left" in alerts[1]
    assert all(r.chat_id == ADMIN_ID for r in await shop.outbox(kind=OutboxKind.ADMIN))


async def test_low_stock_alert_survives_two_settlements_reading_the_same_counts(
    shop: Shop,
) -> None:
    """Two settlements committing at once (a webhook batch and reconciliation, or two
    replicas) both count the stock after both sales: each sees only its own sale, yet one
    of them must alert — and only one."""
    await paid_order(shop, "multi", 1)  # 4 of 5 codes left: above LOW_STOCK_THRESHOLD (3)
    await paid_order(shop, "multi", 1)
    order_id = await paid_order(shop, "multi", 1)  # 2 left
    details = await get_order(shop.ctx.db, order_id)
    assert details is not None
    (product_id,) = details.products
    async with shop.ctx.db.transaction() as s:  # as if neither of the last two sales had checked
        await s.execute(sa.delete(OutboxMessage).where(OutboxMessage.kind == OutboxKind.ADMIN))
    # Each racer sold one and read the counts after both: 2 left, so 2 + 1 was not above 3.
    for _ in range(2):
        await alert_low_stock(shop.ctx, {product_id: 1})
    (alert,) = await low_stock_alerts(shop)
    assert "2 codes left" in alert


async def test_unlimited_and_plentiful_products_never_alert(shop: Shop) -> None:
    await paid_order(shop, "guide", 1)
    await paid_order(shop, "multi", 1)
    assert await low_stock_alerts(shop) == []


# --- /help and the command menu ---------------------------------------------------------------


async def test_admin_help_lists_admin_commands_with_examples(shop: Shop) -> None:
    await shop.send("/help", ADMIN_ID)
    text = shop.last_text().text
    for example in ("/orders paid", "/order 12", "/refund 12", "/recheck 12", "/stock witcher3"):
        assert f"<code>{example}" in text, example
    assert "/stats" in text and "/balance" in text and ".txt" in text
    assert "t.me/test_shop_bot?start=p_" in text
    await shop.send("/help", ALICE)
    assert shop.last_text().text == t.HELP  # shoppers keep theirs


async def test_command_menu_for_shoppers_and_per_admin_chat(shop: Shop) -> None:
    # 901 never started the bot: Telegram answers "chat not found"; the others still get set.
    record = shop.session.make_request

    async def make_request(bot: Any, method: Any, timeout: int | None = None) -> Any:
        if isinstance(method, SetMyCommands) and method.scope == BotCommandScopeChat(chat_id=901):
            shop.session.requests.append(method)
            raise TelegramBadRequest(method, "Bad Request: chat not found")
        return await record(bot, method, timeout)

    shop.session.make_request = make_request  # type: ignore[method-assign]
    await set_commands(shop.bot, frozenset({ADMIN_ID, 901, 902}))
    calls = shop.session.calls("setMyCommands")
    # Each menu: once without a language code (DEFAULT_LANGUAGE), then per code.
    menus = len(LANGUAGE_CODES) + 1
    shopper, admin, failed, last = calls[0], calls[menus], calls[2 * menus], calls[-1]
    assert isinstance(shopper.scope, BotCommandScopeDefault) and shopper.language_code is None
    shopper_commands = ["start", "catalog", "cart", "orders", "help", "invite", "language"]
    assert [c.command for c in shopper.commands] == shopper_commands
    assert admin.scope == BotCommandScopeChat(chat_id=ADMIN_ID)
    assert {
        "orders",
        "order",
        "refund",
        "stats",
        "balance",
        "stock",
        "recheck",
        "help",
        "export",
        "referrals",
    } <= {c.command for c in admin.commands}
    assert failed.scope == BotCommandScopeChat(chat_id=901)
    assert last.scope == BotCommandScopeChat(chat_id=902) and last.language_code == "kk"
    assert len(calls) == 3 * menus + 1  # 901's first call failed, and its others were skipped
    # Per language: Russian readers get the Russian words, English the English ones.
    by_code = {c.language_code: c for c in calls[:menus]}
    assert by_code["ru"].commands[0].description == "Главное меню"
    assert by_code["uk"].commands == by_code["ru"].commands
    assert by_code["en"].commands[0].description == "Main menu"
    assert by_code[None].commands == by_code["en"].commands


# --- /orders, /order, /stats ------------------------------------------------------------------


async def test_orders_rows_show_buyer_product_and_the_shoppers_status_labels(shop: Shop) -> None:
    paid = await paid_order(shop, "multi", 2)
    async with shop.ctx.db.transaction() as s:
        await s.execute(
            sa.update(Order).where(Order.id == paid).values(status=OrderStatus.NEEDS_REFUND)
        )
    await place(shop, "guide", user=BOB)
    await shop.send("/orders", ADMIN_ID)
    pending, needs_refund = button_texts(shop.last_text())
    assert needs_refund == (
        f"#{paid} · {t.STATUS['needs_refund']} · {ALICE} · Multi Key × 2 · $5.00"
    )
    assert "needs_refund" not in needs_refund
    assert f"· {BOB} · Speedrun Guide × 1 · $1.25" in pending and t.STATUS["pending"] in pending


async def test_an_order_opened_from_a_page_goes_back_to_that_page(shop: Shop) -> None:
    ids = [await place(shop, "guide", user=2000 + n) for n in range(12)]
    await shop.send("/orders", ADMIN_ID)
    await shop.press(markup_buttons(shop.last_text())[-1].callback_data, ADMIN_ID)  # Next ▶
    second = shop.last_text()
    first_row = markup_buttons(second)[0]
    assert first_row.text.startswith(f"#{ids[1]} ")
    await shop.press(first_row.callback_data, ADMIN_ID)
    view = shop.last_text()
    assert f"Order #{ids[1]}" in view.text
    assert f'<a href="tg://user?id={2001}">' in view.text  # the buyer, one tap away
    assert button_texts(view) == ["Recheck", "◀ Orders"]

    # Recheck re-renders the order and keeps the way back.
    await shop.press(markup_buttons(view)[0].callback_data, ADMIN_ID)
    view = shop.last_text()
    assert f"Order #{ids[1]}" in view.text and button_texts(view)[-1] == "◀ Orders"

    await shop.press(markup_buttons(view)[-1].callback_data, ADMIN_ID)
    assert button_texts(shop.last_text()) == button_texts(second)

    # /order <id> has nowhere to go back to.
    await shop.send(f"/order {ids[1]}", ADMIN_ID)
    assert button_texts(shop.last_text()) == ["Recheck"]


async def test_stats_attention_ids_are_buttons_and_counts_are_plural_right(shop: Shop) -> None:
    await paid_order(shop, "multi", 1)
    odd = await paid_order(shop, "indie1")
    async with shop.ctx.db.transaction() as s:
        await s.execute(
            sa.update(Order).where(Order.id == odd).values(status=OrderStatus.NEEDS_REVIEW)
        )
    await shop.send("/stats", ADMIN_ID)
    stats = shop.last_text()
    assert "Today (UTC): 1 order, $2.50" in stats.text
    assert "(1 order)" in stats.text and "needs_review" in stats.text
    (button,) = markup_buttons(stats)
    assert button.text == f"#{odd}"
    await shop.press(button.callback_data, ADMIN_ID)
    assert f"Order #{odd}" in shop.last_text().text


# --- /stock ---------------------------------------------------------------------------------------


async def test_stock_without_a_sku_lists_every_product_with_its_count(shop: Shop) -> None:
    await place(shop, "multi", 2)
    await paid_order(shop, "indie1", 1)
    await shop.send("/stock", ADMIN_ID)
    text = shop.last_text().text
    assert "<code>multi</code> Multi Key: 3 codes + 2 reserved" in text
    assert "<code>solo</code> Solo Key: ⚠ 1 code" in text  # at or below LOW_STOCK_THRESHOLD
    assert "<code>indie1</code> Indie One: ⚠ 1 code" in text
    assert "<code>guide</code> Speedrun Guide: unlimited" in text
    assert all(f"<code>gift{n:02d}</code>" in text for n in range(10))
    assert "Usage" not in text


# --- the alerts admins get ----------------------------------------------------------------------


def admin_sends(shop: Shop) -> list[SendMessage]:
    return [
        m for m in shop.session.accepted if isinstance(m, SendMessage) and m.chat_id == ADMIN_ID
    ]


async def test_paid_alert_names_the_buyer_and_opens_the_order(shop: Shop) -> None:
    order_id = await paid_order(shop, "multi", 1)
    await OutboxWorker(shop.ctx).drain_once()
    (alert,) = admin_sends(shop)
    assert f"Order #{order_id} paid" in alert.text
    assert f'<a href="tg://user?id={ALICE}">' in alert.text
    (button,) = markup_buttons(alert)
    assert button.text == f"Open order #{order_id}"
    await shop.press(button.callback_data, ADMIN_ID)
    assert f"Order #{order_id}" in shop.last_text().text


async def test_joined_alerts_keep_every_orders_button(shop: Shop) -> None:
    ids = [await paid_order(shop, "guide", 1) for _ in range(3)]
    await OutboxWorker(shop.ctx).drain_once()
    (joined,) = admin_sends(shop)  # still one message for the notices of a busy moment
    assert all(f"Order #{i} paid" in joined.text for i in ids)
    assert button_texts(joined) == [f"Open order #{i}" for i in ids]


async def test_review_and_blocked_alerts_say_what_to_do(shop: Shop) -> None:
    review_id = await payment_under_review(shop)  # the alert the settlement queued
    (row,) = await shop.outbox(review_id, kind=OutboxKind.ADMIN_NEEDS_REVIEW)
    review = (await compose(shop.ctx, row)).text
    assert "What to do" in review and f"/refund {review_id}" in review
    await OutboxWorker(shop.ctx).drain_once()  # its messages out of the way

    order_id = await paid_order(shop, "multi", 1)
    blocked = ta.buyer_blocked_alert(order_id)
    assert "What to do" in blocked and f"/refund {order_id}" in blocked

    shop.session.fail["sendMessage"] = [
        lambda m: TelegramForbiddenError(method=m, message="Forbidden: bot was blocked by the user")
    ]
    worker = OutboxWorker(shop.ctx)
    await worker.drain_once()
    await worker.drain_once()
    sent = admin_sends(shop)
    notice = next(m for m in sent if "could not be delivered" in m.text)
    assert notice.text == blocked
    assert button_texts(notice) == [f"Open order #{order_id}"]


async def test_admin_texts_speak_the_owners_language() -> None:
    import inspect

    source = inspect.getsource(ta).lower()
    for jargon in ("spend id", "outbox", "payload", "dedupe"):
        assert jargon not in source, jargon
