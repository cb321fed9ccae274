import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings

TOKENS = {
    "BOT_TOKEN": "123456:ABC-def_ghi",
    "CRYPTOPAY_TOKEN": "1234:AAzQcZWQqQAbsfgPnOLr4FHC8Doa4L7KryC",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in Settings.model_fields.values():
        monkeypatch.delenv(name.alias or "", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_follow_product_table(monkeypatch):
    for key, value in TOKENS.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    assert s.cryptopay_network == "mainnet"
    assert s.cryptopay_base_url == "https://pay.crypt.bot/api"
    assert s.database_url == "sqlite+aiosqlite:///shop.db"
    assert s.accepted_assets == ("USDT", "TON", "BTC")
    assert s.admin_ids == frozenset()
    assert (s.host, s.port) == ("0.0.0.0", 8080)
    assert s.cryptopay_webhook_path == "/cryptopay/webhook"
    assert s.invoice_ttl_seconds == 900
    assert s.reconcile_interval_seconds == 30
    assert s.rates_refresh_seconds == 60
    assert s.auto_migrate is True
    assert s.telegram_webhook_url is None
    assert s.telegram_rate_limit == 30
    # derived secret: stable, Telegram-legal, and not the token itself
    assert s.webhook_secret == load_settings().webhook_secret
    assert TOKENS["BOT_TOKEN"] not in s.webhook_secret


def test_testnet_derives_url_and_lists_parse(monkeypatch):
    monkeypatch.setenv("CRYPTOPAY_NETWORK", "testnet")
    monkeypatch.setenv("ADMIN_IDS", " 1, 22 ,333")
    monkeypatch.setenv("ACCEPTED_ASSETS", "usdt, ton")
    s = load_settings(**TOKENS)
    assert s.cryptopay_base_url == "https://testnet-pay.crypt.bot/api"
    assert s.admin_ids == frozenset({1, 22, 333})
    assert s.accepted_assets == ("USDT", "TON")


def test_explicit_api_url_wins(monkeypatch):
    monkeypatch.setenv("CRYPTOPAY_API_URL", "http://127.0.0.1:9000/api/")
    assert load_settings(**TOKENS).cryptopay_base_url == "http://127.0.0.1:9000/api"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_url_is_normalised(monkeypatch, url, expected):
    monkeypatch.setenv("DATABASE_URL", url)
    assert load_settings(**TOKENS).database_url == expected


def test_tokens_never_in_repr_or_errors(monkeypatch):
    s = load_settings(**TOKENS)
    assert TOKENS["BOT_TOKEN"] not in repr(s)
    assert TOKENS["CRYPTOPAY_TOKEN"] not in str(s.model_dump())
    monkeypatch.setenv("PORT", "not-a-port")
    with pytest.raises(ConfigError) as err:
        load_settings(BOT_TOKEN="123:se cret", CRYPTOPAY_TOKEN=TOKENS["CRYPTOPAY_TOKEN"])
    assert "se cret" not in str(err.value)
    assert "BOT_TOKEN" in str(err.value) and "PORT" in str(err.value)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "BOT_TOKEN"),
        ({"BOT_TOKEN": TOKENS["BOT_TOKEN"]}, "CRYPTOPAY_TOKEN"),
        ({**TOKENS, "CRYPTOPAY_NETWORK": "moonnet"}, "CRYPTOPAY_NETWORK"),
        ({**TOKENS, "ADMIN_IDS": "1,bob"}, "ADMIN_IDS"),
        ({**TOKENS, "ACCEPTED_ASSETS": "USDT,"}, None),  # trailing comma is tolerated
        ({**TOKENS, "ACCEPTED_ASSETS": "US DT"}, "ACCEPTED_ASSETS"),
        ({**TOKENS, "DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({**TOKENS, "INVOICE_TTL_SECONDS": "0"}, "INVOICE_TTL_SECONDS"),
        ({**TOKENS, "TELEGRAM_WEBHOOK_URL": "shop.example.com"}, "TELEGRAM_WEBHOOK_URL"),
        ({**TOKENS, "BOT_TOKEN": "no-colon"}, "BOT_TOKEN"),
        ({**TOKENS, "TELEGRAM_RATE_LIMIT": "0"}, "TELEGRAM_RATE_LIMIT"),
    ],
)
def test_bad_config_names_the_variable(monkeypatch, env, named):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if named is None:
        load_settings()
        return
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert named in message
    assert ".env.example" in message
    assert "\n" not in message


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text(
        f"BOT_TOKEN={TOKENS['BOT_TOKEN']}\nCRYPTOPAY_TOKEN={TOKENS['CRYPTOPAY_TOKEN']}\nPORT=9999\n"
    )
    assert load_settings().port == 9999


def test_cli_without_tokens_is_one_clear_sentence(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "BOT_TOKEN" in lines[0] and ".env.example" in lines[0]


@pytest.mark.parametrize("ttl", [1, 5, 59, 60, 2_678_400])
def test_invoice_ttl_takes_crypto_pays_whole_range(monkeypatch, ttl):
    monkeypatch.setenv("INVOICE_TTL_SECONDS", str(ttl))
    settings = load_settings(**TOKENS)
    assert settings.invoice_ttl_seconds == ttl
    warned = [note for note in settings.warnings() if "INVOICE_TTL_SECONDS" in note]
    assert len(warned) == (1 if ttl < 60 else 0)


@pytest.mark.parametrize("ttl", ["0", "-1", "2678401"])
def test_invoice_ttl_outside_crypto_pays_range_is_refused(monkeypatch, ttl):
    monkeypatch.setenv("INVOICE_TTL_SECONDS", ttl)
    with pytest.raises(ConfigError, match="INVOICE_TTL_SECONDS"):
        load_settings(**TOKENS)


def test_a_short_invoice_ttl_is_warned_of_at_start_up(tmp_path):
    """`python -m bot` logs the warning, then goes on starting (here: Telegram is unreachable)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        **TOKENS,
        "INVOICE_TTL_SECONDS": "5",
        "TELEGRAM_API_URL": "http://127.0.0.1:1",
        "AUTO_MIGRATE": "false",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    (warning,) = [line for line in proc.stderr.splitlines() if "INVOICE_TTL_SECONDS" in line]
    assert "WARNING" in warning and "under a minute" in warning
    assert "Cannot reach Telegram" in proc.stderr  # it did not stop at the setting


def test_crypto_pay_rate_limit_is_off_unless_set(monkeypatch):
    assert load_settings(**TOKENS).cryptopay_rate_limit is None
    monkeypatch.setenv("CRYPTOPAY_RATE_LIMIT", "")
    assert load_settings(**TOKENS).cryptopay_rate_limit is None
    monkeypatch.setenv("CRYPTOPAY_RATE_LIMIT", "5")
    assert load_settings(**TOKENS).cryptopay_rate_limit == 5.0
    monkeypatch.setenv("CRYPTOPAY_RATE_LIMIT", "0")
    with pytest.raises(ConfigError, match="CRYPTOPAY_RATE_LIMIT"):
        load_settings(**TOKENS)
