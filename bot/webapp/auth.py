"""Telegram Mini App `initData`, validated as Telegram's documentation prescribes.

https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app: the
data-check-string is every received field but `hash`, as `key=value` sorted by key and joined
by newlines; `secret_key = HMAC_SHA256(key="WebAppData", msg=bot_token)`; the data is genuine
when `hex(HMAC_SHA256(key=secret_key, msg=data_check_string))` equals `hash`. The user is taken
only from data that passed, and only while `auth_date` is recent enough.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl


class InitDataError(Exception):
    """Missing, malformed, tampered or stale initData (the reason is for logs, not users)."""

    def __init__(self, reason: str, *, stale: bool = False) -> None:
        super().__init__(reason)
        self.stale = stale  # genuine, but older than the limit: the page is to be reopened


@dataclass(frozen=True)
class WebAppUser:
    id: int
    first_name: str = ""
    username: str | None = None
    language_code: str | None = None


def secret_key(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def validate_init_data(init_data: str, key: bytes, *, max_age: int, now: float) -> WebAppUser:
    """The user of `init_data`, signed with `key` (`secret_key(bot_token)`) at most
    `max_age` seconds before `now`; InitDataError otherwise."""
    if not init_data:
        raise InitDataError("no initData")
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InitDataError("initData is not a query string") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataError("a field appears twice")
    given = fields.pop("hash", "")
    if not given:
        raise InitDataError("no hash")
    check = "\n".join(f"{name}={fields[name]}" for name in sorted(fields))
    expected = hmac.new(key, check.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise InitDataError("hash mismatch")
    try:
        auth_date = int(fields.get("auth_date", ""))
    except ValueError:
        raise InitDataError("no auth_date") from None
    if now - auth_date > max_age:
        raise InitDataError("initData is too old", stale=True)
    try:
        user = json.loads(fields["user"])
        return WebAppUser(
            id=int(user["id"]),
            first_name=str(user.get("first_name") or ""),
            username=user.get("username") or None,
            language_code=user.get("language_code") or None,
        )
    except (KeyError, ValueError, TypeError):
        raise InitDataError("no user") from None


def unsafe_language(init_data: str) -> str | None:
    """The language code initData claims, unvalidated: only to word a refusal of it."""
    try:
        user = json.loads(dict(parse_qsl(init_data)).get("user", "{}"))
        code = user.get("language_code") if isinstance(user, dict) else None
        return code if isinstance(code, str) else None
    except ValueError:
        return None
