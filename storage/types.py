"""Column types that keep money exact and datetimes aware on every engine."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

MONEY_SCALE = 8
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_FACTOR = 10**MONEY_SCALE


class InexactMoney(ValueError):
    """A Decimal with more fractional digits than the money columns keep."""


def to_money(value: Decimal | str | int) -> Decimal:
    """The value as a Decimal with at most MONEY_SCALE places; raises InexactMoney otherwise."""
    if isinstance(value, float):  # a float is never money here
        raise TypeError("money must be a Decimal, str or int, never float")
    dec = value if isinstance(value, Decimal) else Decimal(value)
    if not dec.is_finite():
        raise InexactMoney(f"not a finite amount: {value!r}")
    quantized = dec.quantize(_QUANTUM)
    if quantized != dec:
        raise InexactMoney(f"{value!r} has more than {MONEY_SCALE} decimal places")
    return quantized


class Money(TypeDecorator[Decimal]):
    """Exact money: NUMERIC(28, 8) on PostgreSQL, integer minor units (1e-8) on SQLite.

    SQLite has no exact decimal type (NUMERIC affinity degrades to a double), so there the
    amount is stored as a 64-bit count of 1e-8 units, which keeps SUM() exact too.
    Values with more than 8 decimal places are refused (InexactMoney), never rounded.
    """

    impl = sa.Numeric(28, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(28, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        dec = to_money(value)
        if dialect.name == "sqlite":
            return int(dec * _FACTOR)
        return dec

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / _FACTOR).quantize(_QUANTUM)
        return Decimal(value).quantize(_QUANTUM)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


def aware_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is refused (ValueError), never guessed."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: pass an aware datetime (UTC)")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out, on SQLite as on PostgreSQL.

    Naive datetimes are refused: an hour's ambiguity in an expiry or a payment time is a bug.
    SQLite stores the UTC wall time (so string comparison orders correctly) and the value is
    read back with tzinfo=UTC; PostgreSQL uses timestamptz.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = aware_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
