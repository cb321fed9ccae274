"""The demo's settings come from its own values only: never the environment, never `.env`,
and every address on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.sandbox.demo.settings import ADMIN_ID, demo_settings, demo_tokens, is_loopback_url

LEAKY = {
    "BOT_TOKEN": "111:real-token-from-env",
    "CRYPTOPAY_TOKEN": "222:real-cryptopay-token",
    "DATABASE_URL": "postgresql+asyncpg://shop:secret@db.example.com/shop",
    "REDIS_URL": "redis://cache.example.com:6379/0",
    "ADMIN_IDS": "1,2,3",
    "HOST": "0.0.0.0",
    "CRYPTOPAY_NETWORK": "mainnet",
    "TELEGRAM_WEBHOOK_URL": "https://shop.example.com",
    "LOG_LEVEL": "DEBUG",
}


@pytest.fixture
def leaky(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A developer's machine: real values in the environment and in ./.env."""
    for name, value in LEAKY.items():
        monkeypatch.setenv(name, value)
    (tmp_path / ".env").write_text(
        "TELEGRAM_API_URL=https://api.telegram.org\nINVOICE_TTL_SECONDS=120\n"
        "SHOP_CURRENCY=EUR\nMETRICS_TOKEN=abcdefghijklmnopqrstuvwxyz\n"
    )
    monkeypatch.chdir(tmp_path)


def build(**extra: object):
    bot_token, cryptopay_token = demo_tokens()
    return demo_settings(
        bot_token=bot_token,
        cryptopay_token=cryptopay_token,
        telegram_api_url="http://127.0.0.1:4001",
        cryptopay_api_url="http://127.0.0.1:4002/api",
        database_url="sqlite+aiosqlite:////tmp/demo-test.db",
        port=4003,
        **extra,
    )


def test_neither_environment_nor_dot_env_reaches_the_demo(leaky: None) -> None:
    # The same surroundings do reach the shop's ordinary settings: the test would notice.
    ordinary = load_settings()
    assert ordinary.bot_token.get_secret_value() == LEAKY["BOT_TOKEN"]
    assert ordinary.shop_currency == "EUR"

    settings = build()
    assert settings.bot_token.get_secret_value().startswith("7000001:demo-")
    assert settings.cryptopay_token.get_secret_value().startswith("4242:demo-")
    assert settings.database_url == "sqlite+aiosqlite:////tmp/demo-test.db"
    assert settings.redis_url is None
    assert settings.admin_ids == frozenset({ADMIN_ID})
    assert settings.cryptopay_network == "testnet"
    assert settings.telegram_webhook_url is None
    assert settings.telegram_api_url == "http://127.0.0.1:4001"
    assert settings.cryptopay_base_url == "http://127.0.0.1:4002/api"
    assert settings.shop_currency == "USD"
    assert settings.invoice_ttl_seconds == 900
    assert settings.metrics_token is None
    assert settings.log_level == "WARNING"


def test_everything_listens_and_calls_on_loopback(leaky: None) -> None:
    settings = build()
    assert settings.host == "127.0.0.1"
    assert settings.port == 4003
    for url in (settings.telegram_api_url, settings.cryptopay_base_url):
        assert is_loopback_url(url), url


def test_a_stand_in_elsewhere_is_refused() -> None:
    bot_token, cryptopay_token = demo_tokens()
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        demo_settings(
            bot_token=bot_token,
            cryptopay_token=cryptopay_token,
            telegram_api_url="https://api.telegram.org",
            cryptopay_api_url="http://127.0.0.1:4002/api",
            database_url="sqlite+aiosqlite:///x.db",
            port=4003,
        )
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        build(HOST="0.0.0.0")


def test_tokens_are_made_up_per_run_and_valid_in_shape() -> None:
    first, second = demo_tokens(), demo_tokens()
    assert first != second
    settings = build()  # the validators of Settings accept their shape
    assert ":" in settings.cryptopay_token.get_secret_value()


def test_loopback_urls() -> None:
    assert is_loopback_url("http://127.0.0.1:80/x")
    assert is_loopback_url("http://[::1]:80/")
    assert not is_loopback_url("http://localhost.example.com/")
    assert not is_loopback_url("http://10.0.0.1/")
    assert not is_loopback_url("not a url")


def test_demo_command_refuses_bad_input_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    assert main(["demo", "--catalog", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Catalog not loaded:") and "no such file" in err
    assert "Traceback" not in err

    bad = tmp_path / "bad.toml"
    bad.write_text('[[products]]\nsku = "x"\n')
    assert main(["demo", "--catalog", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("Catalog not loaded:")

    assert main(["demo", "--db", "mysql://x/y"]) == 2
    assert capsys.readouterr().err.startswith("--db must be")


def test_an_invalid_value_is_one_sentence_naming_it() -> None:
    with pytest.raises(ValueError, match="INVOICE_TTL_SECONDS"):
        build(INVOICE_TTL_SECONDS=0)
