"""What the bot's demo mode needs from the kit, behind the ``sikkerhetsnett.demo`` entry point.

``bot.app.serve`` (no TELEGRAM_BOT_TOKEN) loads ``KIT`` to start the local Bot API, and
``bot.web`` to add the demo page to the bot's own web server. The shape is ``bot.app.DemoKit``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from bot.runtime import Runtime
from devkit.demo import add_demo_routes
from devkit.localapi import LocalBotApi, serve_local_api


class Kit:
    @contextlib.asynccontextmanager
    async def local_api(self, host: str, port: int) -> AsyncIterator[LocalBotApi]:
        async with serve_local_api(host=host, port=port) as api:
            yield api

    def add_routes(self, app: web.Application, rt: Runtime) -> None:
        add_demo_routes(app, rt)


KIT = Kit()
