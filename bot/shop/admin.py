"""The admin's actions: code uploads, /recheck, and the audit log every admin action writes."""

from __future__ import annotations

import logging
import time
import unicodedata
from dataclasses import dataclass

from bot.context import ShopContext
from bot.screens.texts import en_admin as ta
from bot.shop.settlement import recheck_order
from payments import CryptoPayError
from storage import ProductNotFound, add_codes, get_order, get_product, stock_counts, write_audit

log = logging.getLogger("bot.admin")

MAX_UPLOAD_BYTES = 512 * 1024
MAX_CODE_LENGTH = 512
# Characters that make a code look like another, hide part of it, or break it in two on the
# buyer's screen (the Trojan Source bidi controls, zero-width joiners, U+2028 …).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")


async def audit(ctx: ShopContext, admin_id: int, action: str, details: str, result: str) -> None:
    """Who did what, when, with what result. Never lets a logging failure hide the action."""
    try:
        await write_audit(ctx.db, admin_id, action, details[:2000], result[:256])
    except Exception:
        log.exception("could not write the audit log", extra={"action": action})


@dataclass(frozen=True)
class UploadResult:
    ok: bool
    text: str
    added: int = 0
    skipped: int = 0


def _hidden_character(line: str) -> tuple[str, str] | None:
    """(kind, character) of the first character no code may hold, or None."""
    for char in line:
        if char in _BIDI:
            return "bidi", char
        if char in _ZERO_WIDTH:
            return "zero-width", char
        category = unicodedata.category(char)
        if category == "Cc":
            return "control", char
        if category in ("Zl", "Zp"):
            return "line separator", char
        if category == "Cf":
            return "formatting", char
    return None


def parse_codes(data: bytes) -> tuple[list[str] | None, str]:
    """One code per line, lines ending in \\n or \\r\\n only (str.splitlines() would also
    split on U+0085, U+2028 and others, cutting a code in two unnoticed);
    (codes, "") or (None, why the file is refused)."""
    if len(data) > MAX_UPLOAD_BYTES:
        return None, ta.upload_too_big(MAX_UPLOAD_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, ta.upload_not_utf8()
    lines = text.split("\n")
    if lines[-1] == "":  # the last line's own line break
        lines.pop()
    codes = []
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r").strip(" \t")
        hidden = _hidden_character(line)
        if hidden is not None:
            return None, ta.upload_hidden_character(number, *hidden)
        line = line.strip()
        if len(line) > MAX_CODE_LENGTH:
            return None, ta.upload_bad_line(number, ta.upload_line_too_long(MAX_CODE_LENGTH))
        codes.append(line)
    if not any(codes):
        return None, ta.UPLOAD_EMPTY
    return codes, ""


async def upload_codes(ctx: ShopContext, sku: str, data: bytes) -> UploadResult:
    product = await get_product(ctx.db, sku)
    if product is None or product.id is None:
        return UploadResult(False, ta.unknown_sku(sku))
    if product.unlimited:
        return UploadResult(False, ta.UPLOAD_UNLIMITED)
    codes, why = parse_codes(data)
    if codes is None:
        return UploadResult(False, why)
    started = time.monotonic()
    try:
        added, skipped = await add_codes(ctx.db, sku, codes)
    except ProductNotFound:
        return UploadResult(False, ta.unknown_sku(sku))
    took = time.monotonic() - started
    log.info("codes uploaded", extra={"sku": sku, "added": added, "seconds": round(took, 3)})
    available = (await stock_counts(ctx.db, product.id)).available
    text = ta.codes_added(sku, added, skipped, available) + " " + ta.upload_took(took)
    return UploadResult(True, text, added, skipped)


async def recheck(ctx: ShopContext, admin_id: int, order_id: int) -> str:
    """Settle from getInvoices now (the same settle path as the webhook); the answer text."""
    details = await get_order(ctx.db, order_id)
    if details is None:
        text, result = ta.order_not_found(order_id), "not found"
    else:
        try:
            invoice_status = await recheck_order(ctx, details.order, source="recheck")
        except CryptoPayError as error:
            invoice_status = ""
            text, result = ta.cryptopay_down(error.name), f"error {error.name}"
        if invoice_status == "none":
            text, result = ta.recheck_no_invoice(order_id), "no invoice"
        elif invoice_status:
            after = await get_order(ctx.db, order_id)
            status = after.order.status if after else details.order.status
            text, result = ta.recheck(order_id, invoice_status, status), f"invoice {invoice_status}"
    await audit(ctx, admin_id, "recheck", str(order_id), result)
    return text
