"""Webhook mode: Telegram POSTs each update to the bot's own web server instead of long polling.

``WebhookReceiver`` checks the ``X-Telegram-Bot-Api-Secret-Token`` header (constant-time), parses
the update, drops an ``update_id`` it has seen recently, puts the update into PTB's
``update_queue`` and answers 200 at once: handling happens in the application, as with polling,
so a slow handler never makes Telegram retry. Nothing about the update is logged but its id.

Duplicates are remembered in memory, per process: the last ``remember`` ids. With several
instances behind one webhook, a retry that lands on another instance (or comes after a restart)
is not caught here; the flows themselves are built to bear a repeat (links bind once, outbox and
prompts are keyed, answers are the newest text).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections import Counter, OrderedDict
from typing import Any

from aiohttp import web
from telegram import Update

from bot.ptb import BotApplication

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024  # Telegram's updates are far smaller; this only bounds a bad request


class WebhookReceiver:
    """The aiohttp handler for the webhook path; ``outcomes`` counts requests for /metrics."""

    def __init__(
        self,
        application: BotApplication,
        secret: str,
        path: str,
        *,
        remember: int = 10_000,
    ) -> None:
        if not secret:
            raise ValueError("a webhook needs a secret token")
        self.application = application
        self.path = path
        self._secret = secret.encode()
        self._remember = remember
        self._recent: OrderedDict[int, None] = OrderedDict()
        self.accepting = True
        self.outcomes: Counter[str] = Counter()

    def close(self) -> None:
        """Stop taking updates (503, so Telegram keeps them and retries): the bot is stopping."""
        self.accepting = False

    async def handle(self, request: web.Request) -> web.Response:
        presented = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(presented, self._secret):
            self.outcomes["forbidden"] += 1
            log.warning("webhook: a request without the right secret token was refused")
            return _plain(403, "forbidden")
        if not self.accepting:
            self.outcomes["unavailable"] += 1
            return _plain(503, "stopping")
        body = await _read_body(request)
        if body is None:
            self.outcomes["too_large"] += 1
            return _plain(413, "too large")
        try:
            data = json.loads(body)
        except ValueError:  # also bad UTF-8
            self.outcomes["bad_json"] += 1
            log.warning("webhook: a request whose body is not JSON was refused")
            return _plain(400, "the body is not JSON")
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            self.outcomes["bad_update"] += 1
            log.warning("webhook: a JSON body that is not an update was refused")
            return _plain(400, "not an update")
        if update_id in self._recent:
            self._recent.move_to_end(update_id)
            self.outcomes["duplicate"] += 1
            log.info("webhook: update %d came again; ignored", update_id)
            return _plain(200, "ok")
        update = _parse(data, self.application)
        if update is None:
            self.outcomes["bad_update"] += 1
            log.warning("webhook: update %d could not be read; refused", update_id)
            return _plain(400, "not an update")
        self._recent[update_id] = None
        if len(self._recent) > self._remember:
            self._recent.popitem(last=False)
        self.application.update_queue.put_nowait(update)  # unbounded: never blocks
        self.outcomes["accepted"] += 1
        log.debug("webhook: update %d queued", update_id)
        return _plain(200, "ok")


def _parse(data: dict[str, Any], application: BotApplication) -> Update | None:
    try:
        return Update.de_json(data, application.bot)
    except Exception:  # any shape PTB cannot read; its message could hold the update's text
        return None


async def _read_body(request: web.Request) -> bytes | None:
    """The whole body, or None if it is larger than ``MAX_BODY`` (read no further then)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)
