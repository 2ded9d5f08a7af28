"""The bot's own aiohttp server: health now; the clinic API, webhook and demo page attach here.

Routes only parse and answer; they call services for the work.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from bot.api import build_api
from bot.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers; 503 otherwise."""
    rt = request.app[RUNTIME]
    try:
        async with rt.sessions() as session:
            await session.exec(text("SELECT 1"))
    except Exception:
        return web.json_response({"ok": False, "database": "unreachable"}, status=503)
    return web.json_response({"ok": True, "database": "ok", "content": rt.content.digest})


def build_web_app(rt: Runtime) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[RUNTIME] = rt
    app.router.add_get("/healthz", healthz)
    app.add_subapp("/api/v1/", build_api(rt))
    return app
