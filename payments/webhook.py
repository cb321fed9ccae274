"""Crypto Pay webhook: signature check of the raw body, and parsing of an update."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pydantic import ValidationError

from .models import Update

__all__ = ["SIGNATURE_HEADER", "InvalidUpdateError", "parse_update", "verify_signature"]

#: The header Crypto Pay puts the signature in (HTTP headers are case-insensitive).
SIGNATURE_HEADER = "crypto-pay-api-signature"

_HEX_DIGITS = frozenset("0123456789abcdef")


class InvalidUpdateError(ValueError):
    """The body is not a Crypto Pay update (not JSON, or not shaped like an update)."""


def verify_signature(body: bytes, signature: str | None, token: Any) -> bool:
    """Is ``signature`` the hex HMAC-SHA-256 of the raw ``body`` keyed with SHA-256(token)?

    Pass the bytes exactly as received (``await request.read()``), never re-serialised JSON.
    Policy on case: Crypto Pay sends 64 lower-case hex digits, and only that form is accepted;
    upper-case or padded values are rejected. Never raises for a bad header: ``False``.
    """
    if not isinstance(signature, str) or len(signature) != 64:
        return False
    if not _HEX_DIGITS.issuperset(signature):
        return False
    secret = token.get_secret_value() if hasattr(token, "get_secret_value") else token
    if not isinstance(secret, str) or not secret:
        return False
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        try:
            body = bytes(body)
        except TypeError:
            return False
    key = hashlib.sha256(secret.encode("utf-8")).digest()
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii"))


def parse_update(body: bytes) -> Update:
    """Parse a webhook body (verify its signature first) into an :class:`Update`."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise InvalidUpdateError(f"webhook body is not JSON: {exc}") from None
    if not isinstance(data, dict) or "update_type" not in data or "payload" not in data:
        raise InvalidUpdateError("webhook body is not a Crypto Pay update")
    try:
        return Update.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:5])
        raise InvalidUpdateError(f"webhook update has invalid fields: {fields}") from None
