"""Finding the demo: the local Bot API and the demo page live in ``sikkerhetsnett-devkit``, a
separate distribution that a production install does not have. The bot never imports it; it
looks for the ``sikkerhetsnett.demo`` entry point, and without a token and without the kit it
stops with a message naming TELEGRAM_BOT_TOKEN and how to get the demo.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from typing import TYPE_CHECKING, Protocol

from bot.config import ConfigError

if TYPE_CHECKING:
    from aiohttp import web

    from bot.runtime import Runtime

DEMO_ENTRY_POINTS = "sikkerhetsnett.demo"


class DemoKit(Protocol):
    """What the demo needs and the production package does not ship."""

    def local_api(
        self, host: str, port: int
    ) -> contextlib.AbstractAsyncContextManager[LocalApi]: ...

    def add_routes(self, app: web.Application, rt: Runtime) -> None: ...


class LocalApi(Protocol):
    token: str

    @property
    def base_url(self) -> str: ...


def find_demo() -> DemoKit | None:
    """The installed demo kit, or None (a production install)."""
    for entry in importlib.metadata.entry_points(group=DEMO_ENTRY_POINTS):
        kit: DemoKit = entry.load()
        return kit
    return None


def require_demo() -> DemoKit:
    """The demo kit for a start without a token; fails closed, naming what is missing."""
    kit = find_demo()
    if kit is None:
        raise ConfigError(
            "The environment variable TELEGRAM_BOT_TOKEN is missing: set it to the bot's token "
            "from @BotFather to run the bot. Without it the bot runs only as a demo, and the demo "
            "is not installed here (it is the sikkerhetsnett-devkit package: `make install` in "
            "a checkout, or `pip install sikkerhetsnett-devkit`)."
        )
    return kit
