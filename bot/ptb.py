"""Type names for python-telegram-bot's generic classes, as this bot builds them.

PTB's ``Application`` is generic in six types; the builder in ``bot.app`` fixes them (the default
context, and ``SharedRateLimiter``'s argument type on the bot). Annotating with these names keeps
mypy checking handlers and the app against what is really built.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from telegram.ext import Application, ContextTypes, ExtBot, JobQueue

Context: TypeAlias = ContextTypes.DEFAULT_TYPE
BotApplication: TypeAlias = Application[
    ExtBot[int], Context, dict[Any, Any], dict[Any, Any], dict[Any, Any], JobQueue[Context]
]
