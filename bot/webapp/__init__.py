"""The Mini App storefront (PRODUCT.md §3.3, §6): static files at `/app/`, a JSON API at
`/app/api/…` over the chat's own use cases, and the chat's way into it (menu button,
Open shop under /start)."""

from __future__ import annotations

from aiohttp import web

from bot.context import ShopContext
from bot.i18n import ChoiceLookup
from bot.runtime.languages import LanguageChoices
from bot.webapp.api import add_api_routes
from bot.webapp.auth import secret_key
from bot.webapp.state import WEBAPP_KEY, WebAppState
from bot.webapp.static import add_static_routes


def add_webapp(
    app: web.Application, ctx: ShopContext, languages: ChoiceLookup | None = None
) -> None:
    """The storefront's routes on the bot's aiohttp app. `languages`: the chat's lookup of a
    customer's /language choice (so both speak the same language), else one of its own."""
    settings = ctx.settings
    app[WEBAPP_KEY] = WebAppState(
        ctx=ctx,
        key=secret_key(settings.bot_token.get_secret_value()),
        languages=languages or LanguageChoices(ctx.db, ctx.redis).choice,
        max_age=settings.webapp_init_max_age_seconds,
    )
    add_api_routes(app)
    add_static_routes(app, settings.webapp_script_url)


__all__ = ["add_webapp"]
