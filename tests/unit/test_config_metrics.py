"""METRICS_ALLOW / METRICS_TOKEN / METRICS_CACHE_SECONDS (PRODUCT.md §2.1, issue 15)."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings

TOKENS = {"BOT_TOKEN": "123456:ABC-def_ghi", "CRYPTOPAY_TOKEN": "1234:AAzQcZWQqQAbsfgPnOLr4F"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for field in Settings.model_fields.values():
        monkeypatch.delenv(field.alias or "", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_loopback_and_no_token() -> None:
    s = load_settings(**TOKENS)
    assert s.metrics_allow == (ip_network("127.0.0.0/8"), ip_network("::1/128"))
    assert s.metrics_token is None
    assert s.metrics_cache_seconds == 15


def test_networks_parse_and_the_token_is_secret() -> None:
    token = "prometheus-Scraper_token-01"
    networks = " 10.0.0.0/8, 192.168.1.7 ,fd00::/8"
    s = load_settings(**TOKENS, METRICS_ALLOW=networks, METRICS_TOKEN=token)
    assert s.metrics_allow == (
        ip_network("10.0.0.0/8"),
        ip_network("192.168.1.7/32"),
        ip_network("fd00::/8"),
    )
    assert s.metrics_token is not None and s.metrics_token.get_secret_value() == token
    assert token not in repr(s) and token not in str(s)
    assert load_settings(**TOKENS, METRICS_ALLOW="").metrics_allow == ()
    assert load_settings(**TOKENS, METRICS_TOKEN="").metrics_token is None


@pytest.mark.parametrize(
    "env",
    [
        {"METRICS_ALLOW": "10.0.0.5/8"},  # host bits set: say what is meant
        {"METRICS_ALLOW": "localhost"},
        {"METRICS_TOKEN": "too-short"},
        {"METRICS_TOKEN": "has a space in it, 16+"},
        {"METRICS_CACHE_SECONDS": "-1"},
    ],
)
def test_bad_values_name_the_variable_not_the_token(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(**TOKENS, **env)
    (name,) = env
    assert name in str(error.value)
    if name == "METRICS_TOKEN":
        assert env[name] not in str(error.value)
