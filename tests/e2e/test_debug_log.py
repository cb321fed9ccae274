"""The real bot process at LOG_LEVEL=DEBUG: a whole purchase, and no code, goods text or
webhook body in its output (issue 15: aiosqlite logged every statement with its parameters)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Shop
from tests.e2e.flows import WITCHER_CODES, assert_checkout, assert_delivered_once, buy_two_witchers

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

GUIDE_CONTENT = "https://example.com/guide.pdf"  # the demo catalog's unlimited goods


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_debug_log_of_a_purchase_holds_no_goods_or_bodies(
    shop: Shop, log_format: str
) -> None:
    bot = await shop.launch(webhook=True, LOG_LEVEL="DEBUG", LOG_FORMAT=log_format)
    await shop.tg.wait_for_call("setWebhook", timeout=10)
    alice = shop.tg.user(6101, "Alice")
    order_id, reply = await buy_two_witchers(alice)
    invoice = assert_checkout(shop, order_id, reply)
    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    await assert_delivered_once(shop, alice, order_id)
    assert await bot.terminate() == 0

    output = bot.stderr + bot.stdout
    # The level took: DEBUG lines of ours are there (the webhook's among them).
    debug_lines = [line for line in output.splitlines() if "DEBUG" in line]
    assert any("bot.web" in line for line in debug_lines), output
    assert any("bot.logs" in line for line in debug_lines), output

    (delivery,) = shop.cp.webhook_deliveries
    body = delivery.body.decode()
    secrets = {f"code {code}": code for code in WITCHER_CODES}
    secrets |= {
        "other demo codes": "DEMO-P2-",
        "unlimited goods content": GUIDE_CONTENT,
        "webhook body": body[:60],
        "webhook body field": '"update_type":"invoice_paid"',
        "invoice hash (in the webhook body)": invoice["hash"],
        "webhook signature": delivery.headers["crypto-pay-api-signature"],
    }
    leaked = [name for name, value in secrets.items() if value in output]
    assert leaked == [], (leaked, output[-3000:])
