"""The shopper's bot through the real Dispatcher: commands, catalog, Buy, orders (PRODUCT.md §3)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from aiogram.client.default import Default
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from sqlalchemy.exc import OperationalError

from bot.callbacks import (
    CartAction,
    CartButton,
    CategoryPage,
    Menu,
    MenuAction,
    OrderAction,
    OrderButton,
    OrdersPage,
    ProductAction,
    ProductCard,
)
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.screens.outgoing import compose
from storage import OrderStatus, OutboxStatus, StockStatus, get_product, stock_counts
from tests.bot.conftest import ALICE, BOB, CATALOG, Shop, button_texts, markup_buttons, next_id


async def available(shop: Shop, sku: str) -> int:
    product = await get_product(shop.ctx.db, sku)
    assert product is not None and product.id is not None
    return (await stock_counts(shop.ctx.db, product.id)).available


async def buy(shop: Shop, sku: str, qty: int = 1, user: int = ALICE) -> tuple[int, EditMessageText]:
    """Tap Buy; returns the new order id and the edit that showed it."""
    before = {o.id for o in await shop.orders()}
    update = await shop.press(ProductCard(action=ProductAction.BUY, sku=sku, qty=qty), user)
    new = [o for o in await shop.orders() if o.id not in before]
    assert len(new) == 1, f"expected one new order, got {new}"
    assert len(shop.answers_to(update)) == 1
    edit = shop.last_text()
    assert isinstance(edit, EditMessageText)
    assert new[0].id is not None
    return new[0].id, edit


# --- commands ------------------------------------------------------------------------------


async def test_start_shows_welcome_and_main_menu(shop: Shop) -> None:
    await shop.send("/start")
    (sent,) = shop.session.calls("sendMessage")
    assert sent.chat_id == ALICE
    assert "Welcome" in sent.text
    assert button_texts(sent) == ["Catalog", "Cart", "My orders", "Help"]
    data = [b.callback_data for b in markup_buttons(sent)]
    menu = [Menu(action=a).pack() for a in (MenuAction.CATALOG, MenuAction.ORDERS, "h")]
    assert data == [menu[0], CartButton(a=CartAction.SHOW).pack(), *menu[1:]]


async def test_start_deep_link_opens_the_product_card(shop: Shop) -> None:
    await shop.send("/start p_multi")
    sent = shop.last_text()
    assert isinstance(sent, SendMessage)
    assert "Multi Key" in sent.text
    assert "$2.50" in sent.text
    assert "In stock: 5" in sent.text
    assert "USDT" in sent.text  # approximate price from the rates cache
    assert {"−", "+", "Buy"} <= set(button_texts(sent))


async def test_start_deep_link_to_unknown_product_is_polite(shop: Shop) -> None:
    await shop.send("/start p_nosuchthing")
    sent = shop.last_text()
    assert "no longer available" in sent.text
    assert "Catalog" in button_texts(sent)


async def test_help_and_catalog_commands(shop: Shop) -> None:
    await shop.send("/help")
    assert "How it works" in shop.last_text().text
    await shop.send("/catalog")
    sent = shop.last_text()
    assert "Catalog" in sent.text
    texts = button_texts(sent)
    assert "📁 Game keys" in texts and "📁 Gift cards" in texts
    assert "📁 Indie games" not in texts  # a subcategory lives under its parent


async def test_orders_command_with_no_orders(shop: Shop) -> None:
    await shop.send("/orders")
    assert "no orders yet" in shop.last_text().text


# --- catalog navigation --------------------------------------------------------------------


async def test_menu_buttons_and_category_navigation(shop: Shop) -> None:
    update = await shop.press(Menu(action=MenuAction.CATALOG))
    assert "📁 Game keys" in button_texts(shop.last_text())
    assert len(shop.answers_to(update)) == 1

    await shop.press(CategoryPage(slug="games"))
    page = shop.last_text()
    assert isinstance(page, EditMessageText)
    assert "Game keys" in page.text
    texts = button_texts(page)
    assert texts[:4] == ["📁 Indie games", "Solo Key", "Multi Key", "Speedrun Guide"]
    assert "◀ Back" in texts

    await shop.press(CategoryPage(slug="indie"))
    sub = shop.last_text()
    assert "Indie games" in sub.text
    assert "Indie One" in button_texts(sub)
    back = next(b for b in markup_buttons(sub) if b.text == "◀ Back")
    assert back.callback_data == CategoryPage(slug="games").pack()


async def test_long_category_paginates_with_next(shop: Shop) -> None:
    await shop.press(CategoryPage(slug="gifts"))
    first = shop.last_text()
    products = [t for t in button_texts(first) if t.startswith("Gift card")]
    assert len(products) == 8
    next_button = next(b for b in markup_buttons(first) if b.text == "Next ▶")

    await shop.press(next_button.callback_data)
    second = shop.last_text()
    rest = [t for t in button_texts(second) if t.startswith("Gift card")]
    assert len(rest) == 2
    assert set(products) | set(rest) == {f"Gift card {n:02d}" for n in range(10)}
    assert not set(products) & set(rest)
    assert "Next ▶" not in button_texts(second)
    assert "⏮ First page" in button_texts(second)


async def test_gone_category_is_answered(shop: Shop) -> None:
    update = await shop.press(CategoryPage(slug="vanished"))
    (answer,) = shop.answers_to(update)
    assert answer.text and "no longer exists" in answer.text


async def test_product_card_shows_price_and_stock(shop: Shop) -> None:
    update = await shop.press(ProductCard(action=ProductAction.SHOW, sku="solo"))
    card = shop.last_text()
    assert "Solo Key" in card.text and "$9.99" in card.text and "In stock: 1" in card.text
    assert len(shop.answers_to(update)) == 1

    await shop.press(ProductCard(action=ProductAction.SHOW, sku="guide"))
    assert "In stock: ✔ available" in shop.last_text().text


async def test_product_photo_is_shown_as_a_preview_above_the_card(shop: Shop) -> None:
    catalog = parse_catalog(
        '[[categories]]\nslug="games"\ntitle="Game keys"\n'
        '[[products]]\nsku="pic"\ncategory="games"\ntitle="With photo"\nprice="3.00"\n'
        'photo="https://example.com/pic.jpg"\ncodes=["PIC-1"]\n',
        "USD",
    )
    await import_catalog_file(shop.ctx.db, catalog)
    await shop.press(ProductCard(action=ProductAction.SHOW, sku="pic"))
    preview = shop.last_text().link_preview_options
    assert preview is not None and preview.url == "https://example.com/pic.jpg"
    assert preview.show_above_text

    await shop.press(ProductCard(action=ProductAction.SHOW, sku="solo"))
    # no photo: the bot's default (previews off) applies, not an explicit "no options"
    assert isinstance(shop.last_text().link_preview_options, Default)


async def test_plus_minus_bounded_by_max_per_order_and_stock(shop: Shop) -> None:
    # multi: 5 in stock, at most 3 per order.
    await shop.press(ProductCard(action=ProductAction.INC, sku="multi", qty=2))
    card = shop.last_text()
    assert "Quantity: <b>3</b>" in card.text
    assert "$7.50" in card.text

    edits_before = len(shop.session.calls("editMessageText"))
    update = await shop.press(ProductCard(action=ProductAction.INC, sku="multi", qty=3))
    assert len(shop.session.calls("editMessageText")) == edits_before  # nothing to change
    (answer,) = shop.answers_to(update)
    assert answer.text == "That is the most you can buy in one order."

    update = await shop.press(ProductCard(action=ProductAction.DEC, sku="multi", qty=1))
    (answer,) = shop.answers_to(update)
    assert answer.text == "The quantity cannot go below 1."

    # solo: one in stock, no max_per_order.
    update = await shop.press(ProductCard(action=ProductAction.INC, sku="solo", qty=1))
    assert shop.answers_to(update)[0].text == "That is the most you can buy in one order."

    await shop.press(ProductCard(action=ProductAction.DEC, sku="multi", qty=3))
    assert "Quantity: <b>2</b>" in shop.last_text().text


# --- Buy -----------------------------------------------------------------------------------


async def test_buy_creates_one_fiat_invoice_and_reserves(shop: Shop) -> None:
    order_id, edit = await buy(shop, "multi", 2)

    (params,) = shop.cp.calls_of("createInvoice")
    assert params["currency_type"] == "fiat"
    assert params["fiat"] == "USD"
    assert params["amount"] == "5.00" or Decimal(params["amount"]) == Decimal("5.00")
    assert isinstance(params["amount"], str)
    assert params["accepted_assets"] == "USDT,TON,BTC"
    assert int(params["expires_in"]) == 900
    assert params["payload"] == str(order_id)
    assert params["paid_btn_name"] == "openBot"
    assert params["paid_btn_url"] == "https://t.me/test_shop_bot"
    assert "Multi Key" in params["description"]

    order = await shop.order(order_id)
    assert order.invoice_id is not None
    invoice = shop.cp.invoices[order.invoice_id]
    assert f"#{order_id}" in edit.text
    assert "$5.00" in edit.text
    buttons = markup_buttons(edit)
    assert [b.text for b in buttons] == ["Pay", "Check payment", "Cancel"]
    assert buttons[0].url == invoice["bot_invoice_url"]
    assert (
        buttons[1].callback_data == OrderButton(action=OrderAction.CHECK, order_id=order_id).pack()
    )
    assert (
        buttons[2].callback_data
        == OrderButton(action=OrderAction.ASK_CANCEL, order_id=order_id).pack()
    )

    assert order.status == OrderStatus.PENDING
    assert order.bot_invoice_url == invoice["bot_invoice_url"]
    assert order.total == Decimal("5.00")
    units = await shop.units(order_id)
    assert len(units) == 2 and all(u.status == StockStatus.RESERVED for u in units)
    assert await available(shop, "multi") == 3


async def test_double_tapped_buy_places_one_order(shop: Shop) -> None:
    message_id = next_id()
    data = ProductCard(action=ProductAction.BUY, sku="multi", qty=1)
    first = shop.callback(data, message_id=message_id)
    second = shop.callback(data, message_id=message_id)
    await asyncio.gather(
        shop.dp.feed_update(shop.bot, first), shop.dp.feed_update(shop.bot, second)
    )
    assert len(await shop.orders()) == 1
    assert len(shop.cp.calls_of("createInvoice")) == 1
    assert await available(shop, "multi") == 4
    assert len(shop.answers_to(first)) == 1 and len(shop.answers_to(second)) == 1


async def test_buy_again_on_the_same_message_after_cancelling_places_a_new_order(
    shop: Shop,
) -> None:
    """Cancel shows the order on the same message; navigating back to the product there and
    tapping Buy is a new purchase, not a double tap."""
    message_id = next_id()
    data = ProductCard(action=ProductAction.BUY, sku="multi", qty=1)
    await shop.dp.feed_update(shop.bot, shop.callback(data, message_id=message_id))
    (first,) = await shop.orders()
    assert first.id is not None
    cancel = OrderButton(action=OrderAction.CANCEL, order_id=first.id)
    await shop.press(cancel, message_id=message_id)
    assert (await shop.order(first.id)).status == OrderStatus.CANCELLED

    again = shop.callback(data, message_id=message_id)
    await shop.dp.feed_update(shop.bot, again)
    orders = await shop.orders()
    assert len(orders) == 2, [a.text for a in shop.answers_to(again)]
    assert {o.status for o in orders} == {OrderStatus.CANCELLED, OrderStatus.PENDING}
    assert len(shop.cp.calls_of("createInvoice")) == 2


async def test_out_of_stock_is_friendly_and_reserves_nothing(shop: Shop) -> None:
    await buy(shop, "solo", 1, user=BOB)  # the only unit is now reserved
    update = await shop.press(ProductCard(action=ProductAction.BUY, sku="solo", qty=1))
    (answer,) = shop.answers_to(update)
    assert answer.text and "not enough stock" in answer.text
    assert answer.show_alert
    assert len(await shop.orders()) == 1  # Bob's only
    assert len(shop.cp.calls_of("createInvoice")) == 1
    assert "sold out" in shop.last_text().text


async def test_too_many_unpaid_orders_is_refused(shop: Shop) -> None:
    for _ in range(3):  # MAX_UNPAID_ORDERS=3
        await buy(shop, "guide")
    update = await shop.press(ProductCard(action=ProductAction.BUY, sku="guide", qty=1))
    (answer,) = shop.answers_to(update)
    assert answer.text and "3 unpaid orders" in answer.text
    assert len(await shop.orders()) == 3
    assert len(shop.cp.calls_of("createInvoice")) == 3


async def test_cryptopay_failing_cancels_and_releases(shop: Shop) -> None:
    shop.cp.fail_next("createInvoice", 500, times=10)
    update = await shop.press(ProductCard(action=ProductAction.BUY, sku="multi", qty=2))
    (answer,) = shop.answers_to(update)
    assert answer.text and "payment service is not answering" in answer.text
    (order,) = await shop.orders()
    assert order.status == OrderStatus.CANCELLED
    assert order.invoice_id is None
    assert await shop.units(order.id) == []
    assert await available(shop, "multi") == 5
    assert shop.cp.created_invoices == []


async def test_invoice_that_cannot_be_recorded_is_withdrawn(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_attach(*args: object, **kwargs: object) -> bool:
        raise OperationalError("UPDATE orders", {}, Exception("database is locked"))

    monkeypatch.setattr("bot.shop.checkout.attach_invoice", broken_attach)
    update = await shop.press(ProductCard(action=ProductAction.BUY, sku="multi", qty=2))
    (answer,) = shop.answers_to(update)
    assert answer.text and "no order was placed" in answer.text
    (order,) = await shop.orders()
    assert order.status == OrderStatus.CANCELLED
    assert await available(shop, "multi") == 5
    assert len(shop.cp.created_invoices) == 1
    deleted = [int(p["invoice_id"]) for p in shop.cp.calls_of("deleteInvoice")]
    assert len(deleted) == 1 and deleted[0] in shop.cp.deleted_invoices


async def test_stale_product_gets_polite_answer(shop: Shop) -> None:
    deactivated = CATALOG.replace(
        'sku = "multi"\ncategory = "games"', 'sku = "multi"\ncategory = "games"\nactive = false'
    )
    assert deactivated != CATALOG
    await import_catalog_file(shop.ctx.db, parse_catalog(deactivated, "USD"))

    update = await shop.press(ProductCard(action=ProductAction.SHOW, sku="multi"))
    (answer,) = shop.answers_to(update)
    assert answer.text == "Sorry, this product is no longer available."

    update = await shop.press(ProductCard(action=ProductAction.BUY, sku="multi", qty=1))
    (answer,) = shop.answers_to(update)
    assert answer.text == "Sorry, this product is no longer available."
    assert await shop.orders() == []
    assert shop.cp.calls_of("createInvoice") == []

    await shop.send("/start p_multi")
    assert "no longer available" in shop.last_text().text


async def test_unknown_callback_data_is_answered(shop: Shop) -> None:
    for data in ("zzz:nonsense", "p:q:multi:1", "o:s:notanumber"):
        update = await shop.press(data)
        (answer,) = shop.answers_to(update)
        assert answer.text and "no longer works" in answer.text


# --- orders --------------------------------------------------------------------------------


async def test_cancel_releases_units_and_deletes_invoice(shop: Shop) -> None:
    order_id, _ = await buy(shop, "multi", 3)
    invoice_id = (await shop.order(order_id)).invoice_id
    assert await available(shop, "multi") == 2

    update = await shop.press(OrderButton(action=OrderAction.CANCEL, order_id=order_id))
    (answer,) = shop.answers_to(update)
    assert answer.text and f"#{order_id} is cancelled" in answer.text
    assert (await shop.order(order_id)).status == OrderStatus.CANCELLED
    assert await shop.units(order_id) == []
    assert await available(shop, "multi") == 5
    assert [int(p["invoice_id"]) for p in shop.cp.calls_of("deleteInvoice")] == [invoice_id]

    # A second Cancel cannot cancel again.
    update = await shop.press(OrderButton(action=OrderAction.CANCEL, order_id=order_id))
    assert "can no longer be cancelled" in (shop.answers_to(update)[0].text or "")


async def test_the_order_message_says_how_long_and_how_much_in_each_asset(shop: Shop) -> None:
    order_id, edit = await buy(shop, "multi", 2)
    deadline = (await shop.order(order_id)).expires_at
    assert f"Pay within <b>15 minutes</b>, until <b>{deadline:%H:%M} UTC</b>" in edit.text
    approx_line = next(line for line in edit.text.splitlines() if line.startswith("≈ "))
    assert all(asset in approx_line for asset in ("USDT", "TON", "BTC")), approx_line
    assert "arrive here by themselves" in edit.text


async def test_cancel_asks_first_and_keep_keeps_the_order(shop: Shop) -> None:
    order_id, edit = await buy(shop, "multi", 1)
    (cancel,) = [b for b in markup_buttons(edit) if b.text == "Cancel"]

    update = await shop.press(cancel.callback_data)
    question = shop.last_text()
    assert f"Cancel order #{order_id}?" in question.text
    assert button_texts(question) == ["Yes, cancel", "Keep"]
    assert len(shop.answers_to(update)) == 1
    assert (await shop.order(order_id)).status == OrderStatus.PENDING

    keep, yes = markup_buttons(question)[1], markup_buttons(question)[0]
    await shop.press(keep.callback_data)
    kept = shop.last_text()
    assert f"Order #{order_id}" in kept.text and "awaiting payment" in kept.text
    assert {"Pay", "Check payment", "Cancel"} <= set(button_texts(kept))
    assert (await shop.order(order_id)).status == OrderStatus.PENDING

    update = await shop.press(yes.callback_data)
    assert f"#{order_id} is cancelled" in (shop.answers_to(update)[0].text or "")
    assert (await shop.order(order_id)).status == OrderStatus.CANCELLED
    assert "Cancel" not in button_texts(shop.last_text())

    # On an order no longer open, Cancel does not ask: it says why it cannot.
    update = await shop.press(cancel.callback_data)
    assert "can no longer be cancelled" in (shop.answers_to(update)[0].text or "")


async def test_someone_elses_order_is_refused(shop: Shop) -> None:
    order_id, _ = await buy(shop, "multi", 1, user=ALICE)
    requests_before = len(shop.cp.calls)
    for action in (OrderAction.CANCEL, OrderAction.ASK_CANCEL, OrderAction.CHECK, OrderAction.SHOW):
        edits = len(shop.session.calls("editMessageText"))
        update = await shop.press(OrderButton(action=action, order_id=order_id), user=BOB)
        (answer,) = shop.answers_to(update)
        assert answer.text == "This is not your order."
        assert len(shop.session.calls("editMessageText")) == edits
    assert len(shop.cp.calls) == requests_before  # no deleteInvoice, no getInvoices
    assert (await shop.order(order_id)).status == OrderStatus.PENDING
    assert len(await shop.units(order_id)) == 1

    update = await shop.press(OrderButton(action=OrderAction.SHOW, order_id=999_999), user=BOB)
    assert shop.answers_to(update)[0].text == "Order not found."


async def test_check_payment_settles_a_paid_order(shop: Shop) -> None:
    order_id, _ = await buy(shop, "multi", 2)
    invoice_id = (await shop.order(order_id)).invoice_id
    assert invoice_id is not None

    update = await shop.press(OrderButton(action=OrderAction.CHECK, order_id=order_id))
    assert "no payment yet" in (shop.answers_to(update)[0].text or "")
    assert (await shop.order(order_id)).status == OrderStatus.PENDING

    await shop.cp.pay(invoice_id, send_webhook=False)
    shop.clock.advance(5)  # past Check payment's cache of Crypto Pay's answer
    update = await shop.press(OrderButton(action=OrderAction.CHECK, order_id=order_id))
    assert "payment received" in (shop.answers_to(update)[0].text or "")
    order = await shop.order(order_id)
    assert order.status == OrderStatus.PAID
    assert order.paid_asset == "USDT"
    (goods,) = await shop.outbox(order_id, kind="goods")
    assert goods.chat_id == ALICE and goods.status == OutboxStatus.PENDING
    text = (await compose(shop.ctx, goods)).text
    assert f"#{order_id}" in text
    sold = await shop.units(order_id)
    assert sorted(u.status for u in sold) == [StockStatus.SOLD] * 2
    for unit in sold:
        assert unit.code in text
    # The order page now shows it as paid, with its goods.
    assert "✅ paid" in shop.last_text().text


async def test_my_orders_list_and_order_page_with_goods(shop: Shop) -> None:
    first, _ = await buy(shop, "guide")
    second, _ = await buy(shop, "solo")
    invoice_id = (await shop.order(second)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)
    await shop.press(OrderButton(action=OrderAction.CHECK, order_id=second))

    update = await shop.press(Menu(action=MenuAction.ORDERS))
    listing = shop.last_text()
    labels = [t for t in button_texts(listing) if t.startswith("#")]
    # A row names the product and the date, short enough for a button.
    placed = (await shop.order(second)).created_at
    assert labels[0] == f"#{second} · {placed.day} {placed:%b} · Solo Key ×1 · $9.99 · ✅"
    assert labels[1].startswith(f"#{first} ") and "Speedrun Guide ×1" in labels[1]
    assert labels[1].endswith(" · ⏳")
    assert len(shop.answers_to(update)) == 1

    await shop.press(OrderButton(action=OrderAction.SHOW, order_id=second))
    page = shop.last_text()
    assert f"Order #{second}" in page.text
    assert "SOLO-0001" in page.text
    assert "Pay" not in button_texts(page)

    await shop.press(OrderButton(action=OrderAction.SHOW, order_id=first))
    pending = shop.last_text()
    assert "awaiting payment" in pending.text
    assert "example.com/guide.pdf" not in pending.text  # no goods before payment
    assert "Pay" in button_texts(pending)

    await shop.send("/orders")
    assert isinstance(shop.last_text(), SendMessage)
    assert len([t for t in button_texts(shop.last_text()) if t.startswith("#")]) == 2

    update = await shop.press(OrdersPage())
    assert len(shop.answers_to(update)) == 1


async def test_someone_elses_orders_list_is_their_own(shop: Shop) -> None:
    await buy(shop, "guide", user=ALICE)
    await shop.press(Menu(action=MenuAction.ORDERS), user=BOB)
    assert "no orders yet" in shop.last_text().text


async def test_every_callback_query_is_answered(shop: Shop) -> None:
    order_id, _ = await buy(shop, "multi", 1)
    presses = [
        Menu(action=MenuAction.CATALOG),
        Menu(action=MenuAction.HELP),
        Menu(action=MenuAction.ORDERS),
        Menu(action=MenuAction.MENU),
        CategoryPage(),
        CategoryPage(slug="games"),
        CategoryPage(slug="nope"),
        ProductCard(action=ProductAction.SHOW, sku="solo"),
        ProductCard(action=ProductAction.NOOP, sku="solo"),
        ProductCard(action=ProductAction.INC, sku="multi", qty=1),
        ProductCard(action=ProductAction.DEC, sku="multi", qty=1),
        ProductCard(action=ProductAction.SHOW, sku="ghost"),
        ProductCard(action=ProductAction.BUY, sku="ghost"),
        OrdersPage(),
        OrderButton(action=OrderAction.SHOW, order_id=order_id),
        OrderButton(action=OrderAction.CHECK, order_id=order_id),
        OrderButton(action=OrderAction.ASK_CANCEL, order_id=order_id),
        OrderButton(action=OrderAction.SHOW, order_id=order_id + 100),
        OrderButton(action=OrderAction.CANCEL, order_id=order_id),
        "garbage",
    ]
    for data in presses:
        update = await shop.press(data)
        assert len(shop.answers_to(update)) == 1, data
    answered = {m.callback_query_id for m in shop.session.calls("answerCallbackQuery")}
    assert all(
        isinstance(m, AnswerCallbackQuery) for m in shop.session.calls("answerCallbackQuery")
    )
    assert len(answered) == len(presses) + 1  # and the Buy
