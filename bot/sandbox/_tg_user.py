"""A simulated Telegram user chatting privately with the bot under test."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.sandbox._server import UploadedFile
from bot.sandbox._tg_model import CallbackRecord, SentMessage

if TYPE_CHECKING:
    from bot.sandbox.telegram import FakeTelegram

Match = str | Callable[[SentMessage], bool] | None


class FakeUser:
    """Acts in its private chat: sends text and files, taps buttons, waits for the bot."""

    def __init__(
        self,
        tg: FakeTelegram,
        user_id: int,
        first_name: str,
        username: str | None,
        last_name: str | None,
        language_code: str | None,
    ) -> None:
        self.tg = tg
        self.id = user_id
        self.first_name = first_name
        self.username = username
        self.last_name = last_name
        self.language_code = language_code
        self.chat_instance = str(secrets.randbits(63))
        # Index into the chat's event log at this user's last action: waits look from here.
        self.mark = 0

    # --- wire objects -------------------------------------------------------------------------

    def as_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def as_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    # --- actions ------------------------------------------------------------------------------

    def _events(self) -> list[SentMessage]:
        return self.tg._events.setdefault(self.id, [])

    async def send(self, text: str) -> SentMessage:
        """Send a text message to the bot (a ``message`` update; commands get an entity)."""
        self.mark = len(self._events())
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            fields["entities"] = [
                {
                    "type": "bot_command",
                    "offset": 0,
                    "length": len(command.encode("utf-16-le")) // 2,
                }
            ]
        return await self._deliver(fields)

    async def send_document(
        self,
        filename: str,
        content: bytes,
        *,
        caption: str | None = None,
        mime_type: str = "text/plain",
    ) -> SentMessage:
        """Send a file; the bot can fetch it with getFile and the /file/ URL."""
        self.mark = len(self._events())
        file_id = self.tg.new_file_id("BQACAgIAAxkBAAI")
        self.tg.files[file_id] = UploadedFile(filename, content, mime_type)
        fields: dict[str, Any] = {
            "document": {
                "file_name": filename,
                "mime_type": mime_type,
                "file_id": file_id,
                "file_unique_id": file_id[-16:],
                "file_size": len(content),
            }
        }
        if caption:
            fields["caption"] = caption
        return await self._deliver(fields)

    async def send_photo(
        self, content: bytes, *, caption: str | None = None, filename: str = "photo.jpg"
    ) -> SentMessage:
        """Send a photo (a ``photo`` array of sizes, largest last, as Telegram does); the bot
        can getFile + download any size (each gives these bytes)."""
        self.mark = len(self._events())
        upload = UploadedFile(filename, content, "image/jpeg")
        fields: dict[str, Any] = {"photo": self.tg.photo_sizes(upload)}
        if caption:
            fields["caption"] = caption
        return await self._deliver(fields)

    async def _deliver(self, fields: dict[str, Any]) -> SentMessage:
        message = self.tg._new_message(self.id, fields, outgoing=False)
        self.tg._store(message)
        await self.tg.queue_update({"message": dict(message.raw)})
        return message

    async def tap(self, message: SentMessage | int, button_text: str) -> str:
        """Tap the inline button labelled ``button_text`` on a bot message; returns the query id.

        The button is looked up in the message's *current* keyboard (exact text first, then
        the single button containing the text). URL buttons cannot be tapped this way.
        """
        live = self._live(message)
        button = live.button(button_text)
        if "callback_data" not in button:
            raise ValueError(f"button {button['text']!r} is not a callback button: {button}")
        return await self._callback(live, button["callback_data"])

    async def tap_callback(self, message: SentMessage | int, callback_data: str) -> str:
        """Send a callback query with arbitrary data (e.g. forged) for a message of this chat."""
        return await self._callback(self._live(message), callback_data)

    def _live(self, message: SentMessage | int) -> SentMessage:
        message_id = message if isinstance(message, int) else message.message_id
        live = self.tg.messages.get((self.id, message_id))
        if live is None or live.deleted:
            raise LookupError(f"no message {message_id} in the chat with user {self.id}")
        return live

    async def _callback(self, message: SentMessage, data: str) -> str:
        self.mark = len(self._events())
        query_id = str(secrets.randbits(62))
        query = {
            "id": query_id,
            "from": self.as_user(),
            "message": dict(message.raw),
            "chat_instance": self.chat_instance,
            "data": data,
        }
        self.tg.callbacks[query_id] = CallbackRecord(query=query)
        await self.tg.queue_update({"callback_query": query})
        return query_id

    def block(self) -> None:
        self.tg.block(self.id)

    def unblock(self) -> None:
        self.tg.unblock(self.id)

    # --- observing ----------------------------------------------------------------------------

    async def wait_for_message(
        self, match: Match = None, *, timeout: float = 10.0, since: int | None = None
    ) -> SentMessage:
        """The first bot message sent or edited since this user's last action that matches.

        ``match`` is a substring of the text/caption or a predicate on the message. The
        result is a snapshot taken at that send/edit. ``since`` overrides the start index
        of the chat's event log (0: from the beginning of the chat).
        """
        start = self.mark if since is None else since
        check = _matcher(match)

        def probe() -> SentMessage | None:
            for event in self._events()[start:]:
                if event.outgoing and not event.deleted and check(event):
                    return event
            return None

        return await self.tg.wait_until(
            probe, timeout=timeout, what=f"a bot message {match!r} for user {self.id}"
        )

    async def wait_for_answer(self, query_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """The params of the bot's answerCallbackQuery for this callback query."""
        record = self.tg.callbacks[query_id]
        return await self.tg.wait_until(
            lambda: record.answer, timeout=timeout, what=f"an answer to callback {query_id}"
        )

    def chat_messages(self, *, include_user: bool = False) -> list[SentMessage]:
        """Every message of the chat as it looks now (edits applied, deleted ones left out)."""
        found = [
            m
            for (chat_id, _), m in self.tg.messages.items()
            if chat_id == self.id and not m.deleted and (m.outgoing or include_user)
        ]
        return sorted(found, key=lambda m: m.message_id)

    @property
    def version(self) -> int:
        """Grows with every send, edit and deletion in this chat (by the bot or the user): a
        watcher compares it with the value it saw last (``tg.wait_until`` wakes on changes)."""
        return len(self._events())

    def last_message(self) -> SentMessage | None:
        """The bot's latest message in the chat (current state), if any."""
        messages = self.chat_messages()
        return messages[-1] if messages else None


def _matcher(match: Match) -> Callable[[SentMessage], bool]:
    if match is None:
        return lambda m: True
    if isinstance(match, str):
        return lambda m: match in (m.text or "")
    return match
