"""INVOICE_TTL_SECONDS of a few seconds (Crypto Pay accepts expires_in from 1 s)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.jobs import EXPIRY_GRACE_SECONDS, expire, reconcile
from bot.shop.checkout import checkout
from storage import Buyer, OrderStatus
from tests.bot.conftest import ALICE, Shop

TTL = 5


@pytest.fixture
def short(shop: Shop) -> Shop:
    shop.ctx.settings = shop.ctx.settings.model_copy(update={"invoice_ttl_seconds": TTL})
    return shop


async def place(shop: Shop) -> tuple[int, int]:
    result = await checkout(shop.ctx, Buyer(ALICE, None, None), "multi", 1)
    assert result.ok and result.order_id is not None, result
    order = await shop.order(result.order_id)
    assert order.invoice_id is not None
    return result.order_id, order.invoice_id


async def test_checkout_asks_for_the_short_lifetime_and_expiry_releases_it(short: Shop) -> None:
    before = short.ctx.clock()
    order_id, _ = await place(short)
    assert short.cp.calls_of("createInvoice")[-1]["expires_in"] == TTL
    order = await short.order(order_id)
    assert timedelta(0) < order.expires_at - before <= timedelta(seconds=TTL + 1)
    assert await expire(short.ctx) == 0  # not due yet
    short.clock.advance(TTL + 1)
    assert await expire(short.ctx) == 1
    assert (await short.order(order_id)).status == OrderStatus.EXPIRED


async def test_a_payment_missed_during_an_outage_is_found_after_the_grace(short: Shop) -> None:
    """Crypto Pay is down while the order falls due: it is expired without Crypto Pay's word
    after the grace period. The buyer had paid (the webhook was lost), so reconciliation must
    still look at that order once Crypto Pay answers again, though 2 × TTL is long past."""
    order_id, invoice_id = await place(short)
    await short.cp.pay(invoice_id, send_webhook=False)
    short.cp.fail_next("getInvoices", 500, times=1000)
    short.clock.advance(TTL + 1)
    assert await expire(short.ctx) == 0
    short.clock.advance(EXPIRY_GRACE_SECONDS)
    assert await expire(short.ctx) == 1
    assert (await short.order(order_id)).status == OrderStatus.EXPIRED

    short.cp.clear_faults()
    short.clock.advance(short.ctx.settings.reconcile_interval_seconds)
    assert await reconcile(short.ctx) == 1
    assert (await short.order(order_id)).status in (OrderStatus.PAID, OrderStatus.NEEDS_REFUND)
