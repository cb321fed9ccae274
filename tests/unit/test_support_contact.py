"""SUPPORT_CONTACT (PRODUCT.md §2.1): a @username or an https URL, optional."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings
from tests.unit.test_config import TOKENS


@pytest.fixture(autouse=True)
def no_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.delenv("SUPPORT_CONTACT", raising=False)
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]


def test_unset_by_default_and_blank_is_unset() -> None:
    assert load_settings(**TOKENS).support_contact is None
    assert load_settings(**TOKENS, SUPPORT_CONTACT="  ").support_contact is None


@pytest.mark.parametrize(
    "value", ["@shop_help", "@abcde", "@" + "a" * 32, "https://example.com/support?x=1"]
)
def test_a_username_or_an_https_url_is_taken(value: str) -> None:
    assert load_settings(**TOKENS, SUPPORT_CONTACT=f" {value} ").support_contact == value


@pytest.mark.parametrize(
    "value",
    ["shop_help", "@abcd", "@" + "a" * 33, "@shop-help", "http://example.com", "https://", "x y"],
)
def test_anything_else_stops_the_start_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(**TOKENS, SUPPORT_CONTACT=value)
    assert "SUPPORT_CONTACT" in str(err.value)
