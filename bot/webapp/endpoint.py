"""The frame of every storefront API call: `Authorization: tma <initData>` checked, the
shopper's language set, errors answered as `{"error": "<a sentence for the shopper>"}`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.context import ShopContext
from bot.i18n import language_of, use_language
from bot.screens.texts import en_webapp as tw
from bot.screens.texts import texts as t
from bot.webapp import views
from bot.webapp.auth import InitDataError, WebAppUser, unsafe_language, validate_init_data
from bot.webapp.state import WEBAPP_KEY, WebAppState
from storage import (
    DATABASE_ERRORS,
    Buyer,
)

log = logging.getLogger("bot.webapp")

MAX_BODY = 16 * 1024
Handler = Callable[[web.Request, ShopContext, WebAppUser], Awaitable[Any]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": views.plain_text(message)}, status=status)


def authorize(state: WebAppState, header: str, now: float) -> WebAppUser:
    scheme, _, init_data = header.partition(" ")
    if scheme.lower() != "tma":
        raise InitDataError("no tma authorization")
    init_data = init_data.strip()
    # A page sends the same initData with every call: its check is kept, its age is not.
    cached = state.checked.get(init_data)
    if cached is not None:
        user, auth_date = cached
        if now - auth_date <= state.max_age:
            return user
        raise InitDataError("initData is too old", stale=True)
    user = validate_init_data(init_data, state.key, max_age=state.max_age, now=now)
    state.remember(init_data, user)
    return user


def endpoint(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Authorization, the shopper's language, and errors as JSON, around an API handler."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        state = request.app[WEBAPP_KEY]
        ctx = state.ctx
        header = request.headers.get("Authorization", "")
        try:
            user = authorize(state, header, ctx.clock().timestamp())
        except InitDataError as refused:
            log.info("Mini App call refused: %s", refused, extra={"path": request.path})
            language = language_of(
                None, unsafe_language(header.partition(" ")[2]), ctx.settings.default_language
            )
            with use_language(language):
                return error(401, tw.SESSION_OLD if refused.stale else tw.OPEN_FROM_TELEGRAM)
        choice = await state.languages(user.id)
        language = language_of(choice, user.language_code, ctx.settings.default_language)
        with use_language(language):
            try:
                body = await handler(request, ctx, user)
            except ApiError as refused:
                return error(refused.status, refused.message)
            except DATABASE_ERRORS:
                log.exception("database unavailable for a Mini App call")
                return error(503, t.SOMETHING_WRONG)
            except Exception:
                log.exception("Mini App call failed", extra={"path": request.path})
                return error(500, t.SOMETHING_WRONG)
            response = body if isinstance(body, web.StreamResponse) else web.json_response(body)
            # A shopper's own data: never kept by a proxy or the webview's cache.
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response

    return wrapped


def buyer(user: WebAppUser) -> Buyer:
    return Buyer(user.id, user.username, user.language_code)


async def read_json(request: web.Request) -> dict[str, Any]:
    if (request.content_length or 0) > MAX_BODY:
        raise ApiError(413, tw.BAD_REQUEST)
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except web.HTTPRequestEntityTooLarge:  # no Content-Length, and past client_max_size
        raise ApiError(413, tw.BAD_REQUEST) from None
    except ValueError:
        raise ApiError(400, tw.BAD_REQUEST) from None
    if not isinstance(data, dict):
        raise ApiError(400, tw.BAD_REQUEST)
    return data


def int_of(value: Any, *, low: int = 0, high: int = 2**31 - 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, tw.BAD_REQUEST) from None
    if not low <= number <= high:
        raise ApiError(400, tw.BAD_REQUEST)
    return number
