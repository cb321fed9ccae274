"""The aiohttp routes: Crypto Pay webhook, health and metrics (PRODUCT.md §6)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.context import ShopContext
from bot.logs import log_context
from bot.photos.routes import add_photo_routes
from bot.shop.settlement import SettleReport, settle_invoices
from payments import InvalidUpdateError, Invoice, parse_update, verify_signature
from storage import DATABASE_ERRORS, SETTLE_BATCH, Coalescer, orders_by_status, outbox_backlog

log = logging.getLogger("bot.web")

MAX_WEBHOOK_BODY = 1024 * 1024
SIGNATURE_HEADER = "crypto-pay-api-signature"
CTX_KEY = web.AppKey("ctx", ShopContext)
# A paid invoice and the webhook body that told of it.
Paid = tuple[Invoice, str]
SETTLER_KEY = web.AppKey("settler", Coalescer[Paid, SettleReport])


def build_web_app(ctx: ShopContext) -> web.Application:
    app = web.Application(client_max_size=MAX_WEBHOOK_BODY)
    app[CTX_KEY] = ctx
    app[SETTLER_KEY] = webhook_settler(ctx)
    app.router.add_post(ctx.settings.cryptopay_webhook_path, cryptopay_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_photo_routes(app, ctx.db)
    return app


def same_secret(given: str | None, expected: str) -> bool:
    """A header's value against a secret, in constant time; any text that is not the secret
    (non-ASCII too) is a mismatch, never an error."""
    if given is None:
        return False
    try:
        # aiohttp hands undecodable header bytes over as surrogate escapes.
        raw = given.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(raw, expected.encode("utf-8"))


class TelegramWebhookHandler(SimpleRequestHandler):
    """aiogram's webhook handler with a secret check that cannot raise: its own compares str
    with `secrets.compare_digest`, which raises on a non-ASCII header (a 500 with a
    traceback). Here a wrong header of any kind is answered 401."""

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        return bool(self.secret_token) and same_secret(
            telegram_secret_token, self.secret_token or ""
        )


def add_telegram_webhook(
    app: web.Application, dp: Dispatcher, bot: Bot, *, path: str, secret: str
) -> None:
    """The Telegram webhook route: updates are handled in the background, 200 at once."""
    TelegramWebhookHandler(
        dispatcher=dp, bot=bot, secret_token=secret, handle_in_background=True
    ).register(app, path=path)


def webhook_settler(ctx: ShopContext) -> Coalescer[Paid, SettleReport]:
    """Group commit for the webhook: the payments of webhooks arriving while a settle
    transaction runs are settled together in the next one (up to SETTLE_BATCH), each
    webhook answered with its own outcome once that transaction has committed."""

    async def settle(paid: Sequence[Paid]) -> list[SettleReport | Exception]:
        invoices = [invoice for invoice, _ in paid]
        bodies = [body for _, body in paid]
        return await settle_invoices(ctx, invoices, source="webhook", raw_bodies=bodies)

    return Coalescer(settle, SETTLE_BATCH)


def _answer(ctx: ShopContext, status: int, body: dict[str, object]) -> web.Response:
    ctx.metrics.webhook_responses.labels(code=str(status)).inc()
    return web.json_response(body, status=status)


async def cryptopay_webhook(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    if (request.content_length or 0) > MAX_WEBHOOK_BODY:
        return _answer(ctx, 413, {"ok": False, "error": "body too large"})
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _answer(ctx, 413, {"ok": False, "error": "body too large"})
    token = ctx.settings.cryptopay_token.get_secret_value()
    if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), token):
        log.warning(
            "Crypto Pay webhook with a bad or missing signature", extra={"peer": request.remote}
        )
        return _answer(ctx, 401, {"ok": False, "error": "bad signature"})
    try:
        update = parse_update(body)
    except InvalidUpdateError as error:
        log.warning("Crypto Pay webhook body is not an update: %s", error)
        return _answer(ctx, 400, {"ok": False, "error": "not an update"})
    log.debug("Crypto Pay webhook verified: %s, %d bytes", update.update_type, len(body))
    if update.update_type != "invoice_paid":
        log.info("ignoring Crypto Pay update", extra={"update_type": update.update_type})
        return _answer(ctx, 200, {"ok": True, "ignored": True})
    # The context covers the failure line too: an operator needs the invoice id most there.
    with log_context(invoice_id=update.payload.invoice_id):
        try:
            settle = request.app[SETTLER_KEY]
            report = await settle((update.payload, body.decode("utf-8", "replace")))
        except DATABASE_ERRORS:
            log.exception("database unavailable while settling a webhook")
            return _answer(ctx, 503, {"ok": False, "error": "try again later"})
    return _answer(ctx, 200, {"ok": True, "result": report.outcome})


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    if await ctx.db.ping():
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unavailable"}, status=503)


# A request carrying one of these came through a proxy: its socket peer is the proxy, not
# the client, so it gets no network pass (and what the header claims is never read).
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def metrics_refusal(request: web.Request) -> web.Response | None:
    """None when the request may read /metrics (PRODUCT.md §2.1: a peer in METRICS_ALLOW,
    or `Authorization: Bearer <METRICS_TOKEN>`), else the answer: 401 when a token is
    configured (missing or wrong), 403 when none is."""
    settings = request.app[CTX_KEY].settings
    if peer_allowed(request, settings.metrics_allow):
        return None
    token = settings.metrics_token
    if token is None:
        return web.json_response({"error": "forbidden"}, status=403)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and same_secret(given.strip(), token.get_secret_value()):
        return None
    return web.json_response(
        {"error": "unauthorized"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )


def peer_allowed(request: web.Request, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    """Whether the socket's peer is in one of `networks`; X-Forwarded-For and the like are
    never believed, and a request that carries them gets no pass (see FORWARDING_HEADERS)."""
    if not networks or any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    try:
        address = ip_address(request.remote or "")
    except ValueError:  # a Unix socket, or no peer at all
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1
    return any(address in network for network in networks)


async def metrics(request: web.Request) -> web.Response:
    refusal = metrics_refusal(request)
    if refusal is not None:
        log.debug("metrics refused", extra={"peer": request.remote, "status": refusal.status})
        return refusal
    ctx = request.app[CTX_KEY]

    async def read() -> tuple[dict[str, int], int]:
        return await orders_by_status(ctx.db), await outbox_backlog(ctx.db)

    try:  # gauges read from the database (shared by every replica), cached between scrapes
        await ctx.metrics.refresh_gauges(
            read,
            now=lambda: ctx.clock().timestamp(),
            max_age=ctx.settings.metrics_cache_seconds,
        )
    except DATABASE_ERRORS:
        log.warning("metrics: database unavailable; gauges not refreshed")
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
