"""Languages: aiogram's gettext I18n over the Babel-managed catalogs in bot/locales/.

Which language a customer reads (PRODUCT.md §3.2): their /language choice, else Telegram's
`language_code` (ru, uk, be, kk → ru), else DEFAULT_LANGUAGE. The middleware sets it for
each update; the outbox worker sets the recipient's with `use_language` when it composes.
How to add or translate a text: bot/locales/README.md.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n.middleware import I18nMiddleware
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "locales"
LANGUAGES = ("en", "ru")  # what the shop speaks; English is the source language
# Telegram language codes read as Russian: Russian itself, and where Russian is widely read.
RUSSIAN_READERS = frozenset({"ru", "uk", "be", "kk"})
# The Telegram language codes given their own command menu and description.
LANGUAGE_CODES = ("en", "ru", "uk", "be", "kk")


class Msgid(str):
    """A text marked for translation where it is defined (a constant): a texts module
    translates it each time it is read, into the language of the moment."""

    __slots__ = ()


def __(msgid: str) -> str:
    """Marks a constant's text for translation (pybabel extracts `__("…")`)."""
    return Msgid(msgid)


def _(msgid: str) -> str:
    """The text in the current language (English outside any language context)."""
    i18n = I18n.get_current(no_error=True)
    return str(msgid) if i18n is None else i18n.gettext(msgid)


gettext = _  # the same, where `_` is taken (a throwaway variable)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for `n` in the current language: 1 order / 2 orders; 1 заказ / 3 заказа /
    5 заказов. Both forms keep the same placeholders (usually `{n}`)."""
    i18n = I18n.get_current(no_error=True)
    if i18n is None:
        return singular if n == 1 else plural
    return i18n.gettext(singular, plural, n)


def current_language() -> str:
    i18n = I18n.get_current(no_error=True)
    return "en" if i18n is None else i18n.current_locale


class TextsModule(types.ModuleType):
    """A texts module whose `__("…")` constants read in the current language: call sites keep
    writing `t.BTN_BUY` and get the word of the customer being answered."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if type(value) is Msgid:
            return _(value)
        return value


def translated(module_name: str) -> None:
    """Called at the end of a texts module: its constants become translated on read."""
    import sys

    sys.modules[module_name].__class__ = TextsModule


def localized(translations: dict[str, dict[str, str]] | None, key: str, original: str) -> str:
    """A catalog text (a title, a description) in the current language when the catalog
    translates it (`[products.ru]`), else as written."""
    version = (translations or {}).get(current_language()) or {}
    return version.get(key) or original


def language_of(choice: str | None, telegram_code: str | None, default: str) -> str:
    """The rule of PRODUCT.md §3.2."""
    if choice in LANGUAGES:
        return choice
    code = (telegram_code or "").lower().replace("_", "-").split("-", 1)[0]
    if code in RUSSIAN_READERS:
        return "ru"
    if code in LANGUAGES:
        return code
    return default if default in LANGUAGES else "en"


@cache
def catalogs() -> I18n:
    """The compiled catalogs (read once per process: they do not change while it runs)."""
    compile_missing_catalogs()
    return I18n(path=LOCALES_DIR, default_locale="en", domain="messages")


def compile_missing_catalogs(locales: Path = LOCALES_DIR) -> list[Path]:
    """Compile each `.po` whose `.mo` is missing or older, as `make i18n-compile` does, so a
    checkout started without make (a platform's `web: python -m bot`) still speaks Russian.
    Returns the catalogs it wrote; a directory it cannot write is left to make (aiogram then
    says which language is not compiled)."""
    written = []
    for po in sorted(locales.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        try:
            with mo.open("wb") as target:
                write_mo(target, catalog)
        except OSError:
            continue
        written.append(mo)
    return written


@contextmanager
def use_language(language: str) -> Iterator[None]:
    """Texts read inside are in `language` (the outbox's recipient, a job's admin)."""
    i18n = catalogs()
    with i18n.context(), i18n.use_locale(language):
        yield


# A customer's choice as the middleware sees it: a str (their choice), or "" (none made).
ChoiceLookup = Callable[[int], Awaitable[str | None]]


class ShopI18nMiddleware(I18nMiddleware):
    """Picks each update's language by our rule. The stored choice comes from `lookup`,
    which answers from a cache (no database query per update; see bot/runtime/languages.py)."""

    def __init__(self, lookup: ChoiceLookup, default: str) -> None:
        super().__init__(catalogs())
        self.lookup = lookup
        self.default = default

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: User | None = data.get("event_from_user")
        if user is None:
            return self.default
        choice = await self.lookup(user.id)
        language = language_of(choice, user.language_code, self.default)
        data["language"] = language
        return language
