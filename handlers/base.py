"""What every handler starts with: the person, their language, and small rendering helpers.

No business rules here: handlers parse, call a service, render, reply.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.i18n import Locale, as_locale, guess_locale
from bot.models import Person
from bot.runtime import Runtime, runtime
from bot.services.people import ensure_person

Context = ContextTypes.DEFAULT_TYPE


@dataclass
class Turn:
    """One update from one person, with their stored language."""

    rt: Runtime
    person: Person
    locale: Locale

    @property
    def gettext(self) -> Callable[[str], str]:
        return self.rt.catalogs.gettext(self.locale)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.rt.catalogs.ui(self.locale).ngettext(singular, plural, n)


async def begin(update: Update, context: Context) -> Turn | None:
    """Load the person behind a private-chat update; None for anything else (groups, channels)."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None or chat.type != chat.PRIVATE or user.is_bot:
        return None
    rt = runtime(context)
    guessed = guess_locale(user.language_code, rt.settings.default_locale)
    person = await ensure_person(rt.sessions, user.id, guessed)
    return Turn(rt=rt, person=person, locale=as_locale(person.locale, rt.settings.default_locale))


def esc(text: str) -> str:
    """Escape text for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def keyboard(rows: Sequence[Sequence[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Inline buttons from rows of (label, callback_data)."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def reply(
    update: Update, text: str, markup: InlineKeyboardMarkup | None = None, **kwargs: Any
) -> None:
    """Answer in the chat the update came from, as HTML."""
    chat = update.effective_chat
    if chat is None:
        return
    await chat.send_message(
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup,
        link_preview_options=None,
        **kwargs,
    )


async def edit_or_reply(
    update: Update, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Replace the text of the message whose button was pressed, as HTML.

    Nothing more if it says that already (a second tap); a new message if it cannot be edited
    (deleted, or not a message the bot can reach).
    """
    query = update.callback_query
    if query is not None and isinstance(query.message, Message):
        try:
            await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
            return
        except BadRequest as error:
            if "not modified" in error.message.lower():
                return
    await reply(update, text, markup)


def answered_after(handler: Any) -> Any:
    """Answer the button press once the handler has sent what it sends.

    The bot's messages then arrive before the press's spinner stops, which is also what a test
    waiting for "the answer to the press" sees.
    """

    async def wrapped(update: Update, context: Context) -> None:
        try:
            await handler(update, context)
        finally:
            if update.callback_query is not None:
                # Already answered with a text, or too old: nothing more to do.
                with contextlib.suppress(TelegramError):
                    await update.callback_query.answer()

    return wrapped
