"""The Mini App storefront's own texts, in English (the msgids) and, through bot/locales, in
Russian. The page shows them as plain text (never as HTML); the chat's words are reused
where the page has the same button (Add to cart, Checkout, Pay…).
"""

from __future__ import annotations

from bot.i18n import _, __, ngettext, translated
from bot.screens.texts import en as t

WEBAPP_BUTTON = __("Open shop")
SHOP = __("Shop")
SEARCH = __("Search by title")
NOTHING_FOUND = __("Nothing found. Try another word.")
NO_PRODUCTS = __("Nothing here yet.")
MORE = __("Show more")
SOLD_OUT = __("Sold out")
AVAILABLE = __("Available")
QUANTITY = __("Quantity")
TOTAL = __("Total")
CART_EMPTY = __("Your cart is empty. Add something from the catalog.")
APPLY = __("Apply")
PAY_BY = __("Pay by {time}")
WAITING = __("Waiting for your payment. This page updates itself once it is paid.")
PAID = __("Paid, thank you! Your goods:")
GOODS_IN_CHAT = __("The goods were also sent to you in the chat.")
ORDERS_EMPTY = __("You have no orders yet.")
ORDER_GONE = __("This order was not found.")
OFFLINE = __("Could not reach the shop. Check your connection and try again.")
OPEN_FROM_TELEGRAM = __("Please open the shop from the bot in Telegram.")
SESSION_OLD = __("This shop window is too old. Close it and open the shop again from the bot.")
BAD_REQUEST = __("That request could not be understood.")
PROMO_APPLIED = __("Promo code applied.")


def in_stock(n: int) -> str:
    return ngettext("{n} in stock", "{n} in stock", n).format(n=n)


def order_title(order_id: int) -> str:
    return _("Order #{id}").format(id=order_id)


def discount(code: str) -> str:
    return _("Promo code {code}").format(code=code.upper())


def page_texts() -> dict[str, str]:
    """Every word the page shows by itself, in the current language (plain text)."""
    return {
        "shop": _(SHOP),
        "catalog": t.BTN_CATALOG,
        "cart": t.BTN_CART,
        "orders": t.BTN_ORDERS,
        "search": _(SEARCH),
        "nothing_found": _(NOTHING_FOUND),
        "no_products": _(NO_PRODUCTS),
        "more": _(MORE),
        "sold_out": _(SOLD_OUT),
        "available": _(AVAILABLE),
        "quantity": _(QUANTITY),
        "add_to_cart": t.BTN_ADD_TO_CART,
        "checkout": t.BTN_CHECKOUT,
        "empty_cart": t.BTN_EMPTY_CART,
        "remove": t.BTN_REMOVE,
        "promo": t.BTN_PROMO,
        "apply": _(APPLY),
        "total": _(TOTAL),
        "cart_empty": _(CART_EMPTY),
        "pay": t.BTN_PAY,
        "check": t.BTN_CHECK,
        "cancel": t.BTN_CANCEL,
        "waiting": _(WAITING),
        "paid": _(PAID),
        "goods_in_chat": _(GOODS_IN_CHAT),
        "orders_empty": _(ORDERS_EMPTY),
        "offline": _(OFFLINE),
        "open_from_telegram": _(OPEN_FROM_TELEGRAM),
        "promo_applied": _(PROMO_APPLIED),
    }


translated(__name__)
