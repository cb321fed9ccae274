"""Inline keyboards. Layout only: what each button does lives in the handlers.

Each keyboard is written as its rows. (aiogram's InlineKeyboardBuilder deep-copies every
button when it builds the markup: a tenth of a Buy tap's time went there.)"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import (
    AdminAction,
    AdminOrder,
    AdminOrderAt,
    AdminOrdersPage,
    CartAction,
    CartAdd,
    CartButton,
    CategoryPage,
    LanguagePick,
    Menu,
    MenuAction,
    OrderAction,
    OrderButton,
    OrdersPage,
    ProductAction,
    ProductCard,
    PromoAsk,
    RefundConfirm,
    RefundDecision,
)
from bot.screens.texts import en_admin as ta
from bot.screens.texts import en_growth as tg
from bot.screens.texts import texts as t

Row = list[InlineKeyboardButton]


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def _markup(*rows: Row) -> InlineKeyboardMarkup:
    """The rows that have buttons, top to bottom."""
    return InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])


def main_menu(cart_units: int = 0) -> InlineKeyboardMarkup:
    """Catalog, Cart (with its count of units once not empty), My orders, Help."""
    return _markup(
        [
            _button(t.BTN_CATALOG, Menu(action=MenuAction.CATALOG)),
            _button(t.btn_cart(cart_units), CartButton(a=CartAction.SHOW)),
        ],
        [
            _button(t.BTN_ORDERS, Menu(action=MenuAction.ORDERS)),
            _button(t.BTN_HELP, Menu(action=MenuAction.HELP)),
        ],
    )


def help_menu() -> InlineKeyboardMarkup:
    """Under Help: the main menu, Invite friends (PRODUCT.md §4.2) and Language (§3.2)."""
    rows = main_menu().inline_keyboard
    return _markup(
        *rows,
        [
            _button(tg.BTN_INVITE, Menu(action=MenuAction.INVITE)),
            _button(t.BTN_LANGUAGE, LanguagePick()),
        ],
    )


def languages() -> InlineKeyboardMarkup:
    """/language: each language named in itself."""
    return _markup(
        [_button(name, LanguagePick(code=code)) for code, name in t.LANGUAGE_NAMES.items()]
    )


def back_to_menu() -> InlineKeyboardMarkup:
    return _markup([_button(t.BTN_MENU, Menu(action=MenuAction.MENU))])


def _pager(first: CallbackData | None, following: CallbackData | None) -> Row:
    """⏮ First page (when not on it) and Next ▶ (when there is more), on one row."""
    return [
        _button(text, data)
        for text, data in ((t.BTN_FIRST, first), (t.BTN_NEXT, following))
        if data is not None
    ]


def category_page(
    *,
    slug: str,
    subcategories: Sequence[tuple[str, str]],
    products: Sequence[tuple[str, str]],
    next_cursor: str | None,
    is_first_page: bool,
    parent_slug: str | None,
) -> InlineKeyboardMarkup:
    back = (
        _button(t.BTN_BACK, CategoryPage(slug=parent_slug or ""))
        if slug
        else _button(t.BTN_MENU, Menu(action=MenuAction.MENU))
    )
    return _markup(
        *([_button(f"📁 {title}", CategoryPage(slug=child))] for child, title in subcategories),
        *(
            [_button(title, ProductCard(action=ProductAction.SHOW, sku=sku))]
            for sku, title in products
        ),
        _pager(
            None if is_first_page else CategoryPage(slug=slug),
            None if next_cursor is None else CategoryPage(slug=slug, after=next_cursor),
        ),
        [back],
    )


def product_card(
    *, sku: str, quantity: int, can_buy: bool, category_slug: str
) -> InlineKeyboardMarkup:
    back = [_button(t.BTN_BACK, CategoryPage(slug=category_slug))]
    if not can_buy:
        return _markup(back)

    def act(action: ProductAction) -> ProductCard:
        return ProductCard(action=action, sku=sku, qty=quantity)

    return _markup(
        [
            _button(t.BTN_MINUS, act(ProductAction.DEC)),
            _button(str(quantity), act(ProductAction.NOOP)),
            _button(t.BTN_PLUS, act(ProductAction.INC)),
        ],
        [
            _button(t.BTN_BUY, act(ProductAction.BUY)),
            _button(t.BTN_ADD_TO_CART, CartAdd(sku=sku, q=quantity)),
        ],
        [_button(t.BTN_PROMO, PromoAsk(sku=sku, qty=quantity))],
        back,
    )


def _pending_rows(order_id: int, pay_url: str) -> list[Row]:
    return [
        [InlineKeyboardButton(text=t.BTN_PAY, url=pay_url)],
        [
            _button(t.BTN_CHECK, OrderButton(action=OrderAction.CHECK, order_id=order_id)),
            _button(t.BTN_CANCEL, OrderButton(action=OrderAction.ASK_CANCEL, order_id=order_id)),
        ],
    ]


def pending_order(order_id: int, pay_url: str) -> InlineKeyboardMarkup:
    return _markup(*_pending_rows(order_id, pay_url))


def order_view(order_id: int, *, pay_url: str | None, pending: bool) -> InlineKeyboardMarkup:
    rows = _pending_rows(order_id, pay_url) if pending and pay_url else []
    return _markup(*rows, [_button(t.BTN_BACK, OrdersPage())])


def confirm_cancel(order_id: int) -> InlineKeyboardMarkup:
    """Yes, cancel / Keep (Keep shows the order again, as it was)."""
    return _markup(
        [
            _button(t.BTN_YES_CANCEL, OrderButton(action=OrderAction.CANCEL, order_id=order_id)),
            _button(t.BTN_KEEP, OrderButton(action=OrderAction.SHOW, order_id=order_id)),
        ]
    )


def buy_again(sku: str) -> InlineKeyboardMarkup:
    """Under the expiry notice: the product card of the order's first product."""
    return _markup([_button(t.BTN_BUY_AGAIN, ProductCard(action=ProductAction.SHOW, sku=sku))])


def closed_order(sku: str | None) -> InlineKeyboardMarkup:
    """An expired or cancelled order in My orders: buy it again, or go back."""
    again = ProductCard(action=ProductAction.SHOW, sku=sku) if sku else None
    return _markup(
        [_button(t.BTN_BUY_AGAIN, again)] if again else [],
        [_button(t.BTN_BACK, OrdersPage())],
    )


def orders_page(
    orders: Sequence[tuple[int, str]], *, next_before: int | None, is_first_page: bool
) -> InlineKeyboardMarkup:
    return _markup(
        *(
            [_button(label, OrderButton(action=OrderAction.SHOW, order_id=order_id))]
            for order_id, label in orders
        ),
        _pager(
            None if is_first_page else OrdersPage(),
            None if next_before is None else OrdersPage(before=next_before),
        ),
        [_button(t.BTN_MENU, Menu(action=MenuAction.MENU))],
    )


def after_goods() -> InlineKeyboardMarkup:
    """Under the goods message: where the goods stay, and the way back to shopping."""
    return _markup(
        [
            _button(t.BTN_ORDERS, Menu(action=MenuAction.ORDERS)),
            _button(t.BTN_CATALOG, Menu(action=MenuAction.CATALOG)),
        ]
    )


def admin_order(
    order_id: int, *, refundable: bool, page: AdminOrdersPage | None = None
) -> InlineKeyboardMarkup:
    """Refund, Recheck; opened from a page of /orders (`page`), also ◀ Orders back to it."""
    if page is None:
        refund: CallbackData = AdminOrder(action=AdminAction.REFUND, order_id=order_id)
        recheck: CallbackData = AdminOrder(action=AdminAction.RECHECK, order_id=order_id)
    else:
        at = {"order_id": order_id, "status": page.status, "before": page.before}
        refund = AdminOrderAt(action=AdminAction.REFUND, **at)
        recheck = AdminOrderAt(action=AdminAction.RECHECK, **at)
    return _markup(
        [
            *([_button(t.BTN_REFUND, refund)] if refundable else []),
            _button(t.BTN_RECHECK, recheck),
        ],
        [_button(ta.BTN_BACK_TO_ORDERS, page)] if page is not None else [],
    )


def admin_orders_page(
    orders: Sequence[tuple[int, str]], *, status: str, before: int, next_before: int | None
) -> InlineKeyboardMarkup:
    return _markup(
        *(
            [
                _button(
                    label,
                    AdminOrderAt(
                        action=AdminAction.SHOW, order_id=order_id, status=status, before=before
                    ),
                )
            ]
            for order_id, label in orders
        ),
        _pager(
            None if not before else AdminOrdersPage(status=status),
            None if next_before is None else AdminOrdersPage(status=status, before=next_before),
        ),
    )


def admin_open_orders(order_ids: Sequence[int], per_row: int = 4) -> InlineKeyboardMarkup:
    """One button per order (#12), opening it: /stats' orders that need attention."""
    buttons = [
        _button(f"#{oid}", AdminOrder(action=AdminAction.SHOW, order_id=oid)) for oid in order_ids
    ]
    return _markup(*(buttons[i : i + per_row] for i in range(0, len(buttons), per_row)))


def admin_open_order(order_id: int) -> InlineKeyboardMarkup:
    """Under an admin alert about one order."""
    return _markup(
        [_button(ta.open_order(order_id), AdminOrder(action=AdminAction.SHOW, order_id=order_id))]
    )


def refund_confirm(token: str) -> InlineKeyboardMarkup:
    return _markup(
        [
            _button(t.BTN_CONFIRM, RefundConfirm(decision=RefundDecision.CONFIRM, token=token)),
            _button(t.BTN_CANCEL, RefundConfirm(decision=RefundDecision.CANCEL, token=token)),
        ]
    )


def cart(
    lines: Sequence[tuple[int, str, int]], *, fingerprint: str, can_checkout: bool
) -> InlineKeyboardMarkup:
    """Each line (product id, title, quantity): −, the line, +, Remove; then Checkout, Empty
    cart and ◀ Menu."""

    def act(action: CartAction, product_id: int = 0) -> CartButton:
        return CartButton(a=action, p=product_id)

    rows = [
        [
            _button(t.BTN_MINUS, act(CartAction.DEC, pid)),
            _button(f"{_short(title)} ×{quantity}", act(CartAction.NOOP, pid)),
            _button(t.BTN_PLUS, act(CartAction.INC, pid)),
            _button(t.BTN_REMOVE, act(CartAction.REMOVE, pid)),
        ]
        for pid, title, quantity in lines
    ]
    checkout = CartButton(a=CartAction.CHECKOUT, h=fingerprint)
    return _markup(
        *rows,
        [_button(t.BTN_CHECKOUT, checkout)] if can_checkout else [],
        [_button(t.BTN_EMPTY_CART, act(CartAction.EMPTY))] if lines else [],
        [_button(t.BTN_MENU, Menu(action=MenuAction.MENU))],
    )


def _short(title: str, limit: int = 16) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def promo_prompt(sku: str, quantity: int) -> InlineKeyboardMarkup:
    """Under "send me your promo code": back to the card, as it was (and no longer
    waiting for a code)."""
    return _markup([_button(t.BTN_BACK_TO_PRODUCT, PromoAsk(sku=sku, qty=quantity, back=1))])


def promo_retry(sku: str, quantity: int) -> InlineKeyboardMarkup:
    """Under a refused code: another code, or back to the card."""
    card = ProductCard(action=ProductAction.SHOW, sku=sku, qty=quantity)
    return _markup(
        [_button(t.BTN_PROMO, PromoAsk(sku=sku, qty=quantity))],
        [_button(t.BTN_BACK_TO_PRODUCT, card)],
    )
