"""Handlers every person meets: /start, /help, /language, /privacy, unknown text, errors.

``/start <payload>`` is routed by the payload's prefix to the caller or leader flow, which
register their routes in ``Runtime.start_routes``. A person who sends too many links that do not
work (``LinkThrottle``) is told to wait, and their links are not looked up until then: guessing
tokens gets nowhere.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from collections.abc import Callable

from telegram import BotCommand, BotCommandScopeChat, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot import callbacks, urgency
from bot.i18n import LANGUAGE_NAMES, LOCALES, Catalogs, Locale, as_locale, guess_locale
from bot.ptb import BotApplication
from bot.runtime import runtime
from bot.services.people import choose_locale, delete_person
from bot.throttle import LinkThrottle
from handlers.base import (
    Context,
    Turn,
    begin,
    bold,
    button,
    edit_or_reply,
    keyboard,
    private_user,
    reply,
)

log = logging.getLogger(__name__)

PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LINK_THROTTLE_KEY = "link_throttle"


def link_throttle(context: Context) -> LinkThrottle[int]:
    bot_data = context.application.bot_data
    throttle = bot_data.get(LINK_THROTTLE_KEY)
    if not isinstance(throttle, LinkThrottle):
        settings = runtime(context).settings
        throttle = bot_data[LINK_THROTTLE_KEY] = LinkThrottle[int](
            settings.start_link_attempts, settings.start_link_window_minutes * 60
        )
    return throttle


class _Attempt:
    refused = False


# The /start link being followed in this update; flows mark it refused (see link_refused).
_attempt: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "link_attempt", default=None
)


def link_refused() -> None:
    """Count the link being followed as one that did not work (unknown, expired, taken …).

    ``invalid_link`` calls this; a flow that refuses a link with its own answer may call it too.
    """
    attempt = _attempt.get()
    if attempt is not None:
        attempt.refused = True


def _(message: str) -> str:
    """Mark a string for extraction; it is translated later, per person."""
    return message


def commands(
    catalogs: Catalogs,
    locale: Locale,
    *,
    leader: bool = False,
    admin: bool = False,
    raabra: bool = False,
) -> list[BotCommand]:
    """The command menu in one language; leaders and admins get their own commands first,
    and leaders and invited staff /raabra."""
    _ = catalogs.gettext(locale)
    menu = []
    if admin:
        menu = [
            BotCommand("status", _("Bot status: versions, outbox, counters")),
            BotCommand("stats", _("Chart: leaders' response rate and dispatches")),
            BotCommand("reload", _("Reload content and translations")),
        ]
    if leader:
        menu += [
            BotCommand("settings", _("Day, time and language for your weekly question")),
            BotCommand("answers", _("Read your own answers")),
            BotCommand("pause", _("Pause the weekly questions")),
            BotCommand("resume", _("Start the weekly questions again")),
            BotCommand("export", _("Download your answers as a file")),
            BotCommand("stop", _("Leave the weekly reflection")),
        ]
    if leader or raabra:
        menu.append(BotCommand("raabra", _("Tell about something that went well (#Råbra)")))
    return [
        *menu,
        BotCommand("start", _("What this bot does")),
        BotCommand("help", _("Help and emergency numbers")),
        BotCommand("language", _("Choose Bokmål or Nynorsk")),
        BotCommand("privacy", _("What we store about you, and how to delete it")),
    ]


async def set_chat_menu(
    context: Context, turn: Turn, locale: Locale, *, leader: bool, raabra: bool | None = None
) -> None:
    """This person's command menu, in their language (leaders see their own commands; leaders
    and staff invited to #Råbra see /raabra). ``raabra`` None: look it up."""
    if raabra is None and not leader:
        from bot.services.raabra import contributor

        raabra = await contributor(turn.rt, turn.person) is not None
    try:
        await context.bot.set_my_commands(
            commands(
                turn.rt.catalogs,
                locale,
                leader=leader,
                admin=turn.person.telegram_user_id in turn.rt.settings.admin_user_ids,
                raabra=bool(raabra),
            ),
            scope=BotCommandScopeChat(turn.person.telegram_user_id),
        )
    except TelegramError:  # the menu is a convenience; nothing depends on it
        log.warning("could not set a chat's command menu")


async def start(update: Update, context: Context) -> None:
    """Explain the bot, or follow a link from an SMS or an invitation."""
    if context.args:
        await follow_link(update, context, context.args[0])
        return
    turn = await begin(update, context)
    if turn is None:
        return
    _ = turn.gettext
    await reply(
        update,
        _(
            "<b>Sikkerhetsnett</b> gives you written advice after you have called the legevakt: "
            "what you can do yourself, what is normal, and exactly when to call again. The "
            "legevakt sends you a personal link by SMS; open it to read your advice here."
        )
        + "\n\n"
        + _(
            "Leaders in health services use Sikkerhetsnett for one reflection question a week. "
            "You join with an invitation link from your organisation."
        )
        + "\n\n"
        + urgency.numbers_line(_)
        + " "
        + _("/help shows what else you can do."),
    )


async def follow_link(update: Update, context: Context, payload: str) -> None:
    """Hand a deep-link payload to the flow that owns its prefix; refuse anything else plainly.

    A person paused by the throttle is told to wait, and the link is not looked up. A flow in
    ``Runtime.link_openers`` writes the person itself, in the transaction that follows the link
    (a caller's advice link: the hot path); for the others the person is written first.
    """
    user = private_user(update)
    if user is None:
        return
    rt = runtime(context)
    throttle = link_throttle(context)
    if throttle.paused(user.id):
        paused = await begin(update, context)
        assert paused is not None  # a private chat's user, as above
        log.info("start link not looked up: person %s is paused", paused.person.id)
        await too_many_links(update, paused)
        return
    attempt = _Attempt()
    reset = _attempt.set(attempt)
    turn: Turn | None = None
    try:
        prefix = payload.split("_", 1)[0] if PAYLOAD.match(payload) and "_" in payload else None
        opener = rt.link_openers.get(prefix) if prefix is not None else None
        if opener is not None:
            turn = await opener(update, context, payload)
        else:
            turn = await begin(update, context)
            assert turn is not None
            route = rt.start_routes.get(prefix) if prefix is not None else None
            if route is None:
                await invalid_link(update, turn)
            else:
                await route(update, context, turn, payload)
    finally:
        _attempt.reset(reset)
        if attempt.refused and throttle.failed(user.id):
            log.warning(
                "start links: person %s paused after %d links that did not work",
                turn.person.id if turn is not None else "?",
                throttle.limit,
            )


async def too_many_links(update: Update, turn: Turn) -> None:
    _ = turn.gettext
    await reply(
        update,
        _(
            "You have tried too many links that do not work. Wait a while, then open the link "
            "again straight from the SMS or invitation."
        )
        + "\n\n"
        + urgency.numbers_line(_),
    )


async def invalid_link(update: Update, turn: Turn) -> None:
    link_refused()
    _ = turn.gettext
    await reply(
        update,
        _(
            "This link is not valid. It may be incomplete: open it straight from the SMS or "
            "invitation, without changing it."
        )
        + "\n\n"
        + urgency.numbers_line(_),
    )


def registered(context: Context, command: str) -> bool:
    """Whether this bot answers ``/command`` (in private chats): /help names only those."""
    for handlers in context.application.handlers.values():
        for handler in handlers:
            if isinstance(handler, CommandHandler) and command in handler.commands:
                return True
    return False


def _help_lines(
    context: Context, _: Callable[[str], str], lines: list[tuple[str, str]]
) -> list[str]:
    return [_(text) for command, text in lines if registered(context, command)]


# What each audience can use, in the order /help lists it: (command, "/command – what it does").
LEADER_HELP = [
    ("settings", _("/settings – day, time and language for your weekly question")),
    ("answers", _("/answers – read your own answers")),
    ("export", _("/export – download your answers (/export csv for a spreadsheet)")),
    ("raabra", _("/raabra – tell about good work or good colleagueship (#Råbra)")),
    ("pause", _("/pause – pause the weekly questions")),
    ("resume", _("/resume – start the weekly questions again")),
    ("stop", _("/stop – leave the weekly reflection")),
]
FORMER_LEADER_HELP = [
    ("answers", _("/answers – read your own answers")),
    ("export", _("/export – download your answers (/export csv for a spreadsheet)")),
]
ADMIN_HELP = [
    ("status", _("/status – the bot’s state: versions, queue, counters")),
    ("stats", _("/stats – chart of leaders’ response rate and dispatches")),
    ("reload", _("/reload – reload content and translations")),
]
EVERYONE_HELP = [
    ("language", _("/language – choose Bokmål or Nynorsk")),
    ("privacy", _("/privacy – what we store about you, and how to delete it")),
    ("start", _("/start – what this bot is for")),
]


async def help_command(update: Update, context: Context) -> None:
    """List what this person can use (as a leader, a caller, an admin), and the numbers."""
    turn = await begin(update, context)
    if turn is None:
        return
    from bot.models import LeaderStatus
    from bot.services.leaders import leader_of
    from bot.services.people import has_advice

    _ = turn.gettext
    rt, person = turn.rt, turn.person
    leader = await leader_of(rt, person, stopped_too=True)
    sections = [_("<b>What you can do here</b>")]
    if leader is not None and leader.status == LeaderStatus.ENROLLING:
        sections.append(
            bold(_("Weekly reflection"))
            + "\n"
            + _("/settings – choose your day and time, to finish joining")
        )
    elif leader is not None and leader.status == LeaderStatus.STOPPED:
        lines = _help_lines(context, _, FORMER_LEADER_HELP)
        sections.append(
            bold(_("Your answers from the weekly reflection")) + "\n" + "\n".join(lines)
        )
    elif leader is not None:
        lines = _help_lines(context, _, LEADER_HELP)
        sections.append(bold(_("Weekly reflection")) + "\n" + "\n".join(lines))
    assert person.id is not None
    caller = await has_advice(rt.sessions, person.id)
    if caller:
        sections.append(
            bold(_("Your advice from the legevakt"))
            + "\n"
            + _(
                "Open the link from the SMS again to read your advice. The buttons under it "
                "work here: to say you are getting worse, to read it in the other language, or "
                "to delete it."
            )
        )
    if person.telegram_user_id in rt.settings.admin_user_ids:
        lines = _help_lines(context, _, ADMIN_HELP)
        sections.append(bold(_("For admins")) + "\n" + "\n".join(lines))
    sections.append("\n".join(_help_lines(context, _, EVERYONE_HELP)))
    if leader is None and not caller:
        sections.append(
            _(
                "Advice and invitations come as links; open the link you got and the rest "
                "happens here."
            )
        )
    await reply(update, "\n\n".join(sections) + "\n\n" + urgency.numbers_line(_))


def language_keyboard() -> InlineKeyboardMarkup:
    return keyboard([[(LANGUAGE_NAMES[loc], callbacks.ChooseLanguage(loc)) for loc in LOCALES]])


async def language(update: Update, context: Context) -> None:
    """Offer Bokmål and Nynorsk as buttons."""
    turn = await begin(update, context)
    if turn is None:
        return
    _ = turn.gettext
    current = LANGUAGE_NAMES[turn.locale].lower()
    await reply(
        update,
        _("Which language do you want? Now: {language}.").format(language=current)
        + "\n\n"
        + urgency.numbers_line(_),
        language_keyboard(),
    )


async def language_chosen(
    update: Update, context: Context, pressed: callbacks.ChooseLanguage
) -> None:
    """Remember the chosen language and answer in it at once."""
    turn = await begin(update, context)
    if turn is None:
        return
    chosen = as_locale(pressed.locale, turn.locale)
    rt = turn.rt
    await choose_locale(rt.sessions, turn.person.telegram_user_id, chosen)
    _ = rt.catalogs.gettext(chosen)
    await edit_or_reply(
        update,
        _("From now on I will write {language}.").format(language=LANGUAGE_NAMES[chosen].lower())
        + "\n\n"
        + urgency.numbers_line(_),
    )
    from bot.services.leaders import leader_of

    await set_chat_menu(context, turn, chosen, leader=await leader_of(rt, turn.person) is not None)


async def privacy(update: Update, context: Context) -> None:
    """Say what is stored, why, for how long, and offer deletion."""
    turn = await begin(update, context)
    if turn is None:
        return
    _ = turn.gettext
    days = turn.rt.settings.retention_days
    text = (
        _("<b>What Sikkerhetsnett stores about you</b>")
        + "\n\n"
        + _(
            "• Always: a number Telegram gives your account, and the language you use here. We "
            "do not store your name or your Telegram username."
        )
        + "\n"
        + _(
            "• If you got advice from the legevakt: which advice, when it was sent, whether you "
            "opened it, whether you pressed “I am getting worse”, and your answer to a "
            "check-in. Your phone number is stored only as a code that cannot be read back; it "
            "lets the legevakt see that you have been in touch before."
        )
        + "\n"
        + _(
            "• If you are a leader: your organisation, your role, the day and time you chose, "
            "and your answers. Your answers are private unless you share them."
        )
        + "\n"
        + _(
            "• If you tell #Råbra stories: each story, its theme, who may read it, and the name "
            "a story told with your name is signed with. Private stories only you can read."
        )
        + "\n"
        + _(
            "• If your organisation has a leader group in Telegram: the bot posts the week’s "
            "question there and stores nothing of what is written in the group. If you share "
            "an answer there, you see first exactly what will be posted and with which name; "
            "everyone in the group can read it then, and the bot keeps no copy of the post."
        )
        + "\n\n"
        + _(
            "<b>Why:</b> so the legevakt that gave you advice can follow up, and so you can read "
            "your own reflections again. The legevakt’s system is told when you open the "
            "advice, press “I am getting worse”, answer the check-in or delete it; never your "
            "phone number, your name or the nurse’s note. Nobody may see it at once, so it "
            "never replaces calling (the numbers are below)."
        )
        + "\n"
        + _(
            "<b>How long:</b> advice and what belongs to it is deleted after {days} days. "
            "Leaders' answers are kept until you delete them or leave."
        ).format(days=days)
        + "\n"
        + _(
            "<b>Delete:</b> press the button below to delete everything about you now. This "
            "cannot be undone."
        )
        + " "
        + _(
            "The legevakt is told that you deleted; what its system was told before stays with "
            "the legevakt (here for at most {days} days), without your number or name."
        ).format(days=days)
        + " "
        + _(
            "#Råbra stories you told anonymously stay with your organisation, with no link to "
            "you; delete them first in /raabra mine if you want them gone."
        )
        + "\n\n"
        + urgency.numbers_line(_)
    )
    await reply(update, text, keyboard([[(_("Delete my data"), callbacks.DeleteData())]]))


async def privacy_delete(
    update: Update, context: Context, pressed: callbacks.DeleteData | callbacks.ConfirmDelete
) -> None:
    """Ask once more, then delete everything stored about the person."""
    turn = await begin(update, context)
    if turn is None:
        return
    _ = turn.gettext
    if isinstance(pressed, callbacks.DeleteData):
        # A new message, so the one with the button (e.g. the advice) stays if they say no.
        await reply(
            update,
            _("Delete everything Sikkerhetsnett has stored about you? This cannot be undone.")
            + "\n\n"
            + urgency.numbers_line(_),
            keyboard(
                [
                    [
                        (_("Yes, delete"), callbacks.ConfirmDelete("yes")),
                        (_("No, keep it"), callbacks.ConfirmDelete("no")),
                    ]
                ]
            ),
        )
        return
    if pressed.answer == "yes":
        await delete_person(
            turn.rt.sessions,
            turn.person.telegram_user_id,
            retention_days=turn.rt.settings.retention_days,
        )
        log.info("a person deleted their data")
        await edit_or_reply(
            update,
            _(
                "Done. Everything we stored about you is deleted. If you write again, you start "
                "afresh."
            )
            + "\n\n"
            + urgency.numbers_line(_),
        )
        return
    await edit_or_reply(update, _("Nothing was deleted.") + "\n\n" + urgency.numbers_line(_))


async def unknown(update: Update, context: Context) -> None:
    """Any other text or command: a short, helpful answer that always names 116 117 and 113."""
    turn = await begin(update, context)
    if turn is None:
        return
    _ = turn.gettext
    await reply(
        update,
        _("I can't read messages here, so nobody at the legevakt will see this.")
        + "\n\n"
        + urgency.numbers_line(_)
        + " "
        + _("/help shows what you can do."),
    )


async def stale_button(update: Update, context: Context) -> None:
    """A button from an old message this version does not know: say so instead of spinning."""
    query = update.callback_query
    if query is None:
        return
    turn = await begin(update, context)
    if turn is None:  # not a private chat (a group, an inline message): stop the spinner only
        await query.answer()
        return
    await button_gone(update, turn)


async def button_gone(update: Update, turn: Turn) -> None:
    """A button that no longer does anything: say so in a message that stays, with the numbers."""
    _ = turn.gettext
    if update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    await reply(
        update,
        _("This button no longer works. Write /help to start again.")
        + "\n\n"
        + urgency.numbers_line(_),
    )


async def on_error(update: object, context: Context) -> None:
    """Log what failed without personal data, and tell the person something went wrong."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    log.error(
        "error while handling update %s: %s",
        update_id,
        type(error).__name__,
        exc_info=(type(error), error, error.__traceback__) if error else None,
    )
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    chat = update.effective_chat
    if chat.type != chat.PRIVATE:
        return
    rt = runtime(context)
    locale = rt.settings.default_locale
    user = update.effective_user
    if user is not None:
        locale = guess_locale(user.language_code, rt.settings.default_locale)
    _ = rt.catalogs.gettext(locale)
    try:
        await chat.send_message(
            _("Sorry, something went wrong on our side. Please try again in a moment.")
            + "\n\n"
            + urgency.numbers_line(_)
        )
    except TelegramError:
        log.warning("could not tell the person about the error")


def register(app: BotApplication) -> None:
    """Add the common handlers. Called last, so the audience modules' handlers win."""
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("start", start, filters=private))
    app.add_handler(CommandHandler("help", help_command, filters=private))
    app.add_handler(CommandHandler("language", language, filters=private))
    app.add_handler(CommandHandler("privacy", privacy, filters=private))
    app.add_handler(button(callbacks.ChooseLanguage, language_chosen))
    app.add_handler(button(callbacks.DeleteData, privacy_delete))
    app.add_handler(button(callbacks.ConfirmDelete, privacy_delete))
    app.add_handler(CallbackQueryHandler(stale_button))
    # Anything else a person sends in private (text, unknown commands, stickers, photos).
    app.add_handler(MessageHandler(private & ~filters.UpdateType.EDITED, unknown))
    app.add_error_handler(on_error)
