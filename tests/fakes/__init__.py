"""Local test doubles of the Telegram Bot API and of Crypto Pay (aiohttp apps)."""

from tests.fakes.telegram import FakeTelegram

__all__ = ["FakeTelegram"]
