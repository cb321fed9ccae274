"""Outbox kinds and the goods an order delivers, shared by the screens and the outbox.

A settlement enqueues facts (storage.OutboxKind); bot/screens/outgoing.py composes their text
when they are sent. The other kinds here carry their text with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.i18n import localized
from bot.screens.texts import en_admin as ta
from storage import ADMIN_KINDS, OrderDetails, OrderLine, OutboxDraft, OutboxKind, Product

# Telegram's limit is 4096 characters; beyond this many codes go as a .txt document.
MAX_INLINE_TEXT = 3500

GOODS = OutboxKind.GOODS  # the buyer's goods (composed from the order when sent)
NOTICE = OutboxKind.NOTICE  # a message to the buyer, with its text
ADMIN = OutboxKind.ADMIN  # a message to an admin, with its text
BROADCAST = OutboxKind.BROADCAST  # a broadcast's message (composed from the broadcast)
__all__ = [
    "ADMIN",
    "ADMIN_KINDS",
    "BROADCAST",
    "GOODS",
    "MAX_INLINE_TEXT",
    "NOTICE",
    "admin_notices",
    "buyer_text",
    "goods",
    "goods_by_product",
    "items",
]


def goods(
    lines: Iterable[OrderLine], products: Mapping[int, Product], codes: Mapping[int, list[str]]
) -> list[str]:
    """What the buyer receives: each line's sold codes, or the content of unlimited products."""
    result: list[str] = []
    for line in lines:
        product = products.get(line.product_id)
        if product is not None and product.unlimited:
            result.append(product.content or "")
        else:
            result.extend(codes.get(line.product_id, []))
    return result


def goods_by_product(
    lines: Iterable[OrderLine], products: Mapping[int, Product], codes: Mapping[int, list[str]]
) -> list[tuple[str, list[str]]]:
    """The goods grouped by product, as (title, goods), in the order's line order (a product
    on two lines is one group)."""
    groups: dict[int, tuple[str, list[str]]] = {}
    for line in lines:
        if line.product_id in groups:
            continue
        product = products.get(line.product_id)
        title = "?" if product is None else localized(product.translations, "title", product.title)
        groups[line.product_id] = (title, goods([line], products, codes))
    return list(groups.values())


def admin_notices(
    text: str, admin_ids: Iterable[int], order_id: int, tag: str
) -> list[OutboxDraft]:
    return [
        OutboxDraft(
            admin, text, kind=ADMIN, order_id=order_id, dedupe_key=f"{tag}:{order_id}:{admin}"
        )
        for admin in sorted(admin_ids)
    ]


def items(details: OrderDetails) -> list[tuple[str, int]]:
    """(product title, quantity) of each of the order's lines."""
    products = details.products

    def title(product_id: int) -> str:
        product = products.get(product_id)
        return "?" if product is None else localized(product.translations, "title", product.title)

    return [(title(line.product_id), line.quantity) for line in details.lines]


def buyer_text(details: OrderDetails) -> str:
    """The buyer as the admins' texts name them (HTML)."""
    c = details.customer
    return ta.buyer(c.telegram_id, c.username, c.blocked_bot)
