"""Callback data of every inline button. Parsed by aiogram; never trusted beyond its shape."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class MenuAction(StrEnum):
    MENU = "m"
    CATALOG = "c"
    ORDERS = "o"
    HELP = "h"


class Menu(CallbackData, prefix="n"):
    action: MenuAction


class CategoryPage(CallbackData, prefix="c"):
    """A category's page: its subcategories and products. `slug=""` is the catalog's root."""

    slug: str = ""
    after: str = ""  # keyset cursor of the next page: "c:<slug>" or "p:<sku>"


class ProductAction(StrEnum):
    SHOW = "s"
    DEC = "d"
    INC = "i"
    BUY = "b"
    NOOP = "n"


class ProductCard(CallbackData, prefix="p"):
    action: ProductAction
    sku: str
    qty: int = 1


class PromoAsk(CallbackData, prefix="pr"):
    """A product card's Promo code: ask for the code, then show that card again."""

    sku: str
    qty: int = 1
    back: int = 0  # 1: stop waiting for a code and show the card again


class OrderAction(StrEnum):
    SHOW = "s"
    CHECK = "k"
    CANCEL = "x"  # cancel for sure ("Yes, cancel")
    ASK_CANCEL = "a"  # the order message's Cancel: asks first


class OrderButton(CallbackData, prefix="o"):
    action: OrderAction
    order_id: int


class OrdersPage(CallbackData, prefix="op"):
    before: int = 0  # 0: the newest page


class AdminAction(StrEnum):
    SHOW = "s"
    REFUND = "r"
    RECHECK = "k"


class AdminOrder(CallbackData, prefix="ao"):
    action: AdminAction
    order_id: int


class AdminOrdersPage(CallbackData, prefix="aop"):
    status: str = ""  # "" for every status
    before: int = 0  # 0: the newest page


class AdminOrderAt(CallbackData, prefix="aot"):
    """An order opened from a page of /orders: its buttons remember that page, so ◀ Orders
    goes back to it (at most ~50 bytes: Telegram allows 64)."""

    action: AdminAction
    order_id: int
    status: str = ""
    before: int = 0


class RefundDecision(StrEnum):
    CONFIRM = "y"
    CANCEL = "n"


class RefundConfirm(CallbackData, prefix="rf"):
    decision: RefundDecision
    token: str  # a short id of the pending confirmation, looked up server-side
