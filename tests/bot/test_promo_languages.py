"""Promo codes in Russian through the real Dispatcher (PRODUCT.md §3.1, §3.2, §4.1): the card's
Promo code, the discount line and every refusal sentence for a shopper whose Telegram speaks
Russian; /promo add, list and off for an admin who does."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from aiogram.methods import EditMessageText, SendMessage

from bot.callbacks import (
    CartAction,
    CartAdd,
    CartButton,
    CartPromoAsk,
    ProductAction,
    ProductCard,
    PromoAsk,
)
from bot.handlers.common import alert_text
from bot.i18n import use_language
from bot.jobs import reconcile
from bot.runtime.delivery import OutboxWorker
from bot.screens.texts import en_admin as ta
from bot.screens.texts import texts as t
from storage import get_product
from tests.bot import test_languages as lang
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, Shop, button_texts, markup_buttons

RU = "ru"


async def promo(shop: Shop, args: str) -> str:
    """The Russian admin's /promo: the answer."""
    await shop.send(f"/promo {args}", ADMIN_ID, language_code=RU)
    sent = shop.last_text()
    assert isinstance(sent, SendMessage) and sent.chat_id == ADMIN_ID
    return str(sent.text)


async def enter(shop: Shop, code: str, sku: str = "multi", qty: int = 1, user: int = ALICE) -> Any:
    """A Russian reader taps Promo code on a card and sends `code`: the bot's answer."""
    await shop.press(PromoAsk(sku=sku, qty=qty), user, language_code=RU)
    prompt = shop.last_text()
    assert isinstance(prompt, EditMessageText)
    assert prompt.text.startswith("Пришлите <b>промокод</b> сообщением — "), prompt.text
    assert button_texts(prompt) == ["◀ Назад к товару"]
    await shop.send(code, user, language_code=RU)
    answer = shop.last_text()
    assert isinstance(answer, SendMessage) and answer.chat_id == user
    return answer


# What stays as typed in Russian too: commands and options, Crypto Pay's name.
SYNTAX = re.compile(r"<code>.*?</code>|Crypto Pay|\b(?:uses|per_buyer|until|min|sku)\b(?=[=:])")


def no_english(text: str) -> None:
    """Nothing in `text` that the Russian catalog translates is left in English."""
    text = SYNTAX.sub(" ", text)
    for word in lang.CATALOG_WORDS:
        text = text.replace(word, "")
    assert not lang.english_in(text), (lang.english_in(text), text)


async def test_a_russian_shopper_applies_a_code_and_reads_the_discount_in_russian(
    shop: Shop,
) -> None:
    assert "Промокод добавлен" in await promo(shop, "add SAVE10 10%")
    await shop.send("/start p_multi", ALICE, language_code=RU)
    card = shop.last_text()
    assert "Промокод" in button_texts(card) and "Promo code" not in button_texts(card)

    card = await enter(shop, "save10", qty=2)
    assert "Промокод <b>SAVE10</b>: −0,50\xa0$" in card.text, card.text
    assert "Итого с промокодом: <b>4,50\xa0$</b>" in card.text
    assert "Promo" not in card.text and "Total" not in card.text
    no_english(card.text)

    # Buy with it: the order in Russian; the Russian admin's paid notice names the discount.
    await shop.send("/start", ADMIN_ID, language_code=RU)  # the admin's customer row
    update = await shop.press(
        ProductCard(action=ProductAction.BUY, sku="multi", qty=2), ALICE, language_code=RU
    )
    assert not [a for a in shop.answers_to(update) if a.show_alert]
    placed = shop.last_text().text
    assert "Промокод <b>SAVE10</b>: −0,50\xa0$" in placed and "4,50\xa0$" in placed, placed
    (order,) = await shop.orders()
    assert order.id is not None and order.invoice_id is not None
    await shop.cp.pay(order.invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    await OutboxWorker(shop.ctx).drain_once()
    notices = [m.text for m in lang.to_chat(shop, ADMIN_ID) if f"#{order.id}" in m.text]
    assert notices and "(промокод SAVE10: −0,50\xa0$)" in notices[0], notices
    no_english(notices[0])

    # The saved code on a card it does not fit (a minimum): said, and Buy charges in full.
    await promo(shop, "add BIG5 1 min=5")
    await enter(shop, "big5", qty=2)  # 2 × 2.50 reaches the minimum: saved
    await shop.press(ProductCard(action=ProductAction.SHOW, sku="multi"), language_code=RU)
    shown = shop.last_text().text
    assert "🏷 Промокод <b>BIG5</b> действует на заказ от 5,00\xa0$." in shown, shown
    assert "Кнопка «Купить» оформит заказ по полной цене." in shown
    no_english(shown)


async def test_every_refusal_is_one_russian_sentence(shop: Shop) -> None:
    assert (await enter(shop, "NOPE")).text == (
        "Промокода <b>NOPE</b> нет. Проверьте, правильно ли он написан."
    )
    await promo(shop, "add FIVE 5 min=5 sku=multi,indie1")
    refused = await enter(shop, "FIVE", sku="solo")
    assert refused.text == "Промокод <b>FIVE</b> не распространяется на эти товары."
    assert button_texts(refused) == ["Промокод", "◀ Назад к товару"]
    below = await enter(shop, "five", qty=1)
    assert below.text == "Промокод <b>FIVE</b> действует на заказ от 5,00\xa0$."

    await promo(shop, "add GONE 10%")
    assert "отключён" in await promo(shop, "off gone")
    assert (await enter(shop, "gone")).text == "Промокод <b>GONE</b> отключён."

    today = shop.ctx.clock().date().isoformat()
    await promo(shop, f"add SOON 10% until={today}")
    shop.clock.advance(2 * 86400)
    assert (await enter(shop, "soon")).text == "Срок действия промокода <b>SOON</b> истёк."

    await promo(shop, "add BIG 3")  # 3 off a 2.50 key: nothing left to invoice
    zero = (await enter(shop, "big")).text
    assert zero.startswith("С промокодом <b>BIG</b> заказ стал бы бесплатным"), zero

    await shop.press(PromoAsk(sku="multi", qty=1), ALICE, language_code=RU)
    await shop.press(PromoAsk(sku="multi", qty=1, back=1), ALICE, language_code=RU)
    assert "Купить" in button_texts(shop.last_text())
    for text in (refused.text, below.text, zero):
        no_english(text)


async def test_buy_drops_a_switched_off_code_in_russian(shop: Shop) -> None:
    await promo(shop, "add LATER 20%")
    await enter(shop, "later")
    await promo(shop, "off LATER")
    update = await shop.press(
        ProductCard(action=ProductAction.BUY, sku="multi", qty=1), ALICE, language_code=RU
    )
    (answer,) = shop.answers_to(update)
    assert answer.show_alert
    assert "Промокод" in answer.text and "LATER" in answer.text and "отключён" in answer.text
    assert "нажмите «Купить» ещё раз, чтобы оплатить полную цену" in answer.text
    no_english(answer.text)


async def test_a_russian_admin_runs_promo_add_list_and_off(shop: Shop) -> None:
    usage = await promo(shop, "")
    assert usage.startswith("Использование:\n<code>/promo add CODE 10%</code> — скидка")
    added = await promo(shop, "add SPRING 10% uses=100 per_buyer=2 until=2027-01-31 sku=multi")
    assert added == (
        "✅ Промокод добавлен: <b>SPRING</b> скидка 10% · использований: 0/100 · "
        "на покупателя: 2 · до 2027-01-31 включительно · только <code>multi</code>"
    ), added
    assert "скидка 5,00" in await promo(shop, "add FIVE 5 min=20")

    listing = await promo(shop, "list")
    assert listing.startswith("<b>Промокоды</b> (сначала новые):"), listing
    assert "заказ от 20,00\xa0$" in listing
    assert "— 0 оплаченных заказов, выручка 0,00\xa0$" in listing
    no_english(listing)

    assert "Промокод <b>SPRING</b> отключён" in await promo(shop, "off spring")
    assert "отключён" in (await promo(shop, "list")).split("\n")[-1]  # the oldest: SPRING
    assert await promo(shop, "off nosuch") == "Промокода <b>NOSUCH</b> нет."
    exists = await promo(shop, "add five 7")
    assert exists == "Промокод <b>FIVE</b> уже есть; выберите другое название."

    for args, why in (
        ("add FREE 100%", "скидка 100% и больше сделала бы заказы бесплатными"),
        ("add X1", "нужны код и скидка."),
        ("add X1 5 foo=1", "неизвестный параметр 'foo=1'."),
        ("add X1 5 sku=nosuch", "таких артикулов нет: nosuch."),
        ("add X1 5 until=2020-01-01", "дата until=2020-01-01 уже прошла."),
        ("add X1 5.001", "скидка: нужна положительная сумма в целых центах USD."),
        ("add X1 5 uses=0", "uses: нужно целое число от 1, а не '0'."),
        ("add X1 abc%", "'abc%' — не процент."),
    ):
        answer = await promo(shop, args)
        assert answer.startswith(f"Промокод не добавлен: {why}"), (args, answer)
        assert "\n\nИспользование:\n" in answer
        no_english(answer)

    await shop.send("/promo list", BOB, language_code=RU)  # not an admin: no promo list
    assert "Промокоды" not in shop.last_text().text


async def test_paid_orders_take_russian_plural_forms() -> None:
    forms = {
        1: "1 оплаченный заказ",
        2: "2 оплаченных заказа",
        5: "5 оплаченных заказов",
        11: "11 оплаченных заказов",
        21: "21 оплаченный заказ",
        101: "101 оплаченный заказ",
    }
    with use_language(RU):
        for n, words in forms.items():
            assert f"— {words}, выручка" in ta.promo_list([("<b>X</b>", n, "1,00 $")]), n
        assert t.BTN_PROMO == "Промокод"
    assert "1 paid order, revenue" in ta.promo_list([("<b>X</b>", 1, "$1.00")])
    assert "2 paid orders, revenue" in ta.promo_list([("<b>X</b>", 2, "$1.00")])


def test_every_russian_refusal_fits_whole_in_buys_alert() -> None:
    """Buy's and Checkout's alerts hold 200 characters: the Russian sentences fit whole."""
    with use_language(RU):
        for reason in (
            "unknown",
            "switched_off",
            "expired",
            "used_up",
            "already_used",
            "not_for_these",
            "zero_total",
            "below_minimum",
        ):
            refusal = t.promo_refusal(reason, "SPRING2026", Decimal("1234.50"), "USD")
            alert = alert_text(t.promo_dropped(refusal))
            assert alert.endswith("чтобы оплатить полную цену."), (reason, alert)
            alert = alert_text(t.cart_promo_dropped(refusal))
            assert alert.endswith("чтобы оплатить полную сумму."), (reason, alert)


def checkout_of(screen: Any) -> CartButton:
    """The cart screen's Checkout, found by what it does (its label is the cart's text)."""
    for button in markup_buttons(screen):
        if str(button.callback_data or "").startswith("ct:"):
            data = CartButton.unpack(button.callback_data)
            if data.a == CartAction.CHECKOUT:
                return data
    raise AssertionError(f"no Checkout on {screen.text!r}")


async def cart_code(shop: Shop, code: str) -> Any:
    """A Russian reader taps the cart's Promo code and sends `code`: the cart shown again."""
    await shop.press(CartPromoAsk(), ALICE, language_code=RU)
    prompt = shop.last_text()
    assert isinstance(prompt, EditMessageText)
    assert prompt.text.startswith("Пришлите <b>промокод</b> сообщением — корзина покажет итог")
    assert "<b>Оформить заказ</b>" in prompt.text
    assert button_texts(prompt) == ["◀ Назад в корзину"]
    await shop.send(code, ALICE, language_code=RU)
    answer = shop.last_text()
    assert isinstance(answer, SendMessage) and answer.chat_id == ALICE
    return answer


async def test_the_carts_promo_code_in_russian(shop: Shop) -> None:
    await promo(shop, "add SAVE10 10%")
    await promo(shop, "add BIG20 1 min=20")
    await shop.press(CartAdd(sku="multi", q=2), ALICE, language_code=RU)

    cart = await cart_code(shop, "save10")
    assert "Промокод <b>SAVE10</b>: −0,50\xa0$\nИтого с промокодом: <b>4,50\xa0$</b>" in cart.text
    assert "Promo" not in cart.text

    refused = await cart_code(shop, "big20")
    assert refused.text.startswith("Промокод <b>BIG20</b> действует на заказ от 20,00\xa0$.\n\n")

    await promo(shop, "off save10")
    update = await shop.press(checkout_of(cart), ALICE, language_code=RU)
    (answer,) = shop.answers_to(update)
    assert answer.show_alert and answer.text == (
        "Промокод SAVE10 отключён. Промокод удалён; нажмите «Оформить заказ» ещё раз, чтобы "
        "оплатить полную сумму."
    )
    assert await shop.orders() == []

    # A saved code on a cart it no longer fits: said above the full price.
    await promo(shop, "add HALF 50% min=5")
    await cart_code(shop, "half")  # 2 × 2.50 reaches the minimum: saved
    product = await get_product(shop.ctx.db, "multi")
    assert product is not None and product.id is not None
    await shop.press(CartButton(a=CartAction.DEC, p=product.id), ALICE, language_code=RU)
    await shop.send("/cart", ALICE, language_code=RU)
    shown = shop.last_text().text
    assert (
        "🏷 Промокод <b>HALF</b> действует на заказ от 5,00\xa0$. «Оформить заказ» выставит "
        "счёт на полную сумму."
    ) in shown, shown
