"""The user side over HTTP (``/user/...``) and fault control (``/control/...``) as aiohttp routes.

A thin adapter: each route parses JSON and calls a public method of `LocalBotApi`; it must not
reach into the server's private state, so everything here is also doable from Python.

Like the demo page, these routes answer only requests that name this machine in ``Host`` (or
the address the server was told to listen on), so a web page cannot reach them by DNS
rebinding, and refuse writes with a foreign ``Origin`` (a cross-site form posting as a user).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from devkit.localapi.records import UserSideError

if TYPE_CHECKING:
    from devkit.localapi.server import LocalBotApi

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The names of this machine a request may carry in Host (the port is not part of the check).
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class UserSideRoutes:
    """Routes acting as people in chats with the bot, and controlling injected faults."""

    def __init__(self, api: LocalBotApi) -> None:
        self.api = api

    def routes(self) -> list[web.RouteDef]:
        guard = self._guarded
        return [
            web.post("/control/inject", guard(self._control_inject)),
            web.post("/control/delay", guard(self._control_delay)),
            web.post("/control/outage", guard(self._control_outage)),
            web.post("/control/clear", guard(self._control_clear)),
            web.post("/control/flood", guard(self._control_flood)),
            web.post("/user/updates", guard(self._u_push_update)),
            web.post(r"/user/{user_id:-?\d+}/messages", guard(self._u_says)),
            web.get(r"/user/{user_id:-?\d+}/messages", guard(self._u_messages)),
            web.get(r"/user/{user_id:-?\d+}/wait", guard(self._u_wait)),
            web.post(r"/user/{user_id:-?\d+}/edits", guard(self._u_edits)),
            web.post(r"/user/{user_id:-?\d+}/callbacks", guard(self._u_presses)),
            web.get(r"/user/{user_id:-?\d+}/callback_answers", guard(self._u_callback_answers)),
            web.post(r"/user/{user_id:-?\d+}/block", guard(self._u_block)),
            web.post(r"/user/{user_id:-?\d+}/unblock", guard(self._u_unblock)),
            web.get(r"/user/{user_id:-?\d+}/files/{message_id:\d+}", guard(self._u_file)),
            web.get(r"/user/{user_id:-?\d+}/commands", guard(self._u_commands)),
            web.post(r"/user/{user_id:\d+}/groups", guard(self._u_add_bot)),
            web.post(
                r"/user/{user_id:\d+}/groups/{chat_id:-\d+}/messages", guard(self._u_group_says)
            ),
            web.post(
                r"/user/{user_id:\d+}/groups/{chat_id:-\d+}/remove", guard(self._u_remove_bot)
            ),
            web.post(r"/user/{user_id:\d+}/groups/{chat_id:-\d+}/migrate", guard(self._u_migrate)),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        """``handler``, answering 403 to a foreign ``Host`` or, on writes, ``Origin``."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                host = (request.url.host or "").lower()
            except ValueError:  # a Host header that is no host
                host = ""
            own = {name.lower() for name in LOOPBACK_NAMES}
            if self.api.host not in ("", "0.0.0.0", "::"):
                own.add(self.api.host.lower())
            if host not in own:
                return _forbidden("the user side answers only requests addressed to this machine")
            origin = request.headers.get("Origin")
            if (
                request.method not in ("GET", "HEAD")
                and origin
                and origin != f"http://{request.host}"
            ):
                return _forbidden("requests from other sites are refused")
            return await handler(request)

        return guarded

    async def _u_push_update(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return await _user_answer(lambda: {"update_id": self.api.push_update(body)})

    async def _u_says(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            reply_to = body.get("reply_to_message_id")
            update_id, message_id = self.api.user_message(
                user_id,
                _str_field(body, "text"),
                first_name=_opt_str(body, "first_name"),
                last_name=_opt_str(body, "last_name"),
                username=_opt_str(body, "username"),
                language_code=_opt_str(body, "language_code"),
                reply_to_message_id=int(reply_to) if reply_to is not None else None,
            )
            return {"update_id": update_id, "message_id": message_id}

        return await _user_answer(act)

    async def _u_edits(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            message_id = _int_field(body, "message_id")
            return {"update_id": self.api.user_edit(user_id, message_id, _str_field(body, "text"))}

        return await _user_answer(act)

    async def _u_presses(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            data = body.get("data")
            if not isinstance(data, str):
                raise UserSideError(400, "data must be a string")
            update_id, query_id = self.api.user_press(user_id, _int_field(body, "message_id"), data)
            return {"update_id": update_id, "callback_query_id": query_id}

        return await _user_answer(act)

    async def _u_add_bot(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            update_id, start_id = self.api.group_add_bot(
                user_id,
                _int_field(body, "chat_id"),
                _str_field(body, "title"),
                _opt_str(body, "start"),
                first_name=_opt_str(body, "first_name"),
                language_code=_opt_str(body, "language_code"),
            )
            return {"update_id": update_id, "start_update_id": start_id}

        return await _user_answer(act)

    async def _u_group_says(self, request: web.Request) -> web.Response:
        user_id, chat_id = int(request.match_info["user_id"]), int(request.match_info["chat_id"])
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            reply_to = body.get("reply_to_message_id")
            update_id, message_id = self.api.group_message(
                user_id,
                chat_id,
                _str_field(body, "text"),
                reply_to_message_id=int(reply_to) if reply_to is not None else None,
                first_name=_opt_str(body, "first_name"),
                language_code=_opt_str(body, "language_code"),
            )
            return {"update_id": update_id, "message_id": message_id}

        return await _user_answer(act)

    async def _u_remove_bot(self, request: web.Request) -> web.Response:
        user_id, chat_id = int(request.match_info["user_id"]), int(request.match_info["chat_id"])
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            kicked = bool(body.get("kicked", False))
            return {"update_id": self.api.group_remove_bot(user_id, chat_id, kicked=kicked)}

        return await _user_answer(act)

    async def _u_migrate(self, request: web.Request) -> web.Response:
        user_id, chat_id = int(request.match_info["user_id"]), int(request.match_info["chat_id"])
        return await _user_answer(lambda: {"chat_id": self.api.group_migrate(user_id, chat_id)})

    async def _u_messages(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        after_seq = _query_int(request, "after_seq", 0)
        messages = self.api.messages_after(user_id, after_seq)
        return web.json_response(
            {
                "messages": [message.user_view() for message in messages],
                "last_seq": self.api.last_seq(user_id),
            }
        )

    async def _u_wait(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        after_seq = _query_int(request, "after_seq", 0)
        try:
            timeout = min(60.0, max(0.0, float(request.query.get("timeout", "10"))))
        except ValueError:
            return web.json_response({"ok": False, "error": "timeout must be a number"}, status=400)
        messages, answer = await self.api.wait_messages(
            user_id, after_seq, timeout, request.query.get("callback_query_id")
        )
        return web.json_response(
            {
                "messages": [message.user_view() for message in messages],
                "last_seq": self.api.last_seq(user_id),
                "callback_answer": answer,
            }
        )

    async def _u_callback_answers(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        return web.json_response({"callback_answers": self.api.callback_answers(user_id)})

    async def _u_block(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])

        def act() -> dict[str, Any]:
            self.api.block(user_id)
            return {"ok": True}

        return await _user_answer(act)

    async def _u_unblock(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])

        def act() -> dict[str, Any]:
            self.api.unblock(user_id)
            return {"ok": True}

        return await _user_answer(act)

    async def _u_file(self, request: web.Request) -> web.Response:
        user_id, message_id = request.match_info["user_id"], request.match_info["message_id"]
        record = self.api.file_of(int(user_id), int(message_id))
        if record is None:
            return web.json_response({"ok": False, "error": "no file in that message"}, status=404)
        headers = {}
        if record.file_name:
            name = quote(record.file_name)
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{name}"
        return web.Response(
            body=record.data,
            content_type=record.mime_type
            or ("image/jpeg" if record.kind == "photo" else "application/octet-stream"),
            headers=headers,
        )

    async def _u_commands(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        language = request.query.get("language_code")
        return web.json_response({"commands": self.api.visible_commands(user_id, language)})

    # -- control (for a local API running as its own process) ---------------------------------

    async def _control_inject(self, request: web.Request) -> web.Response:
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            self.api.inject(
                _opt_str(body, "method"),
                _int_field(body, "status"),
                int(body.get("times", 1)),
                int(body["retry_after"]) if body.get("retry_after") is not None else None,
                _opt_str(body, "description"),
            )
            return {"ok": True}

        return await _user_answer(act)

    async def _control_delay(self, request: web.Request) -> web.Response:
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            act_when = body.get("act", "after")
            if act_when not in ("after", "before"):
                raise UserSideError(400, "act must be 'after' or 'before'")
            self.api.inject_delay(
                _opt_str(body, "method"),
                float(body.get("seconds", 1.0)),
                int(body.get("times", 1)),
                act_when,
            )
            return {"ok": True}

        return await _user_answer(act)

    async def _control_outage(self, request: web.Request) -> web.Response:
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            self.api.outage(float(body.get("seconds", 1.0)))
            return {"ok": True}

        return await _user_answer(act)

    async def _control_clear(self, request: web.Request) -> web.Response:
        self.api.clear_faults()
        return web.json_response({"ok": True})

    async def _control_flood(self, request: web.Request) -> web.Response:
        body = await _json_body(request)

        def act() -> dict[str, Any]:
            overall = body.get("overall_per_second")
            per_chat = body.get("per_chat_per_second")
            self.api.set_flood_limits(
                bool(body.get("enabled", True)),
                int(overall) if overall is not None else None,
                int(per_chat) if per_chat is not None else None,
            )
            return {"ok": True}

        return await _user_answer(act)


def _forbidden(message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=403)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": "body must be JSON"}),
            content_type="application/json",
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": "body must be a JSON object"}),
            content_type="application/json",
        )
    return body


async def _user_answer(act: Callable[[], dict[str, Any]]) -> web.Response:
    try:
        return web.json_response(act())
    except UserSideError as error:
        return web.json_response({"ok": False, "error": error.message}, status=error.status)
    except (KeyError, TypeError, ValueError) as error:
        return web.json_response({"ok": False, "error": f"bad request: {error}"}, status=400)


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return None if value is None else str(value)


def _str_field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise UserSideError(400, f"{key} must be a non-empty string")
    return value


def _int_field(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or value is None:
        raise UserSideError(400, f"{key} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserSideError(400, f"{key} must be an integer") from None


def _query_int(request: web.Request, key: str, default: int) -> int:
    try:
        return int(request.query.get(key, default))
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": f"{key} must be an integer"}),
            content_type="application/json",
        ) from None
