"""Signed Mini App ``initData`` for tests and local demos (what Telegram hands a Mini App).

Signed exactly as https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app
prescribes: ``secret_key = HMAC_SHA256(key="WebAppData", msg=bot_token)``, ``hash = hex
HMAC_SHA256(secret_key, data_check_string)`` where the data-check-string is the sorted
``key=value`` pairs (all but ``hash``) joined by newlines.
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
    """A query string ``user=%7B...%7D&auth_date=...&hash=...`` signed for ``bot_token``."""
    fields: dict[str, str] = {
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
        "auth_date": str(int(time.time()) if auth_date is None else auth_date),
    }
    fields.update(extra or {})
    fields.pop("hash", None)
    check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)
