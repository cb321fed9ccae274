"""A broadcast through the real ``python -m bot`` against the Telegram stand-in: 1,000
customers, some of whom blocked the bot, a 429 in the middle, a restart in the middle, and a
buyer paying meanwhile. Every customer who has not blocked the bot gets it exactly once, and
the buyer's goods are not held up by it."""

from __future__ import annotations

import time

import pytest

from bot.sandbox._tg_user import FakeUser
from storage import Database, upsert_customer
from tests.e2e.conftest import Shop
from tests.e2e.flows import STEP, buy_two_witchers, goods_messages, has_button, invoice_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ADMIN = 777
CUSTOMERS = 1000
FIRST = 100_000
BLOCKED = set(range(FIRST, FIRST + CUSTOMERS, 25))  # 40 of them blocked the bot
TEXT = "Weekend sale: every key 20% off"
RATE = "100"  # messages a second across chats (TELEGRAM_RATE_LIMIT)
GOODS_BOUND = 1.0  # seconds from the payment's webhook to the goods message


async def add_customers(shop: Shop) -> list[FakeUser]:
    db = Database(f"sqlite+aiosqlite:///{shop.db_path}")
    try:
        for user_id in range(FIRST, FIRST + CUSTOMERS):
            await upsert_customer(db, user_id, None, "en")
    finally:
        await db.dispose()
    users = [shop.tg.user(user_id, f"C{user_id}") for user_id in range(FIRST, FIRST + CUSTOMERS)]
    for user_id in BLOCKED:
        shop.tg.block(user_id)
    return users


def broadcasts_got(user: FakeUser) -> int:
    return sum(1 for m in user.chat_messages() if TEXT in (m.text or ""))


def delivered(users: list[FakeUser]) -> int:
    return sum(broadcasts_got(u) for u in users)


async def test_a_broadcast_to_1000_customers_survives_a_restart_and_sends_nobody_twice(
    shop: Shop,
) -> None:
    tg = shop.tg
    env = {"ADMIN_IDS": str(ADMIN), "TELEGRAM_RATE_LIMIT": RATE}
    bot = await shop.launch(**env)
    users = await add_customers(shop)

    admin = tg.user(ADMIN, "Owner")
    await admin.send("/broadcast")
    await admin.wait_for_message("Send the message for your customers", timeout=STEP)
    await admin.send(TEXT)
    controls = await admin.wait_for_message(has_button("Send"), timeout=STEP)
    assert f"{CUSTOMERS} customers" in (controls.text or "")  # the bot knows none blocked it
    tg.fail_next("sendMessage", 429, retry_after=1, times=1)
    await admin.tap(controls, "Send")

    # A buyer pays while the broadcast is sending: their goods come within a second.
    await tg.wait_until(lambda: delivered(users) >= 100 or None, timeout=30, what="100 sent")
    buyer = tg.user(5100, "Buyer")
    order_id, _ = await buy_two_witchers(buyer)
    invoice = invoice_of(shop, order_id)
    assert delivered(users) < CUSTOMERS - len(BLOCKED), "the broadcast ended too soon"
    paid_at = time.monotonic()
    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    await tg.wait_until(
        lambda: goods_messages(buyer, order_id) or None, timeout=STEP, what="the goods"
    )
    waited = time.monotonic() - paid_at
    assert waited < GOODS_BOUND, f"the goods took {waited:.2f}s"

    # Restart in the middle.
    await tg.wait_until(lambda: delivered(users) >= 300 or None, timeout=30, what="300 sent")
    assert await bot.terminate() == 0, bot.stderr
    stopped_at = delivered(users)
    assert stopped_at < CUSTOMERS - len(BLOCKED), "the broadcast ended before the restart"
    bot = await shop.launch(**env)

    report = await admin.wait_for_message("is done", timeout=60)
    expected = CUSTOMERS - len(BLOCKED)
    assert f"Delivered: {expected}" in (report.text or "")
    assert f"Blocked the bot: {len(BLOCKED)}" in (report.text or "")
    assert "Failed: 0" in (report.text or "")
    for user in users:
        assert broadcasts_got(user) == (0 if user.id in BLOCKED else 1), user.id
    assert broadcasts_got(buyer) == 0  # arrived after the broadcast was sent
    assert len(goods_messages(buyer, order_id)) == 1
    # The 429 was answered and waited out; the blocked customers are recorded as such.
    tries: dict[int, int] = {}
    for name, params in tg.calls:
        chat = int(params.get("chat_id") or 0)
        if name == "sendMessage" and params.get("text") == TEXT and chat != ADMIN:
            tries[chat] = tries.get(chat, 0) + 1
    assert set(tries) == {u.id for u in users}
    assert sorted(tries.values()) == [1] * (CUSTOMERS - 1) + [2]  # the 429'd one, once more
    blocked_rows = shop.query("SELECT telegram_id FROM customers WHERE blocked_bot = 1")
    assert {row[0] for row in blocked_rows} == BLOCKED
    (status,) = shop.query("SELECT status, total, enqueued FROM broadcasts")
    assert status == ("done", CUSTOMERS, CUSTOMERS)

    await admin.send("/broadcasts")
    listing = await admin.wait_for_message("Recent broadcasts", timeout=STEP)
    assert f"delivered {expected} of {CUSTOMERS}, blocked {len(BLOCKED)}" in (listing.text or "")
    assert await bot.terminate() == 0, bot.stderr
    assert "Traceback" not in bot.stderr
