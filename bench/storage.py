"""Storage benchmark: settle throughput vs a bare INSERT+COMMIT, and keyset catalog pages.

The settles run 20 at a time, as concurrent webhooks do, so they share transactions (the
group commit: a Coalescer over storage.settle_many, as the webhook route has); the
baseline's one-row transactions do not.

Run from the repository root: ``python bench/storage.py``. Uses a temporary SQLite file and
a throwaway PostgreSQL database (created and dropped here; skipped with a note when the
server is unreachable; ``BENCH_POSTGRES_URL`` overrides the admin URL).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

import storage
from bench._common import fresh_pg_database, run_pool, seed_product

ORDERS = 1_000
CONCURRENCY = 20
PRODUCTS = 100_000
PAGE = 20
LAST_PAGE = 5_000


async def run_concurrently(n: int, job: Callable[[int], Awaitable[object]]) -> float:
    """Run job(0..n-1) with CONCURRENCY workers; returns jobs per second."""
    elapsed, _ = await run_pool(n, CONCURRENCY, job)
    return n / elapsed


async def bench_settle(db: storage.Database) -> tuple[float, float]:
    prod = await seed_product(db, "bench-key", ORDERS, "9.99")
    assert prod.id is not None
    expires = storage.utcnow() + timedelta(hours=1)
    orders: list[storage.Order] = []
    for i in range(ORDERS):
        cust = await storage.upsert_customer(db, 10_000 + i, None, None)
        assert cust.id is not None
        order = await storage.create_order(db, cust.id, [(prod.id, 1, prod.price)], "USD", expires)
        assert order is not None and order.id is not None
        orders.append(order)
    # As the webhook route does: settlements arriving together share a transaction.
    settle = storage.Coalescer(partial(storage.settle_many, db), storage.SETTLE_BATCH)

    async def settle_one(i: int) -> None:
        order = orders[i]
        assert order.id is not None
        pay = storage.SettlePayment(
            order_id=order.id,
            invoice_id=1_000_000 + order.id,
            paid_asset="USDT",
            paid_amount=order.total,
            fee_asset="USDT",
            fee_amount=Decimal("0.03"),
            paid_at=storage.utcnow(),
            source="webhook",
            raw_body='{"update_type": "invoice_paid"}',
        )
        result = await settle(pay)
        assert result.outcome is storage.SettleOutcome.SETTLED, result.outcome

    settle_tps = await run_concurrently(ORDERS, settle_one)
    assert await storage.stock_counts(db, prod.id) == (0, 0, ORDERS)

    table = sa.table("bench_baseline", sa.column("id", sa.Integer), sa.column("v", sa.Text))
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE bench_baseline (id INTEGER PRIMARY KEY, v TEXT)"))

    async def insert_one(i: int) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(sa.insert(table).values(id=i + 1, v="x"))

    baseline_tps = await run_concurrently(ORDERS, insert_one)
    return settle_tps, baseline_tps


async def bench_pages(db: storage.Database) -> tuple[float, float]:
    """Median seconds for catalog page 1 and page LAST_PAGE (keyset) of PRODUCTS products."""
    await storage.upsert_catalog(
        db,
        storage.CatalogData(
            "USD",
            [storage.CategoryData("big", "Big")],
            [
                storage.ProductData(f"p{i:06d}", "big", f"Product {i}", "", Decimal("1.00"))
                for i in range(PRODUCTS)
            ],
        ),
    )
    async with db.session() as s:
        cursor = await s.scalar(
            sa.select(storage.Product.id)
            .join(storage.Category, storage.Category.id == storage.Product.category_id)
            .where(storage.Category.slug == "big")
            .order_by(storage.Product.position, storage.Product.id)
            .offset((LAST_PAGE - 1) * PAGE - 1)
            .limit(1)
        )

    async def timed(after: int | None) -> float:
        samples = []
        for _ in range(60):
            start = time.perf_counter()
            page = await storage.list_products(db, "big", after=after, limit=PAGE)
            samples.append(time.perf_counter() - start)
            assert len(page) == PAGE
        return statistics.median(samples)

    first = await timed(None)
    last = await timed(cursor)
    page = await storage.list_products(db, "big", after=cursor, limit=PAGE)
    assert page[0].sku == f"p{(LAST_PAGE - 1) * PAGE:06d}", page[0].sku
    return first, last


async def run_engine(name: str, url: str) -> tuple[str, float]:
    await storage.upgrade(url)
    db = storage.Database(url)
    try:
        t0 = time.perf_counter()
        settle_tps, baseline_tps = await bench_settle(db)
        print(
            f"{name}: settle {settle_tps:.0f} settlements/s (20 at a time, sharing "
            f"transactions), bare INSERT+COMMIT {baseline_tps:.0f} tx/s"
            f" ({time.perf_counter() - t0:.1f}s)"
        )
        t0 = time.perf_counter()
        first, last = await bench_pages(db)
        print(
            f"{name}: catalog page 1 {first * 1000:.2f} ms, page {LAST_PAGE} "
            f"{last * 1000:.2f} ms ({time.perf_counter() - t0:.1f}s incl. import of "
            f"{PRODUCTS} products)"
        )
    finally:
        await db.dispose()
    line = (
        f"RESULT storage_settle_{name} tx_per_s={settle_tps:.0f} baseline={baseline_tps:.0f} "
        f"ratio={settle_tps / baseline_tps:.2f}"
    )
    return line, last / first


async def main() -> None:
    engines = os.environ.get("BENCH_ENGINES", "sqlite,postgresql")
    lines: list[str] = []
    ratios: list[float] = []
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory() as tmp:
            line, ratio = await run_engine("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db")
            lines.append(line)
            ratios.append(ratio)
    if "postgresql" in engines:
        async with fresh_pg_database("bench_storage") as url:
            if url is None:
                lines.append("RESULT storage_settle_postgresql skipped=unreachable")
            else:
                line, ratio = await run_engine("postgresql", url)
                lines.append(line)
                ratios.append(ratio)
    for line in lines:
        print(line)
    if ratios:  # the worse of the engines measured
        print(f"RESULT catalog_page ratio_last_to_first={max(ratios):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
