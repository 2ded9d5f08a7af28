"""What a running bot holds: settings, database sessions, catalogs and the live content.

Handlers reach it through ``runtime(context)``. Content and catalogs are swapped whole on reload,
so a handler reads them once per update and never sees half of an edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.content import ContentBundle
from bot.db import Sessions
from bot.i18n import Catalogs

if TYPE_CHECKING:
    from telegram.ext import CallbackContext

    from bot.outbox import OutboxSender
    from bot.sms import SmsSender


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: Sessions
    catalogs: Catalogs
    content: ContentBundle
    sender: OutboxSender | None = None
    sms_sender: SmsSender | None = None
    bot_username: str = ""
    # Start-payload prefix -> handler, filled by the audience modules' register() functions.
    start_routes: dict[str, Any] = field(default_factory=dict)


RUNTIME_KEY = "runtime"


def runtime(context: CallbackContext[Any, Any, Any, Any]) -> Runtime:
    rt = context.application.bot_data[RUNTIME_KEY]
    assert isinstance(rt, Runtime)
    return rt
