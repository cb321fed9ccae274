"""The TOML catalog file of PRODUCT.md §2.3: read and validated whole before anything is written."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import tomli_w

from bot.photos.images import NotAnImage, check_image
from storage import PhotoImage

# Slugs and SKUs travel in callback data (64 bytes) and deep links (`p_<sku>`, 64 chars of
# A-Z a-z 0-9 _ -), so they are kept short and plain.
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
_SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3,5}$")
_MAX_PRICE = Decimal("1000000")
# A Telegram file_id: URL-safe base64, long. Anything else that is not an https URL is a
# path relative to the catalog file ("images/witcher3.jpg").
_FILE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{20,}$")

_TOP_KEYS = {"currency", "categories", "products"}
_CATEGORY_KEYS = {"slug", "title", "parent"}
_PRODUCT_KEYS = {
    "sku",
    "category",
    "title",
    "description",
    "price",
    "photo",
    "max_per_order",
    "codes",
    "unlimited",
    "content",
    "active",
}


# Translations (PRODUCT.md §3.2): a `[products.ru]` / `[categories.ru]` table per language.
# The languages are bot.i18n.LANGUAGES, repeated: importing it would load aiogram into the CLI.
LANGUAGES = ("en", "ru")
_TRANSLATED = {"categories": ("title",), "products": ("title", "description")}
_CATEGORY_KEYS |= set(LANGUAGES)
_PRODUCT_KEYS |= set(LANGUAGES)


class CatalogFileError(ValueError):
    """The file is rejected as a whole; the message names the key (and product) at fault."""


@dataclass(frozen=True)
class CategoryEntry:
    slug: str
    title: str
    parent: str | None = None
    translations: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductEntry:
    sku: str
    category: str
    title: str
    price: Decimal
    description: str = ""
    photo: str | None = None
    photo_image: PhotoImage | None = None  # read from the file a path `photo` names
    max_per_order: int | None = None
    unlimited: bool = False
    content: str | None = None
    codes: tuple[str, ...] = ()
    active: bool = True
    translations: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CatalogFile:
    currency: str
    categories: tuple[CategoryEntry, ...] = ()
    products: tuple[ProductEntry, ...] = field(default_factory=tuple)


def load_catalog(path: str | Path, default_currency: str) -> CatalogFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogFileError(f"{path}: cannot be read ({error})") from None
    return parse_catalog(
        text, default_currency, source=str(path), base_dir=Path(path).resolve().parent
    )


def photo_kind(photo: str) -> str:
    """ "url", "file_id" or "path" (relative to the catalog file)."""
    if photo.startswith("https://"):
        return "url"
    return "file_id" if _FILE_ID_RE.match(photo) else "path"


def parse_catalog(
    text: str,
    default_currency: str,
    *,
    source: str = "catalog",
    base_dir: Path | None = None,
) -> CatalogFile:
    """`base_dir`: where photo paths are read from (the catalog file's folder); without it
    a photo path is refused."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogFileError(f"{source}: not valid TOML: {error}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise CatalogFileError(
            f"{source}: not a catalog: arrays or tables are nested too deeply"
        ) from None
    return _Validator(source, base_dir).catalog(data, default_currency)


class _Validator:
    def __init__(self, source: str, base_dir: Path | None = None) -> None:
        self.source = source
        self.base_dir = base_dir

    def fail(self, where: str, message: str) -> CatalogFileError:
        return CatalogFileError(f"{self.source}: {where}: {message}")

    def catalog(self, data: dict[str, Any], default_currency: str) -> CatalogFile:
        self._no_unknown_keys(data, _TOP_KEYS, "top level")
        currency = data.get("currency", default_currency)
        if not isinstance(currency, str) or not _CURRENCY_RE.match(currency):
            raise self.fail("currency", 'must be a fiat code such as "USD"')
        categories = self._categories(self._list_of_tables(data, "categories"))
        known = {category.slug for category in categories}
        products = self._products(self._list_of_tables(data, "products"), known)
        return CatalogFile(currency, tuple(categories), tuple(products))

    def _list_of_tables(self, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.fail(key, f"must be an array of tables ([[{key}]])")
        return value

    def _no_unknown_keys(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r}")

    def _text(self, table: dict[str, Any], key: str, where: str, *, required: bool) -> str | None:
        value = table.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(where, f"{key} is required")
            return None
        if not isinstance(value, str):
            raise self.fail(where, f"{key} must be a string")
        return value.strip()

    def _categories(self, tables: list[dict[str, Any]]) -> list[CategoryEntry]:
        result: list[CategoryEntry] = []
        seen: set[str] = set()
        for index, table in enumerate(tables):
            where = f"categories[{index}]"
            self._no_unknown_keys(table, _CATEGORY_KEYS, where)
            slug = self._text(table, "slug", where, required=True) or ""
            where = f"categories[{index}] (slug {slug!r})"
            if not _SLUG_RE.match(slug):
                raise self.fail(where, "slug must be 1-24 of a-z, 0-9, _ and -")
            if slug in seen:
                raise self.fail(where, "slug appears twice")
            seen.add(slug)
            title = self._text(table, "title", where, required=True) or ""
            parent = self._text(table, "parent", where, required=False)
            translations = self._translations(table, "categories", where)
            result.append(CategoryEntry(slug, title, parent, translations))
        parents = {category.slug: category.parent for category in result}
        for category in result:
            where = f"category {category.slug!r}"
            if category.parent is not None and category.parent not in parents:
                raise self.fail(where, f"parent {category.parent!r} is not a category in the file")
            chain, node = {category.slug}, category.parent
            while node is not None:
                if node in chain:
                    raise self.fail(where, "parent chain loops back on itself")
                chain.add(node)
                node = parents.get(node)
        return result

    def _products(self, tables: list[dict[str, Any]], categories: set[str]) -> list[ProductEntry]:
        result: list[ProductEntry] = []
        seen: set[str] = set()
        for index, table in enumerate(tables):
            where = f"products[{index}]"
            self._no_unknown_keys(table, _PRODUCT_KEYS, where)
            sku = self._text(table, "sku", where, required=True) or ""
            where = f"products[{index}] (sku {sku!r})"
            if not _SKU_RE.match(sku):
                raise self.fail(where, "sku must be 1-32 of A-Z, a-z, 0-9, _ and -")
            if sku in seen:
                raise self.fail(where, "sku appears twice")
            seen.add(sku)
            result.append(self._product(table, sku, where, categories))
        return result

    def _product(
        self, table: dict[str, Any], sku: str, where: str, categories: set[str]
    ) -> ProductEntry:
        category = self._text(table, "category", where, required=True) or ""
        if category not in categories:
            raise self.fail(where, f"category {category!r} is not a category in the file")
        title = self._text(table, "title", where, required=True) or ""
        price = self._price(table.get("price"), where)
        max_per_order = table.get("max_per_order")
        if max_per_order is not None and (
            isinstance(max_per_order, bool)
            or not isinstance(max_per_order, int)
            or not 1 <= max_per_order <= 1000
        ):
            raise self.fail(where, "max_per_order must be a whole number from 1 to 1000")
        unlimited = table.get("unlimited", False)
        active = table.get("active", True)
        for key, value in (("unlimited", unlimited), ("active", active)):
            if not isinstance(value, bool):
                raise self.fail(where, f"{key} must be true or false")
        content = self._text(table, "content", where, required=False)
        codes = self._codes(table.get("codes", []), where)
        if unlimited and not content:
            raise self.fail(where, "content is required when unlimited = true")
        if unlimited and codes:
            raise self.fail(where, "codes make no sense when unlimited = true (use content)")
        photo = self._text(table, "photo", where, required=False)
        photo_image = self._photo_file(photo, where) if photo else None
        return ProductEntry(
            sku=sku,
            category=category,
            title=title,
            price=price,
            description=self._text(table, "description", where, required=False) or "",
            photo=photo,
            photo_image=photo_image,
            max_per_order=max_per_order,
            unlimited=unlimited,
            content=content,
            codes=codes,
            active=active,
            translations=self._translations(table, "products", where),
        )

    def _photo_file(self, photo: str, where: str) -> PhotoImage | None:
        """The image a photo path names, read and checked now (a URL or a file_id is
        fetched by the bot later)."""
        if photo.startswith("http") and not photo.startswith("https://"):
            raise self.fail(where, "photo must be an https URL, a Telegram file_id or a path")
        if photo_kind(photo) != "path":
            return None
        if len(photo) > 1024:
            raise self.fail(where, "photo path is longer than 1024 characters")
        if self.base_dir is None:
            raise self.fail(where, f"photo {photo!r}: a path needs a catalog file to be read from")
        path = self.base_dir / photo
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise self.fail(where, f"photo {photo!r}: no such file") from None
        except OSError as error:
            raise self.fail(where, f"photo {photo!r} cannot be read ({error.strerror})") from None
        try:
            return check_image(data)
        except NotAnImage as error:
            raise self.fail(where, f"photo {photo!r}: {error}") from None

    def _translations(
        self, table: dict[str, Any], kind: str, where: str
    ) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {}
        for language in LANGUAGES:
            version = table.get(language)
            if version is None:
                continue
            at = f"{where}.{language}"
            if not isinstance(version, dict):
                raise self.fail(at, f"must be a table ([{kind}.{language}])")
            self._no_unknown_keys(version, set(_TRANSLATED[kind]), at)
            texts = {k: self._text(version, k, at, required=False) for k in _TRANSLATED[kind]}
            result[language] = {k: v for k, v in texts.items() if v}
        return result

    def _price(self, value: Any, where: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(where, 'price must be a decimal string such as "9.99"')
        try:
            price = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.fail(where, f'price {value!r} is not a decimal such as "9.99"') from None
        if not price.is_finite() or price <= 0 or price > _MAX_PRICE:
            raise self.fail(where, "price must be more than 0 and at most 1000000")
        if price.as_tuple().exponent < -8:  # type: ignore[operator]
            raise self.fail(where, "price has more than 8 decimal places")
        return price

    def _codes(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(where, "codes must be an array of strings")
        codes: dict[str, None] = {}
        for position, code in enumerate(value):
            if not isinstance(code, str) or not code.strip():
                raise self.fail(where, f"codes[{position}] must be a non-empty string")
            if len(code) > 4000:
                raise self.fail(where, f"codes[{position}] is longer than 4000 characters")
            codes.setdefault(code.strip(), None)  # a repeated code is one unit of stock
        return tuple(codes)


def dump_catalog(catalog: CatalogFile) -> str:
    """The same format `parse_catalog` reads, so an export can be re-imported unchanged."""
    data: dict[str, Any] = {"currency": catalog.currency, "categories": [], "products": []}
    for category in catalog.categories:
        entry: dict[str, Any] = {"slug": category.slug, "title": category.title}
        if category.parent:
            entry["parent"] = category.parent
        entry.update({lang: dict(v) for lang, v in sorted(category.translations.items())})
        data["categories"].append(entry)
    for product in catalog.products:
        item: dict[str, Any] = {
            "sku": product.sku,
            "category": product.category,
            "title": product.title,
        }
        if product.description:
            item["description"] = product.description
        item["price"] = format(product.price.normalize(), "f")
        if product.photo:
            item["photo"] = product.photo
        if product.max_per_order is not None:
            item["max_per_order"] = product.max_per_order
        if product.unlimited:
            item["unlimited"] = True
            item["content"] = product.content or ""
        else:
            item["codes"] = list(product.codes)
        if not product.active:
            item["active"] = False
        item.update({lang: dict(v) for lang, v in sorted(product.translations.items())})
        data["products"].append(item)
    return tomli_w.dumps(data)
