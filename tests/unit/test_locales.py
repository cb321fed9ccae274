"""The catalogs against the source: every message in both languages, none left over, the
same placeholders everywhere, and Russian plural forms."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, language_of, use_language
from bot.screens.texts import en_admin as ta
from bot.screens.texts import texts as t

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "__": None, "ngettext": (1, 2)}  # as `make i18n` extracts
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def source_msgids() -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT / "bot", method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def catalog(language: str) -> Catalog:
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def key(message_id: str | tuple[str, ...]) -> str | tuple[str, str]:
    return message_id if isinstance(message_id, str) else (message_id[0], message_id[1])


SOURCE = source_msgids()
RU = catalog("ru")


def test_every_message_of_the_source_is_translated_into_russian() -> None:
    translated = {
        key(m.id)
        for m in RU
        if m.id
        and not m.fuzzy
        and (all(m.string) if isinstance(m.string, tuple) else bool(m.string))
    }
    missing = SOURCE - translated
    assert not missing, f"not in Russian (run `make i18n`, then translate): {sorted(missing)}"
    assert len(SOURCE) > 150  # the extraction finds the texts at all


def test_no_russian_message_is_left_over_from_texts_gone_from_the_source() -> None:
    unused = {key(m.id) for m in RU if m.id} - SOURCE
    assert not unused, f"unused (run `make i18n`): {sorted(unused, key=str)}"


def test_placeholders_are_the_same_in_both_languages() -> None:
    wrong = []
    for m in RU:
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        assert all(set(PLACEHOLDER.findall(i)) == expected for i in ids), m.id
        for s in strings:
            if set(PLACEHOLDER.findall(s)) != expected:
                wrong.append((m.id, s))
    assert not wrong, wrong


def test_the_checks_see_a_missing_placeholder() -> None:
    broken = Catalog(locale="ru")
    broken.add("Order #{order_id} is already placed.", "Заказ уже оформлен.")
    (message,) = [m for m in broken if m.id]
    assert set(PLACEHOLDER.findall(message.id)) != set(PLACEHOLDER.findall(message.string))


def test_the_compiled_catalog_is_the_committed_one() -> None:
    po = LOCALES_DIR / "ru" / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    assert mo.exists(), "run `make i18n-compile` (make test does)"
    assert mo.stat().st_mtime >= po.stat().st_mtime, "stale .mo: run `make i18n-compile`"


@pytest.mark.parametrize(
    ("n", "orders", "codes"),
    [
        (1, "1 заказ", "1 код"),
        (2, "2 заказа", "2 кода"),
        (5, "5 заказов", "5 кодов"),
        (11, "11 заказов", "11 кодов"),
        (21, "21 заказ", "21 код"),
        (101, "101 заказ", "101 код"),
    ],
)
def test_russian_plural_forms(n: int, orders: str, codes: str) -> None:
    with use_language("ru"):
        assert ta.orders_count(n) == orders
        assert ta.codes_count(n) == codes
    with use_language("en"):
        assert ta.orders_count(n) == (f"{n} order" if n == 1 else f"{n} orders")
        assert ta.codes_count(n) == (f"{n} code" if n == 1 else f"{n} codes")


def test_money_numbers_and_dates_per_locale() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 12, 2, 14, 5, tzinfo=UTC)
    with use_language("en"):
        assert t.money(Decimal("9.99"), "USD") == "$9.99"
        assert t.plain(Decimal("0.00012345")) == "0.00012345"
        assert t.when(moment) == "Dec 2, 2026, 14:05 UTC"
        assert t.BTN_BUY == "Buy"
    with use_language("ru"):
        assert t.money(Decimal("9.99"), "USD") == "9,99\xa0$"
        assert t.money(Decimal("1234.5"), "RUB") == "1\xa0234,50\xa0₽"
        assert t.plain(Decimal("0.00012345")) == "0,00012345"  # crypto keeps every digit
        assert t.when(moment).startswith("2 дек. 2026") and t.when(moment).endswith("14:05 UTC")
        assert t.BTN_BUY == "Купить" and t.BTN_BACK == "◀ Назад"


def test_the_language_rule() -> None:
    assert language_of("en", "ru", "en") == "en"  # the choice first
    assert language_of(None, "uk", "en") == "ru"
    assert language_of("", "kk", "en") == "ru"
    assert language_of(None, "be", "en") == "ru"
    assert language_of(None, "de", "ru") == "ru"  # DEFAULT_LANGUAGE
    assert language_of(None, None, "en") == "en"
    assert language_of(None, "en-GB", "ru") == "en"


@pytest.mark.parametrize(
    ("n", "items", "left", "added"),
    [
        (1, "1 товар", "осталась только 1 штука", "добавлен 1 код"),
        (2, "2 товара", "остались только 2 штуки", "добавлено 2 кода"),
        (5, "5 товаров", "осталось только 5 штук", "добавлено 5 кодов"),
        (11, "11 товаров", "осталось только 11 штук", "добавлено 11 кодов"),
        (21, "21 товар", "осталась только 21 штука", "добавлен 21 код"),
        (101, "101 товар", "осталась только 101 штука", "добавлен 101 код"),
    ],
)
def test_russian_plural_forms_of_the_cart_and_the_uploads(
    n: int, items: str, left: str, added: str
) -> None:
    """The texts that came in plain English (count(n, 'item')) count in Russian too."""
    with use_language("ru"):
        assert t.too_many_units(n, 200).startswith(f"У вас уже {items} в неоплаченных заказах")
        assert left in t.cart_line(
            "Ключ", 200, Decimal(1), "USD", added_price=Decimal(1), active=True, available=n
        )
        assert f"— {items}" in t.cart_screen([], Decimal(1), "USD", n)
        assert added in ta.codes_added("sku", n, 0, n)
    with use_language("en"):
        assert t.too_many_units(n, 200).startswith(
            f"You already hold {n} item{'' if n == 1 else 's'} in unpaid orders"
        )
        assert ta.codes_added("sku", n, 0, n).startswith(f"Added {n} code{'' if n == 1 else 's'} ")


def test_times_of_the_hoarding_and_upload_texts_per_locale() -> None:
    from datetime import UTC, datetime

    with use_language("ru"):
        paused = t.ordering_paused(datetime(2026, 12, 2, 14, 31, 20, tzinfo=UTC))
        assert paused.endswith("Снова оформить заказ можно в 14:32 UTC."), paused
        assert ta.upload_took(1.5) == "Заняло 1,5 с."
        assert t.TAPS_THROTTLED.startswith("Минутку")
    with use_language("en"):
        assert ta.upload_took(0.04) == "Took 0.0 s."
        assert t.btn_cart(3) == "Cart (3)" and t.btn_cart(0) == "Cart"


def test_a_payment_review_reason_reads_in_the_admins_language() -> None:
    from bot.shop.review_reasons import AMOUNT, ASSET, CURRENCY, NOTHING_PAID, review_reason

    amount = review_reason(AMOUNT, invoice="1.00000000", order="9.99000000")
    with use_language("en"):
        assert ta.review_reason_text(amount) == (
            "the invoice amount 1.00 differs from the order total 9.99"
        )
        assert ta.review_reason_text("kept as text by an older version") == (
            "kept as text by an older version"
        )
    with use_language("ru"):
        assert ta.review_reason_text(amount) == (
            "сумма счёта 1,00 не совпадает с суммой заказа 9,99"
        )
        assert ta.review_reason_text(review_reason(CURRENCY, invoice="EUR", order="USD")) == (
            "счёт выставлен в EUR, а заказ — в USD"
        )
        assert "DOGE" in ta.review_reason_text(review_reason(ASSET, asset="DOGE"))
        assert "ни актива" in ta.review_reason_text(review_reason(NOTHING_PAID))
        alert = ta.needs_review_alert(7, amount, "1 USDT", "9,99 $", "buyer")
        assert "сумма счёта 1,00" in alert and "reason" not in alert
    with pytest.raises(ValueError):
        review_reason(AMOUNT, invoice="1")  # a value missing


def test_a_checkout_started_without_make_compiles_its_catalogs(tmp_path: Path) -> None:
    """`web: python -m bot` on a platform that only installs the package: no .mo yet."""
    from bot.i18n import compile_missing_catalogs

    po = tmp_path / "ru" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_bytes((LOCALES_DIR / "ru" / "LC_MESSAGES" / "messages.po").read_bytes())
    assert compile_missing_catalogs(tmp_path) == [po.with_suffix(".mo")]
    assert compile_missing_catalogs(tmp_path) == []  # up to date: nothing written
    from aiogram.utils.i18n import I18n

    i18n = I18n(path=tmp_path, default_locale="en", domain="messages")
    assert i18n.gettext("Buy", locale="ru") == "Купить"
