"""A broadcast with two replicas on PostgreSQL and Redis: one replica sends it (the other's
pace does not add up), and when that one is killed outright the other takes over and
finishes it; each customer still gets it exactly once. The kill comes while the sender's
calls hang in Telegram: the stand-in drops the calls whose client died before they were
answered, as a real network would lose them. (A message Telegram accepted in the instant
before the kill, not yet recorded, would be sent again: no sender can tell.)"""

from __future__ import annotations

import asyncio
import re

import pytest

from storage import Database, upsert_customer
from tests.e2e.conftest import Pg, Shop, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

ADMIN = 778
CUSTOMERS = 300
FIRST = 200_000
TEXT = "Two replicas, one broadcast"
SECRET = "broadcast-Webhook_secret-9"
STEP = 15.0
SLOW = 3.0  # seconds a Bot API call takes around the kill
SENT = re.compile(r"delivered outbox_id=\d+ order_id=None kind=broadcast")


async def test_one_replica_sends_it_and_the_other_takes_over_when_it_dies(
    pg_url: str, redis_url: str, shop: Shop
) -> None:
    tg = shop.tg
    lb_url = f"http://127.0.0.1:{free_port()}"
    common = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "TELEGRAM_WEBHOOK_URL": lb_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "ADMIN_IDS": str(ADMIN),
        "TELEGRAM_RATE_LIMIT": "40",
    }
    # One after the other: two replicas starting at once on an empty database both try to
    # seed the demo catalog (a race of its own, outside this test).
    first = await shop.launch(**common)
    second = await shop.launch(**common)
    await tg.wait_until(
        lambda: len(tg.calls_of("setWebhook")) >= 2 or None, timeout=STEP, what="both setWebhook"
    )
    # Updates alternate between the replicas: the draft's steps live in Redis.
    tg.webhook_targets = [f"{r.url}/telegram/webhook" for r in (first, second)]
    db = Database(pg_url)
    try:
        for user_id in range(FIRST, FIRST + CUSTOMERS):
            await upsert_customer(db, user_id, None, "en")
    finally:
        await db.dispose()
    users = [tg.user(user_id, f"C{user_id}") for user_id in range(FIRST, FIRST + CUSTOMERS)]

    def got(user_id: int) -> int:
        return sum(1 for m in tg.users[user_id].chat_messages() if TEXT in (m.text or ""))

    def delivered() -> int:
        return sum(got(u.id) for u in users)

    admin = tg.user(ADMIN, "Owner")
    await admin.send("/broadcast")
    await admin.wait_for_message("Send the message for your customers", timeout=STEP)
    await admin.send(TEXT)
    controls = await admin.wait_for_message(lambda m: "Send" in m.button_texts(), timeout=STEP)
    assert f"{CUSTOMERS} customers" in (controls.text or "")
    tg.latency = 0.05
    await admin.tap(controls, "Send")

    await tg.wait_until(lambda: delivered() >= 80 or None, timeout=STEP, what="80 sent")
    senders = [r for r in (first, second) if SENT.search(r.stderr)]
    assert len(senders) == 1, "both replicas sent the broadcast"
    (sender,) = senders
    survivor = second if sender is first else first
    # Killed while its sends hang in Telegram (the ones answered before are recorded by
    # then): what it was sending is lost on the way, and sent again by the survivor.
    tg.latency = SLOW
    await asyncio.sleep(0.5)
    await tg.wait_until(
        lambda: tg.in_flight.get("sendMessage", 0) >= 1 or None, timeout=STEP, what="in flight"
    )
    await sender.kill()
    tg.latency = 0.05
    assert delivered() < CUSTOMERS, "the broadcast ended before the kill"

    report = await admin.wait_for_message("is done", timeout=60)
    assert f"Delivered: {CUSTOMERS}" in (report.text or ""), report.text
    assert SENT.search(survivor.stderr), "the survivor did not take the broadcast over"
    assert tg.abandoned, "no send was cut off by the kill: the test did not test a crash"
    twice = [u.id for u in users if got(u.id) != 1]
    assert not twice, twice
    rows = await Pg(pg_url).query("SELECT status, enqueued FROM broadcasts")
    assert rows == [("done", CUSTOMERS)]
    assert await survivor.terminate() == 0, survivor.stderr
    assert "Traceback" not in survivor.stderr
