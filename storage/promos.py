"""Promo codes: the codes, their uses, and the use taken inside the order's transaction.

A use is a row in `promo_uses` (one per order) plus `promo_codes.used + 1`, taken with a
conditional UPDATE (`used < max_uses`) in the transaction that creates the order, so of
buyers racing for the last use exactly one gets it; releasing the order (expired or
cancelled) gives it back. Codes are stored case-folded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, col

from storage._sql import snapshot, table_of
from storage.customers import Buyer, upsert_customer_in
from storage.database import Database
from storage.discounts import PromoKind, PromoRefusal, PromoTerms, Quote, evaluate
from storage.models import Base, Customer, Order, OrderLine, Product, _now_field
from storage.order_states import SALE_STATES
from storage.types import Money, UTCDateTime, utcnow


class PromoCode(Base, table=True):
    __tablename__ = "promo_codes"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=sa.String(64), unique=True)  # case-folded
    kind: str = Field(sa_type=sa.String(16))  # PromoKind
    value: Decimal = Field(sa_type=Money())  # percent, or an amount in `currency`
    currency: str = Field(sa_type=sa.String(16))
    max_uses: int | None = Field(default=None)
    used: int = Field(default=0)  # uses by orders not released (pending or paid)
    per_buyer: int = Field(default=1)
    valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime(), nullable=True)
    min_total: Decimal | None = Field(default=None, sa_type=Money())
    skus: str = Field(default="", sa_type=sa.Text())  # comma-separated; empty: every product
    active: bool = Field(default=True)
    created_at: datetime = _now_field()
    # A personal code (a referral reward): only this customer may use it; None: anyone.
    owner_id: int | None = Field(default=None, foreign_key="customers.id", ondelete="CASCADE")


class PromoUse(Base, table=True):
    __tablename__ = "promo_uses"
    __table_args__ = (sa.Index("ix_promo_uses_buyer", "promo_id", "customer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    promo_id: int = Field(foreign_key="promo_codes.id", ondelete="CASCADE")
    customer_id: int = Field(foreign_key="customers.id", ondelete="RESTRICT")
    order_id: int = Field(foreign_key="orders.id", ondelete="CASCADE", unique=True)
    created_at: datetime = _now_field()


class PromoExists(Exception):
    """add_promo: a code of that name exists already."""


class PromoRefused(Exception):
    """The order's code does not apply; nothing was written. `code`: the code refused, when
    place_order took the buyer's saved one (saved_promo=True)."""

    def __init__(self, reason: PromoRefusal, terms: PromoTerms | None = None) -> None:
        super().__init__(str(reason))
        self.reason = reason
        self.terms = terms
        self.code: str | None = None


@dataclass(frozen=True)
class PromoSummary:
    terms: PromoTerms
    paid_orders: int
    revenue: Decimal  # totals (after the discount) of paid orders that used it


def _may_use(row: PromoCode, customer_id: int | None) -> bool:
    """A personal code (a referral reward) is someone else's secret: for anyone but its
    owner it does not exist."""
    return row.owner_id is None or row.owner_id == customer_id


def fold(code: str) -> str:
    return code.strip().casefold()


def _terms(row: PromoCode) -> PromoTerms:
    return PromoTerms(
        code=row.code,
        kind=PromoKind(row.kind),
        value=row.value,
        currency=row.currency,
        max_uses=row.max_uses,
        used=row.used,
        per_buyer=row.per_buyer,
        valid_until=row.valid_until,
        min_total=row.min_total,
        skus=tuple(s for s in row.skus.split(",") if s),
        active=row.active,
    )


_promos = table_of(PromoCode)
_uses = table_of(PromoUse)
_orders = table_of(Order)
_lines = table_of(OrderLine)
_customers = table_of(Customer)
_products = table_of(Product)

_BY_CODE = sa.select(PromoCode).where(col(PromoCode.code) == sa.bindparam("p_code"))
_BUYER_USES = sa.select(sa.func.count()).where(
    _uses.c.promo_id == sa.bindparam("p_promo_id"),
    _uses.c.customer_id == sa.bindparam("p_customer_id"),
)
_SKUS = sa.select(_products.c.id, _products.c.sku).where(
    _products.c.id.in_(sa.bindparam("p_ids", expanding=True))
)
# The one place a use is counted: it cannot pass max_uses, whoever races for it.
_TAKE = (
    sa.update(_promos)
    .where(
        _promos.c.id == sa.bindparam("p_promo_id"),
        _promos.c.active.is_(True),
        sa.or_(_promos.c.max_uses.is_(None), _promos.c.used < _promos.c.max_uses),
    )
    .values(used=_promos.c.used + 1)
    .returning(_promos.c.id)
)


async def add_promo(db: Database, terms: PromoTerms) -> PromoTerms:
    """Store a new code (case-folded); PromoExists when the name is taken."""
    code = fold(terms.code)
    async with db.transaction() as s:
        if await s.scalar(_BY_CODE, {"p_code": code}) is not None:
            raise PromoExists(code)
        row = PromoCode(
            code=code,
            kind=terms.kind.value,
            value=terms.value,
            currency=terms.currency,
            max_uses=terms.max_uses,
            per_buyer=terms.per_buyer,
            valid_until=terms.valid_until,
            min_total=terms.min_total,
            skus=",".join(terms.skus),
            active=True,
        )
        s.add(row)
        await s.flush()
        return _terms(row)


async def switch_off_promo(db: Database, code: str) -> bool:
    """False when there is no such code. Orders already placed with it keep it."""
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(_promos)
            .where(_promos.c.code == fold(code))
            .values(active=False)
            .returning(_promos.c.id)
        )
        return res.first() is not None


async def get_promo(db: Database, code: str) -> PromoTerms | None:
    async with db.session() as s:
        row = await s.scalar(_BY_CODE, {"p_code": fold(code)})
        return None if row is None else _terms(row)


async def list_promos(db: Database) -> list[PromoSummary]:
    """Every code, newest first, with its paid orders and their revenue."""
    async with db.session() as s:
        # Personal codes (referral rewards, one per referred buyer) are left out: /referrals
        # counts them, and they would bury the shop's own codes.
        rows = (
            await s.scalars(
                sa.select(PromoCode)
                .where(col(PromoCode.owner_id).is_(None))
                .order_by(col(PromoCode.id).desc())
            )
        ).all()
        sales = {
            code: (int(n), total or Decimal(0))
            for code, n, total in (
                await s.execute(
                    sa.select(_orders.c.promo_code, sa.func.count(), sa.func.sum(_orders.c.total))
                    .where(_orders.c.promo_code.is_not(None), _orders.c.status.in_(SALE_STATES))
                    .group_by(_orders.c.promo_code)
                )
            ).all()
        }
    return [PromoSummary(_terms(row), *sales.get(row.code, (0, Decimal(0)))) for row in rows]


async def saved_promo(db: Database, telegram_id: int) -> str | None:
    """The code the shopper applied and has not used yet."""
    async with db.session() as s:
        code = await s.scalar(
            sa.select(_customers.c.promo_code).where(_customers.c.telegram_id == telegram_id)
        )
        return None if code is None else str(code)


async def save_promo(db: Database, buyer: Buyer, code: str | None) -> None:
    """Remember (or, with None, forget) the shopper's applied code."""
    async with db.transaction() as s:
        customer_id = await upsert_customer_in(s, buyer)
        await s.execute(
            sa.update(_customers)
            .where(_customers.c.id == customer_id)
            .values(promo_code=None if code is None else fold(code))
        )


async def forget_promo(db: Database, telegram_id: int, code: str) -> None:
    """Forget the shopper's saved code if it is still `code` (it can no longer be used)."""
    async with db.transaction() as s:
        await s.execute(
            sa.update(_customers)
            .where(_customers.c.telegram_id == telegram_id, _customers.c.promo_code == fold(code))
            .values(promo_code=None)
        )


async def quote_promo(
    db: Database,
    code: str,
    telegram_id: int,
    lines: Sequence[tuple[int, int, Decimal]],
    currency: str,
    now: datetime,
) -> Quote | PromoRefusal:
    """What `lines` (product id, quantity, unit price) would cost with the code, as the
    checkout would price them now — or why the code does not apply. Writes nothing."""
    async with db.session() as s:
        row = await s.scalar(_BY_CODE, {"p_code": fold(code)})
        if row is None or row.id is None:
            return PromoRefusal.UNKNOWN
        customer_id = await s.scalar(
            sa.select(_customers.c.id).where(_customers.c.telegram_id == telegram_id)
        )
        if not _may_use(row, customer_id):
            return PromoRefusal.UNKNOWN
        uses = 0
        if customer_id is not None:
            uses = int(
                await s.scalar(_BUYER_USES, {"p_promo_id": row.id, "p_customer_id": customer_id})
                or 0
            )
        skus = await s.execute(_SKUS, _sku_params(lines))
        return evaluate(_terms(row), _sku_lines(skus, lines), currency, now, uses)


def _sku_params(lines: Sequence[tuple[int, int, Decimal]]) -> dict[str, Any]:
    return {"p_ids": sorted({pid for pid, _, _ in lines})}


def _sku_lines(
    skus: Iterable[Any], lines: Sequence[tuple[int, int, Decimal]]
) -> list[tuple[str, Decimal]]:
    """`lines` as the code's terms see them: (sku, line amount); `skus`: the _SKUS rows."""
    by_id = {int(pid): str(sku) for pid, sku in skus}
    return [(by_id.get(pid, ""), price * qty) for pid, qty, price in lines]


@dataclass(frozen=True)
class TakenPromo:
    promo_id: int
    code: str
    quote: Quote


def take_promo_on(
    conn: sa.Connection,
    code: str,
    customer_id: int,
    lines: Sequence[tuple[int, int, Decimal]],
    currency: str,
) -> TakenPromo:
    """Inside the order's transaction (a body of Database.run_transaction), after the
    customer's row lock (per-buyer count): check the code against the lines and count one
    use. Raises PromoRefused. The order is then written with the quote (its total, the
    discount, each line's share) and record_use_on records the use."""
    found = conn.execute(_BY_CODE, {"p_code": fold(code)}).first()
    row = None if found is None else snapshot(PromoCode, found._mapping)
    if row is None or row.id is None or not _may_use(row, customer_id):
        raise PromoRefused(PromoRefusal.UNKNOWN)
    terms = _terms(row)
    uses = int(conn.scalar(_BUYER_USES, {"p_promo_id": row.id, "p_customer_id": customer_id}) or 0)
    sku_lines = _sku_lines(conn.execute(_SKUS, _sku_params(lines)), lines)
    quote = evaluate(terms, sku_lines, currency, utcnow(), uses)
    if isinstance(quote, PromoRefusal):
        raise PromoRefused(quote, terms)
    if conn.execute(_TAKE, {"p_promo_id": row.id}).first() is None:
        # Another order took the last use (or an admin switched it off) meanwhile.
        after = conn.scalar(sa.select(_promos.c.active).where(_promos.c.id == row.id))
        raise PromoRefused(PromoRefusal.USED_UP if after else PromoRefusal.SWITCHED_OFF, terms)
    return TakenPromo(row.id, row.code, quote)


_RECORD_USE = sa.insert(_uses).values(
    promo_id=sa.bindparam("p_promo_id"),
    customer_id=sa.bindparam("p_customer_id"),
    order_id=sa.bindparam("p_order_id"),
    created_at=sa.bindparam("p_now", type_=_uses.c.created_at.type),
)
_FORGET_SAVED = (
    sa.update(_customers)
    .where(_customers.c.id == sa.bindparam("p_customer_id"))
    .values(promo_code=None)
)


def record_use_on(conn: sa.Connection, taken: TakenPromo, customer_id: int, order_id: int) -> None:
    """The taken code's use by the new order (written with its discount already), and the
    shopper's saved code forgotten."""
    conn.execute(
        _RECORD_USE,
        {
            "p_promo_id": taken.promo_id,
            "p_customer_id": customer_id,
            "p_order_id": order_id,
            "p_now": utcnow(),
        },
    )
    conn.execute(_FORGET_SAVED, {"p_customer_id": customer_id})


async def give_back_in(s: AsyncSession, order_id: int) -> None:
    """The released order's use, if it had one, counts no more."""
    promo_id = await s.scalar(
        sa.delete(_uses).where(_uses.c.order_id == order_id).returning(_uses.c.promo_id)
    )
    if promo_id is not None:
        await s.execute(
            sa.update(_promos)
            .where(_promos.c.id == promo_id, _promos.c.used > 0)
            .values(used=_promos.c.used - 1)
        )
