"""Local test doubles of the Telegram Bot API and of Crypto Pay (aiohttp apps)."""

from tests.fakes.cryptopay import FakeCryptoPay, WebhookDelivery
from tests.fakes.telegram import FakeTelegram

__all__ = ["FakeCryptoPay", "FakeTelegram", "WebhookDelivery"]
