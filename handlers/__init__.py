"""Telegram update handlers, one module per audience; each exposes ``register(app, rt)``.

``register_all`` is the one place they are wired, in order: audience modules first (admin's
commands last among them), the common catch-alls last.
"""

from __future__ import annotations

from telegram.ext import Application

from bot.runtime import Runtime


def register_all(app: Application, rt: Runtime) -> None:  # type: ignore[type-arg]
    from handlers import admin, caller, common, leader

    caller.register(app, rt)
    leader.register(app, rt)
    admin.register(app, rt)  # before common, whose catch-all answers unknown commands
    common.register(app)
