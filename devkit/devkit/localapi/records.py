"""What the local Bot API remembers: calls, the bot's messages, files, faults and flood windows.

Plain data with Telegram- and user-side JSON renderings; no HTTP and no asyncio here, so every
operation stays O(1) per call for the benchmarks.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class UserSideError(Exception):
    """A user-side request that cannot be carried out (unknown message, missing button…)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Call:
    """One bot-side request as the local Bot API answered it."""

    method: str  #: canonical name, e.g. ``sendMessage`` (as typed when the method is unknown)
    params: dict[str, Any]  #: coerced parameters; uploaded files as ``{"file_name", "size"}``
    status: int  #: HTTP status of the answer
    at: float  #: wall-clock time the answer was given (``time.time()``)
    description: str | None = None  #: the error description, ``None`` when ok


@dataclass(slots=True)
class FileRecord:
    """An uploaded document or photo; ``data`` is the raw bytes the bot sent."""

    file_id: str
    file_unique_id: str
    kind: str  #: "document" or "photo"
    data: bytes
    file_name: str | None
    mime_type: str | None
    width: int = 0
    height: int = 0

    def telegram_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
        }
        if self.file_name is not None:
            doc["file_name"] = self.file_name
        if self.mime_type is not None:
            doc["mime_type"] = self.mime_type
        return doc

    def telegram_photo(self) -> list[dict[str, Any]]:
        return [
            {
                "file_id": self.file_id,
                "file_unique_id": self.file_unique_id,
                "file_size": len(self.data),
                "width": self.width,
                "height": self.height,
            }
        ]

    def user_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "file_id": self.file_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": len(self.data),
        }
        if self.kind == "photo":
            view["width"] = self.width
            view["height"] = self.height
        return view


@dataclass(slots=True)
class SentMessage:
    """A message the bot sent, in its current state (edits applied, deletion flagged)."""

    chat: dict[str, Any]
    message_id: int
    date: int
    seq: int  #: the chat's sequence number of the latest send/edit/delete of this message
    text: str | None = None  #: plain text (entities stripped, HTML unescaped); None for media
    html: str | None = None  #: the text as the bot sent it in HTML (escaped plain text otherwise)
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None  #: inline keyboard markup, as Telegram returns it
    keyboard: list[list[str]] | None = None  #: reply keyboard button texts, if one was sent
    edit_date: int | None = None
    deleted: bool = False
    reply_to: dict[str, Any] | None = None  #: the replied-to message, Telegram-shaped
    file: FileRecord | None = None
    caption: str | None = None
    caption_html: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chat_id(self) -> int:
        return int(self.chat["id"])

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [[dict(button) for button in row] for row in rows]

    def has_callback_data(self, data: str) -> bool:
        return any(button.get("callback_data") == data for row in self.buttons for button in row)

    def telegram(self, bot_user: dict[str, Any], *, with_reply: bool = True) -> dict[str, Any]:
        """The message as a Bot API ``Message`` object."""
        msg: dict[str, Any] = {
            "message_id": self.message_id,
            "from": bot_user,
            "chat": self.chat,
            "date": self.date,
        }
        if self.text is not None:
            msg["text"] = self.text
            if self.entities:
                msg["entities"] = self.entities
        if self.file is not None:
            if self.file.kind == "photo":
                msg["photo"] = self.file.telegram_photo()
            else:
                msg["document"] = self.file.telegram_document()
            if self.caption:
                msg["caption"] = self.caption
                if self.caption_entities:
                    msg["caption_entities"] = self.caption_entities
        if self.reply_markup is not None:
            msg["reply_markup"] = self.reply_markup
        if self.edit_date is not None:
            msg["edit_date"] = self.edit_date
        if with_reply and self.reply_to is not None:
            msg["reply_to_message"] = self.reply_to
        return msg

    def user_view(self) -> dict[str, Any]:
        """The message as the user side's JSON shows it."""
        buttons = [
            [
                {
                    "text": button.get("text", ""),
                    **{
                        key: button[key]
                        for key in ("callback_data", "url")
                        if button.get(key) is not None
                    },
                }
                for button in row
            ]
            for row in self.buttons
        ]
        is_photo = self.file is not None and self.file.kind == "photo"
        return {
            "seq": self.seq,
            "message_id": self.message_id,
            "text": self.text or "",
            "html": self.html or "",
            "buttons": buttons,
            "keyboard": self.keyboard,
            "edited": self.edit_date is not None,
            "deleted": self.deleted,
            "document": self.file.user_view() if self.file and not is_photo else None,
            "photo": self.file.user_view() if self.file and is_photo else None,
            "caption": self.caption,
            "caption_html": self.caption_html,
            "reply_to_message_id": (self.reply_to or {}).get("message_id"),
            "date": self.date,
        }


@dataclass(slots=True)
class Fault:
    """An injected error or delay waiting for the next matching call(s)."""

    method: str | None  #: lower-cased method name, ``None`` for any bot-side method
    times: int
    status: int = 0  #: HTTP status to answer with; 0 for a delay
    description: str | None = None
    retry_after: int | None = None
    delay: float = 0.0  #: seconds to hold the answer (a delay fault)
    act: str = "after"  #: a delay fault performs the call "after" or "before" holding it

    def matches(self, method: str) -> bool:
        return self.times > 0 and (self.method is None or self.method == method)


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds; O(limit) memory, O(1) per check."""

    __slots__ = ("_times", "limit", "window")

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = max(1, limit)
        self.window = window
        self._times: deque[float] = deque(maxlen=self.limit)

    def wait_time(self, now: float) -> float:
        """Seconds until one more event is allowed (0 when allowed now)."""
        if len(self._times) < self.limit:
            return 0.0
        return max(0.0, self._times[0] + self.window - now)

    def record(self, now: float) -> None:
        self._times.append(now)


def retry_after_seconds(wait: float) -> int:
    """Telegram's ``retry_after`` is whole seconds, at least 1."""
    return max(1, math.ceil(wait))
