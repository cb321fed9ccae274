"""Two real bot processes on one PostgreSQL database and one Redis (README "Several replicas").

Both replicas run in Telegram webhook mode behind a "load balancer": both register the same
public URL, and the fake Telegram (``tg.webhook_targets``) hands the updates to the two
replicas' ``/telegram/webhook`` in turn, with the secret header, as Telegram would. The Crypto
Pay webhook of every paid invoice is POSTed — the body and signature exactly as the fake
builds them — to both replicas at once, several times over.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sandbox._tg_user import FakeUser
from tests.e2e.conftest import BotProcess, Pg, Shop, free_port
from tests.e2e.metrics_util import sample_sum, scrape

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SECRET = "replicas-Webhook_secret-7"
SHOPPERS = 4
STEP = 15.0
WEBHOOK_ROUNDS = 3
GETINVOICES_DELAY = 1.0  # every reconciliation holds its lock at least this long


def write_catalog(path: Path, codes: list[str]) -> Path:
    quoted = ", ".join(f'"{code}"' for code in codes)
    path.write_text(
        'currency = "USD"\n\n'
        "[[categories]]\n"
        'slug = "gifts"\ntitle = "Gift cards"\n\n'
        "[[products]]\n"
        'sku = "gift"\ncategory = "gifts"\ntitle = "Gift card"\n'
        'description = "One code per card."\nprice = "5.00"\n'
        f"codes = [{quoted}]\n",
        encoding="utf-8",
    )
    return path


async def buy_one_gift(user: FakeUser) -> int:
    await user.send("/start p_gift")
    card = await user.wait_for_message("Quantity: 1", timeout=STEP)
    await user.tap(card, "Buy")
    reply = await user.wait_for_message("Order #", timeout=STEP)
    found = re.search(r"Order #(\d+)", reply.text or "")
    assert found, reply.text
    return int(found.group(1))


async def post_webhook(
    http: aiohttp.ClientSession, replica: BotProcess, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        f"{replica.url}/cryptopay/webhook",
        data=body,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=STEP),
    ) as resp:
        return resp.status, await resp.json()


async def test_two_replicas_settle_deliver_and_run_jobs_once(
    pg_url: str, redis_url: str, shop: Shop
) -> None:
    tg, cp = shop.tg, shop.cp
    db = Pg(pg_url)
    codes = [f"GIFT-{n:04d}-REPLICA" for n in range(1, 11)]
    catalog = write_catalog(shop.tmp_path / "gifts.toml", codes)
    imported = shop.command("catalog", "import", str(catalog), env=shop.env(DATABASE_URL=pg_url))
    assert await imported.run_to_end() == 0, imported.stderr

    # Reconciliation is slow from the start: each run holds its lock for a while, so the
    # other replica's runs in that time must skip rather than call getInvoices alongside.
    cp.fail_next("getInvoices", status=None, delay=GETINVOICES_DELAY, times=1_000_000)

    lb_url = f"http://127.0.0.1:{free_port()}"  # "the load balancer": both register it
    common = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "RECONCILE_INTERVAL_SECONDS": "1",
        "TELEGRAM_WEBHOOK_URL": lb_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
    }
    a, b = await asyncio.gather(shop.launch(**common), shop.launch(**common))
    replicas = (a, b)
    await tg.wait_until(
        lambda: len(tg.calls_of("setWebhook")) >= 2 or None, timeout=STEP, what="both setWebhook"
    )
    assert {c["url"] for c in tg.calls_of("setWebhook")} == {f"{lb_url}/telegram/webhook"}
    assert {c["secret_token"] for c in tg.calls_of("setWebhook")} == {SECRET}
    tg.webhook_targets = [f"{r.url}/telegram/webhook" for r in replicas]

    # Several shoppers at once; each one's updates alternate between the replicas.
    users = [tg.user(7100 + n, f"Shopper{n}") for n in range(SHOPPERS)]
    order_ids = await asyncio.gather(*(buy_one_gift(u) for u in users))
    assert len(set(order_ids)) == SHOPPERS
    buyer = dict(zip(order_ids, users, strict=True))
    deliveries = tg.webhook_deliveries
    assert all(d["status"] == 200 for d in deliveries), deliveries
    for replica in replicas:
        got = [d for d in deliveries if d["url"].startswith(replica.url)]
        assert len(got) >= SHOPPERS, f"{replica.name} got {len(got)} Telegram updates"
    assert tg.calls_of("getUpdates") == []

    invoices = {}
    for order_id in order_ids:
        (invoice,) = [i for i in cp.invoices.values() if i.get("payload") == str(order_id)]
        invoices[order_id] = invoice["invoice_id"]

    # While the orders are pending, reconciliation asks getInvoices every round. Wait until
    # it has, several times, and until one replica has skipped a round held by the other.
    async with aiohttp.ClientSession() as http:
        calls_before = len(cp.calls_of("getInvoices"))
        deadline = time.monotonic() + 20
        while True:
            scrapes = [await scrape(http, r) for r in replicas]
            skipped = [
                sample_sum(s, "shop_job_runs_total", job="reconcile", result="skipped")
                for s in scrapes
            ]
            asked = len(cp.calls_of("getInvoices")) - calls_before
            if asked >= 3 and sum(skipped) > 0:
                break
            assert time.monotonic() < deadline, (asked, skipped, scrapes)
            await cp.wait_for_call("getInvoices", since=len(cp.calls), timeout=5)
        ok_runs = [
            sample_sum(s, "shop_job_runs_total", job="reconcile", result="ok") for s in scrapes
        ]
        assert sum(ok_runs) >= 1, ok_runs

        # Buyers pay; Crypto Pay's own webhook stays silent. We deliver each one, to both
        # replicas at once, several times.
        for invoice_id in invoices.values():
            assert await cp.pay(invoice_id, send_webhook=False) is None
        answers: list[tuple[int, int, dict[str, Any]]] = []
        for _ in range(WEBHOOK_ROUNDS):
            posts = []
            for invoice_id in invoices.values():
                body, headers = cp.webhook_request(invoice_id)
                posts += [(invoice_id, post_webhook(http, r, body, headers)) for r in replicas]
            results = await asyncio.gather(*(p for _, p in posts))
            answers += [
                (inv, status, body) for (inv, _), (status, body) in zip(posts, results, strict=True)
            ]
        assert len(answers) == WEBHOOK_ROUNDS * len(replicas) * SHOPPERS
        assert all(status == 200 for _, status, _ in answers), answers
        by_invoice = {
            inv: Counter(b["result"] for i, _, b in answers if i == inv)
            for inv in invoices.values()
        }
        for invoice_id, outcomes in by_invoice.items():
            # The webhook settled it once and saw duplicates after — or reconciliation got
            # there first and every webhook was a duplicate.
            assert outcomes["settled"] <= 1, (invoice_id, outcomes)
            assert set(outcomes) <= {"settled", "duplicate"}, (invoice_id, outcomes)

        # Settled exactly once each, in the database.
        ids = list(order_ids)
        rows = await db.query(
            "SELECT id, status, paid_at IS NOT NULL, invoice_id FROM orders WHERE id = ANY($1)",
            ids,
        )
        assert len(rows) == SHOPPERS
        for order_id, status, paid, invoice_id in rows:
            assert status in ("paid", "delivered") and paid, rows
            assert invoice_id == invoices[order_id]
        events = await db.query(
            "SELECT invoice_id, count(*) FROM payment_events WHERE status = 'paid' "
            "GROUP BY invoice_id"
        )
        assert dict(events) == {inv: 1 for inv in invoices.values()}, events
        sold = await db.query(
            "SELECT order_id, code FROM stock_units WHERE status = 'sold' ORDER BY order_id"
        )
        assert Counter(order for order, _ in sold) == dict.fromkeys(ids, 1), sold
        assert len({code for _, code in sold}) == SHOPPERS

        # Every goods message sent by one replica or the other, once: wait for the outbox.
        await db.wait_for(
            "SELECT order_id, status FROM outbox WHERE kind = 'goods'",
            lambda rs: sorted(o for o, _ in rs) == sorted(ids) and all(s == "sent" for _, s in rs),
            timeout=STEP,
            what="every goods message marked sent",
        )
        await db.wait_for(
            "SELECT status FROM orders WHERE id = ANY($1)",
            lambda rs: all(s == "delivered" for (s,) in rs),
            ids,
            timeout=STEP,
            what="every order delivered",
        )
        # Settlements across both replicas and every path: one "settled" per order.
        scrapes = [await scrape(http, r) for r in replicas]
        settled = sum(sample_sum(s, "shop_settlements_total", outcome="settled") for s in scrapes)
        assert settled == SHOPPERS, scrapes
        webhook_settled = sum(
            sample_sum(s, "shop_settlements_total", source="webhook", outcome="settled")
            for s in scrapes
        )
        assert webhook_settled == sum(c["settled"] for c in by_invoice.values())
        assert sum(sample_sum(s, "shop_outbox_sent_total") for s in scrapes) >= SHOPPERS

    # Stop both; nothing can be sent late after this.
    exits = await asyncio.gather(*(r.terminate() for r in replicas))
    assert exits == [0, 0], [r.stderr for r in replicas]
    for replica in replicas:
        assert "Traceback" not in replica.stderr, replica.stderr

    sold_codes = dict(sold)
    for order_id, user in buyer.items():
        headline = f"Order #{order_id} is paid"
        sends = [
            p
            for p in tg.calls_of("sendMessage")
            if str(p.get("chat_id")) == str(user.id) and headline in str(p.get("text"))
        ]
        assert len(sends) == 1, sends
        in_chat = [m for m in user.chat_messages() if headline in (m.text or "")]
        assert len(in_chat) == 1, [m.text for m in user.chat_messages()]
        assert sold_codes[order_id] in (in_chat[0].text or "")
        assert sum(code in (in_chat[0].text or "") for code in codes) == 1

    # One replica at a time ran reconciliation: Crypto Pay never saw two getInvoices at once.
    assert len(cp.calls_of("getInvoices")) >= 3
    assert cp.max_in_flight["getInvoices"] == 1, cp.max_in_flight
