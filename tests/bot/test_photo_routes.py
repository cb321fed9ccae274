"""GET /app/photos/{sku}/{size} on the real aiohttp app, and fetching photo copies."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.photos.fetch import (
    FETCH_CONCURRENCY,
    RETRY_AFTER_FAILURE,
    FetchFailed,
    PhotoCopier,
    PhotoFetcher,
)
from bot.photos.images import check_image
from bot.photos.routes import RENDITIONS_KEY
from bot.web import build_web_app
from storage import count_renditions, get_product, photo_ref, set_product_photo
from tests.bot.conftest import Shop

URL = "https://img.example.com/pic.jpg"


def picture(size: tuple[int, int] = (1600, 1200), fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, fmt)
    return out.getvalue()


def dimensions(data: bytes) -> tuple[int, int, str]:
    with Image.open(io.BytesIO(data)) as image:
        return (*image.size, image.format or "")


async def give_photo(shop: Shop, sku: str, data: bytes) -> None:
    await set_product_photo(shop.ctx.db, sku, f"images/{sku}.jpg", check_image(data))


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_web_app(shop.ctx))) as c:
        yield c


async def test_sizes_etag_and_the_cache(shop: Shop, client: TestClient[Any, Any]) -> None:
    await give_photo(shop, "solo", picture())
    renditions = client.app[RENDITIONS_KEY]
    thumb = await client.get("/app/photos/solo/thumb")
    assert thumb.status == 200 and thumb.content_type == "image/jpeg"
    assert dimensions(await thumb.read()) == (320, 240, "JPEG")
    assert "max-age" in thumb.headers["Cache-Control"]
    etag = thumb.headers["ETag"]
    assert renditions.encoded == 1

    large = await client.get("/app/photos/solo/large")
    assert dimensions(await large.read()) == (1024, 768, "JPEG")
    assert large.headers["ETag"] != etag
    assert renditions.encoded == 2

    # made once: later requests are served from the stored rendition, not encoded again
    again = await client.get("/app/photos/solo/thumb")
    assert again.status == 200 and again.headers["ETag"] == etag
    assert renditions.encoded == 2
    solo = await get_product(shop.ctx.db, "solo")
    assert solo is not None and solo.id is not None
    assert await count_renditions(shop.ctx.db, solo.id) == 2
    # …and by another replica (a fresh app on the same database)
    async with TestClient(TestServer(build_web_app(shop.ctx))) as other:
        response = await other.get("/app/photos/solo/thumb")
        assert response.headers["ETag"] == etag and other.app[RENDITIONS_KEY].encoded == 0

    not_modified = await client.get("/app/photos/solo/thumb", headers={"If-None-Match": etag})
    assert not_modified.status == 304 and not_modified.headers["ETag"] == etag
    stale = await client.get("/app/photos/solo/thumb", headers={"If-None-Match": '"other"'})
    assert stale.status == 200

    # a new picture: a new ETag, made once more
    await give_photo(shop, "solo", picture((800, 800)))
    replaced = await client.get("/app/photos/solo/thumb", headers={"If-None-Match": etag})
    assert replaced.status == 200 and replaced.headers["ETag"] != etag
    assert dimensions(await replaced.read()) == (320, 320, "JPEG")


async def test_concurrent_first_requests_encode_once(
    shop: Shop, client: TestClient[Any, Any]
) -> None:
    await give_photo(shop, "solo", picture())
    responses = await asyncio.gather(*(client.get("/app/photos/solo/large") for _ in range(5)))
    assert [r.status for r in responses] == [200] * 5
    assert len({await r.read() for r in responses}) == 1
    assert client.app[RENDITIONS_KEY].encoded == 1


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/app/photos/multi/thumb", "no photo"),
        ("/app/photos/ghost/thumb", "no photo"),
        ("/app/photos/solo/huge", "unknown size"),
    ],
)
async def test_no_photo_is_404_json(
    shop: Shop, client: TestClient[Any, Any], path: str, error: str
) -> None:
    await give_photo(shop, "solo", picture())
    response = await client.get(path)
    assert response.status == 404
    assert error in (await response.json())["error"]


# --- fetching copies -----------------------------------------------------------------------


def serving(routes: dict[str, httpx.Response]) -> httpx.MockTransport:
    """The network edge: answers per URL."""

    def handle(request: httpx.Request) -> httpx.Response:
        return routes.get(str(request.url), httpx.Response(404))

    return httpx.MockTransport(handle)


async def test_a_url_is_fetched_checked_and_stored_once(shop: Shop) -> None:
    data = picture((400, 300))
    await import_catalog_file(
        shop.ctx.db,
        parse_catalog(
            '[[categories]]\nslug="games"\ntitle="G"\n[[products]]\nsku="pic"\ncategory="games"\n'
            f'title="Pic"\nprice="1.00"\nphoto="{URL}"\ncodes=["X"]\n',
            "USD",
        ),
    )
    requests: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return httpx.Response(200, content=data, headers={"Content-Type": "image/jpeg"})

    copier = PhotoCopier(shop.ctx.db, PhotoFetcher(transport=httpx.MockTransport(handle)))
    report = await copier.run()
    assert report.stored == ["pic"] and requests == [URL]
    assert (await copier.run()).stored == [] and requests == [URL]  # once
    pic = await get_product(shop.ctx.db, "pic")
    assert pic is not None and pic.id is not None
    ref = await photo_ref(shop.ctx.db, pic.id)
    assert ref is not None and ref.digest is not None and ref.source == URL


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(404), "HTTP 404"),
        (httpx.Response(200, content=b"<html>not a picture</html>"), "not an image"),
        (httpx.Response(200, content=b"x" * 2048), "larger than"),
        (httpx.Response(200, headers={"Content-Length": str(10**9)}), "larger than"),
        (httpx.Response(302, headers={"Location": "http://img.example.com/p.jpg"}), "not https"),
    ],
)
async def test_a_bad_url_is_a_clear_reason_never_a_crash(
    response: httpx.Response, reason: str
) -> None:
    fetcher = PhotoFetcher(transport=serving({URL: response}), max_bytes=1024)
    with pytest.raises(FetchFailed, match=reason):
        await fetcher.fetch(URL)


async def test_a_redirect_to_https_is_followed() -> None:
    data = picture((50, 40), "PNG")
    target = "https://cdn.example.com/p.png"
    fetcher = PhotoFetcher(
        transport=serving(
            {
                URL: httpx.Response(301, headers={"Location": target}),
                target: httpx.Response(200, content=data),
            }
        )
    )
    image = await fetcher.fetch(URL)
    assert image.content == data and image.content_type == "image/png"


async def test_a_slow_server_times_out() -> None:
    async def handle(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # never answers; the fetcher's timeout ends it
        raise AssertionError

    fetcher = PhotoFetcher(transport=httpx.MockTransport(handle), timeout=0.2)
    with pytest.raises(FetchFailed, match=r"no answer within 0\.2 s"):
        await fetcher.fetch(URL)


async def test_a_failed_fetch_is_logged_and_retried_only_after_a_while(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    await import_catalog_file(
        shop.ctx.db,
        parse_catalog(
            '[[categories]]\nslug="games"\ntitle="G"\n[[products]]\nsku="pic"\ncategory="games"\n'
            f'title="Pic"\nprice="1.00"\nphoto="{URL}?token=s3cret"\ncodes=["X"]\n',
            "USD",
        ),
    )
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(503)

    now = [1000.0]
    copier = PhotoCopier(
        shop.ctx.db, PhotoFetcher(transport=httpx.MockTransport(handle)), clock=lambda: now[0]
    )
    with caplog.at_level(logging.WARNING, logger="bot.photos"):
        report = await copier.run()
    assert report.failed == [("pic", "the server answered HTTP 503")]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "bot.photos"]
    assert "'pic'" in line and "HTTP 503" in line and "s3cret" not in line
    assert (await copier.run()).failed == [] and len(calls) == 1  # not hammered
    now[0] += RETRY_AFTER_FAILURE
    assert len((await copier.run()).failed) == 1 and len(calls) == 2


async def test_photos_are_fetched_a_few_at_a_time(shop: Shop) -> None:
    products = "".join(
        f'[[products]]\nsku="p{n}"\ncategory="games"\ntitle="P{n}"\nprice="1.00"\n'
        f'photo="https://img.example.com/{n}.png"\ncodes=["C{n}"]\n'
        for n in range(7)
    )
    await import_catalog_file(
        shop.ctx.db, parse_catalog(f'[[categories]]\nslug="games"\ntitle="G"\n{products}', "USD")
    )
    data = picture((30, 20), "PNG")
    in_flight, peak = 0, 0
    four_waiting = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == FETCH_CONCURRENCY:
            four_waiting.set()
        await four_waiting.wait()  # the first ones answer once the gate is full
        in_flight -= 1
        return httpx.Response(200, content=data)

    copier = PhotoCopier(shop.ctx.db, PhotoFetcher(transport=httpx.MockTransport(handle)))
    report = await copier.run()
    assert peak == FETCH_CONCURRENCY
    assert report.stored == [f"p{n}" for n in range(7)] and report.failed == []
