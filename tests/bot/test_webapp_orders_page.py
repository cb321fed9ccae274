"""What the storefront's order page says around a pending order: the cancel question is the
chat's own sentence (a question the shopper can answer OK/Cancel to), in their language,
short enough for Telegram's popup (showConfirm holds 256 characters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.web import build_web_app
from bot.webapp import add_webapp
from tests.bot.conftest import BOB, Shop
from tests.bot.test_webapp_api import call


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_web_app(shop.ctx)
    add_webapp(app, shop.ctx)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_a_pending_order_asks_the_chats_cancel_question(client: TestClient[Any, Any]) -> None:
    cart = await call(client, "cart/items", {"sku": "multi", "quantity": 1})
    order = await call(client, "checkout", {"fingerprint": cart["fingerprint"]})
    question = order["confirm_cancel"]
    assert question.startswith(f"Cancel order #{order['id']}?"), question
    assert len(question) <= 256 and "<" not in question
    shown = await call(client, f"orders/{order['id']}")
    assert shown["confirm_cancel"] == question

    cart = await call(client, "cart/items", {"sku": "multi", "quantity": 1}, user_id=BOB)
    ru = await call(
        client, "checkout", {"fingerprint": cart["fingerprint"]}, user_id=BOB, language="ru"
    )
    assert ru["confirm_cancel"].startswith(f"Отменить заказ #{ru['id']}?")
    assert len(ru["confirm_cancel"]) <= 256

    cancelled = await call(client, f"orders/{order['id']}/cancel", {})
    assert "confirm_cancel" not in cancelled  # nothing left to cancel
