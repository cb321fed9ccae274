"""Photos without a database: Pillow checks and sizes, catalog photo kinds, caption fitting."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from bot.catalog_file import CatalogFileError, load_catalog, parse_catalog, photo_kind
from bot.photos.card import CAPTION_LIMIT, fit_caption, shown_length
from bot.photos.images import KEEP_SIDE, NotAnImage, check_image, resized
from bot.screens.texts.en import product_card


def image_bytes(width: int = 64, height: int = 48, fmt: str = "PNG", colour: str = "red") -> bytes:
    out = io.BytesIO()
    mode = "RGBA" if fmt == "PNG" else "RGB"
    Image.new(mode, (width, height), colour).save(out, fmt)
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_a_small_png_is_kept_as_it_is() -> None:
    data = image_bytes()
    image = check_image(data)
    assert image.content == data and image.content_type == "image/png"
    assert (image.width, image.height) == (64, 48)
    assert image.digest == hashlib.sha256(data).hexdigest()


def test_webp_and_huge_images_are_stored_as_a_sendable_jpeg() -> None:
    webp = check_image(image_bytes(100, 50, "WEBP"))
    assert webp.content_type == "image/jpeg" and size_of(webp.content) == (100, 50)
    big = check_image(image_bytes(4000, 1000, "JPEG"))
    assert big.content_type == "image/jpeg"
    assert (big.width, big.height) == (KEEP_SIDE, KEEP_SIDE // 4) == size_of(big.content)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"%PDF-1.4 not a picture", "not an image"),
        (image_bytes(fmt="JPEG")[:120], "cannot be read"),
        (image_bytes(2000, 40, "PNG"), "Telegram does not take"),  # 50:1
    ],
)
def test_what_is_not_a_usable_image_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(NotAnImage, match=reason):
        check_image(data)


def test_resized_versions_fit_their_box_and_are_never_enlarged() -> None:
    original = image_bytes(2000, 1000, "PNG")
    assert size_of(resized(original, "thumb")) == (320, 160)
    assert size_of(resized(original, "large")) == (1024, 512)
    assert size_of(resized(image_bytes(100, 80), "large")) == (100, 80)
    assert resized(original, "thumb")[:3] == b"\xff\xd8\xff"  # JPEG


@pytest.mark.parametrize(
    ("photo", "kind"),
    [
        ("https://example.com/a.jpg", "url"),
        ("AgACAgIAAxkBAAIBZ2V-abc_DEF-1234567890", "file_id"),
        ("images/witcher3.jpg", "path"),
        ("cover.png", "path"),
    ],
)
def test_photo_kinds(photo: str, kind: str) -> None:
    assert photo_kind(photo) == kind


def catalog_with(photo: str) -> str:
    return (
        '[[categories]]\nslug="games"\ntitle="Games"\n'
        f'[[products]]\nsku="w3"\ncategory="games"\ntitle="W3"\nprice="1.00"\nphoto="{photo}"\n'
        '[[products]]\nsku="p2"\ncategory="games"\ntitle="P2"\nprice="1.00"\ncodes=["X"]\n'
    )


def test_a_photo_path_is_read_relative_to_the_catalog_file(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    data = image_bytes(fmt="JPEG")
    (tmp_path / "images" / "w3.jpg").write_bytes(data)
    (tmp_path / "shop.toml").write_text(catalog_with("images/w3.jpg"))
    w3, p2 = load_catalog(tmp_path / "shop.toml", "USD").products
    assert w3.photo == "images/w3.jpg"
    assert w3.photo_image is not None and w3.photo_image.content == data
    assert p2.photo is None and p2.photo_image is None


def test_urls_and_file_ids_are_kept_for_the_bot_to_fetch(tmp_path: Path) -> None:
    for photo in ("https://example.com/w3.jpg", "AgACAgIAAxkBAAIBZ2V-abc_DEF-1234567890"):
        (product, _) = parse_catalog(catalog_with(photo), "USD", base_dir=tmp_path).products
        assert product.photo == photo and product.photo_image is None


@pytest.mark.parametrize(
    ("setup", "photo", "message"),
    [
        (None, "images/missing.jpg", "sku 'w3'.*photo 'images/missing.jpg': no such file"),
        (b"plain text, not a picture", "notes.jpg", "sku 'w3'.*photo 'notes.jpg': not an image"),
        ("dir", "images", "sku 'w3'.*photo 'images' cannot be read"),
        (None, "http://example.com/w3.jpg", "sku 'w3'.*https URL"),
    ],
)
def test_a_bad_photo_rejects_the_whole_file_naming_the_product(
    tmp_path: Path, setup: bytes | str | None, photo: str, message: str
) -> None:
    if setup == "dir":
        (tmp_path / photo).mkdir()
    elif isinstance(setup, bytes):
        (tmp_path / photo).write_bytes(setup)
    (tmp_path / "shop.toml").write_text(catalog_with(photo))
    with pytest.raises(CatalogFileError, match=message):
        load_catalog(tmp_path / "shop.toml", "USD")


def test_a_photo_path_in_text_without_a_file_is_refused() -> None:
    with pytest.raises(CatalogFileError, match="needs a catalog file"):
        parse_catalog(catalog_with("images/w3.jpg"), "USD")


def test_a_long_description_is_shortened_to_fit_a_caption_never_the_price_or_stock() -> None:
    def card(description: str) -> str:
        return product_card(
            title="Long & <special>",
            description=description,
            price=Decimal("9.99"),
            currency="USD",
            approximations=[("USDT", Decimal("9.99"))],
            in_stock=4,
            quantity=2,
        )

    text = fit_caption(card, "Lorem ipsum & dolor <sit> amet. " * 80)
    assert shown_length(text) <= CAPTION_LIMIT
    assert shown_length(text) > CAPTION_LIMIT - 10  # shortened just enough
    assert "…" in text
    for kept in ("Long &amp; &lt;special&gt;", "$9.99", "In stock: 4", "Quantity: <b>2</b>"):
        assert kept in text
    short = fit_caption(card, "Short.")
    assert short == card("Short.")
