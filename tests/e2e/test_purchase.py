"""The real bot process: checkout, payment by webhook or reconciliation, restart, shutdown."""

from __future__ import annotations

import re
import signal

import aiohttp
import pytest

from tests.e2e.conftest import STOP_TIMEOUT, Shop
from tests.e2e.flows import (
    STEP,
    assert_checkout,
    assert_delivered_once,
    buy_two_witchers,
    goods_messages,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


async def test_polling_checkout_and_webhook_payment(shop: Shop) -> None:
    bot = await shop.launch()
    alice = shop.tg.user(5001, "Alice")

    order_id, reply = await buy_two_witchers(alice)
    invoice = assert_checkout(shop, order_id, reply)

    status = await shop.cp.pay(invoice["invoice_id"])
    assert status == 200, shop.cp.webhook_deliveries[-1]
    await assert_delivered_once(shop, alice, order_id)

    assert await bot.terminate() == 0
    assert "Traceback" not in bot.stderr


async def test_missed_webhook_is_settled_by_reconciliation(shop: Shop) -> None:
    bot = await shop.launch(RECONCILE_INTERVAL_SECONDS="1")
    bob = shop.tg.user(5002, "Bob")
    order_id, reply = await buy_two_witchers(bob)
    invoice = assert_checkout(shop, order_id, reply)
    reconciles_before = len(shop.cp.calls_of("getInvoices"))

    assert await shop.cp.pay(invoice["invoice_id"], send_webhook=False) is None

    await assert_delivered_once(shop, bob, order_id)
    assert shop.cp.webhook_deliveries == []  # it was the reconciliation job, not a webhook
    asked = shop.cp.calls_of("getInvoices")[reconciles_before:]
    assert any(str(invoice["invoice_id"]) in str(p.get("invoice_ids")) for p in asked), asked
    assert await bot.terminate() == 0
    assert "Traceback" not in bot.stderr


async def test_telegram_webhook_mode(shop: Shop) -> None:
    secret = "e2e-Webhook_secret-42"
    bot = await shop.launch(webhook=True, TELEGRAM_WEBHOOK_SECRET=secret)
    registered = await shop.tg.wait_for_call("setWebhook", timeout=10)
    assert registered["url"] == f"{bot.url}/telegram/webhook"
    assert registered["secret_token"] == secret
    assert shop.tg.webhook is not None

    # Someone who does not know the secret is turned away.
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{bot.url}/telegram/webhook", json={"update_id": 1}) as resp,
    ):
        assert resp.status == 401

    carol = shop.tg.user(5003, "Carol")
    order_id, reply = await buy_two_witchers(carol)
    invoice = assert_checkout(shop, order_id, reply)
    assert shop.tg.webhook_deliveries, "updates should have come by webhook"
    assert shop.tg.calls_of("getUpdates") == []
    assert shop.tg.pending_updates == []

    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    await assert_delivered_once(shop, carol, order_id)

    assert await bot.terminate() == 0
    assert "Traceback" not in bot.stderr


async def test_restart_between_settle_and_send_delivers_once(shop: Shop) -> None:
    first = await shop.launch()
    dave = shop.tg.user(5004, "Dave")
    order_id, reply = await buy_two_witchers(dave)
    invoice = assert_checkout(shop, order_id, reply)

    # Telegram refuses every message to Dave from now on: the order gets paid, not delivered.
    shop.tg.fail_next("sendMessage", status=500, times=1_000_000, for_chat=dave.id)
    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    await shop.wait_for_db(
        f"SELECT o.status, m.status, m.attempts, m.claimed_until FROM orders o "
        f"JOIN outbox m ON m.order_id = o.id AND m.kind = 'goods' WHERE o.id = {order_id}",
        # Paid, one send tried and failed, and the message released for a retry (not leased
        # to the dying worker, which would only delay the test by the lease).
        lambda rows: (
            rows != []
            and rows[0][:2] == ("paid", "pending")
            and rows[0][2] >= 1
            # claimed_until NULL: not in the middle of a send
            and rows[0][3] is None
        ),
        timeout=15,
        what="the order paid and its goods message waiting for a retry",
    )
    assert goods_messages(dave, order_id) == []
    failed = [p for p in shop.tg.calls_of("sendMessage") if str(p.get("chat_id")) == str(dave.id)]
    assert failed, "the bot should have tried to deliver"

    await first.kill()
    shop.tg._faults.clear()  # Telegram works again (the fake has no public reset)

    second = await shop.launch()
    await assert_delivered_once(shop, dave, order_id)
    assert await second.terminate() == 0
    assert "Traceback" not in second.stderr


async def test_sigterm_mid_checkout_finishes_the_reply_and_exits_cleanly(shop: Shop) -> None:
    bot = await shop.launch()
    erin = shop.tg.user(5005, "Erin")
    await erin.send("/start p_witcher3")
    card = await erin.wait_for_message("Quantity: 1", timeout=STEP)
    # Crypto Pay is slow to create the invoice; SIGTERM arrives while Buy is being handled.
    shop.cp.fail_next("createInvoice", status=None, delay=1.5)
    await erin.tap(card, "Buy")
    await shop.cp.wait_for_call("createInvoice", timeout=STEP)
    bot.proc.send_signal(signal.SIGTERM)

    reply = await erin.wait_for_message("Order #", timeout=STEP)
    assert reply.button("Pay").get("url")
    assert await bot.wait_exit(STOP_TIMEOUT) == 0
    assert "Traceback" not in bot.stderr
    assert not re.search(r"\b(ERROR|CRITICAL)\b", bot.stderr), bot.stderr
    rows = shop.query("SELECT status, invoice_id FROM orders")
    assert rows == [("pending", next(iter(shop.cp.invoices)))], rows  # the invoice was stored
