"""The storefront's order page around a pending order: the cancel question is the chat's own
sentence (a question the shopper can answer OK/Cancel to), in their language, short enough
for Telegram's popup (showConfirm holds 256 characters). And a request body too big to read
is refused as JSON, like every other bad request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.web import build_web_app
from bot.webapp import add_webapp
from tests.bot.conftest import BOB, Shop
from tests.bot.test_webapp_api import auth, call


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


async def test_a_huge_body_without_a_length_is_a_json_413_not_a_crash(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"sku": "'
        for _ in range(64):
            yield b"x" * 32 * 1024  # 2 MB in all, past the server's 1 MB
        yield b'"}'

    headers = {**auth(), "Content-Type": "application/json"}
    resp = await client.post("/app/api/cart/items", data=chunks(), headers=headers)
    assert resp.status == 413
    assert "could not be understood" in (await resp.json())["error"]
    assert "Traceback" not in caplog.text and "call failed" not in caplog.text
