"""The Mini App initData check against vectors signed here, step by step as Telegram's
documentation words it (not with the sandbox's signer)."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote, urlencode

import pytest

from bot.sandbox.webapp import sign_init_data
from bot.webapp.auth import InitDataError, secret_key, validate_init_data

TOKEN = "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
NOW = 1_760_000_000
USER = {"id": 279058397, "first_name": "Vladislav", "username": "vdkfrost", "language_code": "ru"}


def signed(fields: dict[str, str], token: str = TOKEN) -> str:
    """initData as Telegram builds it: the fields, plus hash over their sorted key=value lines."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    key = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    digest = hmac.new(key, check.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest}, quote_via=quote)


def fields(auth_date: int = NOW - 60) -> dict[str, str]:
    return {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(USER, separators=(",", ":"), ensure_ascii=False),
        "auth_date": str(auth_date),
        "signature": "not-checked-by-the-bot-token-method",
    }


def check(init_data: str, token: str = TOKEN, max_age: int = 86400) -> object:
    return validate_init_data(init_data, secret_key(token), max_age=max_age, now=NOW)


def test_good_initdata_gives_its_user() -> None:
    user = check(signed(fields()))
    assert user.id == USER["id"]  # type: ignore[attr-defined]
    assert user.username == "vdkfrost"  # type: ignore[attr-defined]
    assert user.language_code == "ru"  # type: ignore[attr-defined]


def test_the_sandbox_signer_signs_what_the_validator_accepts() -> None:
    data = sign_init_data(TOKEN, {"id": 7, "first_name": "Ann"}, auth_date=NOW, extra={"a": "b"})
    assert check(data).id == 7  # type: ignore[attr-defined]


def test_a_tampered_field_is_refused() -> None:
    good = fields()
    data = signed(good)
    other_user = json.dumps({**USER, "id": 1}, separators=(",", ":"))
    forged = data.replace(quote(good["user"], safe=""), quote(other_user, safe=""))
    assert forged != data
    with pytest.raises(InitDataError, match="hash"):
        check(forged)


def test_an_extra_field_added_after_signing_is_refused() -> None:
    with pytest.raises(InitDataError, match="hash"):
        check(signed(fields()) + "&start_param=x")


def test_another_bots_token_is_refused() -> None:
    with pytest.raises(InitDataError, match="hash"):
        check(signed(fields(), token="1111:other-bot"))


def test_stale_auth_date_is_refused_and_the_limit_itself_passes() -> None:
    with pytest.raises(InitDataError, match="old"):
        check(signed(fields(auth_date=NOW - 86401)))
    assert check(signed(fields(auth_date=NOW - 86400))).id == USER["id"]  # type: ignore[attr-defined]
    with pytest.raises(InitDataError, match="old"):
        check(signed(fields(auth_date=NOW - 61)), max_age=60)


@pytest.mark.parametrize(
    "data",
    [
        "",
        urlencode(fields()),  # no hash at all
        urlencode({**fields(), "hash": ""}),
        "user=%7B%7D&hash=zz&hash=zz",
        "%%%",
    ],
)
def test_missing_hash_or_garbage_is_refused(data: str) -> None:
    with pytest.raises(InitDataError):
        check(data)


def test_signed_data_without_a_user_is_refused() -> None:
    no_user = {k: v for k, v in fields().items() if k != "user"}
    with pytest.raises(InitDataError, match="user"):
        check(signed(no_user))


def test_webapp_settings_defaults_and_https_only(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bot.config import ConfigError, load_settings

    monkeypatch.chdir(tmp_path)
    base = {"BOT_TOKEN": "1:abc", "CRYPTOPAY_TOKEN": "1:xyz"}
    settings = load_settings(**base)
    assert settings.webapp_url is None
    assert settings.webapp_init_max_age_seconds == 86400
    assert settings.webapp_script_url == "https://telegram.org/js/telegram-web-app.js"
    assert load_settings(**base, WEBAPP_URL="https://shop.example.com/").webapp_url == (
        "https://shop.example.com"
    )
    assert load_settings(**base, WEBAPP_URL="").webapp_url is None
    with pytest.raises(ConfigError, match="WEBAPP_URL"):
        load_settings(**base, WEBAPP_URL="http://shop.example.com")
