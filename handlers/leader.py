"""The leader's side: invitation links for the weekly reflection.

Owns the ``i_`` start-payload prefix. Invitations arrive with the reflection issue; until then no
invitation can exist, and the person is told plainly that the link is not valid.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application

from bot.runtime import Runtime
from handlers.base import Context, Turn
from handlers.common import invalid_link

PREFIX = "i"


async def open_invite_link(update: Update, context: Context, turn: Turn, payload: str) -> None:
    """Open an invitation (none exist yet: always not valid)."""
    await invalid_link(update, turn)


def register(app: Application, rt: Runtime) -> None:  # type: ignore[type-arg]
    rt.start_routes[PREFIX] = open_invite_link
