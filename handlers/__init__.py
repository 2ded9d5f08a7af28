"""Telegram update handlers, one module per audience; each exposes ``register(app, rt)``.

``register_all`` is the one place they are wired, in order: audience modules first (admin's
commands last among them), the common catch-alls last.
"""

from __future__ import annotations

from bot.ptb import BotApplication
from bot.runtime import Runtime


def register_all(app: BotApplication, rt: Runtime) -> None:
    from handlers import admin, caller, common, groups, leader, raabra

    caller.register(app, rt)
    leader.register(app, rt)
    raabra.register(app, rt)
    groups.register(app, rt)  # group chats: their own commands and service messages only
    admin.register(app, rt)  # before common, whose catch-all answers unknown commands
    common.register(app)
