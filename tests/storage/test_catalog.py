from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

import storage
from storage import CatalogData, CategoryData, OrderStatus
from tests.storage.conftest import catalog, order_for, payment, product, seed


async def test_import_then_reimport_is_idempotent(db: storage.Database) -> None:
    cat = CatalogData(
        currency="USD",
        categories=[CategoryData("games", "Games"), CategoryData("rpg", "RPG", "games")],
        products=[
            product("witcher", ["A", "B"], category="rpg", max_per_order=5),
            product("guide", unlimited=True, content="https://x/guide.pdf"),
        ],
    )
    first = await storage.upsert_catalog(db, cat)
    assert (first.categories_created, first.products_created, first.codes_added) == (2, 2, 2)
    again = await storage.upsert_catalog(db, cat)
    assert again == storage.CatalogImportResult(codes_skipped=2)

    rpg = await storage.get_category(db, "rpg")
    games = await storage.get_category(db, "games")
    assert rpg is not None and games is not None and rpg.parent_id == games.id
    witcher = await storage.get_product(db, "witcher")
    assert witcher is not None and witcher.price == Decimal("9.99")
    assert witcher.currency == "USD" and witcher.max_per_order == 5


async def test_reimport_updates_fields_and_adds_only_new_codes(db: storage.Database) -> None:
    await storage.upsert_catalog(db, catalog(product("k", ["A", "B"])))
    changed = catalog(product("k", ["B", "C", "C", " "], title="New title", price="1.50"))
    res = await storage.upsert_catalog(db, changed)
    assert (res.products_updated, res.codes_added, res.codes_skipped) == (1, 1, 3)
    prod = await storage.get_product(db, "k")
    assert prod is not None and prod.title == "New title" and prod.price == Decimal("1.50")
    assert await storage.stock_counts(db, prod.id or 0) == (3, 0, 0)


async def test_sold_code_is_never_resold_by_reimport(db: storage.Database) -> None:
    prod = await seed(db, codes=1)  # KEY-0000
    order = await order_for(db, prod)
    await storage.settle(db, payment(order))
    res = await storage.upsert_catalog(db, catalog(product("key", ["KEY-0000"])))
    assert (res.codes_added, res.codes_skipped) == (0, 1)
    assert await storage.stock_counts(db, prod.id or 0) == (0, 0, 1)
    assert await storage.add_codes(db, "key", ["KEY-0000", "NEW-1"]) == (1, 1)
    exported = await storage.export_catalog(db)
    assert exported.products[0].codes == ["NEW-1"]  # sold codes are not stock


async def test_bad_catalog_is_rejected_whole(db: storage.Database) -> None:
    await storage.upsert_catalog(db, catalog(product("k", ["A"])))
    bad = CatalogData(
        currency="USD",
        categories=[CategoryData("games", "Renamed")],
        products=[product("k", ["Z"]), product("orphan", category="nope")],
    )
    with pytest.raises(storage.CatalogError, match="orphan"):
        await storage.upsert_catalog(db, bad)
    games = await storage.get_category(db, "games")
    assert games is not None and games.title == "Games"
    assert await storage.stock_counts(db, (await _pid(db, "k"))) == (1, 0, 0)


@pytest.mark.parametrize(
    "cats",
    [
        [CategoryData("a", "A", "b"), CategoryData("b", "B", "a")],
        [CategoryData("a", "A", "missing")],
        [CategoryData("a", "A"), CategoryData("a", "A again")],
    ],
)
async def test_category_errors(db: storage.Database, cats: list[CategoryData]) -> None:
    with pytest.raises(storage.CatalogError):
        await storage.upsert_catalog(db, CatalogData("USD", cats, []))
    assert await storage.list_categories(db) == []


async def test_inexact_price_is_refused(db: storage.Database) -> None:
    with pytest.raises(storage.CatalogError, match="price"):
        await storage.upsert_catalog(db, catalog(product("k", price=Decimal("0.123456789"))))


async def test_export_round_trips(db: storage.Database) -> None:
    cat = CatalogData(
        currency="EUR",
        categories=[CategoryData("games", "Games"), CategoryData("rpg", "RPG", "games")],
        products=[
            product("a", ["1", "2"], category="rpg", currency="EUR", photo="https://p/x.jpg"),
            product("b", unlimited=True, content="text", currency="EUR", active=False),
        ],
    )
    await storage.upsert_catalog(db, cat)
    exported = await storage.export_catalog(db, currency="EUR")
    assert exported == cat


async def test_add_codes_unknown_sku(db: storage.Database) -> None:
    with pytest.raises(storage.ProductNotFound):
        await storage.add_codes(db, "nope", ["x"])


async def test_keyset_pagination_of_products_and_categories(db: storage.Database) -> None:
    products = [product(f"p{i:02d}") for i in range(25)]
    products[3] = product("p03", active=False)
    cats = [CategoryData("games", "Games")] + [
        CategoryData(f"sub{i}", f"Sub {i}", "games") for i in range(7)
    ]
    await storage.upsert_catalog(db, CatalogData("USD", cats, products))

    seen: list[str] = []
    after = None
    while True:
        page = await storage.list_products(db, "games", after=after, limit=10)
        if not page:
            break
        seen.extend(p.sku for p in page)
        after = page[-1].id
    assert seen == [f"p{i:02d}" for i in range(25) if i != 3]
    assert await storage.count_products(db, "games") == 24
    assert await storage.count_products(db, active_only=False) == 25

    first = await storage.list_categories(db, "games", limit=4)
    rest = await storage.list_categories(db, "games", after=first[-1].id, limit=4)
    assert [c.slug for c in first + rest] == [f"sub{i}" for i in range(7)]
    assert [c.slug for c in await storage.list_categories(db)] == ["games"]
    assert await storage.list_categories(db, "nope") == []
    assert await storage.list_products(db, "nope") == []


async def test_stock_counts_track_every_state(db: storage.Database) -> None:
    prod = await seed(db, codes=4)
    sold = await order_for(db, prod, telegram_id=1)
    await order_for(db, prod, qty=2, telegram_id=2)
    await storage.settle(db, payment(sold))
    assert await storage.stock_counts(db, prod.id or 0) == (1, 2, 1)
    many = await storage.stock_counts_many(db, [prod.id or 0, 12345])
    assert many[12345] == (0, 0, 0)
    assert (await storage.get_order(db, sold.id or 0)).order.status is OrderStatus.PAID  # type: ignore[union-attr]


async def _pid(db: storage.Database, sku: str) -> int:
    prod = await storage.get_product(db, sku)
    assert prod is not None and prod.id is not None
    return prod.id


async def _planner_rows(db: storage.Database, table: str) -> float:
    async with db.session() as s:
        rows = await s.scalar(
            sa.text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}
        )
    return float(rows)


async def test_a_bulk_import_refreshes_planner_statistics(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL learns a bulk import's size at once (ANALYZE), not a minute or more later
    from autovacuum; until then its plans assume a handful of rows. Small imports and code
    uploads leave it to autovacuum."""
    if not db.is_postgres:
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(storage.catalog, "ANALYZE_AFTER_ROWS", 40)
    many = [product(f"p{i:03d}") for i in range(30)]
    await storage.upsert_catalog(db, catalog(*many, product("key", [f"K-{i}" for i in range(12)])))
    assert await _planner_rows(db, "products") == 31
    assert await _planner_rows(db, "stock_units") == 12

    await storage.upsert_catalog(db, catalog(*(product(f"q{i:03d}") for i in range(5))))
    assert await _planner_rows(db, "products") == 31  # 5 new rows: autovacuum's job

    added, _ = await storage.add_codes(db, "key", [f"M-{i}" for i in range(45)])
    assert added == 45
    assert await _planner_rows(db, "stock_units") == 57


async def test_an_import_stands_when_refreshing_statistics_fails(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(storage.catalog, "ANALYZE_AFTER_ROWS", 1)

    async def refuse(*tables: str) -> None:
        raise ConnectionRefusedError("the database went away")

    monkeypatch.setattr(db, "analyze", refuse)
    result = await storage.upsert_catalog(db, catalog(product("key", ["K-1", "K-2"])))

    assert (result.products_created, result.codes_added) == (1, 2)
    stored = await storage.get_product(db, "key")
    assert stored is not None and stored.id is not None
    assert await storage.stock_counts(db, stored.id) == (2, 0, 0)
    assert "refreshing planner statistics failed" in caplog.text


async def test_analyze_wants_its_tables_named(db: storage.Database) -> None:
    """A bare ANALYZE would walk the whole database: refused."""
    with pytest.raises(ValueError):
        await db.analyze()
    await db.analyze("products", "stock_units")  # SQLite: nothing to do
