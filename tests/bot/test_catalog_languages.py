"""Catalog translations (PRODUCT.md §3.2): `[products.ru]` / `[categories.ru]` are read,
stored, shown to Russian readers (others see the original), and exported back unchanged."""

from __future__ import annotations

import pytest

from bot import catalog_file, i18n
from bot.callbacks import CategoryPage, Menu, MenuAction, ProductAction, ProductCard
from bot.catalog_file import CatalogFileError, dump_catalog, parse_catalog
from bot.catalog_sync import export_catalog_file, import_catalog_file
from tests.bot.conftest import ALICE, BOB, Shop, button_texts

TRANSLATED = """
currency = "USD"

[[categories]]
slug = "games"
title = "Game keys"
[categories.ru]
title = "Ключи для игр"

[[categories]]
slug = "plain"
title = "Untranslated"

[[products]]
sku = "witcher3"
category = "games"
title = "The Witcher 3 GOTY (Steam key)"
description = "Global key, activates on Steam."
price = "9.99"
codes = ["W3-1", "W3-2"]
[products.ru]
title = "The Witcher 3 GOTY (ключ Steam)"
description = "Глобальный ключ, активируется в Steam."

[[products]]
sku = "halfru"
category = "games"
title = "Half Translated"
description = "Only the title is translated."
price = "1"
codes = ["H-1"]
[products.ru]
title = "Наполовину"
"""


def test_the_file_knows_the_languages_the_bot_speaks() -> None:
    assert catalog_file.LANGUAGES == i18n.LANGUAGES


def test_the_file_reads_translations_and_writes_them_back() -> None:
    catalog = parse_catalog(TRANSLATED, "USD")
    witcher = catalog.products[0]
    assert witcher.translations == {
        "ru": {
            "title": "The Witcher 3 GOTY (ключ Steam)",
            "description": "Глобальный ключ, активируется в Steam.",
        }
    }
    assert catalog.categories[0].translations == {"ru": {"title": "Ключи для игр"}}
    assert catalog.categories[1].translations == {}
    assert parse_catalog(dump_catalog(catalog), "USD") == catalog


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('[products.ru]\ntitle = "Наполовину"', '[products.ru]\nprice = "2"', "unknown key"),
        ('[categories.ru]\ntitle = "Ключи для игр"', 'ru = "Ключи"', "must be a table"),
        ('[products.ru]\ntitle = "Наполовину"', "[products.ru]\ntitle = 5", "must be a string"),
    ],
)
def test_a_bad_translation_is_refused_with_its_place(old: str, new: str, message: str) -> None:
    with pytest.raises(CatalogFileError, match=message):
        parse_catalog(TRANSLATED.replace(old, new), "USD")


async def test_imported_translations_are_shown_per_language_and_exported_the_same(
    shop: Shop,
) -> None:
    catalog = parse_catalog(TRANSLATED, "USD")
    await import_catalog_file(shop.ctx.db, catalog)

    await shop.press(Menu(action=MenuAction.CATALOG), ALICE, language_code="ru")
    assert "📁 Ключи для игр" in button_texts(shop.last_text())
    await shop.press(CategoryPage(slug="games"), ALICE, language_code="ru")
    labels = " | ".join(button_texts(shop.last_text()))
    assert "The Witcher 3 GOTY (ключ Steam)" in labels and "Наполовину" in labels
    await shop.press(
        ProductCard(action=ProductAction.SHOW, sku="witcher3"), ALICE, language_code="ru"
    )
    card = shop.last_text().text
    assert "ключ Steam" in card and "Глобальный ключ, активируется в Steam." in card
    await shop.press(
        ProductCard(action=ProductAction.SHOW, sku="halfru"), ALICE, language_code="ru"
    )
    card = shop.last_text().text
    assert "Наполовину" in card and "Only the title is translated." in card  # falls back

    await shop.press(
        ProductCard(action=ProductAction.SHOW, sku="witcher3"), BOB, language_code="en"
    )
    card = shop.last_text().text
    assert "(Steam key)" in card and "Global key, activates on Steam." in card
    assert "ключ" not in card

    exported = await export_catalog_file(shop.ctx.db, "USD")
    mine = {p.sku: p for p in exported.products if p.sku in {"witcher3", "halfru"}}
    assert [mine["witcher3"], mine["halfru"]] == list(catalog.products)
    assert {c.slug: c for c in exported.categories}["games"] == catalog.categories[0]
    again = parse_catalog(dump_catalog(exported), "USD")
    assert again == exported

    # A re-import that drops a translation drops it from the shop too.
    await import_catalog_file(
        shop.ctx.db,
        parse_catalog(TRANSLATED.replace('[categories.ru]\ntitle = "Ключи для игр"', ""), "USD"),
    )
    exported = await export_catalog_file(shop.ctx.db, "USD")
    assert {c.slug: c for c in exported.categories}["games"].translations == {}
