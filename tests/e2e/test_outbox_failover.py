"""A replica dies while it holds outbox claims: the other delivers what it held within
seconds (one short lease), and every buyer still gets their goods exactly once.

Two real bot processes on one PostgreSQL database and one Redis, behind the fake Telegram's
"load balancer" (as in test_replicas.py). Telegram answers slowly (``tg.latency``), so the
victim is in the middle of its sends when it is SIGKILLed; the fake drops the calls whose
client died before they arrived, as a real network would lose them.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from tests.e2e.conftest import Pg, Shop, free_port
from tests.e2e.test_replicas import SECRET, STEP, buy_one_gift, post_webhook, write_catalog

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SHOPPERS = 8
SLOW_TELEGRAM = 2.0  # seconds every Bot API call takes once the buyers have ordered
FAILOVER_BOUND = 20.0  # from the kill to the last buyer's goods; the old lease was 60 s


async def test_a_killed_replicas_messages_are_delivered_by_the_other_within_seconds(
    pg_url: str, redis_url: str, shop: Shop
) -> None:
    tg, cp = shop.tg, shop.cp
    db = Pg(pg_url)
    codes = [f"GIFT-{n:04d}-FAILOVER" for n in range(1, SHOPPERS + 3)]
    catalog = write_catalog(shop.tmp_path / "gifts.toml", codes)
    imported = shop.command("catalog", "import", str(catalog), env=shop.env(DATABASE_URL=pg_url))
    assert await imported.run_to_end() == 0, imported.stderr

    lb_url = f"http://127.0.0.1:{free_port()}"
    common = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "TELEGRAM_WEBHOOK_URL": lb_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
    }
    victim, survivor = await asyncio.gather(shop.launch(**common), shop.launch(**common))
    await tg.wait_until(
        lambda: len(tg.calls_of("setWebhook")) >= 2 or None, timeout=STEP, what="both setWebhook"
    )
    tg.webhook_targets = [f"{r.url}/telegram/webhook" for r in (victim, survivor)]

    users = [tg.user(7300 + n, f"Buyer{n}") for n in range(SHOPPERS)]
    order_ids = await asyncio.gather(*(buy_one_gift(u) for u in users))
    buyers = dict(zip(order_ids, users, strict=True))

    # Telegram turns slow; every payment is confirmed to the victim, which settles it and
    # sets out to send the goods.
    tg.latency = SLOW_TELEGRAM
    async with aiohttp.ClientSession() as http:
        for order_id in order_ids:
            (invoice,) = [i for i in cp.invoices.values() if i.get("payload") == str(order_id)]
            assert await cp.pay(invoice["invoice_id"], send_webhook=False) is None
            body, headers = cp.webhook_request(invoice["invoice_id"])
            status, answer = await post_webhook(http, victim, body, headers)
            assert status == 200 and answer["result"] == "settled", answer

    # Kill it while its goods messages are on their way to Telegram and it holds claims.
    victim_id = f"{socket.gethostname()}:{victim.port}"
    await tg.wait_until(
        lambda: tg.in_flight.get("sendMessage", 0) >= 1 or None,
        timeout=STEP,
        what="the victim's sends in flight",
    )
    held = await db.query(
        "SELECT id FROM outbox WHERE status = 'pending' AND claimed_by = $1", victim_id
    )
    assert held, "the victim held no claims when it was killed"
    await victim.kill()

    def everyone_served() -> bool | None:
        return (
            all(
                any(f"Order #{o} is paid" in (m.text or "") for m in u.chat_messages())
                for o, u in buyers.items()
            )
            or None
        )

    await tg.wait_until(everyone_served, timeout=FAILOVER_BOUND, what="every buyer's goods")
    assert tg.abandoned, "no send was cut off by the kill: the test did not test a crash"

    # Exactly once each, and recorded: every goods message sent, every order delivered.
    await db.wait_for(
        "SELECT status FROM orders WHERE id = ANY($1)",
        lambda rows: all(s == "delivered" for (s,) in rows),
        list(order_ids),
        timeout=STEP,
        what="every order delivered",
    )
    rows = await db.query("SELECT status, claimed_by FROM outbox WHERE kind = 'goods'")
    assert sorted(s for s, _ in rows) == ["sent"] * SHOPPERS, rows
    assert await survivor.terminate() == 0, survivor.stderr
    assert "Traceback" not in survivor.stderr, survivor.stderr
    for order_id, user in buyers.items():
        goods = [m for m in user.chat_messages() if f"Order #{order_id} is paid" in (m.text or "")]
        assert len(goods) == 1, [m.text for m in user.chat_messages()]
