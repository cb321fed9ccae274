"""A fake Telegram Bot API server (aiohttp) that answers like api.telegram.org.

    async with FakeTelegram(token="123:ABC") as tg:
        bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
        alice = tg.user(1001, first_name="Alice")
        await alice.send("/start")
        menu = await alice.wait_for_message("Catalog")
        await alice.tap(menu, "Catalog")

See bot/sandbox/README.md for the whole API.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.sandbox._server import BadBody, FakeServer, FaultRule, read_params, take_fault
from bot.sandbox._tg_methods import MessageMethods
from bot.sandbox._tg_model import (
    BLOCKED,
    DEFAULT_UPDATE_TYPES,
    POLL_CONFLICT,
    QUERY_TOO_OLD,
    CallbackRecord,
    SentMessage,
    TgError,
    bad,
    param_int,
    param_json,
)
from bot.sandbox._tg_updates import UpdateMethods
from bot.sandbox._tg_user import FakeUser

_FAULT_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: BLOCKED,
    404: "Not Found",
    409: POLL_CONFLICT,
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class FakeTelegram(MessageMethods, UpdateMethods, FakeServer):
    """Serves ``/bot<token>/<method>`` and ``/file/bot<token>/<path>`` on 127.0.0.1."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        bot_username: str = "fake_shop_bot",
        bot_first_name: str = "Fake Shop",
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_timeout: float = 10.0,
    ) -> None:
        FakeServer.__init__(self, host=host, port=port)
        self.token = token
        head = token.split(":", 1)[0]
        self.bot_id = int(head) if head.isdigit() else 1
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.webhook_timeout = webhook_timeout
        # What tests inspect.
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[tuple[int, int], SentMessage] = {}
        self.callbacks: dict[str, CallbackRecord] = {}
        self.files: dict[str, Any] = {}  # file_id -> UploadedFile
        self.blocked: set[int] = set()
        self.webhook: dict[str, Any] | None = None
        self.webhook_deliveries: list[dict[str, Any]] = []
        self.allowed_updates: list[str] | None = None
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.dropped_updates: list[dict[str, Any]] = []
        # A load balancer in front of several replicas: when set, webhook updates go to these
        # URLs in turn (with the registered secret) instead of the registered URL.
        self.webhook_targets: list[str] | None = None
        # Seconds every call takes before it reaches "Telegram" (the network, Telegram's own
        # time). A call whose client goes away meanwhile never arrives: it has no effect and
        # is listed in ``abandoned`` (a process killed mid-send sent nothing).
        self.latency = 0.0
        self.abandoned: list[tuple[str, dict[str, Any]]] = []
        # Requests being answered right now, and the most seen at once, by method.
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        # Internal state.
        self._target_turn = 0
        self.users: dict[int, FakeUser] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 700_000_001
        self._chat_seq: dict[int, int] = {}
        self._events: dict[int, list[SentMessage]] = {}
        self._faults: list[FaultRule] = []
        self._poll_generation = 0
        self._methods: dict[str, tuple[str, Handler]] = {}
        for name in (
            "getMe getUpdates sendMessage editMessageText editMessageReplyMarkup "
            "editMessageCaption answerCallbackQuery sendDocument sendPhoto deleteMessage "
            "setWebhook deleteWebhook getWebhookInfo setMyCommands deleteMyCommands "
            "getMyCommands setChatMenuButton getChatMenuButton getFile close logOut "
            "sendChatAction setMyDescription setMyShortDescription setMyName"
        ).split():
            self._methods[name.lower()] = (name, getattr(self, f"_m_{name}"))
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    # --- public API ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What the bot gets as ``TELEGRAM_API_URL``."""
        return self.origin

    def user(
        self,
        user_id: int,
        first_name: str = "User",
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> FakeUser:
        """A simulated user with a private chat with the bot (created once per id)."""
        if user_id not in self.users:
            self.users[user_id] = FakeUser(
                self, user_id, first_name, username, last_name, language_code
            )
        return self.users[user_id]

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name.lower() == method.lower()]

    def fail_next(
        self,
        method: str,
        status: int | None = 500,
        *,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
        for_chat: int | str | None = None,
        delay: float | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` fail (before any effect).

        ``status=429`` answers ``parameters.retry_after`` (default 1 s); ``delay`` holds the
        request open that long first (``status=None`` with a delay: slow but successful).
        ``for_chat`` limits the fault to calls whose ``chat_id`` is that chat.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        match = None
        if for_chat is not None:
            match = lambda p, chat=str(for_chat): str(p.get("chat_id")) == chat  # noqa: E731
        extra = {"retry_after": retry_after, "description": description}
        self._faults.append(FaultRule(method, status, times, delay, extra, match))

    def clear_faults(self) -> None:
        """Disarm every fault set with ``fail_next``."""
        self._faults.clear()

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sending to them answers 403."""
        self.blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        self.blocked.discard(user_id)

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        timeout: float = 10.0,
        since: int = 0,
    ) -> dict[str, Any]:
        """Params of the first call of ``method`` (from index ``since`` of ``calls``)."""

        def find() -> dict[str, Any] | None:
            for name, params in self.calls[since:]:
                if name.lower() == method.lower() and (predicate is None or predicate(params)):
                    return params
            return None

        return await self.wait_until(find, timeout=timeout, what=f"a {method} call")

    async def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Deliver a raw update (``update_id`` is assigned): queued, or POSTed to the webhook."""
        update = {"update_id": self._next_update_id, **update}
        self._next_update_id += 1
        kind = next(k for k in update if k != "update_id")
        allowed = set(self.allowed_updates or DEFAULT_UPDATE_TYPES)
        if kind not in allowed:
            self.dropped_updates.append(update)
            return update
        if self.webhook is not None:
            await self._post_webhook(update)
        else:
            self._updates.append(update)
            await self._notify()
        return update

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self._updates)

    # --- plumbing -----------------------------------------------------------------------------

    def _response(self, status: int, body: dict[str, Any]) -> web.Response:
        return web.json_response(body, status=status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._response(401, TgError(401, "Unauthorized").envelope())
        known = self._methods.get(request.match_info["method"].lower())
        try:
            params = await read_params(request)
        except BadBody:
            return self._response(400, bad("can't parse JSON object").envelope())
        name = known[0] if known else request.match_info["method"]
        self.calls.append((name, params))
        self.in_flight[name] = self.in_flight.get(name, 0) + 1
        self.max_in_flight[name] = max(self.max_in_flight.get(name, 0), self.in_flight[name])
        try:
            if known is None:
                raise TgError(404, "Not Found")
            if self.latency:
                await self.hang(self.latency)
                transport = request.transport
                if transport is None or transport.is_closing():
                    self.abandoned.append((name, params))
                    return web.Response(status=499)
            fault = take_fault(self._faults, name, params)
            if fault is not None:
                if fault.delay:
                    await self.hang(fault.delay)
                if fault.status is not None:
                    text = fault.extra["description"] or _FAULT_TEXT.get(fault.status, "Error")
                    if fault.status == 429:
                        text = fault.extra["description"] or (
                            f"Too Many Requests: retry after {fault.extra['retry_after']}"
                        )
                    raise TgError(fault.status, text, fault.extra["retry_after"])
            result = await known[1](params)
            body: dict[str, Any] = {"ok": True, "result": result}
            if isinstance(result, tuple):
                body = {"ok": True, "result": result[0], "description": result[1]}
            return self._response(200, body)
        except TgError as e:
            return self._response(e.code, e.envelope())
        finally:
            self.in_flight[name] -= 1
            await self._notify()

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._response(401, TgError(401, "Unauthorized").envelope())
        path = request.match_info["path"]
        for file_id, upload in self.files.items():
            if path == f"files/{file_id}" or path.endswith(f"/{file_id}"):
                return web.Response(body=upload.content, content_type=upload.content_type)
        return self._response(404, TgError(404, "Not Found").envelope())

    def _chat_of(self, params: dict[str, Any], *, sending: bool = True) -> int:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad("chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            chat_id = next((u.id for u in self.users.values() if f"@{u.username}" == raw), None)
            if chat_id is None:
                raise bad("chat not found")
        else:
            chat_id = param_int(params, "chat_id") or 0
        if chat_id not in self.users:
            raise bad("chat not found")
        if sending and chat_id in self.blocked:
            raise TgError(403, BLOCKED)
        return chat_id

    def _next_message_id(self, chat_id: int) -> int:
        self._chat_seq[chat_id] = self._chat_seq.get(chat_id, 0) + 1
        return self._chat_seq[chat_id]

    def _store(self, message: SentMessage) -> SentMessage:
        self.messages[(message.chat_id, message.message_id)] = message
        self._events.setdefault(message.chat_id, []).append(message.snapshot())
        return message

    def _new_message(self, chat_id: int, fields: dict[str, Any], *, outgoing: bool) -> SentMessage:
        user = self.users[chat_id]
        message_id = self._next_message_id(chat_id)
        raw = {
            "message_id": message_id,
            "from": self.bot_user if outgoing else user.as_user(),
            "chat": user.as_chat(),
            "date": int(time.time()),
            **fields,
        }
        return SentMessage(chat_id=chat_id, message_id=message_id, raw=raw, outgoing=outgoing)

    # --- callback queries, commands, menu, misc -----------------------------------------------

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        record = self.callbacks.get(str(params.get("callback_query_id") or ""))
        if record is None or record.answer is not None:
            raise bad(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        record.answer = params
        return True

    async def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        commands = param_json(params, "commands")
        if not isinstance(commands, list):
            raise bad('field "commands" must be of type Array')
        for cmd in commands:
            name = str(cmd.get("command", "")) if isinstance(cmd, dict) else ""
            if not (
                1 <= len(name) <= 32 and all(c.islower() or c.isdigit() or c == "_" for c in name)
            ):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", ""))) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = param_json(params, "scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _m_deleteMyCommands(self, params: dict[str, Any]) -> Any:
        self.commands.pop(self._commands_key(params), None)
        return True

    async def _m_getMyCommands(self, params: dict[str, Any]) -> Any:
        return self.commands.get(self._commands_key(params), [])

    async def _m_setChatMenuButton(self, params: dict[str, Any]) -> Any:
        button = param_json(params, "menu_button") or {"type": "default"}
        self.menu_buttons[param_int(params, "chat_id")] = button
        return True

    async def _m_getChatMenuButton(self, params: dict[str, Any]) -> Any:
        chat = param_int(params, "chat_id")
        return self.menu_buttons.get(chat, self.menu_buttons.get(None, {"type": "commands"}))

    async def _m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id") or "")
        upload = self.files.get(file_id)
        if upload is None:
            raise bad("invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": file_id[-16:],
            "file_size": len(upload.content),
            "file_path": f"{'photos' if upload.content_type.startswith('image/') else 'documents'}"
            f"/{file_id}",
        }

    async def _m_close(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_logOut(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        self._chat_of(params)
        return True

    async def _m_setMyDescription(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_setMyShortDescription(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_setMyName(self, params: dict[str, Any]) -> Any:
        return True

    def new_file_id(self, prefix: str) -> str:
        return prefix + secrets.token_urlsafe(30)
