"""Every storage test runs on a temporary SQLite file and on PostgreSQL.

PostgreSQL: one fresh database per test run (created here, dropped at the end), tables
truncated before each test. When no server answers, the PostgreSQL half is skipped — except
under CI=true, where that is a failure.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

import storage
from storage import Database
from storage.models import metadata
from tests.conftest import PgServer, run_blocking

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_url(pg_server: PgServer) -> str:
    url = pg_server.new_url()
    run_blocking(storage.upgrade(url))
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "shop.db"
    run_blocking(storage.upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_url(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a brand-new, empty database of the engine under test."""
    if engine_name == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_url()


@pytest.fixture
async def db(
    engine_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Database]:
    """A migrated, empty Database on the engine under test."""
    if engine_name == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "shop.db"
        shutil.copy(template, path)
        database = Database(f"sqlite+aiosqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("pg_url"))
        names = ", ".join(t.name for t in metadata.sorted_tables)
        async with database.engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    try:
        yield database
    finally:
        await database.dispose()


# ---- small builders shared by the tests -------------------------------------------------


def catalog(*products: storage.ProductData, currency: str = "USD") -> storage.CatalogData:
    return storage.CatalogData(
        currency=currency,
        categories=[storage.CategoryData("games", "Games")],
        products=list(products),
    )


def product(sku: str = "key", codes: list[str] | None = None, **kw: object) -> storage.ProductData:
    fields: dict[str, object] = {
        "sku": sku,
        "category": "games",
        "title": f"Product {sku}",
        "description": "",
        "price": Decimal("9.99"),
        "codes": list(codes or []),
    }
    fields.update(kw)
    return storage.ProductData(**fields)  # type: ignore[arg-type]


async def seed(db: Database, sku: str = "key", codes: int = 3, **kw: object) -> storage.Product:
    codes_list = [f"{sku.upper()}-{i:04d}" for i in range(codes)]
    await storage.upsert_catalog(db, catalog(product(sku, codes_list, **kw)))
    prod = await storage.get_product(db, sku)
    assert prod is not None
    return prod


async def buyer(db: Database, telegram_id: int = 1001) -> storage.Customer:
    return await storage.upsert_customer(db, telegram_id, f"user{telegram_id}", "en")


async def order_for(
    db: Database, prod: storage.Product, qty: int = 1, *, telegram_id: int = 1001, ttl: int = 900
) -> storage.Order:
    cust = await buyer(db, telegram_id)
    assert cust.id is not None and prod.id is not None
    order = await storage.create_order(
        db,
        cust.id,
        [(prod.id, qty, prod.price)],
        "USD",
        storage.utcnow() + timedelta(seconds=ttl),
    )
    assert order is not None
    return order


def payment(
    order: storage.Order, *, invoice_id: int | None = None, source: str = "webhook", **kw: object
) -> storage.SettlePayment:
    assert order.id is not None
    fields: dict[str, object] = {
        "order_id": order.id,
        "invoice_id": invoice_id if invoice_id is not None else 500_000 + order.id,
        "paid_asset": "USDT",
        "paid_amount": order.total,
        "fee_asset": "USDT",
        "fee_amount": Decimal("0.03"),
        "paid_at": storage.utcnow(),
        "source": source,
        "raw_body": '{"ok": true}',
    }
    fields.update(kw)
    return storage.SettlePayment(**fields)  # type: ignore[arg-type]
