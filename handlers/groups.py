"""Leader groups: the bot in a Telegram group, and a leader sharing an answer there.

In a group the bot answers only its own commands: ``/start g_<token>`` (the ``startgroup``
link that links the group), ``/help`` and ``/privacy``. It follows being added and removed
(``my_chat_member``), the group becoming a supergroup and its new title, and nothing else:
what members write is never read, logged, stored or answered (the handlers here match
commands and service messages only, and every other module's handlers private chats only).

In a leader's private chat: "Share in the group" under a saved answer → a preview of exactly
what will be posted, with the name shown as they choose → post it (queued for the group).
"""

from __future__ import annotations

import logging

from telegram import ChatMember, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ChatMemberHandler, CommandHandler, MessageHandler, filters

from bot import callbacks, render_groups
from bot.callbacks import GroupShare, ShownName
from bot.i18n import Locale, format_when, guess_locale, weekday_names
from bot.models import Leader, Prompt, TeamGroup
from bot.ptb import BotApplication
from bot.runtime import Runtime, runtime
from bot.services import groups, leaders
from handlers.base import Context, Turn, begin, bold, button, esc, keyboard, reply
from handlers.common import button_gone, link_throttle

log = logging.getLogger(__name__)

GROUP_CHATS = filters.ChatType.GROUPS


# --- in the group --------------------------------------------------------------------------


def _group_locale(update: Update, context: Context, group: TeamGroup | None) -> Locale:
    rt = runtime(context)
    if group is not None:
        return groups.locale_of(rt, group)
    user = update.effective_user
    return guess_locale(user.language_code if user else None, rt.settings.default_locale)


def _role_title(rt: Runtime, role_id: str, locale: Locale) -> str:
    found = rt.content.roles.get(role_id)
    if found is None:
        return role_id
    programme, _role = found
    localized = rt.localized(programme, "reflection", locale)
    return next((r.title for r in localized.roles if r.id == role_id), role_id)


def _schedule(rt: Runtime, group: TeamGroup, organisation: str, locale: Locale) -> str:
    _ = rt.catalogs.gettext(locale)
    if group.role_id is not None:
        whose = _("This group is the leader group of {organisation} for {role}.").format(
            organisation=f"<b>{esc(organisation)}</b>",
            role=esc(_role_title(rt, group.role_id, locale)),
        )
    else:
        whose = _("This group is the leader group of {organisation}.").format(
            organisation=f"<b>{esc(organisation)}</b>"
        )
    when = _(
        "Every {weekday} at {time} I post the week’s question from the reflection programme "
        "for you to discuss."
    ).format(weekday=weekday_names(locale)[group.weekday], time=groups.hhmm(group.minute_of_day))
    return whose + " " + when


def _what_i_do(rt: Runtime, locale: Locale) -> str:
    _ = rt.catalogs.gettext(locale)
    return _(
        "I do not read or keep what you write here, and I answer only my own commands (/help, "
        "/privacy). I need no admin rights. Leaders can share their own answers here from "
        "their private chat with me. To stop, remove me from the group."
    )


async def group_start(update: Update, context: Context) -> None:
    """``/start g_<token>`` in a group (the startgroup link): link the group to its
    organisation. A plain /start says what the bot does here."""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or (user is not None and user.is_bot):
        return
    rt = runtime(context)
    payload = context.args[0] if context.args else ""
    if not payload.startswith(groups.PREFIX + "_"):
        # Also when the message has no sender (an anonymous admin writes as the group): /start
        # is the bot's own command, and /help and /privacy answer then too.
        await group_help(update, context)
        return
    # Failed links are counted per person, or per group when nobody is named as the sender.
    who = user.id if user is not None else chat.id
    throttle = link_throttle(context)
    locale = _group_locale(update, context, None)
    _ = rt.catalogs.gettext(locale)
    if throttle.paused(who):
        await reply(update, _("Too many links that do not work. Wait a while, then try again."))
        return
    result = await groups.link_group(
        rt, payload.split("_", 1)[1], chat.id, chat.effective_name or ""
    )
    if result.outcome in (groups.Linked.UNKNOWN, groups.Linked.EXPIRED, groups.Linked.USED):
        throttle.failed(who)
        text = {
            groups.Linked.UNKNOWN: _(
                "This link is not valid. Ask the person who sent it to you for a new one."
            ),
            groups.Linked.EXPIRED: _(
                "This link has expired. Ask the person who sent it to you for a new one."
            ),
            groups.Linked.USED: _(
                "This link has already been used. Ask the person who sent it to you for a new one."
            ),
        }[result.outcome]
        await reply(update, text)
        return
    group, organisation = result.group, result.organisation
    assert group is not None and group.next_due_at is not None
    locale = groups.locale_of(rt, group)
    _ = rt.catalogs.gettext(locale)
    head = (
        _("Done: this group is linked.")
        if result.outcome is groups.Linked.LINKED
        else _("Done: this group’s link is updated.")
    )
    first = _("The first question comes on {when}.").format(
        when=format_when(group.next_due_at, locale, groups.zone_of(rt, group))
    )
    name = organisation.name if organisation else ""
    await reply(
        update,
        f"<b>{esc(head)}</b>\n\n"
        + _schedule(rt, group, name, locale)
        + " "
        + esc(first)
        + "\n\n"
        + esc(_what_i_do(rt, locale)),
    )


async def group_help(update: Update, context: Context) -> None:
    """/help in a group: what the bot does here, and what it does not."""
    chat = update.effective_chat
    if chat is None:
        return
    rt = runtime(context)
    group = await groups.group_of_chat(rt, chat.id)
    locale = _group_locale(update, context, group)
    _ = rt.catalogs.gettext(locale)
    if group is not None:
        organisation = await _organisation_name(rt, group)
        about = _schedule(rt, group, organisation, locale)
    else:
        about = esc(
            _(
                "This group is not linked to an organisation, so I post nothing here. An "
                "admin links it by adding me with a group link for the leader group."
            )
        )
    await reply(
        update,
        bold(_("Sikkerhetsnett in this group"))
        + "\n\n"
        + about
        + "\n\n"
        + esc(_what_i_do(rt, locale)),
    )


async def group_privacy(update: Update, context: Context) -> None:
    """/privacy in a group: what is stored about the group (and what never is)."""
    chat = update.effective_chat
    if chat is None:
        return
    rt = runtime(context)
    group = await groups.group_of_chat(rt, chat.id)
    _ = rt.catalogs.gettext(_group_locale(update, context, group))
    await reply(
        update,
        bold(_("What Sikkerhetsnett stores about this group"))
        + "\n\n"
        + esc(
            _(
                "Only what it needs to post here: the group’s Telegram number and title, the "
                "organisation (and role) it belongs to, and the day and time of its question. "
                "Nothing of what you write here is read or kept, and nothing about who is in "
                "the group."
            )
        )
        + "\n\n"
        + esc(
            _(
                "A leader’s shared answer is posted as they saw it before they confirmed; I "
                "keep no copy of the post. When I am removed from the group, its link is "
                "deleted at once."
            )
        ),
    )


async def _organisation_name(rt: Runtime, group: TeamGroup) -> str:
    from bot.models import Organisation

    async with rt.sessions() as session:
        organisation = await session.get(Organisation, group.organisation_id)
    return organisation.name if organisation else ""


async def member_changed(update: Update, context: Context) -> None:
    """The bot's own membership changed: removed from a group → its link is dropped."""
    change = update.my_chat_member
    if change is None or change.chat.type not in (change.chat.GROUP, change.chat.SUPERGROUP):
        return
    if change.new_chat_member.status in (ChatMember.LEFT, ChatMember.BANNED):
        await groups.unlink_chat(runtime(context), change.chat.id)


async def migrated(update: Update, context: Context) -> None:
    """The group became a supergroup: the link follows it to its new chat id."""
    message = update.effective_message
    if message is None:
        return
    rt = runtime(context)
    if message.migrate_to_chat_id is not None:
        await groups.migrate_chat(rt, message.chat.id, message.migrate_to_chat_id)
    elif message.migrate_from_chat_id is not None:
        await groups.migrate_chat(rt, message.migrate_from_chat_id, message.chat.id)


async def retitled(update: Update, context: Context) -> None:
    """The group's new title, so leaders see where they share."""
    message = update.effective_message
    if message is not None and message.new_chat_title:
        await groups.retitle(runtime(context), message.chat.id, message.new_chat_title)


# --- sharing an answer, in the leader's private chat ---------------------------------------


async def share_row(turn: Turn, leader: Leader, prompt: Prompt) -> list[tuple[str, GroupShare]]:
    """The "Share in the group" button under a saved answer, if the leader has a group."""
    if prompt.id is None or not await groups.groups_for(turn.rt, leader):
        return []
    return [(turn.gettext("Share in the leader group"), GroupShare("pick", prompt.id, 0, "full"))]


def shown_name(update: Update, choice: ShownName) -> str | None:
    """The leader's name as they choose to show it, from their Telegram profile now (the bot
    stores no names)."""
    user = update.effective_user
    if user is None or choice == "none":
        return None
    if choice == "first":
        return user.first_name
    return user.full_name


async def share_button(update: Update, context: Context, pressed: GroupShare) -> None:
    """Share in the group: choose the group, see exactly what will be posted, post it."""
    turn = await begin(update, context)
    if turn is None:
        return
    rt, _ = turn.rt, turn.gettext
    leader = await leaders.leader_of(rt, turn.person)
    if leader is None:
        await button_gone(update, turn)
        return
    # "Share in the group" sits under the answer's confirmation, which stays: the preview is a
    # message of its own, and the later steps edit it.
    fresh = pressed.step == "pick"
    if pressed.step == "pick":
        choices = await groups.groups_for(rt, leader)
        if len(choices) != 1:
            await _edit(
                update,
                _("Which group do you want to share your answer in?")
                if choices
                else _("There is no leader group to share in."),
                keyboard(
                    [
                        [(g.title or "–", GroupShare("to", pressed.prompt, g.id or 0, "full"))]
                        for g in choices
                    ]
                )
                if choices
                else None,
                fresh=True,
            )
            return
        pressed = GroupShare("to", pressed.prompt, choices[0].id or 0, pressed.name)
    if pressed.step == "cancel":
        await _edit(update, _("Not shared in the group."))
        return
    outcome, prompt, group = await groups.shareable(rt, leader, pressed.prompt, pressed.group)
    if outcome is groups.Shared.NOT_ANSWERED or prompt is None:
        await _edit(update, _("This answer can no longer be shared."))
        return
    if outcome is groups.Shared.NOT_ALLOWED or group is None:
        await _edit(update, _("You cannot share in that group."))
        return
    title = esc(group.title or "–")
    if outcome is groups.Shared.ALREADY:
        await _edit(
            update, _("You have already shared this answer in {group}.").format(group=title)
        )
        return
    text = leaders.answer_text(rt, prompt)
    if text is None:
        await _edit(update, _("This answer can no longer be shared."))
        return
    post = groups.AnswerPost(shown_name(update, pressed.name), text)
    if pressed.step == "post":
        queued, _group = await groups.share_answer(rt, leader, prompt.id or 0, group.id or 0, post)
        if queued is groups.Shared.QUEUED:
            await _edit(update, _("Shared: your answer is posted in {group}.").format(group=title))
        elif queued is groups.Shared.ALREADY:
            await _edit(
                update, _("You have already shared this answer in {group}.").format(group=title)
            )
        else:
            await _edit(update, _("This answer can no longer be shared."))
        return
    preview = await _preview(update, context, turn, group, prompt, post)
    await _edit(update, preview, _preview_buttons(turn, pressed), fresh=fresh)


async def _preview(
    update: Update,
    context: Context,
    turn: Turn,
    group: TeamGroup,
    prompt: Prompt,
    post: groups.AnswerPost,
) -> str:
    """Exactly what will be posted (in the group's language), and, truthfully, who sees it."""
    rt, _ = turn.rt, turn.gettext
    locale = groups.locale_of(rt, group)
    question = None
    source = rt.content.programmes.get(prompt.programme_id)
    if source is not None:
        programme = rt.localized(source, "reflection", locale)
        question = next(
            (q for t in programme.themes for q in t.questions if q.id == prompt.question_id), None
        )
    posted = render_groups.group_answer_text(
        question, post.name, post.text, rt.catalogs.gettext(locale)
    )
    members = None
    try:
        members = await context.bot.get_chat_member_count(group.chat_id)
    except TelegramError:
        log.info("could not count a group's members for a preview")
    title = esc(group.title or "–")
    if members is not None:
        who = turn.ngettext(
            "Everyone in the Telegram group {group} will read it: {count} member now, with "
            "me. Not all of them need be leaders in the reflection.",
            "Everyone in the Telegram group {group} will read it: {count} members now, with "
            "me. Not all of them need be leaders in the reflection.",
            members,
        ).format(group=title, count=members)
    else:
        who = _("Everyone in the Telegram group {group} will read it.").format(group=title)
    return (
        bold(_("This is what will be posted in {group}:").format(group=group.title or "–")) + "\n\n"
        f"<blockquote>{posted}</blockquote>\n\n"
        + who
        + " "
        + esc(
            _(
                "They can copy or forward it, and I cannot take it back once it is posted. Your "
                "answer stays private in your own answers; I keep no copy of the post."
            )
        )
        + "\n\n"
        + esc(_("Post it?"))
    )


def _preview_buttons(turn: Turn, pressed: GroupShare) -> InlineKeyboardMarkup:
    _ = turn.gettext
    names: list[tuple[str, ShownName]] = [
        (_("Show my full name"), "full"),
        (_("Show my first name only"), "first"),
        (_("Without my name"), "none"),
    ]
    step = pressed.prompt, pressed.group
    return keyboard(
        [
            [(_("Post it"), GroupShare("post", *step, pressed.name))],
            [
                (label, GroupShare("to", *step, name))
                for label, name in names
                if name != pressed.name
            ],
            [(_("Cancel"), GroupShare("cancel", *step, pressed.name))],
        ]
    )


async def _edit(
    update: Update, text: str, markup: InlineKeyboardMarkup | None = None, *, fresh: bool = False
) -> None:
    """Replace the message the button was under (a new one if it cannot be edited, or with
    ``fresh``)."""
    query = update.callback_query
    if query is not None and not fresh:
        try:
            await query.edit_message_text(text, reply_markup=markup)
            return
        except BadRequest as error:
            if "not modified" in error.message.lower():
                return
    await reply(update, text, markup)


def register(app: BotApplication, rt: Runtime) -> None:
    """Group commands and service messages (never members' text), and the share buttons."""
    for name, callback in (
        ("start", group_start),
        ("help", group_help),
        ("privacy", group_privacy),
    ):
        # New messages only: an edited command is not asked again.
        app.add_handler(
            CommandHandler(name, callback, filters=GROUP_CHATS & filters.UpdateType.MESSAGE)
        )
    app.add_handler(ChatMemberHandler(member_changed, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(GROUP_CHATS & filters.StatusUpdate.MIGRATE, migrated))
    app.add_handler(MessageHandler(GROUP_CHATS & filters.StatusUpdate.NEW_CHAT_TITLE, retitled))
    app.add_handler(button(callbacks.GroupShare, share_button))
