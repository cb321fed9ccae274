"""The command line of PRODUCT.md §2.2, run as real processes."""

from __future__ import annotations

import asyncio
import io
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import Shop, base_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

GOOD = """
currency = "USD"

[[categories]]
slug = "software"
title = "Software"

[[categories]]
slug = "editors"
title = "Editors"
parent = "software"

[[products]]
sku = "vim-pro"
category = "editors"
title = "Vim Pro licence"
description = "Lifetime."
price = "12.50"
max_per_order = 3
codes = ["VIM-0001", "VIM-0002", "VIM-0003"]

[[products]]
sku = "manual"
category = "software"
title = "The manual"
price = "1.25"
unlimited = true
content = "https://example.com/manual.pdf"
"""

# Valid up to the second product, whose price is a TOML float: the whole file is refused.
BAD = """
[[categories]]
slug = "software"
title = "Software"

[[products]]
sku = "ok-item"
category = "software"
title = "Fine"
price = "3.00"
codes = ["OK-1"]

[[products]]
sku = "broken-item"
category = "software"
title = "Broken"
price = 9.99
codes = ["BR-1"]
"""


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def products_in(export: str) -> dict[str, dict]:
    return {p["sku"]: p for p in tomllib.loads(export).get("products", [])}


async def test_no_tokens_fails_fast_with_one_sentence(shop: Shop) -> None:
    nothing = shop.command(env=base_env())
    no_bot_token = shop.command(env={k: v for k, v in shop.env().items() if k != "BOT_TOKEN"})
    codes = await asyncio.gather(nothing.run_to_end(20), no_bot_token.run_to_end(20))
    assert codes[0] != 0 and codes[1] != 0
    line = one_line(nothing.stderr)
    assert "BOT_TOKEN" in line and "CRYPTOPAY_TOKEN" in line and ".env.example" in line
    line = one_line(no_bot_token.stderr)
    assert "BOT_TOKEN" in line and "CRYPTOPAY_TOKEN" not in line
    assert nothing.stdout == "" and no_bot_token.stdout == ""


async def test_bad_catalog_is_refused_whole_and_names_the_key(shop: Shop) -> None:
    bad = shop.tmp_path / "bad.toml"
    bad.write_text(BAD)
    importer = shop.command("catalog", "import", str(bad))
    assert await importer.run_to_end() != 0
    line = one_line(importer.stderr)
    assert "price" in line and "broken-item" in line, line

    exporter = shop.command("catalog", "export")
    assert await exporter.run_to_end() == 0
    assert products_in(exporter.stdout) == {}  # nothing half-imported
    assert shop.query("SELECT count(*) FROM stock_units") == [(0,)]


async def test_catalog_import_is_idempotent(shop: Shop) -> None:
    good = shop.tmp_path / "good.toml"
    good.write_text(GOOD)
    exports: list[str] = []
    for round_ in range(2):
        importer = shop.command("catalog", "import", str(good))
        assert await importer.run_to_end() == 0, importer.stderr
        assert "Traceback" not in importer.stderr
        out = shop.tmp_path / f"export{round_}.toml"
        exporter = shop.command("catalog", "export", str(out))
        assert await exporter.run_to_end() == 0, exporter.stderr
        exports.append(out.read_text())
    assert exports[0] == exports[1]
    products = products_in(exports[0])
    assert set(products) == {"vim-pro", "manual"}
    assert Decimal(products["vim-pro"]["price"]) == Decimal("12.50")
    assert sorted(products["vim-pro"]["codes"]) == ["VIM-0001", "VIM-0002", "VIM-0003"]
    assert products["manual"]["unlimited"] is True
    assert shop.query("SELECT count(*) FROM stock_units") == [(3,)]  # no code added twice

    # A bot started on this database sells the imported catalog, not the demo shop.
    await shop.launch()
    eve = shop.tg.user(6001, "Eve")
    await eve.send("/start p_vim-pro")
    card = await eve.wait_for_message("Vim Pro licence", timeout=10)
    assert "$12.50" in (card.text or "") and "In stock: 3" in (card.text or "")
    assert shop.query("SELECT count(*) FROM products WHERE sku = 'witcher3'") == [(0,)]


async def test_db_upgrade_on_a_fresh_database(shop: Shop, tmp_path: Path) -> None:
    assert not shop.db_path.exists()
    upgrade = shop.command("db", "upgrade")
    assert await upgrade.run_to_end() == 0, upgrade.stderr
    assert "Traceback" not in upgrade.stderr
    tables = {row[0] for row in shop.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"orders", "products", "stock_units", "outbox", "alembic_version"} <= tables
    again = shop.command("db", "upgrade")
    assert await again.run_to_end() == 0, again.stderr


async def test_mainnet_start_on_an_empty_database_imports_no_demo_codes(shop: Shop) -> None:
    """The demo catalog's DEMO codes must never go on sale for real money."""
    bot = await shop.launch(CRYPTOPAY_NETWORK="mainnet")
    assert shop.query("SELECT count(*) FROM products") == [(0,)]
    assert shop.query("SELECT count(*) FROM stock_units") == [(0,)]
    lines = [line for line in bot.stderr.splitlines() if "empty catalog" in line]
    assert len(lines) == 1, bot.stderr
    assert "empty catalog; import yours with python -m bot catalog import FILE" in lines[0]
    assert await bot.terminate() == 0


async def test_testnet_start_on_an_empty_database_imports_the_demo_catalog(shop: Shop) -> None:
    bot = await shop.launch()
    assert shop.query("SELECT count(*) FROM products WHERE sku = 'witcher3'") == [(1,)]
    assert "imported the demo catalog" in bot.stderr
    assert await bot.terminate() == 0


PHOTOS = """
[[categories]]
slug = "software"
title = "Software"

[[products]]
sku = "vim-pro"
category = "software"
title = "Vim Pro licence"
price = "12.50"
photo = "images/vim.png"
codes = ["VIM-0001"]

[[products]]
sku = "remote"
category = "software"
title = "Remote picture"
price = "1.00"
photo = "https://127.0.0.1:1/remote.jpg"
codes = ["REM-1"]
"""


def tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 40), "crimson").save(out, "PNG")
    return out.getvalue()


async def test_catalog_photos_import_export_and_the_card(shop: Shop) -> None:
    folder = shop.tmp_path / "shop"
    (folder / "images").mkdir(parents=True)
    picture = tiny_png()
    (folder / "images" / "vim.png").write_bytes(picture)
    source = folder / "catalog.toml"

    # a missing picture refuses the whole file, naming the product and the key
    source.write_text(PHOTOS.replace("images/vim.png", "images/gone.png"))
    importer = shop.command("catalog", "import", str(source))
    assert await importer.run_to_end() != 0
    line = one_line(importer.stderr)
    assert "vim-pro" in line and "images/gone.png" in line and "no such file" in line
    assert not shop.db_path.exists()  # refused before anything was written

    source.write_text(PHOTOS)
    importer = shop.command("catalog", "import", str(source))
    assert await importer.run_to_end() == 0, importer.stderr
    assert "Photo of 'remote' not copied yet: cannot be fetched" in importer.stderr
    assert shop.query("SELECT count(*) FROM product_photos") == [(1,)]

    # exported to a file: the picture is written next to it, and the export re-imports
    out = shop.tmp_path / "backup" / "export.toml"
    out.parent.mkdir()
    exporter = shop.command("catalog", "export", str(out))
    assert await exporter.run_to_end() == 0, exporter.stderr
    products = products_in(out.read_text())
    assert products["vim-pro"]["photo"] == "images/vim-pro.png"
    assert products["remote"]["photo"] == "https://127.0.0.1:1/remote.jpg"
    assert (out.parent / "images" / "vim-pro.png").read_bytes() == picture
    reimport = shop.command("catalog", "import", str(out))
    assert await reimport.run_to_end() == 0, reimport.stderr
    assert "0 products added, 1 updated" in reimport.stderr  # the photo's name changed only
    again = shop.tmp_path / "again.toml"
    exporter = shop.command("catalog", "export", str(again))
    assert await exporter.run_to_end() == 0
    assert products_in(again.read_text()) == products

    # the running bot shows the card as a photo, uploaded from its copy
    await shop.launch()
    eve = shop.tg.user(6001, "Eve")
    await eve.send("/start p_vim-pro")
    card = await eve.wait_for_message("Vim Pro licence", timeout=10)
    assert "photo" in card.raw and card.file is not None and card.file.content == picture
