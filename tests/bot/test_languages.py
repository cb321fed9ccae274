"""English and Russian through the real Dispatcher (PRODUCT.md §3.2): a Russian reader buys
without meeting an English text the catalog translates; /language switches for good; the
admin's notices and /stats follow the admin's language."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendDocument, SendMessage
from babel.messages.pofile import read_po
from redis.asyncio import Redis
from sqlalchemy import event

from bot.app import create_dispatcher
from bot.callbacks import (
    CartAdd,
    CartButton,
    CategoryPage,
    LanguagePick,
    Menu,
    MenuAction,
    OrderAction,
    OrderButton,
    ProductAction,
    ProductCard,
)
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.i18n import LOCALES_DIR
from bot.jobs import reconcile
from bot.runtime.delivery import OutboxWorker
from bot.runtime.languages import KEY, LanguageChoices
from bot.shop.customers import set_language
from storage import Buyer, OrderStatus, get_customer
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, CATALOG, Shop, button_texts, markup_buttons

CYRILLIC = re.compile("[А-Яа-яЁё]")


def _fragments() -> list[str]:
    """The English pieces of every message the Russian catalog translates: a msgid cut at
    its placeholders and tags, pieces with at least one word of three letters. A piece
    its translation keeps as it is (“@CryptoBot”) is no sign of English."""
    with (LOCALES_DIR / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    pieces: set[str] = set()
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            for piece in re.split(r"\{[^}]*\}|<[^>]*>|&[a-z]+;|\n", msgid):
                piece = piece.strip(" .,:;—–-()!?“”«»#×…▶◀⏮🔁✅⚠⌛✖⏳↩💰📉🌐✔👋")
                if re.search(r"[A-Za-z]{3}", piece) and not any(piece in s for s in strings):
                    pieces.add(piece)
    return sorted(pieces, key=len, reverse=True)


ENGLISH = _fragments()


def english_in(text: str) -> list[str]:
    text = re.sub(r"<[^>]*>", " ", text)  # tags are no words (<code>, <b>)
    return [p for p in ENGLISH if re.search(rf"(?<![A-Za-z]){re.escape(p)}(?![A-Za-z])", text)]


def _catalog_words() -> list[str]:
    """The test catalog's own words (English: it has no translations), left out of the check."""
    catalog = parse_catalog(CATALOG, "USD")
    words = [c.title for c in catalog.categories]
    words += [w for p in catalog.products for w in (p.title, p.description) if w]
    return sorted(words, key=len, reverse=True)


CATALOG_WORDS = _catalog_words()


def everything_said(shop: Shop, chat_id: int, since: int = 0) -> list[str]:
    """Every text and button label the bot sent to `chat_id` after request number `since`,
    without the catalog's own words."""
    said: list[str] = []
    for m in shop.session.requests[since:]:
        if isinstance(m, SendMessage | EditMessageText | SendDocument) and m.chat_id != chat_id:
            continue
        if isinstance(m, SendMessage | EditMessageText):
            said.append(m.text)
            said += button_texts(m)
        elif isinstance(m, SendDocument) and m.caption:
            said.append(m.caption)
        elif isinstance(m, AnswerCallbackQuery) and m.text:
            said.append(m.text)
    for word in CATALOG_WORDS:
        said = [s.replace(escape(word), "").replace(word, "") for s in said]
    return [s for s in said if s.strip()]


async def purchase(shop: Shop, user: int, code: str | None) -> int:
    """Menu, catalog, a category, a card, Buy, payment, goods, My orders, the order."""
    await shop.send("/start", user, language_code=code)
    await shop.press(Menu(action=MenuAction.CATALOG), user, language_code=code)
    await shop.press(CategoryPage(slug="games"), user, language_code=code)
    await shop.press(ProductCard(action=ProductAction.SHOW, sku="multi"), user, language_code=code)
    await shop.press(ProductCard(action=ProductAction.INC, sku="multi"), user, language_code=code)
    await shop.press(
        ProductCard(action=ProductAction.BUY, sku="multi", qty=2), user, language_code=code
    )
    (order,) = [o for o in await shop.orders() if o.status == OrderStatus.PENDING]
    assert order.id is not None and order.invoice_id is not None
    await shop.cp.pay(order.invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    await OutboxWorker(shop.ctx).drain_once()
    await shop.press(Menu(action=MenuAction.ORDERS), user, language_code=code)
    await shop.press(
        OrderButton(action=OrderAction.SHOW, order_id=order.id), user, language_code=code
    )
    return order.id


def to_chat(shop: Shop, chat_id: int, since: int = 0) -> list[Any]:
    return [
        m
        for m in shop.session.requests[since:]
        if isinstance(m, SendMessage | EditMessageText) and m.chat_id == chat_id
    ]


async def test_the_fragments_would_catch_english() -> None:
    assert english_in("Добро пожаловать! Нажмите <b>Buy</b>") == ["Buy"]
    assert english_in("Заказ #5 оплачен — спасибо! Multi Key × 2") == []


async def test_a_russian_reader_buys_without_an_english_word(shop: Shop) -> None:
    order_id = await purchase(shop, ALICE, "ru")
    said = everything_said(shop, ALICE)
    assert said
    leaks = {text: english_in(text) for text in said if english_in(text)}
    assert not leaks, leaks
    joined = "\n".join(said)
    for word in ("Каталог", "Мои заказы", "Помощь", "Купить", "Оплатить", "Проверить оплату"):
        assert word in joined, word
    goods = [m.text for m in to_chat(shop, ALICE) if f"Заказ #{order_id} оплачен" in m.text]
    assert goods and "MULTI-" in goods[0]
    assert "5,00\xa0$" in joined  # Babel's Russian money: 2 × 2.50 USD
    assert "Итого" in joined and "Total" not in joined


async def test_uk_be_kk_read_russian_and_others_read_the_default(shop: Shop) -> None:
    for code in ("uk", "be", "kk", "ru-RU"):
        mark = len(shop.session.requests)
        await shop.send("/start", BOB, language_code=code)
        assert "Добро пожаловать" in shop.last_text().text, code
        assert len(shop.session.requests) > mark
    for code in ("de", None, "en-US"):
        await shop.send("/start", BOB, language_code=code)
        assert shop.last_text().text.startswith("Welcome"), code


async def test_after_language_english_a_russian_reader_reads_english_for_good(
    shop: Shop,
) -> None:
    await shop.send("/help", ALICE, language_code="ru")
    assert "Язык" in " ".join(button_texts(shop.last_text()))
    await shop.press(LanguagePick(), ALICE, language_code="ru")  # Help's Language button
    assert "Выберите язык" in shop.last_text().text
    await shop.press(LanguagePick(code="en"), ALICE, language_code="ru")
    assert "I will speak English" in shop.last_text().text
    customer = await get_customer(shop.ctx.db, ALICE)
    assert customer is not None and customer.chosen_language == "en"

    # A restart: a new dispatcher with nothing cached still reads the stored choice.
    shop.dp = create_dispatcher(shop.ctx)
    mark = len(shop.session.requests)
    await purchase(shop, ALICE, "ru")
    said = everything_said(shop, ALICE, mark)
    assert said and not [s for s in said if CYRILLIC.search(s)]
    assert any("$5.00" in s for s in said)

    await shop.send("/language", ALICE, language_code="ru")
    assert set(button_texts(shop.last_text())) == {"🇬🇧 English", "🇷🇺 Русский"}
    await shop.press(LanguagePick(code="ru"), ALICE, language_code="en")
    assert "по-русски" in shop.last_text().text
    await shop.send("/start", ALICE, language_code="en")
    assert "Добро пожаловать" in shop.last_text().text


async def test_a_russian_admin_gets_the_paid_notice_and_stats_in_russian(shop: Shop) -> None:
    await shop.send("/start", ADMIN_ID, language_code="ru")  # the admin's customer row
    order_id = await purchase(shop, BOB, None)  # an English buyer
    notices = [m.text for m in to_chat(shop, ADMIN_ID) if f"#{order_id}" in m.text]
    assert notices and "оплачен" in notices[0], notices
    assert not english_in(notices[0])
    buyer = [m.text for m in to_chat(shop, BOB) if f"Order #{order_id} is paid" in m.text]
    assert buyer, "the buyer's goods stay in English"

    await shop.send("/stats", ADMIN_ID, language_code="ru")
    stats = shop.last_text().text
    assert "Продажи" in stats and "1 заказ, 5,00\xa0$" in stats, stats
    assert not english_in(stats), english_in(stats)


async def test_a_choice_holds_on_every_replica_through_redis(shop: Shop, redis: Redis) -> None:
    await redis.delete(KEY)
    await set_language(shop.ctx, Buyer(ALICE, None, "en"), "ru")  # stored before any start
    one, two = LanguageChoices(shop.ctx.db, redis), LanguageChoices(shop.ctx.db, redis)
    assert await one.choice(ALICE) == "ru"  # loaded from the database into Redis
    assert await two.choice(BOB) == ""
    await set_language(shop.ctx, Buyer(ALICE, None, "en"), "en")
    await two.remember(ALICE, "en")
    assert await one.choice(ALICE) == "en"  # the other replica sees the switch at once
    three = LanguageChoices(shop.ctx.db, redis)
    assert await three.choice(ALICE) == "en"
    await redis.delete(KEY)


async def test_picking_the_language_reads_no_database_per_update(shop: Shop) -> None:
    await shop.send("/start", ALICE, language_code="ru")  # the first update loads the choices
    statements: list[str] = []
    engine = shop.ctx.db.engine.sync_engine

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        await shop.send("/help", ALICE, language_code="ru")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert "Как это работает" in shop.last_text().text
    assert statements == []


# The test catalog with two products translated (a `[products.ru]` table after each one's
# last key), for the cart's titles.
TRANSLATED_CATALOG = CATALOG.replace(
    'codes = ["SOLO-0001"]\n',
    'codes = ["SOLO-0001"]\n[products.ru]\ntitle = "Единственный ключ"\n'
    'description = "Остался ровно один ключ."\n',
).replace(
    'codes = ["MULTI-1", "MULTI-2", "MULTI-3", "MULTI-4", "MULTI-5"]\n',
    'codes = ["MULTI-1", "MULTI-2", "MULTI-3", "MULTI-4", "MULTI-5"]\n[products.ru]\n'
    'title = "Ключ Мульти"\ndescription = "Несколько ключей, не больше трёх за заказ."\n',
)


async def test_a_russian_reader_fills_the_cart_checks_out_and_pays_in_russian(shop: Shop) -> None:
    await import_catalog_file(shop.ctx.db, parse_catalog(TRANSLATED_CATALOG, "USD"))
    ru = "ru"
    await shop.send("/start", ALICE, language_code=ru)
    await shop.press(ProductCard(action=ProductAction.SHOW, sku="multi"), language_code=ru)
    assert "В корзину" in button_texts(shop.last_text())
    added = await shop.press(CartAdd(sku="multi", q=2), language_code=ru)
    (answer,) = shop.answers_to(added)
    assert answer.text == "Добавлено в корзину: Ключ Мульти — в корзине 2 шт."
    await shop.press(CartAdd(sku="solo", q=1), language_code=ru)
    await shop.send("/start", ALICE, language_code=ru)
    assert "Корзина (3)" in button_texts(shop.last_text())

    await shop.send("/cart", ALICE, language_code=ru)
    cart = shop.last_text()
    assert "<b>Ваша корзина</b> — 3 товара" in cart.text, cart.text
    assert "Ключ Мульти × 2 — 5,00\xa0$" in cart.text and "Единственный ключ × 1" in cart.text
    assert "Итого: <b>14,99\xa0$</b>" in cart.text
    labels = button_texts(cart)
    assert {"Оформить заказ", "Очистить корзину", "Удалить", "−", "+"} <= set(labels), labels
    (checkout,) = [b for b in markup_buttons(cart) if b.text == "Оформить заказ"]
    await shop.press(CartButton.unpack(checkout.callback_data), language_code=ru)

    (params,) = shop.cp.calls_of("createInvoice")
    (order,) = await shop.orders()
    assert order.id is not None and order.invoice_id is not None
    assert params["description"] == f"Заказ #{order.id}: Ключ Мульти × 2, Единственный ключ × 1"
    placed = shop.last_text().text
    assert f"Заказ #{order.id}" in placed and "Ключ Мульти × 2" in placed, placed
    await shop.cp.pay(order.invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    await OutboxWorker(shop.ctx).drain_once()
    await shop.press(Menu(action=MenuAction.ORDERS), language_code=ru)
    await shop.press(OrderButton(action=OrderAction.SHOW, order_id=order.id), language_code=ru)

    said = everything_said(shop, ALICE)
    leaks = {text: english_in(text) for text in said if english_in(text)}
    assert not leaks, leaks
    # The catalog's translated titles everywhere, its English ones nowhere.
    raw = [m.text for m in to_chat(shop, ALICE)] + [
        a.text or "" for a in shop.session.requests if isinstance(a, AnswerCallbackQuery)
    ]
    raw += [label for m in to_chat(shop, ALICE) for label in button_texts(m)]  # My orders rows
    assert not [text for text in raw if "Multi Key" in text or "Solo Key" in text]
    goods = [m.text for m in to_chat(shop, ALICE) if f"Заказ #{order.id} оплачен" in m.text]
    assert goods and "<b>Ключ Мульти</b>" in goods[0] and "SOLO-0001" in goods[0], goods


async def test_the_hoarding_refusals_speak_russian(shop: Shop) -> None:
    def buy(sku: str, qty: int) -> str:  # Buy's data as a client may forge it
        return f"p:{ProductAction.BUY}:{sku}:{qty}"

    update = await shop.press(buy("guide", 11), language_code="ru")
    (answer,) = shop.answers_to(update)
    assert answer.text == "Ждать оплаты одновременно могут не больше 10 товаров. Выберите меньше."
    await shop.press(buy("guide", 6), language_code="ru")
    update = await shop.press(buy("guide", 5), language_code="ru")
    (answer,) = shop.answers_to(update)
    text = answer.text or ""
    assert "У вас уже 6 товаров в неоплаченных заказах" in text and "Мои заказы" in text, text
    assert not english_in(text)
    assert len(shop.cp.calls_of("createInvoice")) == 1
