"""The storefront's reads on SQLite and PostgreSQL: a category page in keyset pages with the
units on sale, and search by title in every language (Cyrillic too, which SQLite's LOWER()
would not fold)."""

from __future__ import annotations

from decimal import Decimal

import storage
from storage import Database
from tests.storage.conftest import buyer, product


async def shop(db: Database) -> None:
    await storage.upsert_catalog(
        db,
        storage.CatalogData(
            "USD",
            [
                storage.CategoryData("games", "Games"),
                storage.CategoryData("indie", "Indie", parent="games"),
                storage.CategoryData("gifts", "Gifts"),
            ],
            [
                product(
                    "w3",
                    ["W-1", "W-2", "W-3"],
                    title="The Witcher 3",
                    translations={"ru": {"title": "Ведьмак 3"}},
                ),
                product("p2", ["P-1"], title="Portal 2"),
                product("guide", unlimited=True, content="https://x", title="Speedrun guide"),
                product("old", ["O-1"], title="Old Witcher", active=False),
                *[
                    product(
                        f"g{n}",
                        [f"G-{n}"],
                        category="gifts",
                        title=f"Gift {n}",
                        price=Decimal("1.00"),
                    )
                    for n in range(5)
                ],
            ],
        ),
    )


async def test_a_category_page_with_subcategories_products_and_units_on_sale(db: Database) -> None:
    await shop(db)
    top = await storage.catalog_page(db)
    assert top is not None and top.category is None and top.products == []
    assert [c.slug for c in top.subcategories] == ["games", "gifts"]
    games = await storage.catalog_page(db, "games")
    assert games is not None and games.category is not None
    assert games.category.title == "Games"
    assert [c.slug for c in games.subcategories] == ["indie"]
    assert [p.sku for p in games.products] == ["w3", "p2", "guide"]  # "old" is off sale
    by_sku = {p.sku: p.id for p in games.products}
    assert games.available == {by_sku["w3"]: 3, by_sku["p2"]: 1}  # guide: unlimited
    assert games.next_after is None
    assert await storage.catalog_page(db, "nope") is None

    customer = await buyer(db)
    assert customer.id is not None and by_sku["w3"] is not None
    order = await storage.create_order(
        db,
        customer.id,
        [(by_sku["w3"], 2, Decimal("9.99"))],
        "USD",
        storage.utcnow().replace(year=2100),
    )
    assert order is not None
    again = await storage.catalog_page(db, "games")
    assert again is not None and again.available[by_sku["w3"]] == 1  # 2 reserved


async def test_category_pages_follow_the_keyset(db: Database) -> None:
    await shop(db)
    first = await storage.catalog_page(db, "gifts", limit=2)
    assert first is not None and [p.sku for p in first.products] == ["g0", "g1"]
    second = await storage.catalog_page(db, "gifts", after=first.next_after, limit=2)
    assert second is not None and [p.sku for p in second.products] == ["g2", "g3"]
    assert second.subcategories == []
    last = await storage.catalog_page(db, "gifts", after=second.next_after, limit=2)
    assert last is not None and [p.sku for p in last.products] == ["g4"]
    assert last.next_after is None


async def test_search_by_title_in_any_language_and_case(db: Database) -> None:
    await shop(db)
    assert [p.sku for p in await storage.search_products(db, "WITCHER")] == ["w3"]
    assert [p.sku for p in await storage.search_products(db, "ведьмак")] == ["w3"]
    assert [p.sku for p in await storage.search_products(db, "gift", limit=2)] == ["g0", "g1"]
    assert await storage.search_products(db, "   ") == []
    assert await storage.search_products(db, "zzz") == []
