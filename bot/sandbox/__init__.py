"""Local test doubles of the Telegram Bot API and of Crypto Pay (aiohttp apps).

Imported lazily, so ``python -m bot.sandbox.cryptopay`` runs without a double import.
"""

from typing import Any

__all__ = ["FakeCryptoPay", "FakeTelegram", "WebhookDelivery"]


def __getattr__(name: str) -> Any:
    if name in ("FakeCryptoPay", "WebhookDelivery"):
        from bot.sandbox import cryptopay

        return getattr(cryptopay, name)
    if name == "FakeTelegram":
        from bot.sandbox.telegram import FakeTelegram

        return FakeTelegram
    raise AttributeError(name)
