"""Telegram update handlers, one module per audience; each exposes ``register(app, rt)``.

``register_all`` is the one place they are wired, in order: audience modules first, the common
catch-alls last.
"""

from __future__ import annotations

from telegram.ext import Application

from bot.runtime import Runtime


def register_all(app: Application, rt: Runtime) -> None:  # type: ignore[type-arg]
    from handlers import caller, common, leader

    caller.register(app, rt)
    leader.register(app, rt)
    common.register(app)
