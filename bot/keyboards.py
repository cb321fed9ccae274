"""Inline keyboards. Layout only: what each button does lives in the handlers."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import (
    AdminAction,
    AdminOrder,
    AdminOrdersPage,
    CategoryPage,
    Menu,
    MenuAction,
    OrderAction,
    OrderButton,
    OrdersPage,
    ProductAction,
    ProductCard,
    RefundConfirm,
    RefundDecision,
)
from bot.texts import texts as t


def main_menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=t.BTN_CATALOG, callback_data=Menu(action=MenuAction.CATALOG))
    kb.button(text=t.BTN_ORDERS, callback_data=Menu(action=MenuAction.ORDERS))
    kb.button(text=t.BTN_HELP, callback_data=Menu(action=MenuAction.HELP))
    kb.adjust(1, 2)
    return kb.as_markup()


def back_to_menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=t.BTN_MENU, callback_data=Menu(action=MenuAction.MENU))
    return kb.as_markup()


def _pager(
    kb: InlineKeyboardBuilder,
    sizes: list[int],
    first: CallbackData | None,
    following: CallbackData | None,
) -> None:
    """⏮ First page (when not on it) and Next ▶ (when there is more), on one row."""
    nav = [(text, data) for text, data in ((t.BTN_FIRST, first), (t.BTN_NEXT, following)) if data]
    for text, data in nav:
        kb.button(text=text, callback_data=data)
    if nav:
        sizes.append(len(nav))


def category_page(
    *,
    slug: str,
    subcategories: Sequence[tuple[str, str]],
    products: Sequence[tuple[str, str]],
    next_cursor: str | None,
    is_first_page: bool,
    parent_slug: str | None,
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for child_slug, title in subcategories:
        kb.button(text=f"📁 {title}", callback_data=CategoryPage(slug=child_slug))
    for sku, title in products:
        kb.button(text=title, callback_data=ProductCard(action=ProductAction.SHOW, sku=sku))
    sizes = [1] * (len(subcategories) + len(products))
    _pager(
        kb,
        sizes,
        None if is_first_page else CategoryPage(slug=slug),
        None if next_cursor is None else CategoryPage(slug=slug, after=next_cursor),
    )
    if slug:
        kb.button(text=t.BTN_BACK, callback_data=CategoryPage(slug=parent_slug or ""))
    else:
        kb.button(text=t.BTN_MENU, callback_data=Menu(action=MenuAction.MENU))
    sizes.append(1)
    kb.adjust(*sizes)
    return kb.as_markup()


def product_card(
    *, sku: str, quantity: int, can_buy: bool, category_slug: str
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if can_buy:
        kb.button(
            text=t.BTN_MINUS,
            callback_data=ProductCard(action=ProductAction.DEC, sku=sku, qty=quantity),
        )
        kb.button(
            text=str(quantity),
            callback_data=ProductCard(action=ProductAction.NOOP, sku=sku, qty=quantity),
        )
        kb.button(
            text=t.BTN_PLUS,
            callback_data=ProductCard(action=ProductAction.INC, sku=sku, qty=quantity),
        )
        kb.button(
            text=t.BTN_BUY,
            callback_data=ProductCard(action=ProductAction.BUY, sku=sku, qty=quantity),
        )
    kb.button(text=t.BTN_BACK, callback_data=CategoryPage(slug=category_slug))
    kb.adjust(*([3, 1, 1] if can_buy else [1]))
    return kb.as_markup()


def pending_order(order_id: int, pay_url: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=t.BTN_PAY, url=pay_url)
    kb.button(
        text=t.BTN_CHECK, callback_data=OrderButton(action=OrderAction.CHECK, order_id=order_id)
    )
    kb.button(
        text=t.BTN_CANCEL, callback_data=OrderButton(action=OrderAction.CANCEL, order_id=order_id)
    )
    kb.adjust(1, 2)
    return kb.as_markup()


def order_view(order_id: int, *, pay_url: str | None, pending: bool) -> InlineKeyboardMarkup:
    if pending and pay_url:
        kb = InlineKeyboardBuilder.from_markup(pending_order(order_id, pay_url))
    else:
        kb = InlineKeyboardBuilder()
    kb.row()
    kb.button(text=t.BTN_BACK, callback_data=OrdersPage())
    return kb.as_markup()


def orders_page(
    orders: Sequence[tuple[int, str]], *, next_before: int | None, is_first_page: bool
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for order_id, label in orders:
        kb.button(text=label, callback_data=OrderButton(action=OrderAction.SHOW, order_id=order_id))
    sizes = [1] * len(orders)
    _pager(
        kb,
        sizes,
        None if is_first_page else OrdersPage(),
        None if next_before is None else OrdersPage(before=next_before),
    )
    kb.button(text=t.BTN_MENU, callback_data=Menu(action=MenuAction.MENU))
    sizes.append(1)
    kb.adjust(*sizes)
    return kb.as_markup()


def admin_order(order_id: int, *, refundable: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if refundable:
        kb.button(
            text=t.BTN_REFUND,
            callback_data=AdminOrder(action=AdminAction.REFUND, order_id=order_id),
        )
    kb.button(
        text=t.BTN_RECHECK, callback_data=AdminOrder(action=AdminAction.RECHECK, order_id=order_id)
    )
    return kb.as_markup()


def admin_orders_page(
    orders: Sequence[tuple[int, str]], *, status: str, next_before: int | None, is_first_page: bool
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for order_id, label in orders:
        kb.button(text=label, callback_data=AdminOrder(action=AdminAction.SHOW, order_id=order_id))
    sizes = [1] * len(orders)
    _pager(
        kb,
        sizes,
        None if is_first_page else AdminOrdersPage(status=status),
        None if next_before is None else AdminOrdersPage(status=status, before=next_before),
    )
    kb.adjust(*sizes)
    return kb.as_markup()


def refund_confirm(token: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=t.BTN_CONFIRM,
        callback_data=RefundConfirm(decision=RefundDecision.CONFIRM, token=token),
    )
    kb.button(
        text=t.BTN_CANCEL, callback_data=RefundConfirm(decision=RefundDecision.CANCEL, token=token)
    )
    return kb.as_markup()
