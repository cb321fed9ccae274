"""What the outbox worker sends for one outbox row: the row's facts made into a message.

`compose` is the one place a queued message becomes text. It runs when the message is
sent, outside every transaction (the settlement only commits the facts: kind, order,
recipient).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiogram.types import InlineKeyboardMarkup

from bot.context import ShopContext
from storage.models import OutboxMessage


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Telegram message: text (a caption when there is a document), buttons, and an
    optional document (name, bytes)."""

    text: str
    reply_markup: InlineKeyboardMarkup | None = None
    document_name: str | None = None
    document_data: bytes | None = None


async def compose(ctx: ShopContext, message: OutboxMessage) -> Outgoing:
    """The message to send for this outbox row (for now: the text stored with it)."""
    markup = None
    if message.reply_markup:
        markup = InlineKeyboardMarkup.model_validate(json.loads(message.reply_markup))
    return Outgoing(message.text, markup, message.document_name, message.document_data)
