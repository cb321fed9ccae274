"""Referrals in the real process: a friend arrives through Alice's link, pays (the webhook
sent twice), and Alice gets her code once, through the outbox and the Telegram stand-in."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import Shop
from tests.e2e.flows import STEP, assert_delivered_once, buy_two_witchers, has_button, invoice_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


async def test_a_friends_first_payment_sends_the_referrer_one_code(shop: Shop) -> None:
    bot = await shop.launch()
    alice = shop.tg.user(5101, "Alice")
    friend = shop.tg.user(5102, "Friend")

    await alice.send("/invite")
    invite = await alice.wait_for_message("Invite friends", timeout=STEP)
    found = re.search(r"\?start=(r_[a-z0-9]+)", invite.text or "")
    assert found, invite.text
    await friend.send(f"/start {found.group(1)}")
    await friend.wait_for_message(has_button("Catalog"), timeout=STEP)

    order_id, _ = await buy_two_witchers(friend)
    invoice = invoice_of(shop, order_id)
    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    # Crypto Pay sends the same update again, three times at once: nothing new.
    again = await shop.cp.deliver_webhook(invoice["invoice_id"], times=3, concurrently=True)
    assert again == [200, 200, 200]
    await assert_delivered_once(shop, friend, order_id)

    reward = await alice.wait_for_message("made their first purchase", timeout=STEP)
    code = re.search(r"<code>(REF[A-Z0-9]+)</code>|(REF[A-Z0-9]+)", reward.text or "")
    assert code, reward.text
    assert "10% off" in (reward.text or "")
    await shop.wait_for_db(
        "SELECT status FROM outbox WHERE kind = 'referral_reward'",
        lambda rows: rows == [("sent",)],
        timeout=STEP,
        what="one referral reward, sent",
    )
    rows = shop.query("SELECT count(*) FROM promo_codes WHERE owner_id IS NOT NULL")
    assert rows == [(1,)]
    assert (
        len([m for m in alice.chat_messages() if "made their first purchase" in (m.text or "")])
        == 1
    )
    assert await bot.terminate() == 0
    assert "Traceback" not in bot.stderr
