"""Telegram-side data of the fake Bot API: recorded messages, errors and validation rules."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from bot.sandbox._server import UploadedFile

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BLOCKED = "Forbidden: bot was blocked by the user"
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)  # every type but chat_member, message_reaction and message_reaction_count, as Telegram does
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_HTML_TAGS = frozenset(
    "b strong i em u ins s strike del span tg-spoiler a code pre blockquote tg-emoji".split()
)
_URL_RE = re.compile(r"^(https?|tg)://[^\s/$.?#][^\s]*$", re.IGNORECASE)


class TgError(Exception):
    """An error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad(description: str) -> TgError:
    return TgError(400, f"Bad Request: {description}")


@dataclass
class SentMessage:
    """A message in a private chat, as the fake holds it (``raw`` is the wire object)."""

    chat_id: int
    message_id: int
    raw: dict[str, Any]
    outgoing: bool = True  # sent by the bot (False: sent by the simulated user)
    deleted: bool = False
    edits: int = 0
    raw_text: str | None = None  # text/caption exactly as the bot sent it (before HTML parsing)
    file: UploadedFile | None = None  # the uploaded document/photo, if any
    parse_mode: str | None = None  # the parse_mode of the latest send/edit of its text

    @property
    def text(self) -> str | None:
        return self.raw.get("text", self.raw.get("caption"))

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.raw.get("reply_markup")

    def buttons(self) -> list[dict[str, Any]]:
        """Inline keyboard buttons, row by row, flattened."""
        markup = self.reply_markup or {}
        return [btn for row in markup.get("inline_keyboard", []) for btn in row]

    def button_texts(self) -> list[str]:
        return [btn["text"] for btn in self.buttons()]

    def button(self, text: str) -> dict[str, Any]:
        """The button whose text is ``text``, else the only one containing it (case-blind)."""
        buttons = self.buttons()
        exact = [b for b in buttons if b["text"] == text]
        if exact:
            return exact[0]
        near = [b for b in buttons if text.casefold() in b["text"].casefold()]
        if len(near) == 1:
            return near[0]
        raise LookupError(
            f"no single button {text!r} in message {self.message_id}; buttons: "
            f"{self.button_texts()}"
        )

    def snapshot(self) -> SentMessage:
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        flag = "bot" if self.outgoing else "user"
        return f"<SentMessage {self.chat_id}/{self.message_id} {flag} {self.text!r}>"


# --- parameters ---------------------------------------------------------------------------


def param_json(params: dict[str, Any], key: str) -> Any:
    """A JSON-serialized field (reply_markup, allowed_updates...): strings are decoded."""
    value = params.get(key)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise bad(f"can't parse {key} JSON object") from None
    return value


def param_int(params: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f'field "{key}" must be of type Integer') from None


def param_bool(params: dict[str, Any], key: str) -> bool:
    value = params.get(key)
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def text_length(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


# --- formatting -------------------------------------------------------------------------------


class _HtmlText(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.parts: list[str] = []
        self.stack: list[str] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        lines = self.source.split("\n")
        prefix = "\n".join(lines[: line - 1]) + ("\n" if line > 1 else "")
        return len((prefix + lines[line - 1][:col]).encode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise bad(
                f'can\'t parse entities: Unsupported start tag "{tag}" at byte offset '
                f"{self._offset()}"
            )
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            expected = f'"</{self.stack[-1]}>"' if self.stack else "none"
            raise bad(
                f"can't parse entities: Unmatched end tag at byte offset {self._offset()}, "
                f'expected {expected}, found "</{tag}>"'
            )
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def render_text(text: str, parse_mode: str | None) -> str:
    """The text Telegram stores: HTML markup parsed (and checked), other modes kept verbatim."""
    if not parse_mode or parse_mode.upper() != "HTML":
        return text
    parser = _HtmlText(text)
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise bad(
            "can't parse entities: Can't find end tag corresponding to start tag "
            f'"{parser.stack[-1]}"'
        )
    return "".join(parser.parts)


def check_markup(markup: Any) -> None:
    """Reject reply markup the way Telegram does (the common cases)."""
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        return
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad(
            'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
        )
    for row in rows:
        for btn in row:
            _check_button(btn)


def _check_button(btn: Any) -> None:
    if not isinstance(btn, dict) or not isinstance(btn.get("text"), str):
        raise bad('can\'t parse inline keyboard button: Field "text" must be of type String')
    if not any(key in btn for key in _BUTTON_ACTIONS):
        raise bad(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in btn:
        data = btn["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
            raise bad("BUTTON_DATA_INVALID")
    if "url" in btn:
        url = btn["url"]
        host = re.sub(r"^[a-z]+://", "", str(url)).split("/")[0].split(":")[0].lower()
        if not _URL_RE.match(str(url)) or host in ("localhost", "127.0.0.1", "0.0.0.0"):
            raise bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


@dataclass
class CallbackRecord:
    """A callback query the fake issued, and the bot's answer to it (if any)."""

    query: dict[str, Any]
    answer: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
