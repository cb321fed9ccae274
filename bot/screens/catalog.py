"""What the shopper sees of the catalog: category pages and product cards."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from aiogram.types import InlineKeyboardMarkup, LinkPreviewOptions

from bot.context import ShopContext
from bot.i18n import localized
from bot.photos.card import CAPTION_LIMIT, CardPhoto, card_photo, fit_caption, shown_length
from bot.screens import keyboards
from bot.screens.texts import texts as t
from bot.shop.promos import price_lines, priced_text
from storage import (
    Product,
    get_category,
    get_category_by_id,
    get_product,
    list_categories,
    list_products,
    stock_counts,
)

PAGE_SIZE = 8


@dataclass(frozen=True)
class Screen:
    text: str
    markup: InlineKeyboardMarkup
    preview: LinkPreviewOptions | None = None
    quantity: int | None = None  # a product card's quantity, after capping
    document: tuple[str, bytes] | None = None  # (name, content) sent after the screen
    photo: CardPhoto | None = None  # shown as a photo message with the text as its caption


def _parse_cursor(after: str) -> tuple[str, int | None]:
    kind, digits = after[:1], after[1:]
    if kind in ("c", "p") and digits.isdigit():
        return kind, int(digits)
    return "", None


async def category_screen(ctx: ShopContext, slug: str, after: str = "") -> Screen | None:
    """A page of a category (subcategories first, then products); None if it is gone."""
    parent_slug: str | None = None
    if slug:
        category = await get_category(ctx.db, slug)
        if category is None:
            return None
        title = t.category_title(localized(category.translations, "title", category.title))
        if category.parent_id is not None:
            parent_slug = await _slug_of(ctx, category.parent_id)
    else:
        title = t.CATALOG_TITLE
    kind, cursor = _parse_cursor(after)
    subcats = []
    if kind in ("", "c"):
        subcats = await list_categories(
            ctx.db, slug or None, after=cursor if kind == "c" else None, limit=PAGE_SIZE + 1
        )
    next_cursor: str | None = None
    products: list[Product] = []
    if len(subcats) > PAGE_SIZE:
        subcats = subcats[:PAGE_SIZE]
        next_cursor = f"c{subcats[-1].id}"
    elif slug:
        room = PAGE_SIZE - len(subcats)
        products = await list_products(
            ctx.db, slug, after=cursor if kind == "p" else None, limit=room + 1
        )
        if len(products) > room:
            products = products[:room]
            next_cursor = f"p{products[-1].id}" if products else f"c{subcats[-1].id}"
    if not subcats and not products and not after:
        text = title + "\n\n" + (t.CATEGORY_EMPTY if slug else t.CATALOG_EMPTY)
    else:
        text = title
    markup = keyboards.category_page(
        slug=slug,
        subcategories=[(c.slug, localized(c.translations, "title", c.title)) for c in subcats],
        products=[(p.sku, localized(p.translations, "title", p.title)) for p in products],
        next_cursor=next_cursor,
        is_first_page=not after,
        parent_slug=parent_slug,
    )
    return Screen(text, markup)


async def _slug_of(ctx: ShopContext, category_id: int) -> str | None:
    category = await get_category_by_id(ctx.db, category_id)
    return category.slug if category else None


def approximations(ctx: ShopContext, amount: Decimal, currency: str) -> list[tuple[str, Decimal]]:
    """The amount in each accepted asset, only from rates fresh enough to mean something."""
    if ctx.rates.is_stale(ctx.settings.rates_max_age_seconds):
        return []
    result = []
    for asset in ctx.settings.accepted_assets:
        converted = ctx.rates.convert(amount, currency, asset)
        if converted is not None:
            result.append((asset, converted))
    return result


def clamp_quantity(quantity: int, product: Product, available: int | None) -> int:
    upper = product.max_per_order or 1000
    if available is not None:
        upper = min(upper, available)
    return max(1, min(quantity, max(upper, 1)))


async def product_screen(
    ctx: ShopContext, sku: str, quantity: int = 1, *, buyer_id: int | None = None
) -> Screen | None:
    """The product card for `quantity` units, capped by stock and `max_per_order` (the
    quantity shown is `Screen.quantity`); None when the product no longer exists or is
    inactive. With `buyer_id`, the price with the shopper's saved promo code too."""
    product = await get_product(ctx.db, sku)
    if product is None or not product.active or product.id is None:
        return None
    available = None if product.unlimited else (await stock_counts(ctx.db, product.id)).available
    quantity = clamp_quantity(quantity, product, available)
    category_slug = await _slug_of(ctx, product.category_id) or ""
    promo = ""
    if buyer_id is not None and (available is None or available > 0):
        promo = priced_text(await price_lines(ctx, buyer_id, [(product.sku, quantity)]))

    def card(description: str) -> str:
        text = t.product_card(
            title=localized(product.translations, "title", product.title),
            description=description,
            price=product.price,
            currency=product.currency,
            approximations=approximations(ctx, product.price * quantity, product.currency),
            in_stock=available,
            quantity=quantity,
        )
        return text + (f"\n{promo}" if promo else "")

    description = localized(product.translations, "description", product.description)
    photo = await card_photo(ctx.db, product.id, product.sku)
    text = fit_caption(card, description) if photo else card(description)
    if photo is not None and shown_length(text) > CAPTION_LIMIT:
        # Too long for a caption even without its description (a very long title): the
        # card goes out as a text message (4,096 characters) rather than not at all.
        photo, text = None, card(description)
    markup = keyboards.product_card(
        sku=product.sku,
        quantity=quantity,
        can_buy=available is None or available > 0,
        category_slug=category_slug,
    )
    preview = None
    if photo is None and product.photo and product.photo.startswith("https://"):
        # Not copied yet (or it could not be): Telegram's own preview of the URL meanwhile.
        preview = LinkPreviewOptions(
            url=product.photo, show_above_text=True, prefer_large_media=True
        )
    return Screen(text, markup, preview, quantity, photo=photo)
