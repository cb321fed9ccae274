"""Referrals (PRODUCT.md §4.2): every customer's own code, who brought whom, and the reward
for a referred customer's first paid order.

Attribution is written once, when the customer's row is created by a /start through a
link: an existing customer is never attributed, nor anyone to themselves. The reward is
taken inside the settlement transaction (`reward_first_orders_in`): a conditional UPDATE
on the referred customer's row (`referral_order_id IS NULL`) has exactly one winner however
many webhooks, reconciliations and rechecks settle at once; that row keeps the order for
good, so a refunded first order does not reward a second time.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import dialect_of, table_of
from storage.customers import Buyer, upsert_customer_referral_in
from storage.database import Database
from storage.discounts import PromoKind
from storage.enums import OutboxKind
from storage.models import Customer, Order
from storage.order_states import SALE_STATES
from storage.outbox import OutboxDraft, add_in
from storage.promos import PromoCode
from storage.types import utcnow

REWARD_DAYS = 30
CODE_LENGTH = 8
# No 0/o, 1/l/i: a code read aloud or typed from a screenshot stays the same code.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

_customers = table_of(Customer)
_referrer = _customers.alias("referrer")
_orders = table_of(Order)
_promos = table_of(PromoCode)


class Attribution(StrEnum):
    ATTRIBUTED = "attributed"  # a new customer, now the referrer's
    OWN_CODE = "own_code"  # their own link: refused
    UNKNOWN_CODE = "unknown_code"
    ALREADY_CUSTOMER = "already_customer"  # known before: never re-attributed


@dataclass(frozen=True, slots=True)
class ReferralReward:
    """The personal code a referrer got for a referred customer's first paid order."""

    code: str
    percent: Decimal
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class Referrer:
    """A row of /referrals: who, how many they brought, how many of those paid, and what
    those paid (sales, in the shop's currency)."""

    telegram_id: int
    username: str | None
    referred: int
    converted: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class ReferralSummary:
    referred: int  # customers who arrived through a link
    converted: int  # of them, those whose first order was paid
    revenue: Decimal  # their sales, in the shop's currency


def new_code(length: int = CODE_LENGTH) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


async def referral_code(db: Database, buyer: Buyer) -> str:
    """The buyer's own referral code (given on first ask, then always the same)."""
    for _attempt in range(5):
        async with db.transaction() as s:
            customer_id, code = await upsert_customer_referral_in(s, buyer)
            if code is not None:
                return str(code)
            candidate = new_code()
            taken = await s.scalar(
                sa.select(_customers.c.id).where(_customers.c.referral_code == candidate)
            )
            if taken is None:
                await s.execute(
                    sa.update(_customers)
                    .where(_customers.c.id == customer_id, _customers.c.referral_code.is_(None))
                    .values(referral_code=candidate)
                )
                return candidate
    raise RuntimeError("no free referral code after 5 draws")  # 31^8 codes: not in practice


def _insert_new(insert: Any) -> Any:
    now = sa.bindparam("p_now", type_=_customers.c.created_at.type)
    return (
        insert(_customers)
        .values(
            telegram_id=sa.bindparam("p_telegram_id"),
            username=sa.bindparam("p_username", type_=_customers.c.username.type),
            language=sa.bindparam("p_language", type_=_customers.c.language.type),
            blocked_bot=False,
            created_at=now,
            updated_at=now,
            referred_by=sa.bindparam("p_referrer"),
            referred_at=now,
        )
        .on_conflict_do_nothing(index_elements=["telegram_id"])
        .returning(_customers.c.id)
    )


_INSERT_NEW = {"postgresql": _insert_new(postgresql.insert), "sqlite": _insert_new(sqlite.insert)}


async def attribute_referral(db: Database, buyer: Buyer, code: str) -> Attribution:
    """A /start through `code`'s link: a customer not known before becomes the referrer's,
    in the same statement that creates their row (two /starts at once: one creates it)."""
    async with db.transaction() as s:
        referrer = (
            await s.execute(
                sa.select(_customers.c.id, _customers.c.telegram_id).where(
                    _customers.c.referral_code == code.strip().lower()
                )
            )
        ).first()
        if referrer is None:
            return Attribution.UNKNOWN_CODE
        if int(referrer.telegram_id) == buyer.telegram_id:
            return Attribution.OWN_CODE
        created = await s.scalar(
            _INSERT_NEW[dialect_of(s)],
            {
                "p_telegram_id": buyer.telegram_id,
                "p_username": buyer.username,
                "p_language": buyer.language,
                "p_referrer": int(referrer.id),
                "p_now": utcnow(),
            },
        )
        return Attribution.ALREADY_CUSTOMER if created is None else Attribution.ATTRIBUTED


# The referred customers among a settlement's buyers whose first paid order is still to come,
# with their referrer's id and chat.
_FIRST_ORDER_DUE = (
    sa.select(_customers.c.id, _referrer.c.id, _referrer.c.telegram_id)
    .join(_referrer, _referrer.c.id == _customers.c.referred_by)
    .where(
        _customers.c.id.in_(sa.bindparam("p_ids", expanding=True)),
        _customers.c.referral_order_id.is_(None),
    )
)
# The one place a referral is counted: whoever settles first wins, the rest change nothing.
_MARK_FIRST_ORDER = (
    sa.update(_customers)
    .where(
        _customers.c.id == sa.bindparam("p_customer_id"),
        _customers.c.referral_order_id.is_(None),
    )
    .values(
        referral_order_id=sa.bindparam("p_order_id"),
        referral_reward=sa.bindparam("p_code", type_=_customers.c.referral_reward.type),
    )
    .returning(_customers.c.id)
)


async def reward_first_orders_in(
    s: AsyncSession,
    paid: Sequence[tuple[int, int, str]],
    percent: Decimal,
) -> None:
    """Inside the settlement transaction, for orders just paid — (order id, customer id,
    currency) — the referred buyers' first paid orders: counted once, and with `percent` > 0
    the referrer gets a personal one-use code (`percent` off, REWARD_DAYS days) and a message
    through the outbox (composed when sent: the kind, the order, the referrer's chat)."""
    if not paid:
        return
    first: dict[int, tuple[int, str]] = {}  # customer -> (their first order here, currency)
    for order_id, customer_id, currency in sorted(paid):
        first.setdefault(customer_id, (order_id, currency))
    due = (await s.execute(_FIRST_ORDER_DUE, {"p_ids": sorted(first)})).all()
    now = utcnow()
    drafts = []
    for customer_id, referrer_id, referrer_chat in due:
        order_id, currency = first[customer_id]
        code = f"ref{new_code()}" if percent > 0 else None
        won = (
            await s.execute(
                _MARK_FIRST_ORDER,
                {"p_customer_id": customer_id, "p_order_id": order_id, "p_code": code},
            )
        ).first()
        if won is None or code is None:
            continue
        await s.execute(
            sa.insert(_promos).values(
                code=code,
                kind=PromoKind.PERCENT.value,
                value=percent,
                currency=currency,
                max_uses=1,
                used=0,
                per_buyer=1,
                valid_until=now + timedelta(days=REWARD_DAYS),
                min_total=None,
                skus="",
                active=True,
                created_at=now,
                owner_id=referrer_id,
            )
        )
        drafts.append(
            OutboxDraft(
                int(referrer_chat),
                kind=OutboxKind.REFERRAL_REWARD,
                order_id=order_id,
                dedupe_key=f"referral:{order_id}",
            )
        )
    await add_in(s, drafts)


async def referral_reward(db: Database, order_id: int) -> ReferralReward | None:
    """The code a referrer got for this (first paid) order, as stored."""
    async with db.session() as s:
        row = (
            await s.execute(
                sa.select(_promos.c.code, _promos.c.value, _promos.c.valid_until)
                .join(_customers, _customers.c.referral_reward == _promos.c.code)
                .where(_customers.c.referral_order_id == order_id)
            )
        ).first()
    return None if row is None else ReferralReward(str(row[0]), row[1], row[2])


def _sales(currency: str) -> Any:
    return sa.and_(_orders.c.status.in_(SALE_STATES), _orders.c.currency == currency)


async def referral_summary(db: Database, currency: str) -> ReferralSummary:
    async with db.session() as s:
        referred, converted = (
            await s.execute(
                sa.select(sa.func.count(), sa.func.count(_customers.c.referral_order_id)).where(
                    _customers.c.referred_by.is_not(None)
                )
            )
        ).one()
        revenue = await s.scalar(
            sa.select(sa.func.sum(_orders.c.total))
            .join(_customers, _customers.c.id == _orders.c.customer_id)
            .where(_customers.c.referred_by.is_not(None), _sales(currency))
        )
    return ReferralSummary(int(referred), int(converted), revenue or Decimal(0))


async def top_referrers(db: Database, currency: str, limit: int = 20) -> list[Referrer]:
    """The referrers who brought the most customers (then the most paying ones)."""
    counts = (
        sa.select(
            _customers.c.referred_by.label("referrer_id"),
            sa.func.count().label("referred"),
            sa.func.count(_customers.c.referral_order_id).label("converted"),
        )
        .where(_customers.c.referred_by.is_not(None))
        .group_by(_customers.c.referred_by)
        .subquery()
    )
    async with db.session() as s:
        rows = (
            await s.execute(
                sa.select(
                    _referrer.c.id,
                    _referrer.c.telegram_id,
                    _referrer.c.username,
                    counts.c.referred,
                    counts.c.converted,
                )
                .join(counts, counts.c.referrer_id == _referrer.c.id)
                .order_by(counts.c.referred.desc(), counts.c.converted.desc(), _referrer.c.id.asc())
                .limit(limit)
            )
        ).all()
        ids = [int(r[0]) for r in rows]
        revenue: dict[int, Decimal] = {}
        if ids:
            sums = await s.execute(
                sa.select(_customers.c.referred_by, sa.func.sum(_orders.c.total))
                .join(_orders, _orders.c.customer_id == _customers.c.id)
                .where(_customers.c.referred_by.in_(ids), _sales(currency))
                .group_by(_customers.c.referred_by)
            )
            revenue = {int(r): total or Decimal(0) for r, total in sums.all()}
    return [
        Referrer(int(tid), name, int(n), int(c), revenue.get(int(rid), Decimal(0)))
        for rid, tid, name, n, c in rows
    ]
