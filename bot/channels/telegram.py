"""The Telegram channel: the adapter that sends queued messages, the rate limiter that puts
direct replies on the same budget, and inline keyboards from typed buttons.

The adapter sends and classifies, nothing more: success → ``Sent``; 429 → ``Throttled``;
403 (blocked, deactivated, kicked) → ``Stopped``; 400 → ``Permanent``; a group that became a
supergroup → sent once more to the new chat id Telegram names;
5xx, timeouts, network errors and anything unexpected → ``Transient``; a refused token →
``Throttled`` for a minute (an operator must act; messages wait, they are not lost).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import BaseRateLimiter

from bot.budget import Slot, TelegramBudget
from bot.messages import Buttons, Message, Outcome, Permanent, Sent, Stopped, Throttled, Transient
from bot.models import Channel, OutboxMessage

log = logging.getLogger(__name__)

# The methods that put a message in a chat, and so count against Telegram's limits.
COUNTED = frozenset(
    {
        "sendMessage",
        "sendDocument",
        "sendPhoto",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
    }
)
INVALID_TOKEN_PAUSE = 60.0


def keyboard(buttons: Buttons) -> InlineKeyboardMarkup | None:
    """python-telegram-bot's inline keyboard for typed buttons (None for no buttons)."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(button.label, callback_data=button.data.pack()) for button in row]
            for row in buttons
        ]
    )


def seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class TelegramAdapter:
    """Sends queued messages through the Bot API on the shared budget (queued sends)."""

    channel = Channel.TELEGRAM

    def __init__(self, bot: Bot, budget: TelegramBudget, *, concurrency: int = 16) -> None:
        self.bot = bot  # its Defaults say parse_mode=HTML
        self.budget = budget
        self.concurrency = concurrency
        self._slots: dict[int, Slot] = {}  # a row's place in the budget, from ready to send

    async def ready(self, row: OutboxMessage) -> None:
        slot = await self.budget.queued(row.chat_id)
        if row.id is not None:
            self._slots[row.id] = slot

    async def send(self, row: OutboxMessage, message: Message) -> Outcome:
        slot = self._slots.pop(row.id, None) if row.id is not None else None
        try:
            if row.chat_id is None:
                return Permanent("NoChat")
            return await self._send(row, row.chat_id, message, follow_migration=True)
        finally:
            if slot is not None:
                self.budget.done(slot)

    async def _send(
        self, row: OutboxMessage, chat_id: int, message: Message, *, follow_migration: bool
    ) -> Outcome:
        try:
            sent = await self.bot.send_message(
                chat_id, message.text, reply_markup=keyboard(message.buttons)
            )
        except ChatMigrated as exc:
            # A group became a supergroup; Telegram names its new id. The message goes there
            # (once); the group's link moves when the migration's own update arrives.
            if not follow_migration:
                return Permanent("ChatMigrated")
            slot = await self.budget.queued(exc.new_chat_id)
            try:
                return await self._send(row, exc.new_chat_id, message, follow_migration=False)
            finally:
                self.budget.done(slot)
        except RetryAfter as exc:
            wait = seconds(exc.retry_after)
            self.budget.pause(wait)
            return Throttled(wait)
        except Forbidden:
            return Stopped()
        except BadRequest as exc:  # before NetworkError, its base class
            log.warning("telegram: message %s refused (400): %s", row.id, exc.message[:80])
            return Permanent("BadRequest")
        except InvalidToken:
            log.error("telegram: the Bot API refused the token; sending paused")
            return Throttled(INVALID_TOKEN_PAUSE)
        except NetworkError as exc:  # 5xx, timeouts, connection errors
            return Transient(type(exc).__name__)
        except Exception as exc:  # 409 Conflict, an unexpected answer …: tried again, until expiry
            log.error("telegram: message %s failed with %s", row.id, type(exc).__name__)
            return Transient(type(exc).__name__)
        return Sent(sent.message_id)


class SharedRateLimiter(BaseRateLimiter[int]):
    """PTB's rate limiter for direct replies, drawing on the bot's one ``TelegramBudget``.

    A 429 pauses the whole budget (queued sends too) and the reply is tried again, up to
    ``max_retries`` times.
    """

    def __init__(self, budget: TelegramBudget, max_retries: int = 2) -> None:
        self.budget = budget
        self.max_retries = max_retries

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id = data.get("chat_id")
        counted = endpoint in COUNTED
        attempt = 0
        while True:
            slot = None
            if counted:
                slot = await self.budget.reply(chat_id if isinstance(chat_id, int) else None)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.budget.pause(seconds(exc.retry_after))
                attempt += 1
                if attempt > self.max_retries:
                    raise
            finally:
                if slot is not None:
                    self.budget.done(slot)
