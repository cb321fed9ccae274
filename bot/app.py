"""The composition root: config → database → Crypto Pay → rates → services → bot → web → jobs.

Nothing here runs at import time; tests build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiohttp import web
from redis.asyncio import Redis

from bot.config import Settings
from bot.context import ShopContext
from bot.handlers import build_routers
from bot.i18n import (
    LANGUAGE_CODES,
    ShopI18nMiddleware,
    gettext,
    language_of,
    use_language,
)
from bot.jobs import Jobs
from bot.middlewares import InFlightMiddleware, install_error_handler
from bot.runtime.buy_guard import buy_guard
from bot.runtime.languages import LanguageChoices
from bot.runtime.metrics import Metrics, TelegramMetrics
from bot.runtime.refund_confirmations import pending_refunds
from bot.runtime.tap_throttle import tap_throttle
from bot.runtime.telegram_models import pin_response_models
from bot.runtime.telegram_pacer import FloodControlObserver, TelegramPacer
from bot.runtime.telegram_retry import RetryMiddleware
from bot.screens.texts import en_admin as ta
from bot.web import add_telegram_webhook, build_web_app
from bot.webapp import add_webapp
from bot.webapp.chat import set_menu_button
from payments import CryptoPayClient, CryptoPayError, ExchangeRateCache, UnauthorizedError
from storage import Database, upgrade

log = logging.getLogger("bot")


class StartupError(Exception):
    """The bot cannot start for a reason the operator can fix; the message says which."""


TELEGRAM_WEBHOOK_PATH = "/telegram/webhook"
SHUTDOWN_DRAIN_SECONDS = 8.0


def create_bot(settings: Settings) -> Bot:
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.telegram_api_url or "https://api.telegram.org"),
        timeout=30,
    )
    session.middleware(RetryMiddleware())
    return Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def create_fsm_storage(settings: Settings) -> BaseStorage:
    if settings.redis_url:
        return RedisStorage.from_url(settings.redis_url)
    return MemoryStorage()


def create_dispatcher(ctx: ShopContext) -> Dispatcher:
    dp = Dispatcher(storage=create_fsm_storage(ctx.settings))
    dp["ctx"] = ctx
    dp["confirmations"] = pending_refunds(ctx.redis)
    dp["buy_guard"] = buy_guard(ctx.redis)
    languages = LanguageChoices(ctx.db, ctx.redis)
    dp["languages"] = languages
    in_flight = InFlightMiddleware()
    dp["in_flight"] = in_flight
    dp.update.outer_middleware(in_flight)
    install_error_handler(dp)
    ShopI18nMiddleware(languages.choice, ctx.settings.default_language).setup(dp)
    dp.include_routers(*build_routers(ctx.settings))
    return dp


def create_cryptopay(
    settings: Settings, metrics: Metrics, *, base_url: str | None = None
) -> CryptoPayClient:
    """The Crypto Pay client as the shop uses it (`base_url` overrides the settings')."""
    return CryptoPayClient(
        settings.cryptopay_token.get_secret_value(),
        base_url or settings.cryptopay_base_url,
        timeout=settings.cryptopay_timeout_seconds,
        rate_limit_per_s=settings.cryptopay_rate_limit,
        observer=metrics.observe_cryptopay,
    )


async def build_context(settings: Settings, bot: Bot) -> ShopContext:
    metrics = Metrics()
    db = Database(settings.database_url)
    if settings.auto_migrate:
        await upgrade(db)
    cryptopay = create_cryptopay(settings, metrics)
    rates = ExchangeRateCache(cryptopay, ttl_seconds=settings.rates_refresh_seconds)
    try:
        me = await bot.me()
        await check_cryptopay(cryptopay, settings)
    except BaseException:
        await cryptopay.aclose()
        await db.dispose()
        raise
    redis = (
        Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        if settings.redis_url
        else None
    )
    return ShopContext(
        redis=redis,
        metrics=metrics,
        settings=settings,
        db=db,
        cryptopay=cryptopay,
        rates=rates,
        bot=bot,
        bot_username=me.username or "",
        pacer=TelegramPacer(settings.telegram_rate_limit),
        taps=tap_throttle(redis),
    )


async def check_cryptopay(cryptopay: CryptoPayClient, settings: Settings) -> None:
    """A wrong token stops the start; a Crypto Pay hiccup does not (reconciliation catches up)."""
    try:
        app = await cryptopay.get_me()
    except UnauthorizedError:
        raise StartupError(
            f"Crypto Pay rejected CRYPTOPAY_TOKEN on {settings.cryptopay_network} "
            f"({settings.cryptopay_base_url}); check the token, and that CRYPTOPAY_NETWORK "
            "matches the bot you created the app in (@CryptoBot: mainnet, "
            "@CryptoTestnetBot: testnet)."
        ) from None
    except CryptoPayError as error:
        log.warning("Crypto Pay did not answer getMe (%s); starting anyway", error.name)
        return
    log.info("Crypto Pay app: %s", app.name)


async def set_commands(
    bot: Bot, admin_ids: frozenset[int], *, default_language: str = "en"
) -> None:
    """Telegram's command menu: the shopper's commands for everyone, the admin's for each
    admin's own chat; each in DEFAULT_LANGUAGE, and per Telegram language code in the
    language that code reads (ru, uk, be, kk: Russian; en: English). An admin who has not
    started the bot yet has no chat (Telegram: chat not found); they get theirs at the next
    start."""

    def commands(pairs: tuple[tuple[str, str], ...]) -> list[BotCommand]:
        return [BotCommand(command=c, description=gettext(d)) for c, d in pairs]

    menus: list[tuple[str | None, str]] = [(None, default_language)]
    menus += [(code, language_of(None, code, default_language)) for code in LANGUAGE_CODES]
    for code, language in menus:
        with use_language(language):
            await bot.set_my_commands(
                commands(ta.SHOPPER_COMMANDS), scope=BotCommandScopeDefault(), language_code=code
            )
    for admin_id in sorted(admin_ids):
        try:
            for code, language in menus:
                with use_language(language):
                    await bot.set_my_commands(
                        commands(ta.ADMIN_COMMANDS),
                        scope=BotCommandScopeChat(chat_id=admin_id),
                        language_code=code,
                    )
        except TelegramAPIError as error:
            log.warning("could not set the admin commands for %s: %s", admin_id, error.message)


async def set_descriptions(bot: Bot, default_language: str) -> None:
    """The bot's description (empty chat) and short description (profile), per language."""
    menus: list[tuple[str | None, str]] = [(None, default_language)]
    menus += [(code, language_of(None, code, default_language)) for code in LANGUAGE_CODES]
    for code, language in menus:
        with use_language(language):
            await bot.set_my_description(ta.BOT_DESCRIPTION, language_code=code)
            await bot.set_my_short_description(ta.BOT_SHORT_DESCRIPTION, language_code=code)


def freeze_startup_heap() -> None:
    """Startup is over: collect its garbage and move what is left (modules, aiogram's types,
    the wiring — some 300,000 objects) out of the cyclic collector's view. Otherwise every
    full collection walks them all and stalls the event loop for 100–200 ms: seen as the
    webhook benchmark's p99. Objects made later are collected as usual."""
    pin_response_models()
    gc.collect()
    gc.freeze()


async def run_bot(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code."""
    bot = create_bot(settings)
    try:
        ctx = await build_context(settings, bot)
    except Exception:
        await bot.session.close()
        raise
    bot.session.middleware(TelegramMetrics(ctx.metrics))
    # Inside RetryMiddleware, so it sees every 429, also those retried there.
    bot.session.middleware(FloodControlObserver(ctx.pacer))
    await ctx.seed_demo_catalog()
    dp = create_dispatcher(ctx)
    jobs = Jobs(ctx)
    app = build_web_app(ctx)
    add_webapp(app, ctx, dp["languages"].choice)
    webhook_mode = bool(settings.telegram_webhook_url)
    if webhook_mode:
        add_telegram_webhook(
            app, dp, bot, path=TELEGRAM_WEBHOOK_PATH, secret=settings.webhook_secret
        )

    freeze_startup_heap()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    log.info(
        "shop is up",
        extra={
            "bot": ctx.bot_username,
            "listen": f"{settings.host}:{settings.port}",
            "mode": "webhook" if webhook_mode else "polling",
            "network": settings.cryptopay_network,
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    jobs.start()
    try:
        try:
            await set_commands(bot, settings.admin_ids, default_language=settings.default_language)
            await set_descriptions(bot, settings.default_language)
            await set_menu_button(bot, settings)
        except TelegramAPIError as error:
            log.warning("could not set the command menu: %s", error.message)
        if webhook_mode:
            await bot.set_webhook(
                f"{settings.telegram_webhook_url}{TELEGRAM_WEBHOOK_PATH}",
                secret_token=settings.webhook_secret,
                allowed_updates=dp.resolve_used_update_types(),
            )
            await stop.wait()
        else:
            await bot.delete_webhook(drop_pending_updates=False)
            polling = asyncio.create_task(
                dp.start_polling(
                    bot,
                    handle_signals=False,
                    close_bot_session=False,
                    allowed_updates=dp.resolve_used_update_types(),
                )
            )
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({polling, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not polling.done():
                await dp.stop_polling()
            with contextlib.suppress(Exception):
                await polling
            stopped.cancel()
    finally:
        log.info("shutting down")
        await site.stop()  # no new webhooks or Telegram updates
        in_flight: InFlightMiddleware = dp["in_flight"]
        await in_flight.drain(SHUTDOWN_DRAIN_SECONDS)
        await jobs.stop()
        await runner.cleanup()
        await ctx.close()
        await dp.storage.close()
        await bot.session.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0
