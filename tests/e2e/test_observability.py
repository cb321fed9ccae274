"""The real bot process: /metrics move with a purchase; LOG_FORMAT=json logs parse line by line."""

from __future__ import annotations

import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import BOT_TOKEN, CRYPTOPAY_TOKEN, Pg, Shop
from tests.e2e.flows import assert_checkout, assert_delivered_once, buy_two_witchers
from tests.e2e.metrics_util import parse, sample_sum, scrape_text

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SECRET = "observability-Webhook_secret-9"


def counters(text: str) -> dict[str, float]:
    """The values the purchase should move, from one scrape."""
    samples = parse(text)
    return {
        "checkouts": sample_sum(samples, "shop_checkouts_total", result="created"),
        "settled_by_webhook": sample_sum(
            samples, "shop_settlements_total", source="webhook", outcome="settled"
        ),
        "webhook_200": sample_sum(samples, "shop_cryptopay_webhook_responses_total", code="200"),
        "webhook_401": sample_sum(samples, "shop_cryptopay_webhook_responses_total", code="401"),
        "outbox_sent": sample_sum(samples, "shop_outbox_sent_total"),
        "create_invoice_calls": sample_sum(
            samples, "shop_cryptopay_call_seconds_count", method="createInvoice"
        ),
        "create_invoice_seconds": sample_sum(
            samples, "shop_cryptopay_call_seconds_sum", method="createInvoice"
        ),
        "send_message_calls": sample_sum(
            samples, "shop_telegram_call_seconds_count", method="sendMessage"
        ),
        "send_message_seconds": sample_sum(
            samples, "shop_telegram_call_seconds_sum", method="sendMessage"
        ),
        "delivered_orders": sample_sum(samples, "shop_orders", status="delivered"),
    }


def decoded(entries: list[dict[str, object]]) -> str:
    """Every value of the log entries as text: in JSON a body's quotes arrive escaped."""
    return "\n".join(str(value) for entry in entries for value in entry.values())


async def test_metrics_parse_and_move_with_a_purchase(shop: Shop) -> None:
    # The default gauge cache (15 s): the scrape after this process's own sale reads the
    # orders again all the same.
    bot = await shop.launch()
    async with aiohttp.ClientSession() as http:
        before_text = await scrape_text(http, bot)
        before = counters(before_text)
        families = {f.name: f.type for f in text_string_to_metric_families(before_text)}
        assert families["shop_checkouts"] == "counter"
        assert families["shop_orders"] == "gauge"
        assert families["shop_outbox_backlog"] == "gauge"
        assert families["shop_cryptopay_call_seconds"] == "histogram"
        assert families["shop_telegram_call_seconds"] == "histogram"
        assert before["delivered_orders"] == 0

        alice = shop.tg.user(6001, "Alice")
        order_id, reply = await buy_two_witchers(alice)
        invoice = assert_checkout(shop, order_id, reply)
        assert await shop.cp.pay(invoice["invoice_id"]) == 200
        await assert_delivered_once(shop, alice, order_id)
        await shop.wait_for_db(
            f"SELECT status FROM orders WHERE id = {order_id}",
            lambda rows: rows == [("delivered",)],
            timeout=10,
            what="the order marked delivered",
        )
        # A forged webhook is refused and counted under its code.
        async with http.post(
            f"{bot.url}/cryptopay/webhook",
            data=shop.cp.webhook_deliveries[-1].body,
            headers={"crypto-pay-api-signature": "0" * 64},
        ) as resp:
            assert resp.status == 401

        after = counters(await scrape_text(http, bot))

    moved = {key: after[key] - before[key] for key in before}
    assert moved["checkouts"] == 1, moved
    assert moved["settled_by_webhook"] == 1, moved
    assert moved["webhook_200"] == 1, moved
    assert moved["webhook_401"] == 1, moved
    assert moved["outbox_sent"] >= 1, moved
    assert moved["create_invoice_calls"] == 1, moved
    assert moved["create_invoice_seconds"] > 0, moved
    assert moved["send_message_calls"] >= 3, moved  # menu, cards, the goods…
    assert moved["send_message_seconds"] > 0, moved
    assert after["delivered_orders"] >= 1, after
    assert await bot.terminate() == 0


async def test_json_logs_parse_and_carry_context_without_secrets(shop: Shop) -> None:
    bot = await shop.launch(webhook=True, LOG_FORMAT="json", TELEGRAM_WEBHOOK_SECRET=SECRET)
    await shop.tg.wait_for_call("setWebhook", timeout=10)
    bob = shop.tg.user(6002, "Bob")
    order_id, reply = await buy_two_witchers(bob)
    invoice = assert_checkout(shop, order_id, reply)
    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    await assert_delivered_once(shop, bob, order_id)
    (delivery,) = shop.cp.webhook_deliveries
    # The same webhook once more (a duplicate) and once forged: both are logged, if at all,
    # without their body.
    assert await shop.cp.deliver_webhook(invoice["invoice_id"]) == [200]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{bot.url}/cryptopay/webhook",
            data=delivery.body,
            headers={"crypto-pay-api-signature": "f" * 64},
        ) as resp,
    ):
        assert resp.status == 401
    assert await bot.terminate() == 0

    text = bot.stderr
    lines = text.splitlines()
    assert len(lines) >= 5, text
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"stderr line {number} is not JSON: {line!r}") from None
        assert isinstance(entry, dict), line
        assert {"level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    for number, line in enumerate(bot.stdout.splitlines(), 1):
        assert isinstance(json.loads(line), dict), f"stdout line {number}: {line!r}"

    assert any(e.get("update_id") is not None for e in entries), text
    assert any(e.get("invoice_id") == invoice["invoice_id"] for e in entries), text
    assert any(e.get("order_id") == order_id for e in entries), text

    everything = text + bot.stdout + "\n" + decoded(entries)
    secrets = {
        "bot token": BOT_TOKEN,
        "bot token secret part": BOT_TOKEN.split(":", 1)[1],
        "Crypto Pay token": CRYPTOPAY_TOKEN,
        "Crypto Pay token secret part": CRYPTOPAY_TOKEN.split(":", 1)[1],
        "Telegram webhook secret": SECRET,
        "invoice hash (in the webhook body)": invoice["hash"],
        "webhook signature": delivery.headers["crypto-pay-api-signature"],
        "webhook body": delivery.body.decode()[:60],
        "webhook body field": '"update_type":"invoice_paid"',
    }
    leaked = [name for name, value in secrets.items() if value in everything]
    assert leaked == [], leaked


REFUSE_PAYMENTS = """
CREATE FUNCTION e2e_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'payment_events refuses writes (test)'; END $$;
CREATE TRIGGER e2e_refuse BEFORE INSERT ON payment_events
FOR EACH ROW EXECUTE FUNCTION e2e_refuse();
"""


async def test_database_error_on_a_webhook_logs_no_body(pg_url: str, shop: Shop) -> None:
    """The webhook's insert fails (PostgreSQL refuses it): 503, an error logged with its
    traceback — and still neither the webhook body nor the tokens in the log."""
    db = Pg(pg_url)
    bot = await shop.launch(DATABASE_URL=pg_url, LOG_FORMAT="json")
    carol = shop.tg.user(6003, "Carol")
    order_id, reply = await buy_two_witchers(carol)
    invoice = assert_checkout(shop, order_id, reply)
    await db.execute(REFUSE_PAYMENTS)

    assert await shop.cp.pay(invoice["invoice_id"]) == 503
    (delivery,) = shop.cp.webhook_deliveries
    await db.execute("DROP TRIGGER e2e_refuse ON payment_events")
    assert await shop.cp.deliver_webhook(invoice["invoice_id"]) == [200]  # Crypto Pay retries
    assert await bot.terminate() == 0

    entries = [json.loads(line) for line in bot.stderr.splitlines()]
    failures = [e for e in entries if e["level"] == "ERROR"]
    assert failures and "exc" in failures[0], bot.stderr
    assert failures[0].get("invoice_id") == invoice["invoice_id"], failures[0]
    secrets = {
        "invoice hash (in the webhook body)": invoice["hash"],
        "webhook body": delivery.body.decode()[:60],
        "webhook body field": '"update_type":"invoice_paid"',
        "bot token": BOT_TOKEN.split(":", 1)[1],
        "Crypto Pay token": CRYPTOPAY_TOKEN.split(":", 1)[1],
    }
    searched = bot.stderr + "\n" + decoded(entries)
    leaked = [name for name, value in secrets.items() if value in searched]
    assert leaked == [], (leaked, failures)
