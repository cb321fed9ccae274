"""Routers, built fresh per Dispatcher (a Router can be attached to one Dispatcher only)."""

from __future__ import annotations

from aiogram import Router

from bot.config import Settings
from bot.handlers import admin, broadcast, cart, fallback, growth, language, orders, promo, shop
from bot.photos import handlers as photos


def build_routers(settings: Settings) -> list[Router]:
    # Admin first, behind its filter; the fallback last, so it only gets what nobody took.
    return [
        broadcast.build_router(settings),  # a draft's photo is not a product's picture
        photos.build_router(settings),  # an admin's picture, before admin's .txt uploads
        admin.build_router(settings),
        growth.build_router(settings),
        shop.build_router(),
        promo.build_router(),
        orders.build_router(),
        cart.build_router(),
        language.build_router(),
        fallback.build_router(),
    ]
