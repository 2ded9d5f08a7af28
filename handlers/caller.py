"""The caller's side: advice links from an SMS after a call to the legevakt.

Owns the ``a_`` start-payload prefix. Dispatches (the advice sent after a call) arrive with the
advice issue; until then no advice link can exist, and the person is told plainly that it is not
valid, with the numbers to call.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application

from bot.runtime import Runtime
from handlers.base import Context, Turn
from handlers.common import invalid_link

PREFIX = "a"


async def open_advice_link(update: Update, context: Context, turn: Turn, payload: str) -> None:
    """Open the advice behind a one-time link (no dispatches exist yet: always not valid)."""
    await invalid_link(update, turn)


def register(app: Application, rt: Runtime) -> None:  # type: ignore[type-arg]
    rt.start_routes[PREFIX] = open_advice_link
