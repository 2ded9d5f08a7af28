"""#Råbra: telling about something that went well, for leaders and invited staff.

Owns /raabra (and /raabra mine), the ``s_`` start-payload prefix (invites of kind ``raabra``),
the ``rb:`` buttons, and the message that is a story. The dialogue: /raabra (or "Something that
went well?" under the weekly question) → the story as one message (no fødselsnummer; editing
that message edits the story until it is shared) → a theme, if they like → who may read it,
each choice said truthfully before it is made (``sharing_question``).

The story's text is taken before any other handler sees it (group ``STORY_GROUP``), so a leader
with an open weekly question does not answer it by telling a story; every other text goes on.
The rules themselves are in ``bot/services/raabra.py``.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import ApplicationHandlerStop, CommandHandler, MessageHandler, filters

from bot import callbacks
from bot.i18n import format_date_with_year, format_month
from bot.models import RaabraStep, RaabraStory, RaabraVisibility
from bot.problems import N_
from bot.ptb import BotApplication
from bot.render_raabra import excerpt, theme_title
from bot.runtime import Runtime, runtime
from bot.services import raabra
from bot.services.raabra import Joined, Written
from handlers.base import Context, Turn, begin, button, edit_or_reply, esc, keyboard, reply
from handlers.common import button_gone, invalid_link, link_refused, set_chat_menu

log = logging.getLogger(__name__)

COMMAND = "raabra"
MINE = ("mine",)  # /raabra mine (the same word in Bokmål and Nynorsk)
STORY_GROUP = -1  # before the leader's text handler (group 0)
PAGE = 5
# For /help (which lists what each person can use): one line, translated where it is shown.
HELP_LINE = N_("/raabra – tell about something that went well; /raabra mine shows your stories")


# --- starting ------------------------------------------------------------------------------


async def raabra_command(update: Update, context: Context) -> None:
    """/raabra starts a story; /raabra mine shows one's own."""
    turn = await begin(update, context)
    if turn is None:
        return
    if context.args and context.args[0].lower() in MINE:
        await show_mine(update, turn, 0, edit=False)
        return
    await start_story(update, turn)


async def new_button(update: Update, context: Context, pressed: callbacks.RaabraNew) -> None:
    """ "Something that went well?" under the weekly question."""
    turn = await begin(update, context)
    if turn is None:
        return
    await start_story(update, turn)


async def start_story(update: Update, turn: Turn) -> None:
    _ = turn.gettext
    rt = turn.rt
    content = rt.content.raabra
    if content is None:
        await reply(update, _("#Råbra is not available right now."))
        return
    who = await raabra.contributor(rt, turn.person)
    if who is None:
        await not_a_contributor(update, turn)
        return
    await raabra.start(rt, who)
    local = rt.localized(content, "raabra", turn.locale)
    text = (
        f"<b>{esc(local.title)}</b>\n{esc(local.intro)}\n\n"
        + "\n".join(f"• {esc(line)}" for line in local.guide)
        + "\n\n"
        + esc(
            _(
                "Write your story here as one message. Leave out patients' names and anything "
                "else that could show who they are."
            )
        )
    )
    await reply(update, text, keyboard([[(_("Not now"), callbacks.RaabraCancel())]]))


async def cancel_button(update: Update, context: Context, pressed: callbacks.RaabraCancel) -> None:
    turn = await begin(update, context)
    if turn is None or turn.person.id is None:
        return
    await raabra.cancel(turn.rt, turn.person.id)
    await _replace_buttons(update, turn.gettext("OK, nothing is saved."))


async def not_a_contributor(update: Update, turn: Turn) -> None:
    await reply(
        update,
        turn.gettext(
            "#Råbra is for leaders in the weekly reflection, and for staff their organisation "
            "has invited. You join with an invitation link from your organisation."
        ),
    )


# --- the story, and edits of it -------------------------------------------------------------


async def story_message(update: Update, context: Context) -> None:
    """The message after /raabra is the story; any other text goes on to the next handlers."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or not message.text:
        return
    if not await raabra.waiting_for_user(runtime(context), user.id):
        return  # not a story: the leader's answer, or the common reply, handles it
    turn = await begin(update, context)
    if turn is None or turn.person.id is None:
        return
    _ = turn.gettext
    outcome, story = await raabra.write(turn.rt, turn.person.id, message.text, message.message_id)
    if outcome is Written.HELD:
        await reply(
            update,
            _(
                "I have not saved this: it contains what looks like a national identity number. "
                "Stories must not identify patients. Remove it and send your story again."
            ),
        )
    elif outcome is Written.SAVED and story is not None:
        await reply(
            update,
            _("Saved. So far only you can read it.")
            + " "
            + _("Which theme fits best? You do not have to choose one."),
            theme_keyboard(turn, story),
        )
    else:  # the wait ran out between the two looks: let the next handlers have it
        return
    raise ApplicationHandlerStop


async def story_edit(update: Update, context: Context) -> None:
    """An edit of the message that is a story: the story follows it until it is shared."""
    message, user = update.edited_message, update.effective_user
    if message is None or user is None or not message.text:
        return
    if not await raabra.is_story_message(runtime(context), user.id, message.message_id):
        return  # perhaps an answer to the weekly question: the leader's handler sees it
    turn = await begin(update, context)
    if turn is None or turn.person.id is None:
        return
    _ = turn.gettext
    outcome, _story = await raabra.edit(turn.rt, turn.person.id, message.message_id, message.text)
    if outcome is Written.UPDATED:
        await reply(update, _("Your story is updated."))
    elif outcome is Written.HELD:
        await reply(
            update,
            _(
                "I have not saved this change: it contains what looks like a national identity "
                "number. Your story is as it was."
            ),
        )
    elif outcome is Written.SHARED:
        await reply(
            update,
            _(
                "This story is already shared, so it stays as it was when you shared it. To "
                "change it, delete it in /raabra mine and tell it again."
            ),
        )
    raise ApplicationHandlerStop


# --- theme and sharing ----------------------------------------------------------------------


def theme_keyboard(turn: Turn, story: RaabraStory) -> InlineKeyboardMarkup:
    assert story.id is not None
    content = turn.rt.content.raabra
    themes = turn.rt.localized(content, "raabra", turn.locale).themes if content else []
    buttons = [(t.title, callbacks.RaabraTheme(story.id, t.id)) for t in themes]
    grid = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    grid.append([(turn.gettext("No theme"), callbacks.RaabraTheme(story.id, "none"))])
    return keyboard(grid)


async def theme_button(update: Update, context: Context, pressed: callbacks.RaabraTheme) -> None:
    turn = await begin(update, context)
    if turn is None or turn.person.id is None:
        return
    theme_id = None if pressed.theme == "none" else pressed.theme
    story = await raabra.choose_theme(turn.rt, turn.person.id, pressed.story, theme_id)
    if story is None:
        await button_gone(update, turn)
        return
    await _replace_buttons(update, "→ " + _theme(turn, story.theme_id))
    text, choices = await sharing_question(update, turn, story)
    await reply(update, text, keyboard([choices]))


Row = list[tuple[str, callbacks.CallbackData]]


async def sharing_question(update: Update, turn: Turn, story: RaabraStory) -> tuple[str, Row]:
    """Who may read the story: each choice with who will see what, before it is made."""
    _ = turn.gettext
    assert story.id is not None
    organisation = await raabra.organisation_of(turn.rt, story)
    org = esc(organisation.name if organisation else "")
    name = esc(_signature(update) or "")
    minimum = turn.rt.settings.report_min_group
    text = "\n".join(
        [
            "<b>" + esc(_("Who may read your story?")) + "</b>",
            "• "
            + esc(_("Only me: it stays here, and /raabra mine shows it. No one else sees it.")),
            "• "
            + esc(
                _(
                    "Anonymously: the leaders in {organisation} get it in their monthly #Råbra "
                    "digest, and it is in {organisation}'s #Råbra report, without your name. It "
                    "is shown only if at least {min} people in {organisation} tell anonymously "
                    "that month; otherwise no one sees it."
                )
            ).format(organisation=org, min=minimum),
            "• "
            + esc(
                _(
                    "With my name: the same, signed “{name}” (your name in Telegram), however "
                    "few tell that month."
                )
            ).format(name=name),
            "",
            esc(
                _(
                    "Leave out anything that could identify a patient. If you delete your data "
                    "later, a story told anonymously stays with {organisation} with no link to "
                    "you; delete it in /raabra mine first if you want it gone."
                )
            ).format(organisation=org),
        ]
    )
    choices: Row = [
        (_("Only me"), callbacks.RaabraShare(story.id, "private")),
        (_("Anonymously"), callbacks.RaabraShare(story.id, "anonymous")),
    ]
    if name:
        choices.append((_("With my name"), callbacks.RaabraShare(story.id, "named")))
    return text, choices


def _signature(update: Update) -> str | None:
    """The name a named story is signed with: the person's name in Telegram, as it is now."""
    user = update.effective_user
    return raabra.clean_name(user.full_name) if user is not None else None


async def share_button(update: Update, context: Context, pressed: callbacks.RaabraShare) -> None:
    turn = await begin(update, context)
    if turn is None or turn.person.id is None:
        return
    _ = turn.gettext
    story = await raabra.choose_visibility(
        turn.rt, turn.person.id, pressed.story, pressed.choice, name=_signature(update)
    )
    if story is None:
        await button_gone(update, turn)
        return
    organisation = await raabra.organisation_of(turn.rt, story)
    org = esc(organisation.name if organisation else "")
    if story.visibility == RaabraVisibility.PRIVATE:
        text = esc(_("Kept private: only you can read it."))
    else:
        assert story.shared_at is not None
        month = raabra.month_of(story.shared_at, turn.rt.settings.zone)
        when = esc(format_month(raabra.parse_month(month), turn.locale))
        if story.visibility == RaabraVisibility.ANONYMOUS:
            text = esc(
                _(
                    "Shared anonymously with {organisation}. It is in the leaders' #Råbra "
                    "digest for {month}, if at least {min} people tell anonymously that month."
                )
            ).format(organisation=org, month=when, min=turn.rt.settings.report_min_group)
        else:
            signed = esc(raabra.story_name(turn.rt, story) or "")
            text = esc(
                _(
                    "Shared with {organisation}, signed “{name}”. It is in the leaders' #Råbra "
                    "digest for {month}."
                )
            ).format(organisation=org, name=signed, month=when)
        text += " " + esc(_("Thank you for telling!"))
    text += "\n\n" + esc(_("/raabra mine lets you change who may read it, or delete it."))
    await edit_or_reply(update, text)


# --- one's own stories ----------------------------------------------------------------------


async def mine_button(update: Update, context: Context, pressed: callbacks.RaabraMine) -> None:
    turn = await begin(update, context)
    if turn is None:
        return
    await show_mine(update, turn, pressed.offset, edit=True)


async def show_mine(update: Update, turn: Turn, offset: int, *, edit: bool) -> None:
    """A page of the person's own stories, newest first, each with a button to open it."""
    _ = turn.gettext
    assert turn.person.id is not None
    rows, total = await raabra.mine(turn.rt, turn.person.id, offset=max(0, offset), limit=PAGE)
    if not total or not rows:
        await reply(update, _("You have no #Råbra stories yet. /raabra tells one."))
        return
    head = _("Your #Råbra stories {first}–{last} of {total}, newest first").format(
        first=offset + 1, last=offset + len(rows), total=total
    )
    parts = [f"<b>{esc(head)}</b>"]
    for number, story in enumerate(rows, start=offset + 1):
        parts.append(f"<b>{number}.</b> " + story_block(turn, story, limit=300))
    opens: Row = [(str(n), callbacks.RaabraOpen(s.id or 0)) for n, s in enumerate(rows, offset + 1)]
    pages: Row = []
    if offset + PAGE < total:
        pages.append((_("Older"), callbacks.RaabraMine(offset + PAGE)))
    if offset > 0:
        pages.append((_("Newer"), callbacks.RaabraMine(max(0, offset - PAGE))))
    markup = keyboard([opens, pages] if pages else [opens])
    text = "\n\n".join(parts)
    if edit:
        await edit_or_reply(update, text, markup)
    else:
        await reply(update, text, markup)


def story_block(turn: Turn, story: RaabraStory, *, limit: int) -> str:
    """ "12. mai 2026 · Godt samarbeid · shared anonymously" and the story (cut at ``limit``)."""
    _ = turn.gettext
    day = format_date_with_year(story.created_at.astimezone(turn.rt.settings.zone), turn.locale)
    text = raabra.story_text(turn.rt, story)
    if text is None:
        text = _("(This story cannot be read: the encryption key has changed.)")
    head = f"{esc(day)} · {esc(_theme(turn, story.theme_id))} · {esc(_status(turn, story))}"
    return f"{head}\n{esc(excerpt(text, limit))}"


def _theme(turn: Turn, theme_id: str | None) -> str:
    content = turn.rt.content.raabra
    local = turn.rt.localized(content, "raabra", turn.locale) if content is not None else None
    return theme_title(local, theme_id, turn.gettext)


def _status(turn: Turn, story: RaabraStory) -> str:
    _ = turn.gettext
    if story.step != RaabraStep.DONE:
        return _("only you, until you choose who may read it")
    if story.visibility == RaabraVisibility.ANONYMOUS:
        return _("shared anonymously")
    if story.visibility == RaabraVisibility.NAMED:
        return _("shared with your name")
    return _("only you")


async def open_button(update: Update, context: Context, pressed: callbacks.RaabraOpen) -> None:
    """One story whole, who may read it (with the choices, said truthfully), and delete."""
    turn = await begin(update, context)
    if turn is None or turn.person.id is None:
        return
    story = await raabra.own_story(turn.rt, turn.person.id, pressed.story)
    if story is None:
        await button_gone(update, turn)
        return
    assert story.id is not None
    question, choices = await sharing_question(update, turn, story)
    text = story_block(turn, story, limit=3000) + "\n\n" + question
    delete: Row = [(turn.gettext("Delete this story"), callbacks.RaabraDelete(story.id, "ask"))]
    await reply(update, text, keyboard([choices, delete]))


async def delete_button(update: Update, context: Context, pressed: callbacks.RaabraDelete) -> None:
    turn = await begin(update, context)
    if turn is None or turn.person.id is None:
        return
    _ = turn.gettext
    if pressed.step == "ask":
        if await raabra.own_story(turn.rt, turn.person.id, pressed.story) is None:
            await button_gone(update, turn)
            return
        await reply(
            update,
            _(
                "Delete this story? This cannot be undone. Leaders who have already had it in "
                "a digest keep that message."
            ),
            keyboard(
                [
                    [
                        (_("Yes, delete"), callbacks.RaabraDelete(pressed.story, "yes")),
                        (_("No"), callbacks.RaabraDelete(pressed.story, "no")),
                    ]
                ]
            ),
        )
    elif pressed.step == "yes":
        deleted = await raabra.delete_story(turn.rt, turn.person.id, pressed.story)
        text = _("The story is deleted.") if deleted else _("Nothing changed.")
        await edit_or_reply(update, text)
    else:
        await edit_or_reply(update, _("Nothing changed."))


async def _replace_buttons(update: Update, chosen: str) -> None:
    """The buttons just used give way to the choice, so they are not pressed twice."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    text = getattr(query.message, "text_html", None) or ""
    try:
        await query.edit_message_text(f"{text}\n\n{esc(chosen)}")
    except BadRequest:
        log.info("could not edit a #Råbra choice message")


# --- staff joining with an invite of kind raabra --------------------------------------------


async def open_staff_link(update: Update, context: Context, turn: Turn, payload: str) -> None:
    rt = turn.rt
    _ = turn.gettext
    result = await raabra.join(rt, payload.split("_", 1)[1], turn.person)
    if result.outcome is Joined.UNKNOWN or rt.content.raabra is None:
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
    org = f"<b>{esc(result.organisation.name if result.organisation else '')}</b>"
    if result.outcome is Joined.ALREADY:
        await reply(
            update,
            _("You can already tell #Råbra stories to {organisation}: /raabra.").format(
                organisation=org
            ),
        )
        return
    local = rt.localized(rt.content.raabra, "raabra", turn.locale)
    await reply(
        update,
        _("Welcome! {organisation} has invited you to #Råbra.").format(organisation=org)
        + "\n\n"
        + esc(local.intro)
        + "\n\n"
        + esc(
            _(
                "/raabra starts a story, and /raabra mine shows the ones you have told. You get "
                "no other messages from this bot."
            )
        ),
    )
    await set_chat_menu(context, turn, turn.locale, leader=False, raabra=True)


def register(app: BotApplication, rt: Runtime) -> None:
    rt.start_routes[raabra.PREFIX] = open_staff_link
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler(COMMAND, raabra_command, filters=private))
    app.add_handler(button(callbacks.RaabraNew, new_button))
    app.add_handler(button(callbacks.RaabraCancel, cancel_button))
    app.add_handler(button(callbacks.RaabraTheme, theme_button))
    app.add_handler(button(callbacks.RaabraShare, share_button))
    app.add_handler(button(callbacks.RaabraMine, mine_button))
    app.add_handler(button(callbacks.RaabraOpen, open_button))
    app.add_handler(button(callbacks.RaabraDelete, delete_button))
    # A story, or an edit of one: looked at before anyone else's text handlers.
    app.add_handler(
        MessageHandler(
            private & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, story_message
        ),
        group=STORY_GROUP,
    )
    app.add_handler(
        MessageHandler(private & filters.UpdateType.EDITED_MESSAGE & filters.TEXT, story_edit),
        group=STORY_GROUP,
    )
