"""The storefront's product photos as the page loads them: the JSON's photo URLs, resolved
against the page's own URL (as a browser does), reach the photo route, also when WEBAPP_URL
puts the server under a path (a reverse proxy's prefix)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from bot.photos.images import check_image
from bot.web import build_web_app
from bot.webapp import add_webapp
from storage import set_product_photo
from tests.bot.conftest import Shop
from tests.bot.test_webapp_api import call


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), "green").save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_web_app(shop.ctx)
    add_webapp(app, shop.ctx)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_photo_urls_resolve_from_the_page_to_the_photo_route(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    await set_product_photo(shop.ctx.db, "solo", "images/solo.jpg", check_image(picture()))
    page = str(client.make_url("/app/"))
    product = await call(client, "products/solo")
    games = await call(client, "catalog?category=games")
    row = next(p for p in games["products"] if p["sku"] == "solo")
    for url in (product["photo"]["large"], row["photo"]["thumb"]):
        resp = await client.session.get(urljoin(page, url))
        assert resp.status == 200, url
        assert resp.content_type == "image/jpeg"
    # Behind a proxy that serves this server under a path, the photos stay under it.
    base = "https://shop.example.com/bots/shop"
    for url in (product["photo"]["thumb"], product["photo"]["large"], row["photo"]["thumb"]):
        assert urljoin(f"{base}/app/", url).startswith(f"{base}/app/photos/solo/"), url
