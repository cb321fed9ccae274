"""The demo's settings: built from the values given here and nothing else.

`Settings` reads the environment and `.env` (pydantic-settings); the demo must never pick up
a developer's real BOT_TOKEN, DATABASE_URL or REDIS_URL from either, so `DemoSettings` keeps
only the values passed to it. Every address it names is on 127.0.0.1.
"""

from __future__ import annotations

import secrets
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.config import Settings

LOOPBACK_HOST = "127.0.0.1"
BOT_ID = 7_000_001
CRYPTOPAY_APP_ID = 4242
SHOPPER_ID = 10_001
ADMIN_ID = 10_002
# Crypto Pay and the shop learn of a paid invoice by webhook at once; an invoice let expire
# on the pay page is seen at the next reconciliation round, a few seconds later.
RECONCILE_SECONDS = 5


class DemoSettings(Settings):
    """`Settings` from its keyword arguments only: no environment, no `.env`, no secrets dir."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", case_sensitive=False, hide_input_in_errors=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def demo_tokens() -> tuple[str, str]:
    """A fresh bot token and Crypto Pay token for one run: made up here, valid nowhere else."""
    bot = f"{BOT_ID}:demo-{secrets.token_urlsafe(24)}"
    cryptopay = f"{CRYPTOPAY_APP_ID}:demo-{secrets.token_urlsafe(24)}"
    return bot, cryptopay


def is_loopback_url(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
        return ip_address(host).is_loopback
    except ValueError:
        return False


def demo_settings(
    *,
    bot_token: str,
    cryptopay_token: str,
    telegram_api_url: str,
    cryptopay_api_url: str,
    database_url: str,
    port: int,
    webapp_script_url: str | None = None,
    **extra: Any,
) -> Settings:
    """The shop's settings for the demo: the stand-ins' URLs, testnet, the demo admin."""
    for name, url in (("Telegram", telegram_api_url), ("Crypto Pay", cryptopay_api_url)):
        if not is_loopback_url(url):
            raise ValueError(f"the demo's {name} stand-in must be on 127.0.0.1, not {url}")
    bot_origin = f"http://{LOOPBACK_HOST}:{port}"
    values: dict[str, Any] = {
        "BOT_TOKEN": bot_token,
        "TELEGRAM_API_URL": telegram_api_url,
        "CRYPTOPAY_TOKEN": cryptopay_token,
        "CRYPTOPAY_NETWORK": "testnet",
        "CRYPTOPAY_API_URL": cryptopay_api_url,
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "ADMIN_IDS": str(ADMIN_ID),
        "HOST": LOOPBACK_HOST,
        "PORT": port,
        "TELEGRAM_WEBHOOK_URL": "",
        "RECONCILE_INTERVAL_SECONDS": RECONCILE_SECONDS,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        "AUTO_MIGRATE": True,
        # The Mini App storefront on the bot's own server (when this build has one), loading
        # the stand-in of telegram-web-app.js that the demo page serves.
        "WEBAPP_URL": bot_origin,
        "WEBAPP_SCRIPT_URL": webapp_script_url or "",
        **extra,
    }
    try:
        settings = DemoSettings(**values)
    except ValidationError as error:
        # A build whose Mini App settings want other values (a public https WEBAPP_URL, say)
        # still runs the chat demo, without the storefront's menu button.
        if not all(str(e["loc"][0]).startswith("WEBAPP_") for e in error.errors()):
            names = ", ".join(str(e["loc"][0]) for e in error.errors())
            raise ValueError(f"the demo's settings are invalid: {names}") from None
        values.pop("WEBAPP_URL")
        values.pop("WEBAPP_SCRIPT_URL")
        settings = DemoSettings(**values)
    if not ip_address(settings.host).is_loopback:
        raise ValueError(f"the demo listens on 127.0.0.1 only, not {settings.host}")
    return settings
