"""/refund through Crypto Pay transfer: pays at most once (PRODUCT.md §4, §5 promise 4)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from aiogram.methods import SendMessage

from bot.callbacks import RefundConfirm, RefundDecision
from bot.jobs import LOCK_KEYS, REFUND_RETRY_SECONDS, Jobs, reconcile
from bot.screens.orders import order_screen
from bot.screens.texts import texts as t
from bot.shop.checkout import checkout
from bot.shop.refunds import retry_sending_refunds
from payments import CryptoPayClient
from storage import AuditEntry, Buyer, OrderStatus, Refund, RefundStatus
from tests.bot.conftest import ADMIN_ID, ALICE, CP_TOKEN, Shop, button_texts, markup_buttons

GUIDE_URL = "https://example.com/guide.pdf"  # the unlimited product's content


async def place(shop: Shop, sku: str = "multi", qty: int = 1, user: int = ALICE) -> int:
    result = await checkout(shop.ctx, Buyer(user, None, None), sku, qty)
    assert result.ok and result.order_id is not None, result
    return result.order_id


async def paid_order(
    shop: Shop, sku: str = "multi", qty: int = 1, *, topped_up: bool = True
) -> int:
    """A paid order; the app's balance topped up so a full refund can be paid (a payment
    alone leaves the paid amount minus Crypto Pay's fee)."""
    order_id = await place(shop, sku, qty)
    invoice_id = (await shop.order(order_id)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    if topped_up:
        shop.cp.balances["USDT"] = Decimal("1000")
    return order_id


async def ask(shop: Shop, args: str, user: int = ADMIN_ID) -> tuple[Any, str | None]:
    """/refund <args>: the bot's answer and the confirmation token, if it offered one."""
    await shop.send(f"/refund {args}", user)
    sent = shop.last_text()
    assert isinstance(sent, SendMessage) and sent.chat_id == user
    buttons = markup_buttons(sent)
    if not buttons:
        return sent, None
    assert button_texts(sent) == ["Confirm", "Cancel"]
    return sent, RefundConfirm.unpack(buttons[0].callback_data).token


async def confirm(shop: Shop, token: str, user: int = ADMIN_ID) -> Any:
    update = await shop.press(RefundConfirm(decision=RefundDecision.CONFIRM, token=token), user)
    return update


async def refunds(shop: Shop, order_id: int) -> list[Refund]:
    return await shop.rows(Refund, Refund.order_id == order_id)


def transfers(shop: Shop) -> list[dict[str, Any]]:
    return list(shop.cp.transfers.values())


async def test_full_refund_pays_what_the_buyer_paid_and_tells_everyone(shop: Shop) -> None:
    order_id = await paid_order(shop)
    order = await shop.order(order_id)
    paid = order.paid_amount
    assert paid is not None and order.paid_asset == "USDT"

    preview, token = await ask(shop, f"{order_id}")
    assert token is not None
    assert f"order #{order_id}" in preview.text
    assert str(ALICE) in preview.text and "Multi Key × 1" in preview.text
    assert f"Send <b>{t.plain(paid)} USDT</b>" in preview.text
    assert "\n  none" in preview.text and "•" not in preview.text  # no refunds so far
    assert transfers(shop) == []  # nothing is sent before Confirm

    update = await confirm(shop, token)
    assert shop.answers_to(update)  # the tap is acknowledged
    (transfer,) = transfers(shop)
    assert transfer["user_id"] == ALICE
    assert transfer["asset"] == "USDT"
    assert isinstance(transfer["amount"], str)  # a decimal string on the wire (§5.5)
    assert Decimal(transfer["amount"]) == paid
    assert transfer["spend_id"].startswith(f"refund-{order_id}-1-")
    assert len(transfer["spend_id"]) <= 64
    assert f"#{order_id}" in transfer["comment"]

    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.SENT
    assert refund.transfer_id == transfer["transfer_id"]
    assert refund.spend_id == transfer["spend_id"]
    assert refund.admin_id == ADMIN_ID
    assert (await shop.order(order_id)).status == OrderStatus.REFUNDED
    result = shop.last_text()
    assert "Refund sent" in result.text and str(transfer["transfer_id"]) in result.text

    notices = await shop.outbox(order_id)
    buyer = [m for m in notices if m.chat_id == ALICE and "refund" in m.text.lower()]
    admins = [m for m in notices if m.chat_id == ADMIN_ID and "Refund sent" in m.text]
    assert len(buyer) == 1 and t.plain(paid) in buyer[0].text
    assert len(admins) == 1 and str(transfer["transfer_id"]) in admins[0].text
    assert shop.ctx.outbox_wakeup.is_set()

    audit = await shop.rows(AuditEntry)
    assert [(a.action, a.admin_id) for a in audit] == [
        ("refund.request", ADMIN_ID),
        ("refund.confirm", ADMIN_ID),
    ]
    assert audit[1].result == f"sent transfer={transfer['transfer_id']}"


async def test_partial_refund_then_the_rest(shop: Shop) -> None:
    order_id = await paid_order(shop)
    paid = (await shop.order(order_id)).paid_amount
    assert paid is not None

    preview, token = await ask(shop, f"{order_id} 0.5 one code did not work")
    assert token is not None and "Send <b>0.50 USDT</b>" in preview.text
    assert "one code did not work" in preview.text
    await confirm(shop, token)
    (first,) = transfers(shop)
    assert Decimal(first["amount"]) == Decimal("0.5")
    assert "one code did not work" in first["comment"]
    assert (await shop.order(order_id)).status == OrderStatus.PARTIALLY_REFUNDED

    preview, token = await ask(shop, f"{order_id}")
    assert token is not None
    assert f"Send <b>{t.plain(paid - Decimal('0.5'))} USDT</b>" in preview.text
    assert "0.50 USDT — sent" in preview.text  # refunds so far
    await confirm(shop, token)
    assert len(transfers(shop)) == 2
    spend_ids = {r.spend_id for r in await refunds(shop, order_id)}
    assert len(spend_ids) == 2
    assert (await shop.order(order_id)).status == OrderStatus.REFUNDED


async def test_refund_over_the_paid_amount_is_refused(shop: Shop) -> None:
    order_id = await paid_order(shop)
    paid = (await shop.order(order_id)).paid_amount
    assert paid is not None
    answer, token = await ask(shop, f"{order_id} {paid + Decimal('0.01')}")
    assert token is None
    assert "would exceed" in answer.text and t.plain(paid) in answer.text
    for bad in ("-1", "0", "1.123456789", "1e9999"):
        answer, token = await ask(shop, f"{order_id} {bad}")
        assert token is None and "not a valid refund amount" in answer.text, bad
    assert await refunds(shop, order_id) == []
    assert transfers(shop) == []


async def test_refund_twice_is_refused(shop: Shop) -> None:
    order_id = await paid_order(shop)
    _, first = await ask(shop, f"{order_id}")
    _, second = await ask(shop, f"{order_id}")  # a second preview, before the first is sent
    assert first is not None and second is not None and first != second
    await confirm(shop, first)
    await confirm(shop, second)
    assert "nothing left to refund" in shop.last_text().text
    assert len(transfers(shop)) == 1
    answer, token = await ask(shop, f"{order_id}")
    assert token is None and "nothing left to refund" in answer.text
    assert len(await refunds(shop, order_id)) == 1


async def test_two_taps_at_once_send_one_transfer(shop: Shop) -> None:
    order_id = await paid_order(shop)
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    updates = [shop.callback(RefundConfirm(decision=RefundDecision.CONFIRM, token=token), ADMIN_ID)]
    updates.append(
        shop.callback(RefundConfirm(decision=RefundDecision.CONFIRM, token=token), ADMIN_ID)
    )
    await asyncio.gather(*(shop.dp.feed_update(shop.bot, u) for u in updates))
    assert len(transfers(shop)) == 1
    assert len(shop.cp.calls_of("transfer")) == 1
    answers = [a.text for u in updates for a in shop.answers_to(u)]
    assert any("expired or was already used" in (a or "") for a in answers), answers
    assert len(await refunds(shop, order_id)) == 1


async def test_two_confirmations_at_once_send_one_transfer(shop: Shop) -> None:
    order_id = await paid_order(shop)
    _, first = await ask(shop, f"{order_id}")
    _, second = await ask(shop, f"{order_id}")
    assert first is not None and second is not None
    await asyncio.gather(confirm(shop, first), confirm(shop, second))
    assert len(transfers(shop)) == 1
    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.SENT
    assert (await shop.order(order_id)).status == OrderStatus.REFUNDED


async def test_transfer_500_then_success_is_one_transfer_with_one_spend_id(shop: Shop) -> None:
    order_id = await paid_order(shop)
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    shop.cp.fail_next("transfer", 500)
    await confirm(shop, token)
    calls = shop.cp.calls_of("transfer")
    assert len(calls) == 2
    assert calls[0]["spend_id"] == calls[1]["spend_id"]
    (transfer,) = transfers(shop)
    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.SENT and refund.spend_id == calls[0]["spend_id"]
    assert refund.transfer_id == transfer["transfer_id"]
    assert "Refund sent" in shop.last_text().text


async def test_timeout_after_the_transfer_went_through_is_not_sent_again(shop: Shop) -> None:
    order_id = await paid_order(shop)
    impatient = CryptoPayClient(CP_TOKEN, shop.cp.base_url, timeout=0.3, max_attempts=2)
    shop.ctx.cryptopay, patient = impatient, shop.ctx.cryptopay
    try:
        _, token = await ask(shop, f"{order_id}")
        assert token is not None
        shop.cp.fail_next("transfer", None, delay=5, after_effect=True)
        await confirm(shop, token)
    finally:
        shop.ctx.cryptopay = patient
        await impatient.aclose()
    assert len(shop.cp.calls_of("transfer")) == 1  # looked up, never re-sent
    (transfer,) = transfers(shop)
    (refund,) = await refunds(shop, order_id)
    assert any(c.get("spend_id") == refund.spend_id for c in shop.cp.calls_of("getTransfers"))
    assert refund.status == RefundStatus.SENT
    assert refund.transfer_id == transfer["transfer_id"]
    assert (await shop.order(order_id)).status == OrderStatus.REFUNDED


async def test_unknown_outcome_stays_sending_and_the_job_finishes_it(shop: Shop) -> None:
    order_id = await paid_order(shop)
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    shop.cp.fail_next("transfer", 502, times=2)  # every attempt of the client
    await confirm(shop, token)
    assert "retried automatically" in shop.last_text().text
    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.SENDING
    assert transfers(shop) == []

    # Too fresh: the confirming request may still be in flight.
    assert await retry_sending_refunds(shop.ctx) == 0
    assert len(shop.cp.calls_of("transfer")) == 2
    shop.clock.advance(300)
    assert await retry_sending_refunds(shop.ctx) == 1
    (transfer,) = transfers(shop)
    assert transfer["spend_id"] == refund.spend_id
    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.SENT
    assert (await shop.order(order_id)).status == OrderStatus.REFUNDED
    assert [
        m for m in await shop.outbox(order_id) if m.chat_id == ADMIN_ID and "Refund sent" in m.text
    ]
    assert await retry_sending_refunds(shop.ctx) == 0


async def test_job_finds_a_transfer_that_went_through_and_does_not_resend(shop: Shop) -> None:
    order_id = await paid_order(shop)
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    shop.cp.fail_next("transfer", 500, after_effect=True)  # paid, but the answer is lost
    shop.cp.fail_next("getTransfers", 500, times=2)  # and the client cannot look it up
    await confirm(shop, token)
    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.SENDING
    assert len(transfers(shop)) == 1

    shop.clock.advance(300)
    assert await retry_sending_refunds(shop.ctx) == 1
    assert len(shop.cp.calls_of("transfer")) == 1
    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.SENT
    assert refund.transfer_id == next(iter(shop.cp.transfers))


async def test_method_disabled_explains_how_to_enable_transfers(shop: Shop) -> None:
    order_id = await paid_order(shop)
    shop.cp.transfers_enabled = False
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    await confirm(shop, token)
    text = shop.last_text().text
    assert "Security → Transfers" in text and "My Apps" in text
    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.FAILED and "METHOD_DISABLED" in (refund.error or "")
    assert (await shop.order(order_id)).status == OrderStatus.PAID
    assert transfers(shop) == []

    # Enabled: the admin tries again and it goes through (the failed one does not count).
    shop.cp.transfers_enabled = True
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    await confirm(shop, token)
    assert len(transfers(shop)) == 1
    assert [r.status for r in await refunds(shop, order_id)] == [
        RefundStatus.FAILED,
        RefundStatus.SENT,
    ]


async def test_insufficient_balance_is_plain_and_marks_failed(shop: Shop) -> None:
    order_id = await paid_order(shop, topped_up=False)  # the fee left less than was paid
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    await confirm(shop, token)
    assert "does not hold" in shop.last_text().text
    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.FAILED
    assert transfers(shop) == []


async def test_an_order_needing_review_can_be_refunded_and_never_shows_goods(shop: Shop) -> None:
    # The decided edge (storage/order_states.py): refund from needs_review, yes; a partial
    # one leaves it there; only the rest makes it refunded, and it never was a sale.
    order_id = await place(shop, "guide")  # unlimited: its content must not leak
    invoice_id = (await shop.order(order_id)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)
    shop.cp.invoice(invoice_id)["amount"] = "0.01"  # no longer the order's total
    await reconcile(shop.ctx)
    order = await shop.order(order_id)
    assert order.status == OrderStatus.NEEDS_REVIEW and order.paid_amount is not None
    shop.cp.balances["USDT"] = Decimal("1000")

    await shop.send(f"/order {order_id}", ADMIN_ID)
    assert "Refund" in button_texts(shop.last_text())
    _, token = await ask(shop, f"{order_id} 0.5")
    assert token is not None
    await confirm(shop, token)
    assert [Decimal(x["amount"]) for x in transfers(shop)] == [Decimal("0.5")]
    assert (await shop.order(order_id)).status == OrderStatus.NEEDS_REVIEW

    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    await confirm(shop, token)
    assert sum(Decimal(x["amount"]) for x in transfers(shop)) == order.paid_amount
    assert (await shop.order(order_id)).status == OrderStatus.REFUNDED

    _, screen = await order_screen(shop.ctx, ALICE, order_id)
    assert screen is not None and GUIDE_URL not in screen.text
    # ... whereas a sold guide, refunded too, keeps showing what the buyer got.
    sold = await paid_order(shop, "guide")
    _, token = await ask(shop, f"{sold}")
    assert token is not None
    await confirm(shop, token)
    assert (await shop.order(sold)).status == OrderStatus.REFUNDED
    _, screen = await order_screen(shop.ctx, ALICE, sold)
    assert screen is not None and GUIDE_URL in screen.text


async def test_unpaid_and_unknown_orders_get_a_clear_answer(shop: Shop) -> None:
    pending = await place(shop)
    answer, token = await ask(shop, f"{pending}")
    assert token is None and "cannot be refunded" in answer.text
    answer, token = await ask(shop, "999999")
    assert token is None and "does not exist" in answer.text
    answer, token = await ask(shop, "")
    assert token is None and "Usage" in answer.text
    assert transfers(shop) == [] and shop.cp.calls_of("transfer") == []


async def test_confirmation_expires_and_cancel_sends_nothing(shop: Shop) -> None:
    order_id = await paid_order(shop)
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    shop.clock.advance(301)
    update = await confirm(shop, token)
    assert "expired" in (shop.answers_to(update)[0].text or "")

    shop.clock.advance(-301)
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    await shop.press(RefundConfirm(decision=RefundDecision.CANCEL, token=token), ADMIN_ID)
    assert "cancelled" in shop.last_text().text
    update = await confirm(shop, token)
    assert "already used" in (shop.answers_to(update)[0].text or "")
    assert await refunds(shop, order_id) == [] and transfers(shop) == []


async def test_non_admin_has_no_refund(shop: Shop) -> None:
    order_id = await paid_order(shop)
    await shop.send(f"/refund {order_id}", ALICE)
    assert shop.last_text().text == t.HELP
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    update = await confirm(shop, token, user=ALICE)  # a forged or forwarded button
    assert shop.answers_to(update)[0].text == t.STALE_BUTTON
    assert await refunds(shop, order_id) == [] and transfers(shop) == []
    # The token is still the admin's to use.
    await confirm(shop, token)
    assert len(transfers(shop)) == 1


async def test_the_refunds_job_is_scheduled_and_runs_under_its_lock(shop: Shop) -> None:
    order_id = await paid_order(shop)
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    shop.cp.fail_next("transfer", 503, times=2)
    await confirm(shop, token)
    shop.clock.advance(300)
    jobs = Jobs(shop.ctx)
    # Its own advisory-lock key: a long refund run never makes reconciliation skip a round.
    assert "refunds" in LOCK_KEYS and len(set(LOCK_KEYS.values())) == len(LOCK_KEYS)
    await jobs._guarded("refunds", retry_sending_refunds)()
    (refund,) = await refunds(shop, order_id)
    assert refund.status == RefundStatus.SENT
    jobs.start()
    try:
        job = jobs.scheduler.get_job("refunds")
        assert job is not None and job.trigger.interval.total_seconds() == REFUND_RETRY_SECONDS
    finally:
        await jobs.stop()
