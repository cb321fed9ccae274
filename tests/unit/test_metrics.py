"""The error counters of the Crypto Pay and Bot API calls, read from the registry."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendMessage

from bot.runtime.metrics import Metrics, TelegramMetrics
from bot.sandbox.cryptopay import FakeCryptoPay
from payments import CryptoPayClient, CryptoPayError


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_failing_crypto_pay_call_is_counted_by_method_and_error() -> None:
    metrics = Metrics()
    async with FakeCryptoPay(token="1:tok") as cp:
        cp.fail_next("getBalance", 400, name="METHOD_DISABLED")
        async with CryptoPayClient(
            "1:tok", cp.base_url, observer=metrics.observe_cryptopay
        ) as client:
            await client.get_me()
            with pytest.raises(CryptoPayError):
                await client.get_balance()
    errors = "shop_cryptopay_errors_total"
    assert value(metrics, errors, method="getBalance", error="METHOD_DISABLED") == 1
    labels = {"method": "getMe", "error": "METHOD_DISABLED"}
    assert metrics.registry.get_sample_value(errors, labels) is None  # getMe did not fail
    assert value(metrics, "shop_cryptopay_call_seconds_count", method="getMe") == 1


async def test_a_failing_bot_api_call_is_counted_and_still_raised() -> None:
    metrics = Metrics()
    method = SendMessage(chat_id=1, text="hi")

    async def fails(bot: Bot, m: Any) -> Any:
        raise TelegramBadRequest(method=m, message="Bad Request: chat not found")

    with pytest.raises(TelegramBadRequest):
        await TelegramMetrics(metrics)(fails, Bot("1:tok"), method)
    labels = {"method": "sendMessage"}
    assert value(metrics, "shop_telegram_errors_total", error="TelegramBadRequest", **labels) == 1
    assert value(metrics, "shop_telegram_call_seconds_count", **labels) == 1
