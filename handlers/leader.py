"""The leader's side: joining with an invite, answering the weekly question, and their controls.

Owns the ``i_`` start-payload prefix, the ``r:`` buttons, /settings, /pause, /resume, /answers,
/export and /stop, and leaders' typed text (a time while enrolling, otherwise an answer). Text
from people who are not leaders goes on to the common "I can't read messages here".
"""

from __future__ import annotations

import logging
import re

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import CommandHandler, MessageHandler, filters

from bot import callbacks
from bot.i18n import LANGUAGE_NAMES, Locale, as_locale, format_day, format_when, weekday_names
from bot.models import Leader, LeaderStatus, Prompt, PromptStatus
from bot.ptb import BotApplication
from bot.runtime import Runtime
from bot.services import enrolment, leaders, reports
from bot.services.enrolment import Choice, State
from bot.services.leaders import Joined, Saved
from bot.services.people import choose_locale
from handlers import groups as group_handlers
from handlers.base import (
    Context,
    Turn,
    begin,
    button,
    edit_or_reply,
    esc,
    keyboard,
    reply,
)
from handlers.common import button_gone, invalid_link, link_refused, set_chat_menu, unknown

log = logging.getLogger(__name__)

PREFIX = "i"
TIMES = (420, 480, 540, 600, 720, 840, 900, 960)  # 07:00 … 16:00, the common choices
TYPED_TIME = re.compile(r"^\s*(?:kl\.?\s*)?([01]?\d|2[0-3])[:.]([0-5]\d)\s*$")
PAGE = 5


def hhmm(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def weekday_keyboard(locale: Locale) -> InlineKeyboardMarkup:
    names = [n.capitalize() for n in weekday_names(locale)]
    days = [(names[i], callbacks.Weekday(i)) for i in range(7)]
    return keyboard([days[0:3], days[3:5], days[5:7]])


def time_keyboard() -> InlineKeyboardMarkup:
    times = [(hhmm(m), callbacks.TimeOfDay(m)) for m in TIMES]
    return keyboard([times[0:4], times[4:8]])


def _when(rt: Runtime, leader: Leader, locale: Locale) -> str | None:
    if leader.next_due_at is None:
        return None
    return format_when(leader.next_due_at, locale, leaders.zone_of(leader))


# --- joining -------------------------------------------------------------------------------


async def open_invite_link(update: Update, context: Context, turn: Turn, payload: str) -> None:
    """Join with an invite: language → weekday → time → confirmation."""
    rt = turn.rt
    result = await leaders.join(rt, payload.split("_", 1)[1], turn.person)
    _ = turn.gettext
    if result.outcome is Joined.UNKNOWN:
        await invalid_link(update, turn)
        return
    if result.outcome is Joined.EXPIRED:
        link_refused()
        await reply(
            update,
            _("This invitation has expired. Ask the person who sent it to you for a new one."),
        )
        return
    if result.outcome is Joined.USED_UP:
        link_refused()
        await reply(
            update,
            _(
                "This invitation has already been used as many times as it allows. Ask the "
                "person who sent it to you for a new one."
            ),
        )
        return
    leader = result.leader
    assert leader is not None
    if result.outcome is Joined.ALREADY:
        await reply(update, _("You are already taking part in the weekly reflection."))
        await show_settings(update, turn, leader)
        return
    await reply(
        update,
        _(
            "Welcome! {organisation} has invited you to the weekly reflection for leaders, as "
            "{role}. Once a week you get one question from Ukom's learning material, and answer "
            "in your own words. Your answers are private unless you share them."
        ).format(
            organisation=f"<b>{esc(result.organisation.name if result.organisation else '')}</b>",
            role=esc(role_title(rt, leader, turn.locale)),
        ),
    )
    await ask_next_step(update, turn, leader)


def role_title(rt: Runtime, leader: Leader, locale: Locale) -> str:
    programme, _role = rt.content.roles[leader.role_id]
    localized = rt.localized(programme, "reflection", locale)
    return next(r.title for r in localized.roles if r.id == leader.role_id)


def language_keyboard() -> InlineKeyboardMarkup:
    locales: tuple[callbacks.Locale, ...] = ("nb", "nn")
    return keyboard([[(LANGUAGE_NAMES[loc], callbacks.LeaderLanguage(loc)) for loc in locales]])


async def ask_next_step(update: Update, turn: Turn, leader: Leader) -> None:
    """The question of the leader's enrolment state (nothing once enrolled)."""
    _ = turn.gettext
    step = enrolment.state_of(leader)
    if step is State.LANGUAGE:
        await reply(update, _("Which language do you want?"), language_keyboard())
    elif step is State.WEEKDAY:
        await reply(
            update,
            _("Which day of the week do you want the question?"),
            weekday_keyboard(turn.locale),
        )
    elif step is State.TIME:
        await reply(
            update,
            _("What time? Press a button, or write a time such as 08:30."),
            time_keyboard(),
        )


async def _leader_turn(update: Update, context: Context) -> tuple[Turn, Leader] | None:
    """The person and their enrolment behind a button; the button is answered otherwise."""
    query = update.callback_query
    turn = await begin(update, context)
    if query is None or turn is None:
        return None
    leader = await leaders.leader_of(turn.rt, turn.person)
    if leader is None:
        await button_gone(update, turn)
        return None
    return turn, leader  # the press is answered after the work (see ``on_button``)


async def language_button(
    update: Update, context: Context, pressed: callbacks.LeaderLanguage
) -> None:
    found = await _leader_turn(update, context)
    if found is None:
        return
    turn, leader = found
    locale = as_locale(pressed.locale)
    await choose_locale(turn.rt.sessions, turn.person.telegram_user_id, locale)
    turn = Turn(rt=turn.rt, person=turn.person, locale=locale)
    enrolling = leader.status == LeaderStatus.ENROLLING
    leader = await enrolment.choose(turn.rt, leader, Choice.LANGUAGE)
    if enrolling:
        await ask_next_step(update, turn, leader)
    else:
        await set_chat_menu(context, turn, locale, leader=True)
        await reply(update, turn.gettext("Saved."))
    await _done_buttons(update, turn.gettext(LANGUAGE_NAMES[locale]))


async def weekday_button(update: Update, context: Context, pressed: callbacks.Weekday) -> None:
    found = await _leader_turn(update, context)
    if found is None:
        return
    turn, leader = found
    weekday = pressed.weekday
    enrolling = leader.status == LeaderStatus.ENROLLING
    leader = await enrolment.choose(turn.rt, leader, Choice.WEEKDAY, weekday)
    if enrolling:
        await ask_next_step(update, turn, leader)
    else:
        await confirm_change(update, turn, leader)
    await _done_buttons(update, weekday_names(turn.locale)[weekday].capitalize())


async def time_button(update: Update, context: Context, pressed: callbacks.TimeOfDay) -> None:
    found = await _leader_turn(update, context)
    if found is None:
        return
    turn, leader = found
    minute = pressed.minute
    await chosen_time(update, context, turn, leader, minute)
    await _done_buttons(update, hhmm(minute))


async def chosen_time(
    update: Update, context: Context, turn: Turn, leader: Leader, minute: int
) -> None:
    enrolling = leader.status == LeaderStatus.ENROLLING
    leader = await enrolment.choose(turn.rt, leader, Choice.TIME, minute)
    if enrolling and leader.status == LeaderStatus.ENROLLING:  # a time before a day
        await ask_next_step(update, turn, leader)
        return
    if not enrolling:
        await confirm_change(update, turn, leader)
        return
    _ = turn.gettext
    assert leader.weekday is not None
    await reply(
        update,
        _("Done! You will get a question every {weekday} at {time}.").format(
            weekday=weekday_names(turn.locale)[leader.weekday], time=hhmm(minute)
        )
        + " "
        + _("The first one comes on {when}.").format(
            when=f"<b>{esc(_when(turn.rt, leader, turn.locale) or '')}</b>"
        )
        + "\n\n"
        + _(
            "/settings changes the day, time or language, /pause pauses the questions, "
            "/answers shows your answers and /stop ends it."
        ),
    )
    await set_chat_menu(context, turn, turn.locale, leader=True)


async def _done_buttons(update: Update, chosen: str) -> None:
    """Replace the buttons just used by the choice, so old buttons are not pressed again."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    text = getattr(query.message, "text_html", None) or ""
    try:
        await query.edit_message_text(f"{text}\n\n→ {esc(chosen)}")
    except BadRequest:
        log.info("could not edit a choice message")


# --- settings ------------------------------------------------------------------------------


async def settings_command(update: Update, context: Context) -> None:
    found = await _leader_command(update, context)
    if found is None:
        return
    turn, leader = found
    if leader.status == LeaderStatus.ENROLLING:
        await ask_next_step(update, turn, leader)
        return
    await show_settings(update, turn, leader)


async def show_settings(update: Update, turn: Turn, leader: Leader) -> None:
    _ = turn.gettext
    title = _("Your weekly question")
    lines = [f"<b>{esc(title)}</b>"]
    if leader.weekday is not None:
        lines.append(_("Day: {weekday}").format(weekday=weekday_names(turn.locale)[leader.weekday]))
    if leader.minute_of_day is not None:
        lines.append(_("Time: {time}").format(time=hhmm(leader.minute_of_day)))
    lines.append(_("Language: {language}").format(language=LANGUAGE_NAMES[turn.locale].lower()))
    lines.append(_status_line(turn, leader))
    await reply(
        update,
        "\n".join(lines),
        keyboard(
            [
                [
                    (_("Change day"), callbacks.ChangeSetting("day")),
                    (_("Change time"), callbacks.ChangeSetting("time")),
                ],
                [(_("Change language"), callbacks.ChangeSetting("lang"))],
            ]
        ),
    )


def _status_line(turn: Turn, leader: Leader) -> str:
    _ = turn.gettext
    if leader.status == LeaderStatus.PAUSED:
        if leader.paused_until is None:
            return _("Paused until you write /resume.")
        day = format_day(
            leader.paused_until.astimezone(leaders.zone_of(leader)).date(), turn.locale
        )
        return _("Paused until {day}.").format(day=day)
    when = _when(turn.rt, leader, turn.locale)
    return _("The next question comes on {when}.").format(when=when) if when else ""


async def settings_button(
    update: Update, context: Context, pressed: callbacks.ChangeSetting
) -> None:
    found = await _leader_turn(update, context)
    if found is None:
        return
    turn, leader = found
    what = pressed.what
    _ = turn.gettext
    if what == "day":
        await reply(
            update,
            _("Which day of the week do you want the question?"),
            weekday_keyboard(turn.locale),
        )
    elif what == "time":
        if enrolment.state_of(leader) is State.ENROLLED:
            await enrolment.choose(turn.rt, leader, Choice.CHANGE_TIME)
        await reply(
            update, _("What time? Press a button, or write a time such as 08:30."), time_keyboard()
        )
    else:
        await reply(update, _("Which language do you want?"), language_keyboard())


async def confirm_change(update: Update, turn: Turn, leader: Leader) -> None:
    _ = turn.gettext
    await reply(update, _("Saved.") + " " + _status_line(turn, leader))


# --- typed text: a time, or an answer ------------------------------------------------------


async def leader_text(update: Update, context: Context) -> None:
    """A leader's message: the time while choosing one, otherwise the answer to the question."""
    turn = await begin(update, context)
    message = update.effective_message
    if turn is None or message is None:
        return
    leader = await leaders.leader_of(turn.rt, turn.person)
    if leader is None or not message.text:
        await unknown(update, context)
        return
    _ = turn.gettext
    if enrolment.waits_for_typed_time(leader):
        match = TYPED_TIME.match(message.text)
        if match is None:
            await reply(
                update,
                _(
                    "I did not understand that time. Write it as HH:MM, for example 08:30, "
                    "or press a button."
                ),
                time_keyboard(),
            )
            return
        await chosen_time(update, context, turn, leader, int(match[1]) * 60 + int(match[2]))
        return
    if leader.status == LeaderStatus.ENROLLING:
        await reply(update, _("Please answer with the buttons first."))
        await ask_next_step(update, turn, leader)
        return
    outcome, prompt = await leaders.save_answer(turn.rt, leader, message.text, message.message_id)
    if outcome is Saved.HELD:
        await reply(update, held_text(turn))
    elif outcome is Saved.SAVED and prompt is not None:
        await reply(
            update,
            _("Thank you, your answer is saved. Only you can read it; /answers shows all of them."),
            await share_keyboard(turn, leader, prompt),
        )
    elif outcome is Saved.ALREADY:
        await reply(
            update,
            _(
                "You have already answered this week's question. To change your answer, edit "
                "the message with it."
            ),
        )
    else:
        when = _when(turn.rt, leader, turn.locale)
        text = _("There is no open question right now.")
        if when and leader.status == LeaderStatus.ACTIVE:
            text += " " + _("The next question comes on {when}.").format(when=when)
        await reply(update, text)


def held_text(turn: Turn) -> str:
    return turn.gettext(
        "I have not saved this: it contains what looks like a national identity number. "
        "Reflections must not identify patients. Remove it and send your answer again."
    )


async def share_keyboard(turn: Turn, leader: Leader, prompt: Prompt) -> InlineKeyboardMarkup:
    _ = turn.gettext
    assert prompt.id is not None
    if prompt.shared:
        return keyboard([[(_("Stop sharing"), callbacks.PromptButton("unshare", prompt.id))]])
    organisation = await leaders.organisation_of(turn.rt, leader)
    name = organisation.name if organisation else ""
    share = callbacks.PromptButton("share", prompt.id)
    buttons: list[list[tuple[str, callbacks.CallbackData]]] = [
        [(_("Share with {organisation}").format(organisation=name), share)]
    ]
    in_group = await group_handlers.share_row(turn, leader, prompt)
    if in_group:
        buttons.append(list(in_group))
    return keyboard(buttons)


async def leader_edit(update: Update, context: Context) -> None:
    """An edited answer replaces the stored one (other edits are ignored, as before)."""
    turn = await begin(update, context)
    message = update.edited_message
    if turn is None or message is None or not message.text:
        return
    leader = await leaders.leader_of(turn.rt, turn.person, stopped_too=True)
    if leader is None:
        return
    outcome, _prompt = await leaders.edit_answer(turn.rt, leader, message.message_id, message.text)
    if outcome is Saved.HELD:
        await reply(update, held_text(turn))
    elif outcome is Saved.UPDATED:
        await reply(update, turn.gettext("Your answer is updated."))


# --- the question's buttons ----------------------------------------------------------------


async def prompt_button(
    update: Update, context: Context, pressed: callbacks.PromptButton | callbacks.Skipped
) -> None:
    """Answer / skip / remind me tomorrow / skip reason / share, under a question or answer."""
    found = await _leader_turn(update, context)
    if found is None:
        return
    turn, leader = found
    prompt_id = pressed.prompt
    action = pressed.action if isinstance(pressed, callbacks.PromptButton) else "why"
    rt, _ = turn.rt, turn.gettext
    prompt = await leaders.own_prompt(rt, leader, prompt_id)
    if prompt is None:
        await reply(update, _("This button no longer works. Write /help to start again."))
        return
    if action == "ans":
        await reply(
            update,
            _("Write your answer here as a message. Only you can read it, unless you share it."),
        )
    elif action == "skip":
        skipped = await leaders.skip(rt, leader, prompt_id)
        if skipped is None:
            await reply(update, _("You have already answered this question."))
            return
        reasons = [
            (_("Not relevant now"), callbacks.Skipped(prompt_id, "not_relevant")),
            (_("Busy"), callbacks.Skipped(prompt_id, "busy")),
            (_("On leave"), callbacks.Skipped(prompt_id, "leave")),
        ]
        await reply(
            update,
            _("Skipped. Do you want to tell us why? (You don't have to.)"),
            keyboard([reasons]),
        )
    elif isinstance(pressed, callbacks.Skipped):
        if await leaders.skip_reason(rt, leader, prompt_id, pressed.reason) is not None:
            await _done_buttons(update, _("Thank you, noted."))
    elif action == "later":
        later = await leaders.remind_tomorrow(rt, leader, prompt_id)
        if later is None or later.reminder_due_at is None:
            await reply(update, _("This question is no longer open."))
            return
        time = later.reminder_due_at.astimezone(leaders.zone_of(leader)).strftime("%H:%M")
        await reply(update, _("OK, I will remind you tomorrow at {time}.").format(time=time))
    elif action == "share":  # first say who will see what; sharing is the next press
        if prompt.status != PromptStatus.ANSWERED:
            return
        text = await who_sees_a_shared_answer(turn, leader)
        buttons = [
            (_("Yes, share it"), callbacks.PromptButton("shareok", prompt_id)),
            (_("No"), callbacks.PromptButton("sharenot", prompt_id)),
        ]
        await _edit_or_reply(update, text, keyboard([buttons]))
    elif action == "sharenot":
        await _edit_or_reply(
            update,
            _("Not shared. Only you can read it."),
            await share_keyboard(turn, leader, prompt),
        )
    elif action in ("shareok", "unshare"):
        shared = await leaders.share(rt, leader, prompt_id, action == "shareok")
        if shared is None:
            return
        organisation = await leaders.organisation_of(rt, leader)
        text = (
            _("Shared with {organisation}.").format(
                organisation=esc(organisation.name if organisation else "")
            )
            + " "
            + await who_sees_a_shared_answer(turn, leader, shared=True)
            if shared.shared
            else _("No longer shared. Only you can read it.")
        )
        await _edit_or_reply(update, text, await share_keyboard(turn, leader, shared))


async def _edit_or_reply(update: Update, text: str, markup: InlineKeyboardMarkup) -> None:
    """Replace the message the button was under; a new message if it cannot be edited."""
    query = update.callback_query
    assert query is not None
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest:
        await reply(update, text, markup)


async def who_sees_a_shared_answer(turn: Turn, leader: Leader, *, shared: bool = False) -> str:
    """What the organisation's report shows of a shared answer, truthfully for this leader's
    role now (``reports.share_scope``): asked before sharing, repeated after."""
    _ = turn.gettext
    found = await reports.share_scope(turn.rt, leader)
    organisation = await leaders.organisation_of(turn.rt, leader)
    name = esc(organisation.name if organisation else "")
    role = esc(_role_title(turn, leader))
    if found.scope is reports.Scope.FULL:
        text = _(
            "Those who read {organisation}'s participation report will see your answer with the "
            "week, your role ({role}), the theme and the question, never your name."
        ).format(organisation=name, role=role)
    elif found.scope is reports.Scope.POOLED:
        text = _(
            "Your role has fewer than {min} leaders in {organisation}, so those who read its "
            "participation report will see only the text of your answer, among other small "
            "roles' answers: without week, role, theme, question or your name."
        ).format(min=found.min_group, organisation=name)
    else:
        text = _(
            "Your role has fewer than {min} leaders in {organisation}, and there are too few "
            "leaders in other small roles to hide among: your answer is held back, shown to no "
            "one, until at least {min} leaders in small roles take part. Then those who read the "
            "participation report will see only its text, without week, role, theme, question "
            "or your name."
        ).format(min=found.min_group, organisation=name)
    if shared:
        return text
    return (
        text
        + " "
        + _("They will read what you wrote, so leave out anything that would identify you.")
        + "\n\n"
        + _("Share this answer?")
    )


def _role_title(turn: Turn, leader: Leader) -> str:
    found = turn.rt.content.roles.get(leader.role_id)
    if found is None:
        return leader.role_id
    programme, _role = found
    localized = turn.rt.localized(programme, "reflection", turn.locale)
    for role in localized.roles:
        if role.id == leader.role_id:
            return role.title
    return leader.role_id


# --- pause, resume, stop -------------------------------------------------------------------


async def pause_command(update: Update, context: Context) -> None:
    found = await _leader_command(update, context, enrolled=True)
    if found is None:
        return
    turn, _leader = found
    _ = turn.gettext
    await reply(
        update,
        _("For how long do you want to pause the questions?"),
        keyboard(
            [
                [
                    (_("1 week"), callbacks.Pause(1)),
                    (_("2 weeks"), callbacks.Pause(2)),
                    (_("4 weeks"), callbacks.Pause(4)),
                ],
                [(_("Until I write /resume"), callbacks.Pause(0))],
            ]
        ),
    )


async def pause_button(update: Update, context: Context, pressed: callbacks.Pause) -> None:
    found = await _leader_turn(update, context)
    if found is None:
        return
    turn, leader = found
    weeks = pressed.weeks
    leader = await leaders.pause(turn.rt, leader, weeks or None)
    _ = turn.gettext
    text = _status_line(turn, leader)
    if weeks:
        text += " " + _("/resume starts them again sooner.")
    await _done_buttons(update, text)


async def resume_command(update: Update, context: Context) -> None:
    found = await _leader_command(update, context, enrolled=True)
    if found is None:
        return
    turn, leader = found
    _ = turn.gettext
    if leader.status == LeaderStatus.PAUSED:
        leader = await leaders.resume(turn.rt, leader)
        await reply(update, _("Welcome back!") + " " + _status_line(turn, leader))
    else:
        await reply(update, _("You are not paused.") + " " + _status_line(turn, leader))


async def stop_command(update: Update, context: Context) -> None:
    found = await _leader_command(update, context)
    if found is None:
        return
    turn, _leader = found
    _ = turn.gettext
    await reply(
        update,
        _("Do you want to leave the weekly reflection? You can keep your answers or delete them."),
        keyboard(
            [
                [(_("Leave and delete my answers"), callbacks.Stop("delete"))],
                [(_("Leave, keep my answers"), callbacks.Stop("keep"))],
                [(_("Cancel"), callbacks.Stop("no"))],
            ]
        ),
    )


async def stop_button(update: Update, context: Context, pressed: callbacks.Stop) -> None:
    found = await _leader_turn(update, context)
    if found is None:
        return
    turn, leader = found
    choice = pressed.choice
    _ = turn.gettext
    query = update.callback_query
    assert query is not None
    if choice == "no":
        await edit_or_reply(update, _("Nothing changed."))
        return
    await leaders.stop(turn.rt, leader, delete_answers=choice == "delete")
    await set_chat_menu(context, turn, turn.locale, leader=False)
    if choice == "delete":
        text = _("You have left the weekly reflection, and your answers are deleted.")
    else:
        text = _(
            "You have left the weekly reflection. Your answers are kept: /answers shows them, "
            "and /privacy deletes everything."
        )
    await edit_or_reply(update, text)


# --- reading one's answers -----------------------------------------------------------------


async def answers_command(update: Update, context: Context) -> None:
    turn = await begin(update, context)
    if turn is None:
        return
    await show_answers(update, turn, 0, edit=False)


async def answers_button(update: Update, context: Context, pressed: callbacks.AnswersPage) -> None:
    """Older / newer answers. The press is answered after the page is shown (``on_button``): the
    page arrives before the spinner stops, and a press from outside a private chat is answered
    too."""
    query = update.callback_query
    turn = await begin(update, context)
    if query is None or turn is None:
        return
    await show_answers(update, turn, pressed.offset, edit=True)


async def show_answers(
    update: Update, turn: Turn, offset: int, *, edit: bool, question_id: str | None = None
) -> None:
    """A page of the leader's own answers (to one question, with ``question_id``), newest
    first."""
    _ = turn.gettext
    leader = await leaders.leader_of(turn.rt, turn.person, stopped_too=True)
    if leader is None:
        await not_a_leader(update, turn)
        return
    rows, total = await leaders.answers(
        turn.rt, leader, offset=max(0, offset), limit=PAGE, question_id=question_id
    )
    if not total or not rows:
        await reply(update, _("You have no saved answers yet."))
        return
    span = {"first": offset + 1, "last": offset + len(rows), "total": total}
    if question_id is None:
        head = esc(_("Your answers {first}–{last} of {total}, newest first").format(**span))
    else:
        _theme, question = question_text(turn.rt, rows[0], turn.locale)
        head = esc(_("Your answers {first}–{last} of {total} to this question, newest first"))
        head = head.format(**span) + f"\n<i>{esc(question)}</i>"
    parts = [f"<b>{head}</b>"] + [answer_block(turn, leader, row) for row in rows]

    def page(at: int) -> callbacks.CallbackData:
        if question_id is None:
            return callbacks.AnswersPage(at)
        return callbacks.AnswersByQuestion(question_id, at)

    buttons = []
    if offset + PAGE < total:
        buttons.append((_("Older"), page(offset + PAGE)))
    if offset > 0:
        buttons.append((_("Newer"), page(max(0, offset - PAGE))))
    filters_row = [
        (_("By question"), callbacks.AnswersQuestions())
        if question_id is None
        else (_("All answers"), callbacks.AnswersPage(0))
    ]
    markup = keyboard([buttons, filters_row] if buttons else [filters_row])
    text = "\n\n".join(parts)
    if edit:
        await edit_or_reply(update, text, markup)
    else:
        await reply(update, text, markup)


async def answers_by_question_button(
    update: Update,
    context: Context,
    pressed: callbacks.AnswersByQuestion | callbacks.AnswersQuestions,
) -> None:
    """/answers filtered by question: first the list of questions answered, then one's answers
    to the question chosen (the press is answered after, as for ``answers_button``)."""
    turn = await begin(update, context)
    if update.callback_query is None or turn is None:
        return
    if isinstance(pressed, callbacks.AnswersByQuestion):
        await show_answers(update, turn, pressed.offset, edit=True, question_id=pressed.question)
        return
    leader = await leaders.leader_of(turn.rt, turn.person, stopped_too=True)
    if leader is None:
        await not_a_leader(update, turn)
        return
    answered = await leaders.answered_questions(turn.rt, leader)
    if not answered:
        await reply(update, turn.gettext("You have no saved answers yet."))
        return
    rows = [
        [(_short_label(question_text(turn.rt, p, turn.locale)[1]), _by_question(p))]
        for p in answered
    ]
    rows.append([(turn.gettext("All answers"), callbacks.AnswersPage(0))])
    which = esc(turn.gettext("Which question? Your answers to it, newest first."))
    await edit_or_reply(update, which, keyboard(rows))


def _by_question(prompt: Prompt) -> callbacks.CallbackData:
    return callbacks.AnswersByQuestion(prompt.question_id, 0)


def _short_label(text: str, limit: int = 60) -> str:
    """A question as a button's label: its first ``limit`` characters, cut at a word."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def question_text(rt: Runtime, prompt: Prompt, locale: Locale) -> tuple[str, str]:
    """(theme title, question text) in the leader's language; ids if the content is gone."""
    programme = rt.content.programmes.get(prompt.programme_id)
    if programme is None:
        return prompt.theme_id, prompt.question_id
    localized = rt.localized(programme, "reflection", locale)
    for theme in localized.themes:
        for question in theme.questions:
            if theme.id == prompt.theme_id and question.id == prompt.question_id:
                return theme.title, question.text
    return prompt.theme_id, prompt.question_id


def answer_block(turn: Turn, leader: Leader, prompt: Prompt, limit: int = 600) -> str:
    _theme, question = question_text(turn.rt, prompt, turn.locale)
    day = format_day(prompt.due_at.astimezone(leaders.zone_of(leader)).date(), turn.locale)
    answer = leaders.answer_text(turn.rt, prompt)
    if answer is None:
        answer = turn.gettext("(This answer cannot be read: the encryption key has changed.)")
    if len(answer) > limit:
        answer = answer[:limit].rsplit(" ", 1)[0] + " …"
    shared = " · " + turn.gettext("shared") if prompt.shared else ""
    return f"<b>{esc(day)}</b>{esc(shared)}\n<i>{esc(question)}</i>\n{esc(answer)}"


async def _leader_command(
    update: Update, context: Context, *, enrolled: bool = False
) -> tuple[Turn, Leader] | None:
    """The turn and the leader behind a leader's command; says "not a leader" otherwise.

    ``enrolled``: someone still choosing their day and time does not count yet.
    """
    turn = await begin(update, context)
    if turn is None:
        return None
    leader = await leaders.leader_of(turn.rt, turn.person)
    if leader is None or (enrolled and leader.status == LeaderStatus.ENROLLING):
        await not_a_leader(update, turn)
        return None
    return turn, leader


async def not_a_leader(update: Update, turn: Turn) -> None:
    await reply(
        update,
        turn.gettext(
            "This is for leaders in the weekly reflection. You join with an invitation link "
            "from your organisation."
        ),
    )


def register(app: BotApplication, rt: Runtime) -> None:
    from handlers import exports

    rt.start_routes[PREFIX] = open_invite_link
    private = filters.ChatType.PRIVATE
    for name, callback in (
        ("settings", settings_command),
        ("pause", pause_command),
        ("resume", resume_command),
        ("answers", answers_command),
        ("export", exports.export_command),
        ("stop", stop_command),
    ):
        app.add_handler(CommandHandler(name, callback, filters=private))
    app.add_handler(button(callbacks.LeaderLanguage, language_button))
    app.add_handler(button(callbacks.Weekday, weekday_button))
    app.add_handler(button(callbacks.TimeOfDay, time_button))
    app.add_handler(button(callbacks.ChangeSetting, settings_button))
    app.add_handler(button(callbacks.PromptButton, prompt_button))
    app.add_handler(button(callbacks.Skipped, prompt_button))
    app.add_handler(button(callbacks.Pause, pause_button))
    app.add_handler(button(callbacks.Stop, stop_button))
    app.add_handler(button(callbacks.AnswersPage, answers_button))
    app.add_handler(button(callbacks.AnswersQuestions, answers_by_question_button))
    app.add_handler(button(callbacks.AnswersByQuestion, answers_by_question_button))
    app.add_handler(button(callbacks.Export, exports.export_button))
    # Leaders' typed text (not commands); for anyone else it goes on to the common answer.
    app.add_handler(
        MessageHandler(
            private & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, leader_text
        )
    )
    app.add_handler(
        MessageHandler(private & filters.UpdateType.EDITED_MESSAGE & filters.TEXT, leader_edit)
    )
