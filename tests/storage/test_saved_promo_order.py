"""place_order(saved_promo=True): the buyer's saved code, read by the order's own
transaction (the checkout's read of it folded in), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

import storage
from storage import PromoKind, PromoRefusal, PromoRefused, PromoTerms
from tests.storage.conftest import seed

TTL = timedelta(minutes=15)
BUYER = storage.Buyer(6001, "ann", "en")


async def place_saved(db: storage.Database, prod: storage.Product) -> storage.Order | None:
    assert prod.id is not None
    return await storage.place_order(
        db, BUYER, [(prod.id, 1, prod.price)], "USD", storage.utcnow() + TTL, saved_promo=True
    )


async def test_the_saved_code_is_taken_in_the_order_transaction(db: storage.Database) -> None:
    prod = await seed(db, codes=3)  # 9.99
    await storage.add_promo(db, PromoTerms("SAVE10", PromoKind.PERCENT, Decimal(10), "USD"))
    await storage.save_promo(db, BUYER, "Save10")
    order = await place_saved(db, prod)
    assert order is not None
    assert order.promo_code == "save10"
    assert order.discount == Decimal("1.00")
    assert order.total == Decimal("8.99")
    promo = await storage.get_promo(db, "save10")
    assert promo is not None and promo.used == 1


async def test_no_saved_code_is_the_full_price(db: storage.Database) -> None:
    prod = await seed(db, codes=3)
    order = await place_saved(db, prod)
    assert order is not None
    assert order.total == Decimal("9.99") and order.promo_code is None


async def test_a_refused_saved_code_is_named_and_nothing_written(db: storage.Database) -> None:
    prod = await seed(db, codes=3)
    await storage.add_promo(db, PromoTerms("ONCE", PromoKind.FIXED, Decimal(1), "USD"))
    await storage.save_promo(db, BUYER, "once")
    assert await storage.switch_off_promo(db, "once")
    with pytest.raises(PromoRefused) as refused:
        await place_saved(db, prod)
    assert refused.value.code == "once"
    assert refused.value.reason == PromoRefusal.SWITCHED_OFF
    assert (await storage.stock_counts(db, prod.id or 0)).available == 3


async def test_promo_and_saved_promo_are_exclusive(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    assert prod.id is not None
    with pytest.raises(ValueError):
        await storage.place_order(
            db,
            BUYER,
            [(prod.id, 1, prod.price)],
            "USD",
            storage.utcnow() + TTL,
            promo="x",
            saved_promo=True,
        )
