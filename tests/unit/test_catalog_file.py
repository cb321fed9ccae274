from decimal import Decimal
from pathlib import Path

import pytest

from bot.catalog_file import CatalogFileError, dump_catalog, load_catalog, parse_catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.toml"

GOOD = """
currency = "EUR"
[[categories]]
slug = "games"
title = "Game keys"
[[categories]]
slug = "rpg"
title = "RPG"
parent = "games"
[[products]]
sku = "witcher3"
category = "rpg"
title = "The Witcher 3"
price = "9.99"
max_per_order = 5
codes = ["AAAA-1111", "BBBB-2222", "AAAA-1111"]
[[products]]
sku = "guide"
category = "games"
title = "Guide"
price = "2.50"
unlimited = true
content = "https://example.com/guide.pdf"
"""


def test_good_file_parses_exactly():
    catalog = parse_catalog(GOOD, "USD")
    assert catalog.currency == "EUR"
    assert [c.slug for c in catalog.categories] == ["games", "rpg"]
    assert catalog.categories[1].parent == "games"
    witcher, guide = catalog.products
    assert witcher.price == Decimal("9.99") and isinstance(witcher.price, Decimal)
    assert witcher.codes == ("AAAA-1111", "BBBB-2222")  # a repeated code is one unit
    assert witcher.max_per_order == 5
    assert guide.unlimited and guide.content == "https://example.com/guide.pdf"


def test_currency_defaults_to_shop_currency():
    assert parse_catalog('[[categories]]\nslug="a"\ntitle="A"\n', "GBP").currency == "GBP"


def test_example_catalog_is_valid():
    catalog = load_catalog(EXAMPLE, "USD")
    assert len(catalog.products) >= 3
    assert any(p.unlimited for p in catalog.products)


def test_export_round_trips():
    catalog = parse_catalog(GOOD, "USD")
    assert parse_catalog(dump_catalog(catalog), "USD") == catalog


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (('price = "9.99"', "price = 9.99"), "sku 'witcher3'"),
        (('price = "9.99"', 'price = "nine"'), "price"),
        (('price = "9.99"', 'price = "-1"'), "price"),
        (('price = "9.99"', 'price = "0.000000001"'), "decimal places"),
        (('category = "rpg"', 'category = "nope"'), "category 'nope'"),
        (('parent = "games"', 'parent = "ghost"'), "parent 'ghost'"),
        (('sku = "guide"', 'sku = "witcher3"'), "appears twice"),
        (('sku = "guide"', 'sku = "bad sku!"'), "sku must be"),
        (("max_per_order = 5", "max_per_order = 0"), "max_per_order"),
        (('content = "https://example.com/guide.pdf"', ""), "content is required"),
        (('title = "RPG"', 'title = "RPG"\ncolour = "red"'), "unknown key 'colour'"),
        (("unlimited = true", 'unlimited = "yes"'), "unlimited must be"),
        (('codes = ["AAAA-1111"', 'codes = [1, "AAAA-1111"'), "codes[0]"),
        (('currency = "EUR"', 'currency = "euro"'), "currency"),
        (('title = "The Witcher 3"', 'title = ""'), "title is required"),
    ],
)
def test_bad_file_names_the_fault(patch, expected):
    old, new = patch
    assert old in GOOD
    with pytest.raises(CatalogFileError) as err:
        parse_catalog(GOOD.replace(old, new, 1), "USD")
    assert expected in str(err.value)


def test_syntax_error_names_the_line():
    with pytest.raises(CatalogFileError) as err:
        parse_catalog('[[products]]\nsku = "x\n', "USD")
    assert "line 2" in str(err.value)


def test_parent_loop_is_refused():
    text = (
        '[[categories]]\nslug="a"\ntitle="A"\nparent="b"\n'
        '[[categories]]\nslug="b"\ntitle="B"\nparent="a"\n'
    )
    with pytest.raises(CatalogFileError, match="loops"):
        parse_catalog(text, "USD")


def test_missing_file(tmp_path):
    with pytest.raises(CatalogFileError, match="no such file"):
        load_catalog(tmp_path / "nope.toml", "USD")
