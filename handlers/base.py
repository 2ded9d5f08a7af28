"""What every handler starts with: the person, their language, and small rendering helpers.

No business rules here: handlers parse, call a service, render, reply.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, Message, Update, User
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackQueryHandler

from bot.callbacks import CallbackData
from bot.channels.telegram import keyboard as telegram_keyboard
from bot.i18n import Locale, as_locale, guess_locale
from bot.messages import Buttons, rows
from bot.models import Person
from bot.ptb import Context
from bot.runtime import Runtime, runtime
from bot.services.people import ensure_person

D = TypeVar("D", bound=CallbackData)


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
    user = private_user(update)
    if user is None:
        return None
    rt = runtime(context)
    person = await ensure_person(rt.sessions, user.id, first_guess(rt, user))
    return turn_of(rt, person)


def private_user(update: Update) -> User | None:
    """The person writing in a private chat (not a bot); None for anything else."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None or chat.type != chat.PRIVATE or user.is_bot:
        return None
    return user


def first_guess(rt: Runtime, user: User) -> Locale:
    """A first guess of a person's language, from their Telegram app's."""
    return guess_locale(user.language_code, rt.settings.default_locale)


def turn_of(rt: Runtime, person: Person) -> Turn:
    return Turn(rt=rt, person=person, locale=as_locale(person.locale, rt.settings.default_locale))


def esc(text: str) -> str:
    """Escape text for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def bold(text: str) -> str:
    """Text in bold, escaped for Telegram's HTML parse mode."""
    return f"<b>{esc(text)}</b>"


def keyboard(
    buttons: Buttons | Sequence[Sequence[tuple[str, CallbackData]]],
) -> InlineKeyboardMarkup:
    """Inline buttons from typed buttons, or from rows of (label, callback value)."""
    if not isinstance(buttons, tuple):
        buttons = rows(*buttons)
    markup = telegram_keyboard(buttons)
    return markup if markup is not None else InlineKeyboardMarkup([])


async def reply(
    update: Update, text: str, markup: InlineKeyboardMarkup | None = None, **kwargs: Any
) -> None:
    """Answer in the chat the update came from (HTML: the application's default parse mode)."""
    chat = update.effective_chat
    if chat is None:
        return
    if kwargs:
        await chat.send_message(text, reply_markup=markup, **kwargs)
        return
    # ``sendMessage`` exactly as ``send_message`` posts it (the application's Defaults filled in
    # the same way, through the rate limiter), without building a ``Message`` from Telegram's
    # answer, which nobody reads here: that parse was ~8 % of an opened link's CPU.
    await chat.get_bot()._post(
        "sendMessage",
        {
            "chat_id": chat.id,
            "text": text,
            "reply_markup": markup,
            "parse_mode": DEFAULT_NONE,
            "disable_notification": DEFAULT_NONE,
            "protect_content": DEFAULT_NONE,
            "link_preview_options": DEFAULT_NONE,
        },
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
            await query.edit_message_text(text, reply_markup=markup)
            return
        except BadRequest as error:
            if "not modified" in error.message.lower():
                return
    await reply(update, text, markup)


ButtonHandler = Callable[[Update, Context, D], Awaitable[None]]


def on_button(
    codec: type[D], handler: ButtonHandler[D], *, answer_after: bool = True
) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """A callback-query callback that hands ``handler`` the decoded button (``codec``).

    With ``answer_after`` the press is answered once the handler has sent what it sends: the
    bot's messages then arrive before the press's spinner stops, which is also what a test
    waiting for "the answer to the press" sees.
    """

    async def wrapped(update: Update, context: Context) -> None:
        query = update.callback_query
        data = codec.unpack(query.data if query is not None else None)
        if data is None:  # a press with no data at all reaches every handler (PTB)
            await _no_longer_works(update, context)
            return
        try:
            await handler(update, context, data)
        finally:
            if answer_after and query is not None:
                # Already answered with a text, or too old: nothing more to do.
                with contextlib.suppress(TelegramError):
                    await query.answer()

    return wrapped


async def _no_longer_works(update: Update, context: Context) -> None:
    """A press that carries no data: the button no longer works (said with the numbers)."""
    from handlers.common import button_gone  # common builds on this module

    query = update.callback_query
    if query is None:
        return
    turn = await begin(update, context)
    if turn is None:  # not a private chat: stop the spinner only
        with contextlib.suppress(TelegramError):
            await query.answer()
        return
    await button_gone(update, turn)


def button(
    codec: type[D], handler: ButtonHandler[D], *, answer_after: bool = True
) -> CallbackQueryHandler[Context, None]:
    """The handler for one button family: only its callback data, decoded for ``handler``."""
    return CallbackQueryHandler(
        on_button(codec, handler, answer_after=answer_after), pattern=codec.matches
    )
