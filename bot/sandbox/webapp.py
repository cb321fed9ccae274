"""Telegram Mini App ``initData`` as Telegram signs it, for a simulated user (tests, demo).

Telegram's Mini App documentation: the data-check-string is every field but ``hash``,
``key=value`` sorted by key and joined with newlines; the secret key is
HMAC-SHA-256(key="WebAppData", message=bot_token); ``hash`` is the hex HMAC-SHA-256 of the
data-check-string with that key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode


def sign_init_data(
    bot_token: str,
    user: dict[str, Any],
    *,
    auth_date: int | None = None,
    extra: dict[str, str] | None = None,
) -> str:
    """The ``initData`` query string a Mini App opened by ``user`` receives."""
    fields = {
        "auth_date": str(int(time.time()) if auth_date is None else auth_date),
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
        **(extra or {}),
    }
    check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)
