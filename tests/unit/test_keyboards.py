"""Keyboard layouts: which buttons share a row, and what each one carries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from aiogram.types import InlineKeyboardMarkup

from bot.callbacks import CartAdd, OrderAction, OrderButton, ProductAction, ProductCard
from bot.screens import keyboards
from bot.screens.texts import texts as t


def rows(markup: InlineKeyboardMarkup) -> list[list[str]]:
    return [[button.text for button in row] for row in markup.inline_keyboard]


def test_pending_order_pay_link_alone_then_check_and_cancel() -> None:
    markup = keyboards.pending_order(42, "https://t.me/CryptoTestnetBot?start=IVabc")
    assert rows(markup) == [[t.BTN_PAY], [t.BTN_CHECK, t.BTN_CANCEL]]
    pay, (check, cancel) = markup.inline_keyboard[0][0], markup.inline_keyboard[1]
    assert pay.url == "https://t.me/CryptoTestnetBot?start=IVabc" and pay.callback_data is None
    assert check.callback_data == OrderButton(action=OrderAction.CHECK, order_id=42).pack()
    assert cancel.callback_data == OrderButton(action=OrderAction.ASK_CANCEL, order_id=42).pack()


def test_order_view_back_button_on_its_own_row() -> None:
    pending = keyboards.order_view(7, pay_url="https://pay", pending=True)
    assert rows(pending) == [[t.BTN_PAY], [t.BTN_CHECK, t.BTN_CANCEL], [t.BTN_BACK]]
    assert rows(keyboards.order_view(7, pay_url=None, pending=True)) == [[t.BTN_BACK]]
    assert rows(keyboards.order_view(7, pay_url="https://pay", pending=False)) == [[t.BTN_BACK]]


def test_product_card_quantity_row_buy_and_back() -> None:
    markup = keyboards.product_card(sku="key", quantity=3, can_buy=True, category_slug="games")
    assert rows(markup) == [
        [t.BTN_MINUS, "3", t.BTN_PLUS],
        [t.BTN_BUY, t.BTN_ADD_TO_CART],
        [t.BTN_PROMO],
        [t.BTN_BACK],
    ]
    buy, add = markup.inline_keyboard[1]
    assert buy.callback_data == ProductCard(action=ProductAction.BUY, sku="key", qty=3).pack()
    assert add.callback_data == CartAdd(sku="key", q=3).pack()
    sold_out = keyboards.product_card(sku="key", quantity=1, can_buy=False, category_slug="g")
    assert rows(sold_out) == [[t.BTN_BACK]]


def test_category_page_one_entry_per_row_pager_then_back() -> None:
    markup = keyboards.category_page(
        slug="games",
        subcategories=[("rpg", "RPG")],
        products=[("k1", "Key 1"), ("k2", "Key 2")],
        next_cursor="p2",  # the cursor of a next page: "c<id>" or "p<id>"
        is_first_page=False,
        parent_slug="",
    )
    assert rows(markup) == [
        ["📁 RPG"],
        ["Key 1"],
        ["Key 2"],
        [t.BTN_FIRST, t.BTN_NEXT],
        [t.BTN_BACK],
    ]
    top = keyboards.category_page(
        slug="",
        subcategories=[],
        products=[],
        next_cursor=None,
        is_first_page=True,
        parent_slug=None,
    )
    assert rows(top) == [[t.BTN_MENU]]  # no pager row when there is one page


def test_admin_order_buttons_share_one_row() -> None:
    assert rows(keyboards.admin_order(5, refundable=True)) == [[t.BTN_REFUND, t.BTN_RECHECK]]
    assert rows(keyboards.admin_order(5, refundable=False)) == [[t.BTN_RECHECK]]


def test_a_my_orders_row_shortens_a_long_title_and_counts_the_other_lines() -> None:
    row = t.order_row(
        12,
        [("The Witcher 3: Wild Hunt GOTY Edition", 1), ("Guide", 2)],
        Decimal("12.49"),
        "USD",
        "delivered",
        datetime(2026, 12, 2, tzinfo=UTC),
    )
    assert row == "#12 · 2 Dec · The Witcher 3: Wild… ×1 +1 · $12.49 · ✅"
    assert len(row) <= 64
