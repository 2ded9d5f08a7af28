"""The caller's side: the advice link from an SMS after a call to the legevakt.

Owns the ``a_`` start-payload prefix and the ``a:`` buttons: "I am getting worse", the other
language, and the check-in answers. "Delete my data" is the common ``privacy:delete`` flow.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from bot import callbacks, render, urgency
from bot.content.schema import AdviceTopic
from bot.i18n import Locale, as_locale
from bot.models import Dispatch
from bot.ptb import BotApplication
from bot.runtime import Runtime, runtime
from bot.services import dispatches
from bot.services.dispatches import Opened
from bot.services.people import choose_locale
from handlers.base import (
    Context,
    Turn,
    begin,
    button,
    first_guess,
    keyboard,
    private_user,
    reply,
    turn_of,
)
from handlers.common import invalid_link, link_refused

log = logging.getLogger(__name__)

PREFIX = dispatches.PREFIX


async def open_advice_link(update: Update, context: Context, payload: str) -> Turn:
    """Show the advice behind a one-time link, or say plainly why it cannot be shown.

    The person's write that every update makes (``begin``) is in the opening's transaction
    (``dispatches.open_link_as``): one commit per opened link, not two.
    """
    user = private_user(update)
    assert user is not None  # ``follow_link`` routes private chats only
    rt = runtime(context)
    token = payload.split("_", 1)[1]
    result, person = await dispatches.open_link_as(rt, token, user.id, first_guess(rt, user))
    turn = turn_of(rt, person)
    await _answer_opening(update, turn, result)
    return turn


async def _answer_opening(update: Update, turn: Turn, result: dispatches.OpenResult) -> None:
    rt = turn.rt
    _ = turn.gettext
    if result.outcome is Opened.UNKNOWN:
        await invalid_link(update, turn)
        return
    if result.outcome is Opened.EXPIRED:
        link_refused()
        await reply(
            update,
            _(
                "This link has expired: it could be opened for {hours} hours after your call."
            ).format(hours=rt.settings.link_ttl_hours)
            + "\n\n"
            + urgency.numbers_line(_),
        )
        return
    if result.outcome is Opened.TAKEN:
        link_refused()
        await reply(
            update,
            _(
                "This link has already been opened in another chat. Advice is personal, so a "
                "link works in one chat only."
            )
            + "\n\n"
            + urgency.numbers_line(_),
        )
        return
    dispatch = result.dispatch
    assert dispatch is not None
    # Opened now: the advice's language has just become the person's guess (``open_link``).
    locale = as_locale(dispatch.locale) if result.outcome is Opened.FIRST else turn.locale
    await send_advice(update, rt, dispatch, locale)


async def send_advice(update: Update, rt: Runtime, dispatch: Dispatch, locale: Locale) -> None:
    topic = dispatches.advice_for(rt, dispatch, locale)  # read from the snapshot once
    messages = advice_messages(rt, dispatch, locale, topic)
    if messages is None:
        await reply(update, _no_longer(rt, locale))
        return
    for index, text in enumerate(messages):
        last = index == len(messages) - 1
        await reply(update, text, advice_keyboard(rt, dispatch, locale, topic) if last else None)


def advice_keyboard(
    rt: Runtime, dispatch: Dispatch, locale: Locale, topic: AdviceTopic | None = None
) -> InlineKeyboardMarkup:
    """The buttons under the advice; "worse" names whoever the advice is for (``topic``: the
    advice, if the caller has it already)."""
    topic = topic or dispatches.advice_for(rt, dispatch, locale)
    audience = topic.audience if topic is not None else "adults"
    _ = rt.catalogs.gettext(locale)
    return keyboard(render.advice_buttons(_, dispatch.id, locale, audience))


def advice_messages(
    rt: Runtime, dispatch: Dispatch, locale: Locale, localized: AdviceTopic | None = None
) -> list[str] | None:
    """The advice as one or more messages; None if the topic was removed from the content
    (``localized``: the advice, if the caller has it already)."""
    localized = localized or dispatches.advice_for(rt, dispatch, locale)
    if localized is None:
        return None
    _ = rt.catalogs.gettext(locale)
    tailoring = dispatches.tailoring_of(rt, dispatch)
    sections = render.advice_sections(
        localized,
        _,
        note=tailoring.note,
        risk_groups=tailoring.risk_groups,
        checkin_when=dispatches.checkin_when(rt, dispatch, locale),
    )
    return render.split_messages(sections)


def _no_longer(rt: Runtime, locale: Locale) -> str:
    _ = rt.catalogs.gettext(locale)
    return render.no_longer_stored(_)


async def _own_dispatch(
    update: Update, context: Context, dispatch_id: str, *, worse: bool = False
) -> tuple[Turn, Dispatch] | None:
    """The person and their dispatch behind an ``a:`` button.

    When there is none (deleted by the person, or past retention) the person gets a message
    that stays, with both numbers; for "worse" it says to call 116 117 now.
    """
    query = update.callback_query
    turn = await begin(update, context)
    if query is None or turn is None:
        return None
    dispatch = await dispatches.for_person(turn.rt, dispatch_id, turn.person)
    if dispatch is None:
        _ = turn.gettext
        await reply(update, render.worse_without_advice(_) if worse else render.no_longer_stored(_))
        return None
    return turn, dispatch


async def worse(update: Update, context: Context, pressed: callbacks.Worse) -> None:
    """ "I am getting worse": what to do now, at once, and a note on the dispatch."""
    found = await _own_dispatch(update, context, pressed.dispatch, worse=True)
    if found is None:
        return
    turn, dispatch = found
    await dispatches.record_worse(turn.rt, dispatch.id, turn.person)
    await reply(update, worse_message(turn.rt, dispatch, turn.locale))


def worse_message(rt: Runtime, dispatch: Dispatch, locale: Locale) -> str:
    """The tiers of the advice the caller got, as what to do now (with their risk groups)."""
    topic = dispatches.advice_for(rt, dispatch, locale)
    _ = rt.catalogs.gettext(locale)
    if topic is None:
        return render.worse_without_advice(_)
    return render.worse_text(topic, _, dispatches.tailoring_of(rt, dispatch).risk_groups)


async def switch_language(
    update: Update, context: Context, pressed: callbacks.AdviceLanguage
) -> None:
    """Show the same advice in the other language, and keep that language from now on."""
    found = await _own_dispatch(update, context, pressed.dispatch)
    if found is None:
        return
    turn, dispatch = found
    query = update.callback_query
    assert query is not None
    locale = as_locale(pressed.locale, turn.locale)
    rt = turn.rt
    await choose_locale(rt.sessions, turn.person.telegram_user_id, locale)
    messages = advice_messages(rt, dispatch, locale)
    if messages is None:
        await reply(update, _no_longer(rt, locale))
        return
    buttons = advice_keyboard(rt, dispatch, locale)
    if len(messages) == 1:
        try:
            await query.edit_message_text(messages[0], reply_markup=buttons)
            return
        except BadRequest:  # too old to edit, or unchanged: send it anew
            log.info("advice could not be edited in place; sending it anew")
    for index, text in enumerate(messages):
        await reply(update, text, buttons if index == len(messages) - 1 else None)


async def checkin_answer(update: Update, context: Context, pressed: callbacks.Checkin) -> None:
    """Better / the same / worse, in answer to the check-in."""
    found = await _own_dispatch(update, context, pressed.dispatch, worse=pressed.answer == "worse")
    if found is None:
        return
    turn, dispatch = found
    answer = pressed.answer
    query = update.callback_query
    assert query is not None
    rt = turn.rt
    _ = turn.gettext
    stored, first = await dispatches.answer_checkin(rt, dispatch.id, turn.person, answer)
    if stored is None:
        await reply(update, _no_longer(rt, turn.locale))
        return
    if not first:
        if answer == "worse":  # "worse" always gets what to do, however often it is pressed
            await reply(update, worse_message(rt, dispatch, turn.locale))
        else:
            await reply(
                update,
                render.esc(_("You have already answered. Thank you."))
                + "\n\n"
                + render.esc(urgency.numbers_line(_)),
            )
        return
    label = {"better": _("Better"), "same": _("The same"), "worse": _("Worse")}[answer]
    message = query.message
    original = message.text_html if message is not None and hasattr(message, "text_html") else ""
    try:
        await query.edit_message_text(
            (original + "\n\n" if original else "")
            + render.esc(_("Your answer: {answer}").format(answer=label)),
        )
    except BadRequest:
        log.info("check-in message could not be edited")
    if answer == "worse":
        await reply(update, worse_message(rt, dispatch, turn.locale))
    else:
        await reply(update, render.checkin_reply(answer, _))


def register(app: BotApplication, rt: Runtime) -> None:
    rt.link_openers[PREFIX] = open_advice_link
    app.add_handler(button(callbacks.Worse, worse))
    app.add_handler(button(callbacks.AdviceLanguage, switch_language))
    app.add_handler(button(callbacks.Checkin, checkin_answer))
