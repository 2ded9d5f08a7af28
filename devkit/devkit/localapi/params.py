"""Bot API parameters: which methods exist, what kind each parameter is, and how to read them.

Telegram accepts query strings, JSON, url-encoded forms (all strings) and multipart uploads; this
module turns any of them into typed values. It must not know what the methods do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from devkit.localapi.records import ApiError

Kind = Literal["int", "float", "bool", "str", "json", "file", "chat"]

_SEND: dict[str, Kind] = {
    "chat_id": "chat",
    "business_connection_id": "str",
    "message_thread_id": "int",
    "disable_notification": "bool",
    "protect_content": "bool",
    "allow_paid_broadcast": "bool",
    "message_effect_id": "str",
    "reply_parameters": "json",
    "reply_to_message_id": "int",
    "allow_sending_without_reply": "bool",
    "reply_markup": "json",
}
_EDIT: dict[str, Kind] = {
    "chat_id": "chat",
    "message_id": "int",
    "inline_message_id": "str",
    "business_connection_id": "str",
    "reply_markup": "json",
}
_SCOPE: dict[str, Kind] = {"scope": "json", "language_code": "str"}


@dataclass(frozen=True, slots=True)
class BotMethod:
    """A Bot API method and the kind of each parameter it knows."""

    name: str
    params: dict[str, Kind]


_METHOD_LIST = [
    BotMethod("getMe", {}),
    BotMethod(
        "getUpdates",
        {"offset": "int", "limit": "int", "timeout": "float", "allowed_updates": "json"},
    ),
    BotMethod(
        "sendMessage",
        {
            **_SEND,
            "text": "str",
            "parse_mode": "str",
            "entities": "json",
            "link_preview_options": "json",
            "disable_web_page_preview": "bool",
        },
    ),
    BotMethod(
        "sendDocument",
        {
            **_SEND,
            "document": "file",
            "thumbnail": "file",
            "caption": "str",
            "parse_mode": "str",
            "caption_entities": "json",
            "disable_content_type_detection": "bool",
        },
    ),
    BotMethod(
        "sendPhoto",
        {
            **_SEND,
            "photo": "file",
            "caption": "str",
            "parse_mode": "str",
            "caption_entities": "json",
            "has_spoiler": "bool",
            "show_caption_above_media": "bool",
        },
    ),
    BotMethod(
        "editMessageText",
        {
            **_EDIT,
            "text": "str",
            "parse_mode": "str",
            "entities": "json",
            "link_preview_options": "json",
            "disable_web_page_preview": "bool",
        },
    ),
    BotMethod(
        "editMessageCaption",
        {
            **_EDIT,
            "caption": "str",
            "parse_mode": "str",
            "caption_entities": "json",
            "show_caption_above_media": "bool",
        },
    ),
    BotMethod("editMessageReplyMarkup", dict(_EDIT)),
    BotMethod("deleteMessage", {"chat_id": "chat", "message_id": "int"}),
    BotMethod("getChatMemberCount", {"chat_id": "chat"}),
    BotMethod("leaveChat", {"chat_id": "chat"}),
    BotMethod(
        "answerCallbackQuery",
        {
            "callback_query_id": "str",
            "text": "str",
            "show_alert": "bool",
            "url": "str",
            "cache_time": "int",
        },
    ),
    BotMethod(
        "sendChatAction",
        {
            "chat_id": "chat",
            "action": "str",
            "message_thread_id": "int",
            "business_connection_id": "str",
        },
    ),
    BotMethod("setMyCommands", {"commands": "json", **_SCOPE}),
    BotMethod("getMyCommands", dict(_SCOPE)),
    BotMethod("deleteMyCommands", dict(_SCOPE)),
    BotMethod("setMyDescription", {"description": "str", "language_code": "str"}),
    BotMethod("getMyDescription", {"language_code": "str"}),
    BotMethod("setMyShortDescription", {"short_description": "str", "language_code": "str"}),
    BotMethod("getMyShortDescription", {"language_code": "str"}),
    BotMethod("setMyName", {"name": "str", "language_code": "str"}),
    BotMethod("getMyName", {"language_code": "str"}),
    BotMethod(
        "setWebhook",
        {
            "url": "str",
            "certificate": "file",
            "ip_address": "str",
            "max_connections": "int",
            "allowed_updates": "json",
            "drop_pending_updates": "bool",
            "secret_token": "str",
        },
    ),
    BotMethod("deleteWebhook", {"drop_pending_updates": "bool"}),
    BotMethod("getWebhookInfo", {}),
    BotMethod("close", {}),
    BotMethod("logOut", {}),
]
#: Lower-cased method name → method; Telegram's method names are case-insensitive.
METHODS: dict[str, BotMethod] = {m.name.lower(): m for m in _METHOD_LIST}


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart request."""

    file_name: str | None
    mime_type: str | None
    data: bytes


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


def _coerce_one(name: str, kind: Kind, value: Any, raw: dict[str, Any]) -> Any:
    if kind == "file":
        if isinstance(value, str) and value.startswith("attach://"):
            return raw.get(value.removeprefix("attach://"))
        return value
    if isinstance(value, Upload):
        raise ApiError(400, f"Bad Request: unexpected file in parameter {name}")
    if kind == "str":
        return value if isinstance(value, str) else json.dumps(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ApiError(400, f"Bad Request: can't parse {name} as a boolean")
    if kind in ("int", "chat"):
        if isinstance(value, bool):
            raise ApiError(400, f"Bad Request: can't parse {name} as an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"-?\d+", text):
                return int(text)
            if kind == "chat" and text:
                return text  # "@channelusername"
        if kind == "chat":
            raise ApiError(400, "Bad Request: chat not found")
        raise ApiError(400, f"Bad Request: can't parse {name} as an integer")
    if kind == "float":
        if isinstance(value, bool):
            raise ApiError(400, f"Bad Request: can't parse {name} as a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Bad Request: can't parse {name} as a number") from None
    # json
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            what = "reply keyboard markup" if name == "reply_markup" else name
            raise ApiError(400, f"Bad Request: can't parse {what} JSON object") from None
    return value


def coerce(method: BotMethod, raw: dict[str, Any]) -> dict[str, Any]:
    """Typed parameters: known ones coerced by kind, unknown ones passed through as given."""
    params: dict[str, Any] = {}
    for name, value in raw.items():
        kind = method.params.get(name)
        if kind is None:
            if not isinstance(value, Upload):
                params[name] = value
            continue
        coerced = _coerce_one(name, kind, value, raw)
        if coerced is not None:
            params[name] = coerced
    return params


async def read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON object expected")
        params.update(body)
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = Upload(value.filename, value.content_type, value.file.read())
            else:
                params[key] = value
    return params


def summarise(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as recorded in `LocalBotApi.calls`: files as name and size, not bytes."""
    return {
        key: (
            {"file_name": value.file_name, "mime_type": value.mime_type, "size": len(value.data)}
            if isinstance(value, Upload)
            else value
        )
        for key, value in params.items()
    }
