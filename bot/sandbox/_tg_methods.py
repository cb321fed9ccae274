"""Bot API methods that send, edit and delete messages (mixed into FakeTelegram)."""

from __future__ import annotations

import mimetypes
import time
from typing import Any

from bot.sandbox._server import UploadedFile
from bot.sandbox._tg_model import (
    NOT_MODIFIED,
    SentMessage,
    bad,
    check_markup,
    param_int,
    param_json,
    render_text,
    text_length,
)

# Mixed into FakeTelegram; typed loosely because FakeTelegram is built from this class.
_Base: Any = object


class MessageMethods(_Base):
    # --- helpers ------------------------------------------------------------------------------

    def _text_param(self, params: dict[str, Any], key: str, limit: int) -> tuple[str, str]:
        raw = params.get(key)
        if raw is None or raw == "":
            raise bad("message text is empty")
        text = render_text(str(raw), params.get("parse_mode"))
        if not text.strip():
            raise bad("message text is empty")
        if text_length(text) > limit:
            raise bad("message is too long")
        return str(raw), text

    def _caption_param(self, params: dict[str, Any]) -> tuple[str | None, str | None]:
        raw = params.get("caption")
        if raw is None or raw == "":
            return None, None
        text = render_text(str(raw), params.get("parse_mode"))
        if text_length(text) > 1024:
            raise bad("message caption is too long")
        return str(raw), text

    def _inline_markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        markup = param_json(params, "reply_markup")
        check_markup(markup)
        # Only inline keyboards are part of the Message object Telegram returns.
        return markup if isinstance(markup, dict) and "inline_keyboard" in markup else None

    def _target(self, params: dict[str, Any], missing: str) -> SentMessage:
        if params.get("inline_message_id"):
            raise bad("MESSAGE_ID_INVALID")
        chat_id = self._chat_of(params)
        message = self.messages.get((chat_id, param_int(params, "message_id") or 0))
        if message is None or message.deleted:
            raise bad(missing)
        return message

    def _apply_edit(self, message: SentMessage, fields: dict[str, Any]) -> dict[str, Any]:
        for key, value in fields.items():
            if value is None:
                message.raw.pop(key, None)
            else:
                message.raw[key] = value
        message.raw["edit_date"] = int(time.time())
        message.edits += 1
        self._events.setdefault(message.chat_id, []).append(message.snapshot())
        return message.raw

    def _resolve_file(self, params: dict[str, Any], key: str) -> tuple[UploadedFile, str]:
        value = params.get(key)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if value is None or value == "":
            raise bad(f"there is no {key} in the request")
        if isinstance(value, UploadedFile):
            file_id = self.new_file_id(
                "BQACAgIAAxkBAAI" if key == "document" else "AgACAgIAAxkBAAI"
            )
            self.files[file_id] = value
            return value, file_id
        if isinstance(value, str) and value in self.files:
            if key == "photo" and value.startswith("BQAC"):  # a document's id, as Telegram's
                raise bad("can't use file of type Document as Photo")
            return self.files[value], value
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            name = value.rstrip("/").rsplit("/", 1)[-1] or "file"
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            upload = UploadedFile(filename=name, content=b"", content_type=ctype)
            file_id = self.new_file_id("AgACAgQAAxkDAAI" if key == "photo" else "BQACAgQAAxkDAAI")
            self.files[file_id] = upload
            return upload, file_id
        raise bad("wrong file identifier/HTTP URL specified")

    def photo_sizes(self, upload: UploadedFile, file_id: str | None = None) -> list[dict[str, Any]]:
        """A Message's ``photo``: three sizes, largest last, each with its own file_id that
        getFile serves (all of them give ``upload``'s bytes here)."""
        file_id = file_id or self.new_file_id("AgACAgIAAxkBAAI")
        self.files[file_id] = upload
        sizes = [(90, 60), (320, 213), (800, 533)]
        photo = []
        for i, (w, h) in enumerate(sizes):
            size_id = file_id if i == len(sizes) - 1 else f"{file_id}_{w}"
            self.files.setdefault(size_id, upload)
            photo.append(
                {
                    "file_id": size_id,
                    "file_unique_id": f"{file_id[-12:]}{i}",
                    "file_size": max(len(upload.content) * (i + 1) // len(sizes), 1),
                    "width": w,
                    "height": h,
                }
            )
        return photo

    def _send(
        self,
        chat_id: int,
        fields: dict[str, Any],
        raw_text: str | None,
        file: UploadedFile | None = None,
        parse_mode: str | None = None,
    ) -> SentMessage:
        message = self._new_message(chat_id, fields, outgoing=True)
        message.raw_text = raw_text
        message.file = file
        message.parse_mode = parse_mode
        self._store(message)
        return message

    # --- methods ------------------------------------------------------------------------------

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_of(params)
        raw, text = self._text_param(params, "text", 4096)
        fields: dict[str, Any] = {"text": text}
        if markup := self._inline_markup(params):
            fields["reply_markup"] = markup
        return self._send(chat_id, fields, raw, parse_mode=params.get("parse_mode")).raw

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self._target(params, "message to edit not found")
        if not message.outgoing:
            raise bad("message can't be edited")
        if "text" not in message.raw:
            raise bad("there is no text in the message to edit")
        raw, text = self._text_param(params, "text", 4096)
        markup = self._inline_markup(params)
        if (
            text == message.raw["text"]
            and raw == (message.raw_text or text)
            and markup == message.reply_markup
        ):
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.raw_text = raw
        message.parse_mode = params.get("parse_mode")
        return self._apply_edit(message, {"text": text, "reply_markup": markup})

    async def _m_editMessageCaption(self, params: dict[str, Any]) -> Any:
        message = self._target(params, "message to edit not found")
        if "text" in message.raw:
            raise bad("there is no caption in the message to edit")
        raw, caption = self._caption_param(params)
        markup = self._inline_markup(params)
        if caption == message.raw.get("caption") and markup == message.reply_markup:
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.raw_text = raw
        message.parse_mode = params.get("parse_mode")
        return self._apply_edit(message, {"caption": caption, "reply_markup": markup})

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self._target(params, "message to edit not found")
        if not message.outgoing:
            raise bad("message can't be edited")
        markup = self._inline_markup(params)
        if markup == message.reply_markup:
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        return self._apply_edit(message, {"reply_markup": markup})

    async def _m_deleteMessage(self, params: dict[str, Any]) -> Any:
        message = self._target(params, "message to delete not found")
        message.deleted = True
        self._events.setdefault(message.chat_id, []).append(message.snapshot())
        return True

    async def _m_sendDocument(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_of(params)
        upload, file_id = self._resolve_file(params, "document")
        raw, caption = self._caption_param(params)
        fields: dict[str, Any] = {
            "document": {
                "file_name": upload.filename,
                "mime_type": upload.content_type,
                "file_id": file_id,
                "file_unique_id": file_id[-16:],
                "file_size": len(upload.content),
            }
        }
        if caption is not None:
            fields["caption"] = caption
        if markup := self._inline_markup(params):
            fields["reply_markup"] = markup
        return self._send(chat_id, fields, raw, upload, params.get("parse_mode")).raw

    async def _m_sendPhoto(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_of(params)
        upload, file_id = self._resolve_file(params, "photo")
        raw, caption = self._caption_param(params)
        photo = self.photo_sizes(upload, file_id)
        fields: dict[str, Any] = {"photo": photo}
        if caption is not None:
            fields["caption"] = caption
        if markup := self._inline_markup(params):
            fields["reply_markup"] = markup
        return self._send(chat_id, fields, raw, upload, params.get("parse_mode")).raw
