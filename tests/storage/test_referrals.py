"""Referrals: attribution once (never to oneself, never an existing customer), and the
referrer's reward exactly once, inside the settlement — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

import storage
from storage import Attribution, Buyer, Database, OutboxKind, OutboxMessage, PromoRefusal
from storage.models import Customer
from storage.promos import PromoCode
from tests.storage.conftest import buyer, order_for, payment, seed

REFERRER, FRIEND, OTHER = 1, 2, 3
TEN = Decimal(10)


def who(telegram_id: int) -> Buyer:
    return Buyer(telegram_id, f"user{telegram_id}", "en")


async def customer(db: Database, telegram_id: int) -> Customer:
    found = await storage.get_customer(db, telegram_id)
    assert found is not None
    return found


async def reward_codes(db: Database) -> list[PromoCode]:
    async with db.session() as s:
        return list(
            (await s.scalars(sa.select(PromoCode).where(PromoCode.owner_id.is_not(None)))).all()
        )


async def reward_messages(db: Database) -> list[OutboxMessage]:
    async with db.session() as s:
        rows = await s.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == OutboxKind.REFERRAL_REWARD)
        )
        return list(rows.all())


async def referred_pair(db: Database) -> str:
    """REFERRER's code, and FRIEND arrived through it."""
    await buyer(db, REFERRER)
    code = await storage.referral_code(db, who(REFERRER))
    assert await storage.attribute_referral(db, who(FRIEND), code) == Attribution.ATTRIBUTED
    return code


async def test_a_customer_has_one_code_and_a_new_customer_is_attributed_once(db: Database) -> None:
    code = await storage.referral_code(db, who(REFERRER))
    assert code == await storage.referral_code(db, who(REFERRER))  # stable
    assert code != await storage.referral_code(db, who(OTHER))
    other_code = await storage.referral_code(db, who(OTHER))

    assert (
        await storage.attribute_referral(db, who(FRIEND), code.upper())  # case-insensitive
        == Attribution.ATTRIBUTED
    )
    referrer = await customer(db, REFERRER)
    friend = await customer(db, FRIEND)
    assert friend.referred_by == referrer.id and friend.referred_at is not None
    # Another link later, or the same one again: never changed.
    assert await storage.attribute_referral(db, who(FRIEND), other_code) == (
        Attribution.ALREADY_CUSTOMER
    )
    assert await storage.attribute_referral(db, who(FRIEND), code) == Attribution.ALREADY_CUSTOMER
    assert (await customer(db, FRIEND)).referred_by == referrer.id


async def test_self_referral_unknown_codes_and_existing_customers_are_refused(
    db: Database,
) -> None:
    code = await storage.referral_code(db, who(REFERRER))
    assert await storage.attribute_referral(db, who(REFERRER), code) == Attribution.OWN_CODE
    assert (await customer(db, REFERRER)).referred_by is None
    assert await storage.attribute_referral(db, who(FRIEND), "nosuch") == Attribution.UNKNOWN_CODE
    assert await storage.get_customer(db, FRIEND) is None  # nothing written for a bad code
    await buyer(db, OTHER)  # talked to the shop before the link
    assert await storage.attribute_referral(db, who(OTHER), code) == Attribution.ALREADY_CUSTOMER
    assert (await customer(db, OTHER)).referred_by is None
    summary = await storage.referral_summary(db, "USD")
    assert (summary.referred, summary.converted, summary.revenue) == (0, 0, Decimal(0))


async def test_the_first_paid_order_rewards_once_despite_duplicates_and_a_refund(
    db: Database,
) -> None:
    await referred_pair(db)
    prod = await seed(db, codes=5)
    first = await order_for(db, prod, telegram_id=FRIEND)
    paid = payment(first)
    result = await storage.settle(db, paid, referral_percent=TEN)
    assert result.outcome == storage.SettleOutcome.SETTLED
    # The same payment again: alone, in a batch twice, from reconciliation.
    again = await storage.settle_many(
        db, [paid, payment(first, source="reconcile")], referral_percent=TEN
    )
    assert [r.outcome for r in again if not isinstance(r, Exception)] == ["duplicate"] * 2

    (code,) = await reward_codes(db)
    referrer = await customer(db, REFERRER)
    assert code.owner_id == referrer.id
    assert (code.kind, code.value, code.max_uses, code.per_buyer) == ("percent", TEN, 1, 1)
    assert code.valid_until is not None
    left = code.valid_until - storage.utcnow()
    assert timedelta(days=29, hours=23) < left <= timedelta(days=30)
    (message,) = await reward_messages(db)
    assert (message.chat_id, message.order_id) == (REFERRER, first.id)
    reward = await storage.referral_reward(db, first.id or 0)
    assert reward is not None and reward.code == code.code and reward.percent == TEN

    # Refunded in full, then a second order paid: no second reward.
    refund = await storage.create_refund(
        db, first.id or 0, "USDT", first.total, "test", 900, "spend-ref-1"
    )
    assert await storage.mark_refund_sent(db, refund.id or 0, 77)
    second = await order_for(db, prod, telegram_id=FRIEND)
    assert (await storage.settle(db, payment(second), referral_percent=TEN)).outcome == ("settled")
    assert len(await reward_codes(db)) == 1 and len(await reward_messages(db)) == 1
    assert (await customer(db, FRIEND)).referral_order_id == first.id


async def test_concurrent_settlements_reward_once(db: Database) -> None:
    await referred_pair(db)
    prod = await seed(db, codes=5)
    order = await order_for(db, prod, telegram_id=FRIEND)
    results = await asyncio.gather(
        *(
            storage.settle(db, payment(order, source=source), referral_percent=TEN)
            for source in ("webhook", "reconcile", "recheck", "webhook")
        )
    )
    assert sorted(r.outcome for r in results) == ["duplicate"] * 3 + ["settled"]
    assert len(await reward_codes(db)) == 1 and len(await reward_messages(db)) == 1


async def test_a_batch_rewards_each_referrer_for_the_first_order_only(db: Database) -> None:
    """The set-based path: two referred buyers, one with two orders in the same batch."""
    await referred_pair(db)
    code = await storage.referral_code(db, who(REFERRER))
    assert await storage.attribute_referral(db, who(OTHER), code) == Attribution.ATTRIBUTED
    prod = await seed(db, codes=6)
    a1 = await order_for(db, prod, telegram_id=FRIEND)
    a2 = await order_for(db, prod, telegram_id=FRIEND)
    b1 = await order_for(db, prod, telegram_id=OTHER)
    outcomes = await storage.settle_many(
        db, [payment(a2), payment(a1), payment(b1)], referral_percent=TEN
    )
    assert [getattr(o, "outcome", o) for o in outcomes] == ["settled"] * 3
    assert len(await reward_codes(db)) == 2
    assert sorted(m.order_id or 0 for m in await reward_messages(db)) == [a1.id, b1.id]
    assert (await customer(db, FRIEND)).referral_order_id == a1.id  # the first, by id

    summary = await storage.referral_summary(db, "USD")
    assert (summary.referred, summary.converted) == (2, 2)
    assert summary.revenue == a1.total + a2.total + b1.total
    (top,) = await storage.top_referrers(db, "USD")
    assert (top.telegram_id, top.referred, top.converted) == (REFERRER, 2, 2)
    assert top.revenue == summary.revenue


async def test_with_zero_percent_referrals_are_only_counted(db: Database) -> None:
    await referred_pair(db)
    prod = await seed(db, codes=2)
    order = await order_for(db, prod, telegram_id=FRIEND)
    await storage.settle(db, payment(order), referral_percent=Decimal(0))
    assert await reward_codes(db) == [] and await reward_messages(db) == []
    assert (await customer(db, FRIEND)).referral_order_id == order.id
    assert await storage.referral_reward(db, order.id or 0) is None
    summary = await storage.referral_summary(db, "USD")
    assert (summary.referred, summary.converted, summary.revenue) == (1, 1, order.total)


async def test_an_unreferred_buyer_rewards_nobody(db: Database) -> None:
    await storage.referral_code(db, who(REFERRER))
    prod = await seed(db, codes=2)
    order = await order_for(db, prod, telegram_id=OTHER)
    await storage.settle(db, payment(order), referral_percent=TEN)
    assert await reward_codes(db) == [] and await reward_messages(db) == []
    assert (await customer(db, OTHER)).referral_order_id is None


async def test_the_reward_code_is_its_owners_alone(db: Database) -> None:
    await referred_pair(db)
    prod = await seed(db, codes=3)
    order = await order_for(db, prod, telegram_id=FRIEND)
    await storage.settle(db, payment(order), referral_percent=TEN)
    (code,) = await reward_codes(db)
    lines = [(prod.id or 0, 1, prod.price)]
    now = storage.utcnow()
    quote = await storage.quote_promo(db, code.code, REFERRER, lines, "USD", now)
    assert not isinstance(quote, PromoRefusal)
    assert quote.discount == Decimal("1.00")  # 10 % of 9.99, half-up
    for stranger in (FRIEND, OTHER, 424242):
        refused = await storage.quote_promo(db, code.code, stranger, lines, "USD", now)
        assert refused == PromoRefusal.UNKNOWN
    assert all(p.terms.code != code.code for p in await storage.list_promos(db))
