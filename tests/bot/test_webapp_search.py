"""Search in the storefront: the titles it scans are read once for a few seconds, not once
per keystroke (a pass over the whole catalog: ~0.1 s of the bot's loop at 10,000 products),
yet a product taken off sale never shows and a new one is found once that moment is over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.web import build_web_app
from bot.webapp import add_webapp
from bot.webapp import state as webapp_state
from storage import Product
from tests.bot.conftest import BOB, CATALOG, Shop
from tests.bot.test_webapp_api import call

NEW = """
[[products]]
sku = "fresh"
category = "games"
title = "Fresh Key"
price = "3.00"
codes = ["FRESH-1"]
"""


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_web_app(shop.ctx)
    add_webapp(app, shop.ctx)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_search_reads_the_titles_once_for_a_while(
    client: TestClient[Any, Any], shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    read = webapp_state.search_index

    async def counted(db: Any) -> Any:
        nonlocal reads
        reads += 1
        return await read(db)

    monkeypatch.setattr(webapp_state, "search_index", counted)
    for text, user in (("k", None), ("KE", BOB), ("key", None), ("multi", BOB)):
        found = await call(client, f"search?q={text}", **({"user_id": user} if user else {}))
        assert found["products"], text
    assert reads == 1
    assert (await call(client, "search?q=%20"))["products"] == []

    # Taken off sale meanwhile: never in the results, though the titles were kept.
    async with shop.ctx.db.session() as s:
        await s.execute(sa.update(Product).where(Product.sku == "multi").values(active=False))
        await s.commit()
    assert {p["sku"] for p in (await call(client, "search?q=KEY"))["products"]} == {"solo"}

    # Added meanwhile: found once the kept titles are old.
    await import_catalog_file(shop.ctx.db, parse_catalog(CATALOG + NEW, "USD"))
    assert (await call(client, "search?q=fresh"))["products"] == []
    monkeypatch.setattr(webapp_state, "SEARCH_TTL_SECONDS", 0.0)
    client.app[webapp_state.WEBAPP_KEY]._search = None
    assert [p["sku"] for p in (await call(client, "search?q=fresh"))["products"]] == ["fresh"]
    assert reads == 2
