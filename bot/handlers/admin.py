"""Admin commands on their own router behind the admin filter: for anyone else they do not exist."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message

from bot.config import Settings


class IsAdmin(Filter):
    def __init__(self, admin_ids: frozenset[int]) -> None:
        self.admin_ids = admin_ids

    async def __call__(self, event: Message | CallbackQuery, **_: Any) -> bool:
        user = event.from_user
        return user is not None and user.id in self.admin_ids


def build_router(settings: Settings) -> Router:
    router = Router(name="admin")
    is_admin = IsAdmin(settings.admin_ids)
    router.message.filter(is_admin)
    router.callback_query.filter(is_admin)
    return router
