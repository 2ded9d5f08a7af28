"""The bot's own aiohttp server: /healthz, /metrics, the clinic API, the advice pages (/r/) and,
in webhook mode, the webhook. The demo page (from the devkit, in demo mode) attaches here too.

Routes only parse and answer; they call services for the work.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Mapping

from aiohttp import web
from sqlalchemy import text
from telegram import Bot

from bot import metrics
from bot.advicepage import build_advice_pages
from bot.api import RUNTIME, api_errors, build_api
from bot.demokit import find_demo
from bot.runtime import Runtime
from bot.startup import StartupTasks
from bot.webhook import WebhookReceiver

log = logging.getLogger(__name__)

UPDATES = web.AppKey("updates", Mapping[str, int])
WEBHOOK = web.AppKey("webhook", WebhookReceiver)
STARTUP = web.AppKey("startup", StartupTasks)

BOT_API_TIMEOUT = 5.0


class BotApiCheck:
    """Whether the Bot API answers ``getMe``; the answer is reused for ``ttl`` seconds, so load
    balancers polling /healthz every second do not each reach Telegram."""

    def __init__(self, bot: Bot, ttl: float = 5.0) -> None:
        self.bot = bot
        self.ttl = ttl
        self._checked_at: float | None = None
        self._ok = False
        self._lock = asyncio.Lock()

    async def __call__(self) -> bool:
        if self._fresh():
            return self._ok
        async with self._lock:  # concurrent health checks share one getMe
            if self._fresh():
                return self._ok
            try:
                await asyncio.wait_for(self.bot.get_me(), BOT_API_TIMEOUT)
                ok = True
            except Exception as exc:  # any failure means "not reachable"; no details (token)
                log.warning("health: the Bot API did not answer getMe (%s)", type(exc).__name__)
                ok = False
            self._ok, self._checked_at = ok, time.monotonic()
            return ok

    def _fresh(self) -> bool:
        return self._checked_at is not None and time.monotonic() - self._checked_at < self.ttl


BOT_CHECK = web.AppKey("bot_check", BotApiCheck)


async def healthz(request: web.Request) -> web.Response:
    """200 when the database and the Bot API answer and updates come in; 503 naming what does
    not. ``startup`` lists the start-up calls still being retried (command menus, webhook,
    polling); only those that bring updates make it 503."""
    rt = request.app[RUNTIME]
    body: dict[str, object] = {"ok": True, "database": "ok"}
    try:
        async with rt.sessions() as session:
            connection = await session.connection()
            await connection.execute(text("SELECT 1"))
    except Exception:
        body.update(ok=False, database="unreachable")
    check = request.app.get(BOT_CHECK)
    if check is not None:
        if await check():
            body["bot_api"] = "ok"
        else:
            body.update(ok=False, bot_api="unreachable")
    startup = request.app.get(STARTUP)
    if startup is not None:
        body["startup"] = startup.states()
        if not startup.healthy:
            body["ok"] = False
    body["content"] = rt.content.digest
    return web.json_response(body, status=200 if body["ok"] else 503)


async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus text format. With METRICS_TOKEN it needs ``Authorization: Bearer <token>``;
    without one it is served only in the demo (404 otherwise)."""
    rt = request.app[RUNTIME]
    token = rt.settings.metrics_token
    if token is None and not rt.settings.demo:
        raise web.HTTPNotFound()
    if token is not None:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        given = presented.strip().encode("utf-8", "replace")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
            return web.Response(
                status=401,
                text="a valid METRICS_TOKEN is required: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    receiver = request.app.get(WEBHOOK)
    page = await metrics.render(
        rt,
        updates=request.app.get(UPDATES, {}),
        webhook=receiver.outcomes if receiver is not None else None,
    )
    return web.Response(text=page, content_type="text/plain", charset="utf-8")


def build_web_app(
    rt: Runtime,
    *,
    bot: Bot | None = None,
    updates: Mapping[str, int] | None = None,
    webhook: WebhookReceiver | None = None,
    startup: StartupTasks | None = None,
) -> web.Application:
    """The server's routes. ``bot`` adds the Bot API to /healthz; ``updates`` are the counts of
    handled updates by type for /metrics; ``webhook`` serves Telegram's updates on its path;
    ``startup`` adds the start-up calls still being retried to /healthz."""
    # api_errors: everything under /api/ answers JSON, a wrong path or method included.
    app = web.Application(middlewares=[api_errors], client_max_size=64 * 1024)
    app[RUNTIME] = rt
    if bot is not None:
        app[BOT_CHECK] = BotApiCheck(bot, ttl=rt.settings.health_cache_seconds)
    if updates is not None:
        app[UPDATES] = updates
    if startup is not None:
        app[STARTUP] = startup
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    if webhook is not None:
        app[WEBHOOK] = webhook
        app.router.add_post(webhook.path, webhook.handle)
    app.add_subapp("/api/v1/", build_api(rt))
    app.add_subapp("/r/", build_advice_pages(rt))  # the advice pages, the SMS's link
    if rt.settings.demo:  # the local demo page at /, never with a real token (devkit)
        kit = find_demo()
        if kit is not None:
            kit.add_routes(app, rt)
    return app
