"""The local Bot API: Telegram's Bot API methods the bot uses, plus a user side to act as a person.

`LocalBotApi` holds the state and the aiohttp app; the bot reaches it via PTB's ``base_url``.
It must not log paths (they carry the token), message text or chat ids, and must not call out
to the network except to POST updates to a webhook the bot set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import signal
import struct
import sys
import time
import traceback
from bisect import bisect_right
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from itertools import count
from typing import Any, Literal

import aiohttp
from aiohttp import web

from bot.config import DEMO_BOT_USERNAME
from devkit.localapi.entities import EntityParseError, escape, parse_html, utf16_len
from devkit.localapi.params import METHODS, BotMethod, Upload, coerce, read_params, summarise
from devkit.localapi.records import (
    ApiError,
    Call,
    Fault,
    FileRecord,
    SentMessage,
    SlidingWindow,
    UserSideError,
    retry_after_seconds,
)
from devkit.localapi.user_routes import UserSideRoutes

_LOG = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456789:LOCAL-sikkerhetsnett-not-a-real-tkn"
DEFAULT_USERNAME = DEMO_BOT_USERNAME  # what the bot calls itself in links without a token
DEFAULT_FIRST_NAME = "Sikkerhetsnett (lokal)"

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_ANSWER = 200
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

#: Update types a bot gets when ``allowed_updates`` is empty or was never given.
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_SCOPE_TYPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_BUTTON_KINDS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_BOT_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?(?=\s|$)")
_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG image, None if it is none of those."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return None


def _update_type(update: dict[str, Any]) -> str | None:
    return next((key for key in update if key != "update_id"), None)


# ---------------------------------------------------------------------------------------------


class _Chat:
    """One chat as seen from both sides: the person (for private chats) and the bot's messages."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.user: dict[str, Any] | None = None
        self.known = False  #: the bot may write here (a private chat: the user started the bot)
        self.blocked = False
        #: a group the bot is no longer in: "left" or "kicked" (sends answer 403)
        self.removed: str | None = None
        self.migrated_to: int | None = None  #: a group that became this supergroup
        self.members: set[int] = set()  #: people in a group (the bot not counted)
        self.next_message_id = 1
        self.seq = 0
        self.sent: dict[int, SentMessage] = {}
        self.log: list[tuple[int, int]] = []  #: (seq, message_id), seq ascending
        self.delivery_ids: list[int] = []
        self.user_messages: dict[int, dict[str, Any]] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.texts: set[int] = set()
        self.changed = asyncio.Event()

    @property
    def id(self) -> int:
        return int(self.info["id"])

    @property
    def private(self) -> bool:
        return self.info.get("type") == "private"

    def take_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def bump(self, message: SentMessage) -> None:
        self.seq += 1
        message.seq = self.seq
        self.log.append((self.seq, message.message_id))
        self.notify()

    def notify(self) -> None:
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    def after(self, after_seq: int) -> list[SentMessage]:
        """The bot's messages changed after ``after_seq``, each once, in seq order."""
        start = bisect_right(self.log, (after_seq, sys.maxsize))
        return [
            self.sent[message_id]
            for seq, message_id in self.log[start:]
            if self.sent[message_id].seq == seq
        ]


_ScopeKey = tuple[str, int | None, int | None]


@dataclass(slots=True)
class _CallbackQuery:
    chat_id: int
    message_id: int
    data: str
    answered: bool = False


class LocalBotApi:
    """A local Telegram Bot API server with a user side; see the package docstring."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        username: str = DEFAULT_USERNAME,
        first_name: str = DEFAULT_FIRST_NAME,
        flood_limits: bool = False,
        overall_per_second: int = 30,
        per_chat_per_second: int = 1,
        webhook_retry_delay: float = 0.1,
        webhook_max_retry_delay: float = 2.0,
        webhook_timeout: float = 10.0,
        max_recorded_calls: int = 50_000,
        group_privacy: bool = True,
    ) -> None:
        match = _TOKEN.match(token)
        if match is None:
            raise ValueError("token must look like a Bot API token: '<digits>:<letters>'")
        self.host = host
        self.port = port
        self.token = token
        self.bot_id = int(match.group(1))
        self.username = username
        self.first_name = first_name
        self.flood_limits = flood_limits
        self.overall_per_second = overall_per_second
        self.per_chat_per_second = per_chat_per_second
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_max_retry_delay = webhook_max_retry_delay
        self.webhook_timeout = webhook_timeout
        #: Telegram's privacy mode for groups (on unless the bot's owner turns it off): the
        #: bot gets only commands, replies to its own messages and service messages
        self.group_privacy = group_privacy

        #: every bot-side call, newest last (bounded by ``max_recorded_calls``)
        self.calls: deque[Call] = deque(maxlen=max_recorded_calls)
        #: all bot-side calls answered, including those no longer kept in ``calls``
        self.call_count = 0
        #: successful sendMessage/sendDocument/sendPhoto calls, all chats
        self.delivered_count = 0
        #: sends whose text (or caption/file) the chat had already received: double deliveries
        self.repeated_count = 0
        #: 429 answers given by the flood limits (not injected ones)
        self.too_many_requests = 0

        self._chats: dict[int, _Chat] = {}
        self._updates: deque[tuple[int, str, dict[str, Any]]] = deque()
        self._update_ids = count(1)
        self._updates_changed = asyncio.Event()
        self._allowed_updates: frozenset[str] | None = None
        self._active_poll: object | None = None
        self._callbacks: dict[str, _CallbackQuery] = {}
        self._callback_ids = count(4_210_000_000_000_000_001)
        self._chatless_answers: list[dict[str, Any]] = []
        self._files: dict[str, FileRecord] = {}
        self._file_ids = count(1)
        self._commands: dict[tuple[_ScopeKey, str], list[dict[str, str]]] = {}
        self._texts: dict[tuple[str, str], str] = {}  # (description kind, language) → text
        self._faults: list[Fault] = []
        self._outage_until = 0.0
        self._overall_window = SlidingWindow(overall_per_second)
        self._chat_windows: dict[int, SlidingWindow] = {}

        self._webhook_url = ""
        self._webhook_secret: str | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.offline = False  #: the socket is closed (``go_offline``)
        self.app = self._build_app()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:8081``; the user side lives under ``/user/``."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the bot passes to PTB's ``base_url`` (PTB appends the token)."""
        return f"{self.url}/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host:port``; port 0 picks a free port (read it back from ``port``)."""
        self._stopping.clear()
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple):
                self.port = int(address[1])
                break

    async def stop(self) -> None:
        """Wake every long poll, stop webhook delivery and close the socket."""
        self._stopping.set()
        self._wake_everyone()
        await self._stop_webhook_task()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def go_offline(self) -> None:
        """Close the socket: stop listening and drop every open connection, so the bot side
        meets connection errors (not HTTP answers) until ``come_back``. The state is kept."""
        if self._runner is None:
            return
        self.offline = True
        self._wake_everyone()  # long polls end before their connections are cut
        for site in list(self._runner.sites):
            await site.stop()
        if self._runner.server is not None:
            await self._runner.server.shutdown(timeout=0.5)

    async def come_back(self) -> None:
        """Listen again on the same port after ``go_offline``, with everything as it was."""
        if self._runner is None or not self.offline:
            return
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.offline = False

    async def __aenter__(self) -> LocalBotApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- fault injection ----------------------------------------------------------------------

    def inject(
        self,
        method: str | None,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (any bot-side method if None) fail with
        ``status``; the action is not performed. 429 gets ``retry_after`` (default 1)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        self._faults.append(
            Fault(self._method_key(method), times, status, description, retry_after)
        )

    def inject_delay(
        self,
        method: str | None,
        seconds: float,
        times: int = 1,
        act: Literal["after", "before"] = "after",
    ) -> None:
        """Hold the next ``times`` calls of ``method`` for ``seconds`` before answering.

        ``act="after"``: held first, then performed only if the client is still waiting (a
        request lost in transit). ``act="before"``: performed at once, then the answer is held
        (delivered although the client may time out: the ambiguous case).
        """
        self._faults.append(Fault(self._method_key(method), times, delay=seconds, act=act))

    def outage(self, seconds: float) -> None:
        """For ``seconds`` from now every bot-side call answers 502 Bad Gateway."""
        self._outage_until = time.monotonic() + seconds

    def clear_faults(self) -> None:
        """Forget injected errors, delays and any outage."""
        self._faults.clear()
        self._outage_until = 0.0

    def set_flood_limits(
        self,
        enabled: bool,
        overall_per_second: int | None = None,
        per_chat_per_second: int | None = None,
    ) -> None:
        """Turn the 429 flood limits on or off, optionally with new rates."""
        self.flood_limits = enabled
        if overall_per_second is not None:
            self.overall_per_second = overall_per_second
        if per_chat_per_second is not None:
            self.per_chat_per_second = per_chat_per_second
        self._overall_window = SlidingWindow(self.overall_per_second)
        self._chat_windows.clear()

    @staticmethod
    def _method_key(method: str | None) -> str | None:
        if method is None:
            return None
        key = method.lower()
        if key not in METHODS:
            raise ValueError(f"unknown Bot API method {method!r}")
        return key

    # -- recorded state -----------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one method (case-insensitive)."""
        key = method.lower()
        return [call for call in self.calls if call.method.lower() == key]

    def deliveries(self, chat_id: int) -> list[SentMessage]:
        """The messages the bot sent to ``chat_id``, in send order, in their current state."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [chat.sent[message_id] for message_id in chat.delivery_ids]

    def delivered_to(self, chat_id: int) -> int:
        """How many messages the bot successfully sent to ``chat_id``."""
        chat = self._chats.get(chat_id)
        return 0 if chat is None else len(chat.delivery_ids)

    def messages_after(self, chat_id: int, after_seq: int = 0) -> list[SentMessage]:
        """Bot messages sent, edited or deleted in ``chat_id`` after ``after_seq``."""
        chat = self._chats.get(chat_id)
        return [] if chat is None else chat.after(after_seq)

    def last_seq(self, chat_id: int) -> int:
        chat = self._chats.get(chat_id)
        return 0 if chat is None else chat.seq

    def callback_answers(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Answered callback queries (``callback_query_id``, ``text``, ``show_alert``, ``url``…)."""
        chats = [self._chats[chat_id]] if chat_id in self._chats else []
        if chat_id is None:
            chats = list(self._chats.values())
        answers = [answer for chat in chats for answer in chat.callback_answers]
        if chat_id is None:
            answers += self._chatless_answers
        return sorted(answers, key=lambda answer: answer["at"])

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        """Commands set for exactly this scope and language (like getMyCommands)."""
        return list(self._commands.get((self._scope_key(scope), language_code), []))

    def visible_commands(
        self, user_id: int, language_code: str | None = None
    ) -> list[dict[str, str]]:
        """The commands a user sees in their private chat, resolved like Telegram does."""
        if language_code is None:
            chat = self._chats.get(user_id)
            language_code = ((chat.user if chat else None) or {}).get("language_code") or ""
        languages = [language_code, ""] if language_code else [""]
        for scope in (("chat", user_id, None), ("all_private_chats", None, None)):
            for language in languages:
                commands = self._commands.get((scope, language))
                if commands:
                    return list(commands)
        for language in languages:
            commands = self._commands.get((("default", None, None), language))
            if commands:
                return list(commands)
        return []

    @property
    def pending_update_count(self) -> int:
        return len(self._updates)

    @property
    def webhook_url(self) -> str:
        return self._webhook_url

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks (also at ``GET /stats``)."""
        return {
            "delivered": self.delivered_count,
            "repeated": self.repeated_count,
            "too_many_requests": self.too_many_requests,
            "calls": self.call_count,
            "chats": len(self._chats),
            "pending_updates": len(self._updates),
        }

    # -- the user side, in Python (the /user/ routes call these) -------------------------------

    def user_message(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> tuple[int, int]:
        """A person writes to the bot; returns ``(update_id, message_id)``."""
        if not isinstance(text, str) or not text:
            raise UserSideError(400, "text must be a non-empty string")
        chat = self._private_chat(user_id, first_name, last_name, username, language_code)
        if chat.blocked:
            self.unblock(user_id)  # in Telegram a blocked bot must be restarted to write to it
        chat.known = True
        message_id = chat.take_message_id()
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": chat.user,
            "chat": chat.info,
            "date": int(time.time()),
            "text": text,
        }
        command = _BOT_COMMAND.match(text)
        if command:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": command.end()}]
        if reply_to_message_id is not None:
            message["reply_to_message"] = self._user_reply_target(chat, reply_to_message_id)
        chat.user_messages[message_id] = message
        return self._push("message", message), message_id

    def user_edit(self, user_id: int, message_id: int, text: str) -> int:
        """A person edits their own message; returns the update_id of the edited_message."""
        chat = self._chats.get(user_id)
        message = chat.user_messages.get(message_id) if chat else None
        if chat is None or message is None:
            raise UserSideError(400, f"the user has no message {message_id} in this chat")
        if not isinstance(text, str) or not text:
            raise UserSideError(400, "text must be a non-empty string")
        edited = {**message, "text": text, "edit_date": int(time.time())}
        edited.pop("entities", None)
        command = _BOT_COMMAND.match(text)
        if command:
            edited["entities"] = [{"type": "bot_command", "offset": 0, "length": command.end()}]
        chat.user_messages[message_id] = edited
        return self._push("edited_message", edited)

    def user_press(self, user_id: int, message_id: int, data: str) -> tuple[int, str]:
        """A person presses an inline button; returns ``(update_id, callback_query_id)``."""
        chat = self._chats.get(user_id)
        message = chat.sent.get(message_id) if chat else None
        if chat is None or message is None or message.deleted:
            raise UserSideError(400, f"the bot has no message {message_id} in this chat")
        if not message.has_callback_data(data):
            raise UserSideError(
                400, f"message {message_id} has no button with callback_data {data!r}"
            )
        query_id = str(next(self._callback_ids))
        self._callbacks[query_id] = _CallbackQuery(user_id, message_id, data)
        query = {
            "id": query_id,
            "from": chat.user or {"id": user_id, "is_bot": False, "first_name": "User"},
            "message": message.telegram(self.bot_user),
            "chat_instance": str(user_id * 7919 % 2**62),
            "data": data,
        }
        return self._push("callback_query", query), query_id

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a whole update as given (a fresh update_id is assigned); returns the id.

        Chats found in it become chats the bot may write to (a private one: started).
        """
        if not isinstance(update, dict):
            raise UserSideError(400, "an update must be a JSON object")
        kind = _update_type(update)
        if kind is None:
            raise UserSideError(400, "an update needs one field besides update_id")
        body = update[kind]
        message = body
        if kind == "callback_query" and isinstance(body, dict):
            message = body.get("message")
        chat_info = message.get("chat") if isinstance(message, dict) else None
        if isinstance(chat_info, dict) and isinstance(chat_info.get("id"), int):
            chat = self._chat(chat_info["id"], chat_info)
            chat.known = True
            sender = message.get("from") if isinstance(message, dict) else None
            if chat.private and isinstance(sender, dict) and chat.user is None:
                chat.user = sender
        if kind == "callback_query" and isinstance(body, dict) and isinstance(body.get("id"), str):
            # so that the bot can answer a hand-made callback query
            chat_id = chat_info.get("id") if isinstance(chat_info, dict) else None
            message_id = message.get("message_id") if isinstance(message, dict) else None
            self._callbacks[body["id"]] = _CallbackQuery(
                chat_id if isinstance(chat_id, int) else 0,
                message_id if isinstance(message_id, int) else 0,
                str(body.get("data", "")),
            )
        update_id = next(self._update_ids)
        self._enqueue(update_id, kind, {**update, "update_id": update_id})
        return update_id

    def block(self, user_id: int) -> None:
        """The person blocks the bot: sends fail with 403; the bot gets a my_chat_member update."""
        chat = self._private_chat(user_id)
        if chat.blocked:
            return
        chat.blocked = True
        if chat.known:
            self._push_member_change(chat, "member", "kicked")

    def unblock(self, user_id: int) -> None:
        """The person unblocks (restarts) the bot."""
        chat = self._private_chat(user_id)
        if not chat.blocked:
            return
        chat.blocked = False
        if chat.known:
            self._push_member_change(chat, "kicked", "member")

    # -- groups, as their members act in them ---------------------------------------------------

    def group_add_bot(
        self,
        user_id: int,
        chat_id: int,
        title: str,
        start: str | None = None,
        *,
        first_name: str | None = None,
        language_code: str | None = None,
    ) -> tuple[int, int | None]:
        """A person adds the bot to a group, as a ``startgroup`` link does: the bot gets a
        ``my_chat_member`` update (left → member) and, with ``start``, the message ``/start@bot
        <start>`` the person's app sends in the group. Returns the two update_ids."""
        if chat_id >= 0:
            raise UserSideError(400, "a group's chat id is a negative integer")
        if not isinstance(title, str) or not title.strip():
            raise UserSideError(400, "a group needs a title")
        person = self._person(user_id, first_name, language_code)
        chat = self._chat(chat_id, {"id": chat_id, "type": "group", "title": title})
        if chat.private:
            raise UserSideError(400, f"chat {chat_id} is not a group")
        if not chat.known:  # only read so far (a page showing the empty group)
            chat.info = {**chat.info, "title": title}
        if chat.migrated_to is not None:
            raise UserSideError(400, "the group became a supergroup; use its new chat id")
        chat.members.add(user_id)
        was = chat.removed or ("left" if not chat.known else "member")
        chat.known = True
        chat.removed = None
        update_id = self._push_group_member_change(chat, person, was, "member")
        start_id = None
        if start is not None:
            start_id, _message_id = self.group_message(
                user_id, chat_id, f"/start@{self.username} {start}".rstrip()
            )
        return update_id, start_id

    def group_message(
        self,
        user_id: int,
        chat_id: int,
        text: str,
        *,
        reply_to_message_id: int | None = None,
        first_name: str | None = None,
        language_code: str | None = None,
    ) -> tuple[int | None, int]:
        """A member writes in a group. Returns ``(update_id, message_id)``; the update_id is
        None when Telegram would not give the bot the message (privacy mode: not a command,
        and not a reply to one of the bot's own messages)."""
        if not isinstance(text, str) or not text:
            raise UserSideError(400, "text must be a non-empty string")
        chat = self._chats.get(chat_id)
        if chat is None or chat.private:
            raise UserSideError(400, f"there is no group {chat_id}")
        if chat.migrated_to is not None:
            raise UserSideError(400, "the group became a supergroup; use its new chat id")
        person = self._person(user_id, first_name, language_code)
        chat.members.add(user_id)
        message_id = chat.take_message_id()
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": person,
            "chat": chat.info,
            "date": int(time.time()),
            "text": text,
        }
        command = _BOT_COMMAND.match(text)
        if command:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": command.end()}]
        to_bot = False
        if reply_to_message_id is not None:
            message["reply_to_message"] = self._user_reply_target(chat, reply_to_message_id)
            to_bot = reply_to_message_id in chat.sent
        chat.user_messages[message_id] = message
        if chat.removed is not None:  # the bot is not in the group: it sees nothing
            return None, message_id
        if self.group_privacy and not (command or to_bot):
            return None, message_id
        return self._push("message", message), message_id

    def group_remove_bot(self, user_id: int, chat_id: int, *, kicked: bool = False) -> int:
        """A member removes the bot from the group (``kicked``: and bans it): the bot gets a
        ``my_chat_member`` update, and its sends there fail with 403 from now on."""
        chat = self._chats.get(chat_id)
        if chat is None or chat.private or not chat.known:
            raise UserSideError(400, f"the bot is not in a group {chat_id}")
        person = self._person(user_id)
        old = chat.removed or "member"
        chat.removed = "kicked" if kicked else "left"
        return self._push_group_member_change(chat, person, old, chat.removed)

    def group_migrate(self, user_id: int, chat_id: int) -> int:
        """The group becomes a supergroup (a new chat id, as Telegram does when a group grows
        or gets some settings): the bot gets the two service messages, and sends to the old
        id fail with "group chat was upgraded" naming the new one. Returns the new chat id."""
        old = self._chats.get(chat_id)
        if old is None or old.private or old.migrated_to is not None:
            raise UserSideError(400, f"there is no group {chat_id} to upgrade")
        new_id = -(10**12) + chat_id  # Telegram's supergroup ids start with -100…
        info = {"id": new_id, "type": "supergroup", "title": old.info.get("title", "")}
        new = self._chat(new_id, info)
        new.known, new.removed, new.members = old.known, old.removed, set(old.members)
        old.migrated_to = new_id
        person = self._person(user_id)
        if old.removed is None:
            for chat, field, value in (
                (old, "migrate_to_chat_id", new_id),
                (new, "migrate_from_chat_id", chat_id),
            ):
                self._push(
                    "message",
                    {
                        "message_id": chat.take_message_id(),
                        "from": person,
                        "chat": chat.info,
                        "date": int(time.time()),
                        field: value,
                    },
                )
        return new_id

    def _person(
        self, user_id: int, first_name: str | None = None, language_code: str | None = None
    ) -> dict[str, Any]:
        """The ``User`` of a person acting in a group (their private chat is not touched)."""
        if user_id <= 0:
            raise UserSideError(400, "a user id is a positive integer")
        known = self._chats.get(user_id)
        user = dict(known.user) if known is not None and known.user else {}
        user = {"id": user_id, "is_bot": False, "first_name": f"User {user_id}", **user}
        if first_name:
            user["first_name"] = first_name
        if language_code:
            user["language_code"] = language_code
        return user

    def _push_group_member_change(
        self, chat: _Chat, person: dict[str, Any], old: str, new: str
    ) -> int:
        def member(status: str) -> dict[str, Any]:
            state: dict[str, Any] = {"user": self.bot_user, "status": status}
            if status == "kicked":
                state["until_date"] = 0
            return state

        return self._push(
            "my_chat_member",
            {
                "chat": chat.info,
                "from": person,
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        )

    def file_of(self, chat_id: int, message_id: int) -> FileRecord | None:
        chat = self._chats.get(chat_id)
        message = chat.sent.get(message_id) if chat else None
        return message.file if message else None

    async def wait_messages(
        self,
        chat_id: int,
        after_seq: int,
        timeout: float,
        callback_query_id: str | None = None,
    ) -> tuple[list[SentMessage], dict[str, Any] | None]:
        """Wait until the bot sends/edits something after ``after_seq`` (or answers the given
        callback query); returns what is there when that happens or ``timeout`` passes."""
        chat = self._chat(chat_id)
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            event = chat.changed
            messages = chat.after(after_seq)
            answer = self._answer_for(chat, callback_query_id)
            remaining = deadline - time.monotonic()
            if messages or answer or remaining <= 0 or self._stopping.is_set():
                return messages, answer
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    # -- internals: chats, updates ------------------------------------------------------------

    def _chat(self, chat_id: int, info: dict[str, Any] | None = None) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            if info is None:
                info = {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
            chat = _Chat(dict(info))
            self._chats[chat_id] = chat
        return chat

    def _private_chat(
        self,
        user_id: int,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> _Chat:
        if user_id <= 0:
            raise UserSideError(400, "a user id is a positive integer")
        chat = self._chat(user_id)
        user = chat.user or {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        fields = {
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
        }
        user = {**user, **{key: value for key, value in fields.items() if value}}
        chat.user = user
        chat.info = {"id": user_id, "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat.info[key] = user[key]
        return chat

    def _user_reply_target(self, chat: _Chat, message_id: int) -> dict[str, Any]:
        sent = chat.sent.get(message_id)
        if sent is not None and not sent.deleted:
            return sent.telegram(self.bot_user, with_reply=False)
        own = chat.user_messages.get(message_id)
        if own is not None:
            return {key: value for key, value in own.items() if key != "reply_to_message"}
        raise UserSideError(400, f"no message {message_id} to reply to in this chat")

    def _push_member_change(self, chat: _Chat, old: str, new: str) -> None:
        def member(status: str) -> dict[str, Any]:
            state: dict[str, Any] = {"user": self.bot_user, "status": status}
            if status == "kicked":
                state["until_date"] = 0
            return state

        self._push(
            "my_chat_member",
            {
                "chat": chat.info,
                "from": chat.user,
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        )

    def _push(self, kind: str, body: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._enqueue(update_id, kind, {"update_id": update_id, kind: body})
        return update_id

    def _enqueue(self, update_id: int, kind: str, update: dict[str, Any]) -> None:
        self._updates.append((update_id, kind, update))
        self._notify_updates()

    def _notify_updates(self) -> None:
        event, self._updates_changed = self._updates_changed, asyncio.Event()
        event.set()

    def _wake_everyone(self) -> None:
        self._notify_updates()
        for chat in self._chats.values():
            chat.notify()

    def _allowed(self, kind: str) -> bool:
        if self._allowed_updates is None:
            return kind not in _NOT_BY_DEFAULT
        return kind in self._allowed_updates

    def _set_allowed_updates(self, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError(400, "Bad Request: can't parse allowed_updates JSON array")
        self._allowed_updates = frozenset(value) if value else None

    def _answer_for(self, chat: _Chat, callback_query_id: str | None) -> dict[str, Any] | None:
        if callback_query_id is None:
            return None
        query = self._callbacks.get(callback_query_id)
        if query is None or not query.answered:
            return None
        return next(
            (
                answer
                for answer in reversed(chat.callback_answers)
                if answer["callback_query_id"] == callback_query_id
            ),
            None,
        )

    # -- the HTTP app -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_DOCUMENT_BYTES + 1024 * 1024)
        app.add_routes(
            [
                web.get("/healthz", self._healthz),
                web.get("/stats", self._stats),
                web.get("/", self._index),
                web.route("GET", "/bot{token}/{method}", self._bot),
                web.route("POST", "/bot{token}/{method}", self._bot),
                *UserSideRoutes(self).routes(),
            ]
        )
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _index(self, request: web.Request) -> web.StreamResponse:
        from importlib.resources import files

        page = files("devkit.localapi").joinpath("static/chat.html")
        if not page.is_file():
            return web.json_response({"ok": True, "user_side": "/user/"})
        return web.Response(text=page.read_text("utf-8"), content_type="text/html")

    async def _bot(self, request: web.Request) -> web.Response:
        typed = request.match_info["method"]
        method = METHODS.get(typed.lower())
        name = method.name if method else typed
        params: dict[str, Any] = {}
        try:
            if not hmac.compare_digest(request.match_info["token"].encode(), self.token.encode()):
                raise ApiError(401, "Unauthorized")
            if method is None:
                raise ApiError(404, "Not Found: method not found")
            params = coerce(method, await read_params(request))
            result = await self._perform(method, params, request)
        except Exception as exc:  # a bug here must reach the bot as an answer, not a hang
            error = exc if isinstance(exc, ApiError) else ApiError(500, "Internal Server Error")
            if not isinstance(exc, ApiError):
                # type and place only: an exception message could carry message text
                where = traceback.extract_tb(exc.__traceback__)[-1]
                _LOG.error(
                    "local Bot API failed on %s: %s at %s:%s",
                    name,
                    type(exc).__name__,
                    where.filename,
                    where.lineno,
                )
            self.call_count += 1
            self.calls.append(
                Call(name, summarise(params), error.status, time.time(), error.description)
            )
            return web.json_response(error.payload(), status=error.status)
        self.call_count += 1
        self.calls.append(Call(name, summarise(params), 200, time.time()))
        return web.json_response({"ok": True, "result": result})

    async def _perform(
        self, method: BotMethod, params: dict[str, Any], request: web.Request
    ) -> Any:
        key = method.name.lower()
        if self._stopping.is_set() or time.monotonic() < self._outage_until:
            raise ApiError(502, "Bad Gateway")
        failure = next(
            (fault for fault in self._faults if fault.status and fault.matches(key)), None
        )
        if failure is not None:
            failure.times -= 1
            self._faults = [fault for fault in self._faults if fault.times > 0]
            raise ApiError(
                failure.status,
                failure.description or _default_description(failure.status, failure.retry_after),
                {"retry_after": failure.retry_after} if failure.retry_after else None,
            )
        delay = next(
            (fault for fault in self._faults if not fault.status and fault.matches(key)), None
        )
        handler: Callable[[dict[str, Any]], Awaitable[Any]] = getattr(self, f"_m_{key}")
        if delay is None:
            return await handler(params)
        delay.times -= 1
        self._faults = [fault for fault in self._faults if fault.times > 0]
        if delay.act == "before":
            result = await handler(params)
            await self._sleep(delay.delay)
            return result
        await self._sleep(delay.delay)
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ApiError(502, "Bad Gateway")  # the client gave up: nothing happens
        return await handler(params)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # -- bot-side checks shared by methods -----------------------------------------------------

    def _writable_chat(self, params: dict[str, Any]) -> _Chat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        chat = self._chats.get(chat_id)
        if chat is None or not chat.known:
            if chat_id > 0:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        self._check_group(chat)
        return chat

    @staticmethod
    def _check_group(chat: _Chat) -> None:
        """Telegram's answers for a group the bot left or that became a supergroup."""
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if chat.removed == "kicked":
            raise ApiError(403, "Forbidden: bot was kicked from the group chat")
        if chat.removed is not None:
            raise ApiError(403, "Forbidden: bot is not a member of the group chat")

    def _check_flood(self, chat_id: int) -> None:
        if not self.flood_limits:
            return
        now = time.monotonic()
        window = self._chat_windows.get(chat_id)
        if window is None:
            window = self._chat_windows[chat_id] = SlidingWindow(self.per_chat_per_second)
        wait = max(window.wait_time(now), self._overall_window.wait_time(now))
        if wait > 0:
            self.too_many_requests += 1
            seconds = retry_after_seconds(wait)
            raise ApiError(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            )
        window.record(now)
        self._overall_window.record(now)

    @staticmethod
    def _parse_text(
        value: Any,
        parse_mode: Any,
        entities: Any,
        *,
        limit: int,
        empty: str | None,
        too_long: str,
    ) -> tuple[str, str, list[dict[str, Any]]]:
        """``(plain, html, entities)`` of a text or caption, validated like Telegram."""
        source = value if isinstance(value, str) else ""
        mode = parse_mode.lower() if isinstance(parse_mode, str) else ""
        if mode == "html":
            try:
                plain, parsed = parse_html(source)
            except EntityParseError as error:
                raise ApiError(400, f"Bad Request: can't parse entities: {error}") from None
            html = source
        elif mode in ("", "markdown", "markdownv2"):
            # Markdown is passed through unparsed: the bot is expected to use HTML.
            plain, html = source, escape(source)
            parsed = entities if mode == "" and isinstance(entities, list) else []
        else:
            raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")
        if empty is not None and not plain.strip():
            raise ApiError(400, empty)
        if utf16_len(plain) > limit:  # Telegram counts UTF-16 code units
            raise ApiError(400, too_long)
        return plain, html, parsed

    @staticmethod
    def _parse_markup(
        markup: Any, *, inline_only: bool = False
    ) -> tuple[dict[str, Any] | None, list[list[str]] | None]:
        """``(inline_markup, reply_keyboard_texts)``; ``[]`` as keyboard removes one."""
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise ApiError(400, "Bad Request: can't parse inline keyboard markup")
            clean_rows = [[_checked_button(button) for button in row] for row in rows]
            clean_rows = [row for row in clean_rows if row]
            return ({"inline_keyboard": clean_rows} if clean_rows else None), None
        if inline_only:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise ApiError(400, "Bad Request: can't parse keyboard markup")
            texts = [
                [b if isinstance(b, str) else str(b.get("text", "")) for b in row] for row in rows
            ]
            return None, texts
        if markup.get("remove_keyboard"):
            return None, []
        return None, None

    def _reply_target(self, chat: _Chat, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        message_id = params.get("reply_to_message_id")
        allow = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow = allow or bool(reply.get("allow_sending_without_reply"))
        if message_id is None:
            return None
        try:
            message_id = int(message_id)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: message to be replied not found") from None
        sent = chat.sent.get(message_id)
        if sent is not None and not sent.deleted:
            return sent.telegram(self.bot_user, with_reply=False)
        own = chat.user_messages.get(message_id)
        if own is not None:
            return {key: value for key, value in own.items() if key != "reply_to_message"}
        if allow:
            return None
        raise ApiError(400, "Bad Request: message to be replied not found")

    def _new_message(self, chat: _Chat, message: SentMessage, fingerprint: str) -> None:
        chat.sent[message.message_id] = message
        chat.delivery_ids.append(message.message_id)
        chat.bump(message)
        self.delivered_count += 1
        digest = hash(fingerprint)
        if digest in chat.texts:
            self.repeated_count += 1
        chat.texts.add(digest)

    def _message_to_edit(self, params: dict[str, Any]) -> tuple[_Chat, SentMessage]:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat_id = params.get("chat_id")
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None or not chat.known:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        message_id = params.get("message_id")
        if message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = chat.sent.get(message_id)
        if message is None or message.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        return chat, message

    # -- methods: the bot ---------------------------------------------------------------------

    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_getchatmembercount(self, params: dict[str, Any]) -> Any:
        chat = self._writable_chat(params)
        if chat.private:
            return 2
        return len(chat.members) + 1  # and the bot

    async def _m_leavechat(self, params: dict[str, Any]) -> Any:
        chat = self._writable_chat(params)
        if chat.private:
            raise ApiError(400, "Bad Request: chat member status can't be changed in private chats")
        chat.removed = "left"
        chat.notify()
        return True

    async def _m_close(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_logout(self, params: dict[str, Any]) -> Any:
        return True

    # -- methods: updates ---------------------------------------------------------------------

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        if self._webhook_url:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        offset = params.get("offset")
        limit = min(100, max(1, int(params.get("limit") or 100)))
        timeout = min(50.0, max(0.0, float(params.get("timeout") or 0)))
        self._set_allowed_updates(params.get("allowed_updates"))
        if offset is not None:
            if offset < 0:
                while len(self._updates) > -offset:
                    self._updates.popleft()
            else:
                while self._updates and self._updates[0][0] < offset:
                    self._updates.popleft()
        me = object()
        if self._active_poll is not None:
            self._notify_updates()  # the older poll answers 409, as with two bot instances
        self._active_poll = me
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self._active_poll is not me:
                    raise ApiError(409, _POLL_CONFLICT)
                if self._webhook_url:
                    raise ApiError(409, _WEBHOOK_CONFLICT)
                event = self._updates_changed
                batch = self._first_allowed(limit)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._stopping.is_set():
                    return batch
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            if self._active_poll is me:
                self._active_poll = None

    def _first_allowed(self, limit: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        for _, kind, update in self._updates:
            if self._allowed(kind):
                batch.append(update)
                if len(batch) == limit:
                    break
        return batch

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url") or ""
        if not url:
            return await self._m_deletewebhook(params)
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            raise ApiError(400, "Bad Request: bad webhook: invalid webhook URL specified")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.match(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self._set_allowed_updates(params.get("allowed_updates"))
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook_url = url
        self._webhook_secret = secret
        self._webhook_error = None
        self._notify_updates()  # a waiting getUpdates answers 409 now
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._deliver_to_webhook())
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        self._webhook_url = ""
        self._webhook_secret = None
        self._webhook_error = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        await self._stop_webhook_task()
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        info: dict[str, Any] = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook_url:
            info["max_connections"] = 1
            if self._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._allowed_updates)
        if self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _stop_webhook_task(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver_to_webhook(self) -> None:
        """POST pending updates to the webhook, one at a time and in order, retrying failures."""
        backoff = self.webhook_retry_delay
        while self._webhook_url and not self._stopping.is_set():
            event = self._updates_changed
            while self._updates and not self._allowed(self._updates[0][1]):
                self._updates.popleft()
            if not self._updates:
                await event.wait()
                continue
            update_id, _, update = self._updates[0]
            headers = {SECRET_HEADER: self._webhook_secret} if self._webhook_secret else {}
            if self._session is None:
                self._session = aiohttp.ClientSession()
            error: str | None = None
            try:
                async with self._session.post(
                    self._webhook_url,
                    json=update,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
                ) as response:
                    await response.read()
                    if not 200 <= response.status < 300:
                        error = (
                            f"Wrong response from the webhook: {response.status} {response.reason}"
                        )
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"Connection failed: {type(exc).__name__}"
            if error is None:
                if self._updates and self._updates[0][0] == update_id:
                    self._updates.popleft()
                backoff = self.webhook_retry_delay
                continue
            self._webhook_error = (int(time.time()), error)
            await self._sleep(backoff)
            backoff = min(backoff * 2, self.webhook_max_retry_delay)

    # -- methods: messages --------------------------------------------------------------------

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        chat = self._writable_chat(params)
        plain, html, entities = self._parse_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT,
            empty="Bad Request: message text is empty",
            too_long="Bad Request: message is too long",
        )
        markup, keyboard = self._parse_markup(params.get("reply_markup"))
        reply_to = self._reply_target(chat, params)
        self._check_flood(chat.id)
        message = SentMessage(
            chat=chat.info,
            message_id=chat.take_message_id(),
            date=int(time.time()),
            seq=0,
            text=plain,
            html=html,
            entities=entities,
            reply_markup=markup,
            keyboard=keyboard,
            reply_to=reply_to,
        )
        self._new_message(chat, message, "text:" + plain)
        return message.telegram(self.bot_user)

    async def _m_senddocument(self, params: dict[str, Any]) -> Any:
        return await self._send_file(params, "document")

    async def _m_sendphoto(self, params: dict[str, Any]) -> Any:
        return await self._send_file(params, "photo")

    async def _send_file(self, params: dict[str, Any], kind: str) -> Any:
        chat = self._writable_chat(params)
        record = self._file_from(params.get(kind), kind)
        caption, caption_html, caption_entities = self._parse_text(
            params.get("caption"),
            params.get("parse_mode"),
            params.get("caption_entities"),
            limit=MAX_CAPTION,
            empty=None,
            too_long="Bad Request: message caption is too long",
        )
        markup, keyboard = self._parse_markup(params.get("reply_markup"))
        reply_to = self._reply_target(chat, params)
        self._check_flood(chat.id)
        self._files[record.file_id] = record
        message = SentMessage(
            chat=chat.info,
            message_id=chat.take_message_id(),
            date=int(time.time()),
            seq=0,
            reply_markup=markup,
            keyboard=keyboard,
            reply_to=reply_to,
            file=record,
            caption=caption or None,
            caption_html=caption_html or None,
            caption_entities=caption_entities,
        )
        self._new_message(chat, message, f"{kind}:{record.file_unique_id}:{caption}")
        return message.telegram(self.bot_user)

    def _file_from(self, value: Any, kind: str) -> FileRecord:
        if value is None or value == "":
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        if isinstance(value, str):
            known = self._files.get(value)
            if known is None or known.kind != kind:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            return known
        if not isinstance(value, Upload):
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        if not value.data:
            raise ApiError(400, "Bad Request: file must be non-empty")
        limit = MAX_PHOTO_BYTES if kind == "photo" else MAX_DOCUMENT_BYTES
        if len(value.data) > limit:
            raise ApiError(400, "Bad Request: file is too big")
        number = next(self._file_ids)
        record = FileRecord(
            file_id=f"LOCAL{kind[:3].upper()}{number:08d}",
            file_unique_id=f"LU{number:08d}",
            kind=kind,
            data=value.data,
            file_name=value.file_name if kind == "document" else None,
            mime_type=(value.mime_type or "application/octet-stream")
            if kind == "document"
            else None,
        )
        if kind == "photo":
            size = _image_size(value.data)
            if size is None:
                raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
            record.width, record.height = size
        return record

    async def _m_editmessagetext(self, params: dict[str, Any]) -> Any:
        chat, message = self._message_to_edit(params)
        if message.text is None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        plain, html, entities = self._parse_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT,
            empty="Bad Request: message text is empty",
            too_long="Bad Request: MESSAGE_TOO_LONG",
        )
        markup, _ = self._parse_markup(params.get("reply_markup"), inline_only=True)
        if (plain, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise ApiError(400, _NOT_MODIFIED)
        self._check_flood(chat.id)
        message.text, message.html, message.entities = plain, html, entities
        message.reply_markup = markup  # editing without reply_markup removes the keyboard
        message.edit_date = int(time.time())
        chat.bump(message)
        return message.telegram(self.bot_user)

    async def _m_editmessagecaption(self, params: dict[str, Any]) -> Any:
        chat, message = self._message_to_edit(params)
        if message.file is None:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption, caption_html, entities = self._parse_text(
            params.get("caption"),
            params.get("parse_mode"),
            params.get("caption_entities"),
            limit=MAX_CAPTION,
            empty=None,
            too_long="Bad Request: message caption is too long",
        )
        markup, _ = self._parse_markup(params.get("reply_markup"), inline_only=True)
        current = (message.caption or "", message.caption_entities, message.reply_markup)
        if (caption, entities, markup) == current:
            raise ApiError(400, _NOT_MODIFIED)
        self._check_flood(chat.id)
        message.caption, message.caption_html = caption or None, caption_html or None
        message.caption_entities = entities
        message.reply_markup = markup
        message.edit_date = int(time.time())
        chat.bump(message)
        return message.telegram(self.bot_user)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        chat, message = self._message_to_edit(params)
        markup, _ = self._parse_markup(params.get("reply_markup"), inline_only=True)
        if markup == message.reply_markup:
            raise ApiError(400, _NOT_MODIFIED)
        self._check_flood(chat.id)
        message.reply_markup = markup
        message.edit_date = int(time.time())
        chat.bump(message)
        return message.telegram(self.bot_user)

    async def _m_deletemessage(self, params: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None or not chat.known:
            raise ApiError(400, "Bad Request: chat not found")
        message_id = params.get("message_id")
        if message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = chat.sent.get(message_id)
        if message is not None and not message.deleted:
            message.deleted = True
            chat.bump(message)
            return True
        if chat.user_messages.pop(message_id, None) is not None:
            return True
        raise ApiError(400, "Bad Request: message to delete not found")

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> Any:
        query_id = params.get("callback_query_id")
        query = self._callbacks.get(query_id) if isinstance(query_id, str) else None
        if query is None or query.answered:
            raise ApiError(400, _QUERY_TOO_OLD)
        text = params.get("text") or ""
        if len(text) > MAX_CALLBACK_ANSWER:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        query.answered = True
        chat = self._chats.get(query.chat_id)
        answers = chat.callback_answers if chat is not None else self._chatless_answers
        answers.append(
            {
                "callback_query_id": query_id,
                "message_id": query.message_id,
                "data": query.data,
                "text": text or None,
                "show_alert": bool(params.get("show_alert")),
                "url": params.get("url"),
                "at": time.time(),
            }
        )
        if chat is not None:
            chat.notify()
        return True

    async def _m_sendchataction(self, params: dict[str, Any]) -> Any:
        self._writable_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    # -- methods: commands and descriptions ---------------------------------------------------

    @staticmethod
    def _scope_key(scope: Any) -> _ScopeKey:
        if scope is None:
            return ("default", None, None)
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
            raise ApiError(400, "Bad Request: wrong bot command scope type specified")
        kind = str(scope["type"])
        chat_id = user_id = None
        if kind in ("chat", "chat_administrators", "chat_member"):
            try:
                chat_id = int(scope["chat_id"])
            except (KeyError, TypeError, ValueError):
                raise ApiError(400, "Bad Request: chat not found") from None
        if kind == "chat_member":
            try:
                user_id = int(scope["user_id"])
            except (KeyError, TypeError, ValueError):
                raise ApiError(400, "Bad Request: user not found") from None
        return (kind, chat_id, user_id)

    @staticmethod
    def _language(params: dict[str, Any]) -> str:
        language = params.get("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2,3}", language):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return str(language)

    async def _m_setmycommands(self, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands")
        clean: list[dict[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise ApiError(400, "Bad Request: can't parse BotCommand JSON object")
            command, description = item.get("command"), item.get("description")
            if not isinstance(command, str) or not _COMMAND.match(command):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": command, "description": description})
        key = (self._scope_key(params.get("scope")), self._language(params))
        if clean:
            self._commands[key] = clean
        else:
            self._commands.pop(key, None)
        return True

    async def _m_getmycommands(self, params: dict[str, Any]) -> Any:
        key = (self._scope_key(params.get("scope")), self._language(params))
        return list(self._commands.get(key, []))

    async def _m_deletemycommands(self, params: dict[str, Any]) -> Any:
        self._commands.pop((self._scope_key(params.get("scope")), self._language(params)), None)
        return True

    def _set_text(self, kind: str, params: dict[str, Any], limit: int) -> bool:
        value = params.get(kind) or ""
        if len(value) > limit:
            raise ApiError(400, f"Bad Request: {kind} is too long")
        language = self._language(params)
        if value:
            self._texts[(kind, language)] = value
        else:
            self._texts.pop((kind, language), None)
        return True

    def _get_text(self, kind: str, params: dict[str, Any]) -> dict[str, str]:
        language = self._language(params)
        value = self._texts.get((kind, language), self._texts.get((kind, ""), ""))
        if kind == "name" and not value:
            value = self.first_name
        return {kind: value}

    async def _m_setmydescription(self, params: dict[str, Any]) -> Any:
        return self._set_text("description", params, 512)

    async def _m_getmydescription(self, params: dict[str, Any]) -> Any:
        return self._get_text("description", params)

    async def _m_setmyshortdescription(self, params: dict[str, Any]) -> Any:
        return self._set_text("short_description", params, 120)

    async def _m_getmyshortdescription(self, params: dict[str, Any]) -> Any:
        return self._get_text("short_description", params)

    async def _m_setmyname(self, params: dict[str, Any]) -> Any:
        return self._set_text("name", params, 64)

    async def _m_getmyname(self, params: dict[str, Any]) -> Any:
        return self._get_text("name", params)


_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _default_description(status: int, retry_after: int | None) -> str:
    if status == 429:
        return f"Too Many Requests: retry after {retry_after or 1}"
    return _DESCRIPTIONS.get(status, f"Error {status}")


def _checked_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise ApiError(
            400, "Bad Request: can't parse inline keyboard button: Text is not specified"
        )
    if not button["text"]:
        raise ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
    if not any(kind in button for kind in _BUTTON_KINDS):
        raise ApiError(
            400,
            "Bad Request: can't parse inline keyboard button: "
            "Text buttons are unallowed in the inline keyboard",
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not re.match(r"^(https?|tg)://\S+$", url):
            raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
    return dict(button)


# ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve_local_api(
    host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[LocalBotApi]:
    """Run a `LocalBotApi` on a real socket for the duration of the block."""
    api = LocalBotApi(host=host, port=port, **options)
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


async def run_forever(
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    on_ready: Callable[[LocalBotApi], None] | None = None,
    **options: Any,
) -> None:
    """Serve the local Bot API until SIGINT/SIGTERM (the ``localapi`` command).

    ``on_ready`` is called once it listens (e.g. to start the bot against ``api.base_url``).
    """
    api = LocalBotApi(host=host, port=port, **options)
    await api.start()
    if on_ready is not None:
        on_ready(api)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    token_note = "the default local token" if api.token == DEFAULT_TOKEN else "the token given"
    print(
        f"Local Bot API on {api.url} (bot base_url {api.base_url}, {token_note}; "
        f"user side under {api.url}/user/)",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await api.stop()
