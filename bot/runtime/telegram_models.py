"""Keep aiogram's parsed-response models alive for the process's lifetime."""

from __future__ import annotations

from typing import Any

from aiogram import methods
from aiogram.methods import Response

# The Bot API methods the shop calls on its busy paths (taps, checkout, delivery, notices).
HOT_METHODS: tuple[type[methods.TelegramMethod[Any]], ...] = (
    methods.AnswerCallbackQuery,
    methods.EditMessageText,
    methods.EditMessageReplyMarkup,
    methods.SendMessage,
    methods.SendDocument,
    methods.DeleteMessage,
    methods.SetMyCommands,
)

_pinned: list[type[Any]] = []


def pin_response_models() -> None:
    """aiogram parses every answer from Telegram with ``Response[<the method's result
    type>]``, a pydantic generic model that pydantic caches only weakly: once nothing else
    refers to it, a garbage collection frees it and the next call of that method builds the
    model class again (schema, validator: ~6 ms of the event loop's CPU). Under load the
    checkout makes enough garbage for that to happen about once every three taps: a
    cProfile of 300 checkout taps, one at a time, spent 0.65 s building 104 of these
    classes — some 2 ms a tap. Holding one reference to each keeps pydantic's cache warm;
    the models are built here, once, at startup."""
    for method in HOT_METHODS:
        _pinned.append(Response[method.__returning__])  # type: ignore[name-defined]
