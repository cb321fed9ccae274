"""Callback data of every inline button. Parsed by aiogram; never trusted beyond its shape.

Anyone can send any callback data, so every field is checked strictly here, in one place:
numbers are ASCII digits within the range the database can hold, strings a short run of
`[A-Za-z0-9_-]`. Data that fails matches no handler's filter (aiogram's filter treats the
ValidationError, a ValueError, as "not this button") and reaches the fallback's
"this button no longer works".
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from aiogram.filters.callback_data import CallbackData
from pydantic import BeforeValidator, Field, StringConstraints

# Row ids are INTEGER columns: PostgreSQL's int4 holds at most 2**31 - 1.
MAX_ID = 2**31 - 1
MAX_QUANTITY = 10_000  # far above any card's cap (max_per_order is at most 1000)
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII only: str.isdigit() also takes "²" and "١"


def parse_int(text: str, low: int, high: int) -> int | None:
    """`text` as an int in low..high if it is plain ASCII digits, else None."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_id(text: str) -> int | None:
    """A row id typed or sent by someone: ASCII digits, 1..MAX_ID; else None."""
    return parse_int(text, 1, MAX_ID)


def _ascii_digits(value: Any) -> Any:
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError("expected ASCII digits")
        return int(value)
    return value


def _cursor(value: Any) -> Any:
    if value != "" and (
        not isinstance(value, str) or value[:1] not in ("c", "p") or parse_id(value[1:]) is None
    ):
        raise ValueError("expected '', 'c<id>' or 'p<id>'")
    return value


OrderId = Annotated[int, BeforeValidator(_ascii_digits), Field(ge=1, le=MAX_ID)]
Before = Annotated[int, BeforeValidator(_ascii_digits), Field(ge=0, le=MAX_ID)]
Quantity = Annotated[int, BeforeValidator(_ascii_digits), Field(ge=1, le=MAX_QUANTITY)]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{0,32}$")]
Cursor = Annotated[str, BeforeValidator(_cursor)]
StatusName = Annotated[str, StringConstraints(pattern=r"^[a-z_]{0,24}$")]
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{0,8}$")]
Fingerprint = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{0,16}$")]


class MenuAction(StrEnum):
    MENU = "m"
    CATALOG = "c"
    ORDERS = "o"
    HELP = "h"
    INVITE = "i"  # Help → Invite friends


class Menu(CallbackData, prefix="n"):
    action: MenuAction


class CategoryPage(CallbackData, prefix="c"):
    """A category's page: its subcategories and products. `slug=""` is the catalog's root."""

    slug: Slug = ""
    after: Cursor = ""  # keyset cursor of the next page: "c<category id>" or "p<product id>"


class ProductAction(StrEnum):
    SHOW = "s"
    DEC = "d"
    INC = "i"
    BUY = "b"
    NOOP = "n"


class ProductCard(CallbackData, prefix="p"):
    action: ProductAction
    sku: Sku
    qty: Quantity = 1


class PromoAsk(CallbackData, prefix="pr"):
    """A product card's Promo code: ask for the code, then show that card again."""

    sku: Sku
    qty: Quantity = 1
    back: Annotated[int, BeforeValidator(_ascii_digits), Field(ge=0, le=1)] = 0  # 1: stop
    # waiting for a code and show the card again


class OrderAction(StrEnum):
    SHOW = "s"
    CHECK = "k"
    CANCEL = "x"  # cancel for sure ("Yes, cancel")
    ASK_CANCEL = "a"  # the order message's Cancel: asks first


class OrderButton(CallbackData, prefix="o"):
    action: OrderAction
    order_id: OrderId


class OrdersPage(CallbackData, prefix="op"):
    before: Before = 0  # 0: the newest page


class AdminAction(StrEnum):
    SHOW = "s"
    REFUND = "r"
    RECHECK = "k"


class AdminOrder(CallbackData, prefix="ao"):
    action: AdminAction
    order_id: OrderId


class AdminOrdersPage(CallbackData, prefix="aop"):
    status: StatusName = ""  # "" for every status
    before: Before = 0  # 0: the newest page


class AdminOrderAt(CallbackData, prefix="aot"):
    """An order opened from a page of /orders: its buttons remember that page, so ◀ Orders
    goes back to it (at most ~50 bytes: Telegram allows 64)."""

    action: AdminAction
    order_id: OrderId
    status: StatusName = ""
    before: Before = 0


class RefundDecision(StrEnum):
    CONFIRM = "y"
    CANCEL = "n"


class RefundConfirm(CallbackData, prefix="rf"):
    decision: RefundDecision
    token: Token  # a short id of the pending confirmation, looked up server-side


class CartAction(StrEnum):
    SHOW = "s"
    DEC = "d"
    INC = "i"
    REMOVE = "r"
    CHECKOUT = "k"
    EMPTY = "e"
    NOOP = "n"


class CartButton(CallbackData, prefix="ct"):
    """A cart screen's button: `p` the line's product id; Checkout's `h` the fingerprint of
    the cart as that screen showed it (bot/shop/cart.py)."""

    a: CartAction
    p: Before = 0  # a product id; 0 for the buttons of the whole cart
    h: Fingerprint = ""


class CartAdd(CallbackData, prefix="ca"):
    """A product card's Add to cart: `q` units of `sku`."""

    sku: Sku
    q: Quantity = 1


class LanguagePick(CallbackData, prefix="lang"):
    """/language's buttons: `code=""` shows the choice (Help's Language button)."""

    code: LanguageCode = ""


class CartPromoAsk(CallbackData, prefix="cpr"):
    """The cart screen's Promo code: ask for the code, then show the cart again."""

    back: Before = 0  # 1: stop waiting for a code and show the cart again


class BroadcastStep(StrEnum):
    NO_BUTTON = "n"
    EVERYONE = "e"
    BUYERS = "b"
    SEND = "s"
    CANCEL = "c"


class BroadcastDraftButton(CallbackData, prefix="bcd"):
    """The buttons of a broadcast being written (the draft itself is in the FSM state)."""

    step: BroadcastStep


class BroadcastStop(CallbackData, prefix="bcs"):
    """The progress message's Stop."""

    broadcast_id: OrderId
