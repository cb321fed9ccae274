"""Passwords in DATABASE_URL and REDIS_URL are masked wherever the settings are shown (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, load_settings, load_store_settings, mask_url

TOKENS = {
    "BOT_TOKEN": "123456:ABC-def_ghi",
    "CRYPTOPAY_TOKEN": "1234:AAzQcZWQqQAbsfgPnOLr4FHC8Doa4L7KryC",
}
DB_URL = "postgresql+asyncpg://shop:Db-Pa55w0rd@db.internal:5432/shop?password=Qs-Pa55&ssl=require"
REDIS_URL = "redis://:Redis-Pa55w0rd@cache.internal:6379/0"
PASSWORDS = ("Db-Pa55w0rd", "Qs-Pa55", "Redis-Pa55w0rd")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for field in Settings.model_fields.values():
        monkeypatch.delenv(field.alias or "", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_repr_and_str_mask_url_passwords_as_tokens_are() -> None:
    settings = load_settings(**TOKENS, DATABASE_URL=DB_URL, REDIS_URL=REDIS_URL)
    for shown in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert not [p for p in PASSWORDS if p in shown], shown
        assert TOKENS["BOT_TOKEN"] not in shown
        assert "//shop:***@db.internal:5432/shop?password=***&ssl=require" in shown
        assert "redis://:***@cache.internal:6379/0" in shown
    # The values themselves are untouched: the engine and Redis still get the password.
    assert settings.database_url == DB_URL
    assert settings.redis_url == REDIS_URL


def test_store_settings_mask_too() -> None:
    store = load_store_settings(DATABASE_URL=DB_URL)
    assert "Db-Pa55w0rd" not in repr(store) and "Db-Pa55w0rd" not in str(store)
    assert "shop:***@db.internal" in repr(store)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite+aiosqlite:///shop.db", "sqlite+aiosqlite:///shop.db"),
        (
            "postgresql+asyncpg://postgres@127.0.0.1/shop",
            "postgresql+asyncpg://postgres@127.0.0.1/shop",
        ),
        ("postgresql+asyncpg://u:p%40ss@h/db", "postgresql+asyncpg://u:***@h/db"),
        ("redis://u:pa@ss@h:6379/1", "redis://u:***@h:6379/1"),
        ("rediss://:secret@h", "rediss://:***@h"),
        ("postgresql+asyncpg://u:x@[::1:5432/db", "***"),  # cannot be taken apart: all hidden
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
