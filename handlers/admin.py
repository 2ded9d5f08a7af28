"""The admins' Telegram commands: /status, /stats and /reload.

Only numeric Telegram user ids in ``ADMIN_USER_IDS`` may use them. Anyone else gets exactly the
answer to an unknown command (so the commands' existence is not revealed), and the attempt is
logged without the person's id or name. Admins get the three commands in their command menu at
start-up and again after /status.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from babel.dates import format_timedelta
from telegram import Bot, BotCommand, BotCommandScopeChat, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import CommandHandler, filters

from bot import outbox
from bot.content.loader import localize
from bot.i18n import Locale, as_locale
from bot.models import Channel, utcnow
from bot.ptb import BotApplication
from bot.runtime import Runtime, runtime
from bot.services import audit, webhooks
from handlers.base import Context, Turn, begin, esc, reply
from handlers.common import commands, unknown

log = logging.getLogger(__name__)

AdminHandler = Callable[[Update, Context, Turn], Awaitable[None]]


def is_admin(update: Update, rt: Runtime) -> bool:
    user = update.effective_user
    return user is not None and not user.is_bot and user.id in rt.settings.admin_user_ids


def admin_only(
    name: str, handler: AdminHandler
) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """Run ``handler`` for admins; anyone else gets the unknown-command answer."""

    async def wrapped(update: Update, context: Context) -> None:
        if not is_admin(update, runtime(context)):
            log.warning("admin command /%s refused for a non-admin", name)
            await unknown(update, context)
            return
        turn = await begin(update, context)
        if turn is None:
            return
        await handler(update, context, turn)

    return wrapped


# --- command menu --------------------------------------------------------------------------


def admin_commands(rt: Runtime, locale: Locale, *, leader: bool = False) -> list[BotCommand]:
    """An admin's whole menu: the admin commands first, then what everyone (or a leader) has."""
    return commands(rt.catalogs, locale, leader=leader, admin=True)


async def set_admin_menu(
    bot: Bot, rt: Runtime, user_id: int, locale: Locale, *, leader: bool
) -> None:
    try:
        await bot.set_my_commands(
            admin_commands(rt, locale, leader=leader), scope=BotCommandScopeChat(user_id)
        )
    except TelegramError:  # e.g. an admin who never wrote to the bot; the menu is a convenience
        log.warning("could not set an admin's command menu")


async def admin_menus_at_start(context: Context) -> None:
    """Every admin gets the admin commands in their menu, in their language if known."""
    from bot.services import stats  # the admin's figures: imported when an admin is served

    rt = runtime(context)
    known = await stats.admins_known(rt)
    for user_id in rt.settings.admin_user_ids:
        locale, leader = known.get(user_id, (rt.settings.default_locale, False))
        await set_admin_menu(
            context.bot, rt, user_id, as_locale(locale, rt.settings.default_locale), leader=leader
        )


async def _refresh_menu(context: Context, turn: Turn) -> None:
    from bot.services import stats

    known = await stats.admins_known(turn.rt)
    leader = known.get(turn.person.telegram_user_id, ("", False))[1]
    await set_admin_menu(
        context.bot, turn.rt, turn.person.telegram_user_id, turn.locale, leader=leader
    )


# --- /status -------------------------------------------------------------------------------


def _version() -> str:
    try:
        return importlib.metadata.version("sikkerhetsnett")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _span(delta: dt.timedelta, locale: Locale) -> str:
    return format_timedelta(delta, format="short", locale=locale)


async def status(update: Update, context: Context, turn: Turn) -> None:
    """Versions, the outbox, the senders' counters and a few counts; plain, short HTML."""
    from bot.services import stats

    rt = turn.rt
    content = rt.content  # read once: a reload swaps it whole
    _ = turn.gettext
    now = utcnow()
    depth = await outbox.depth(rt.sessions, Channel.TELEGRAM, now)
    waiting, oldest = depth.waiting, depth.oldest_due
    figures = await stats.counts(rt, now=now)

    lines = [f"<b>Sikkerhetsnett {esc(_version())}</b>", ""]
    lines.append("<b>" + _("Advice topics") + "</b>")
    for topic in sorted(content.advice.values(), key=lambda t: t.id):
        lines.append(f"• <code>{esc(topic.id)}</code> v{topic.version} ({esc(topic.status)})")
    lines.append("<b>" + _("Programmes") + "</b>")
    for programme in sorted(content.programmes.values(), key=lambda p: p.id):
        lines.append(
            f"• <code>{esc(programme.id)}</code> v{programme.version} ({esc(programme.status)})"
        )
    if content.digest:
        lines.append(_("Content digest: {digest}").format(digest=f"<code>{content.digest}</code>"))
    lines.append("")

    line = _("Outbox: {count} waiting").format(count=f"<b>{waiting}</b>")
    if oldest is not None and oldest <= now:
        line += "; " + _("the oldest was due {time} ago").format(
            time=_span(now - oldest, turn.locale)
        )
    elif oldest is not None:
        line += "; " + _("the first is due in {time}").format(time=_span(oldest - now, turn.locale))
    lines.append(line)
    sender = rt.sender
    if sender is None:
        lines.append(_("Outbox sender: not running"))
        lines.append(_("SMS sender: not running"))
    else:
        s = sender.stats(Channel.TELEGRAM)
        tick = (
            _("last tick {time} ago").format(time=_span(now - sender.last_tick, turn.locale))
            if sender.last_tick is not None
            else _("no tick yet")
        )
        lines.append(
            _(
                "Outbox sender: {tick}; sent {sent}, retried {retried}, failed {failed}, "
                "expired {expired}, flood waits {flood}"
            ).format(
                tick=tick,
                sent=s.sent,
                retried=s.retried,
                failed=s.failed,
                expired=s.expired,
                flood=s.throttled,
            )
        )
        m = sender.stats(Channel.SMS)
        lines.append(
            _(
                "SMS sender: sent {sent}, retried {retried}, failed {failed}, expired {expired}"
            ).format(sent=m.sent, retried=m.retried, failed=m.failed, expired=m.expired)
        )
    lines.extend(await _webhook_lines(rt, turn, now))
    lines.append("")
    lines.append(
        _("Dispatches in the last 24 hours: {count}").format(
            count=f"<b>{figures.dispatches_24h}</b>"
        )
    )
    lookups, askers = await audit.summary(rt.sessions, now - dt.timedelta(hours=24))
    lines.append(
        _(
            "Re-contact look-ups in the last 24 hours: {count} by {askers} "
            "(who, when and what: {command})"
        ).format(
            count=f"<b>{lookups}</b>",
            askers=askers,
            command="<code>python -m bot audit list</code>",
        )
    )
    lines.append(_("Active leaders: {count}").format(count=f"<b>{figures.active_leaders}</b>"))
    await reply(update, "\n".join(lines))
    await _refresh_menu(context, turn)


async def _webhook_lines(rt: Runtime, turn: Turn, now: dt.datetime) -> list[str]:
    """One line per key with a webhook: on or off, the last success and failure, the queue."""
    _ = turn.gettext
    found = await webhooks.health(rt.sessions)
    if not found:
        return []
    lines = ["", "<b>" + _("Webhooks") + "</b>"]
    for item in found:
        key = item.key
        ago = _("{time} ago")
        if key.webhook_disabled_at is not None:
            state = _("turned off after 410, {time} ago").format(
                time=_span(now - key.webhook_disabled_at, turn.locale)
            )
        else:
            state = _("on")
        success = (
            ago.format(time=_span(now - key.webhook_last_success_at, turn.locale))
            if key.webhook_last_success_at is not None
            else _("never")
        )
        failure = (
            f"{esc(key.webhook_last_failure or '?')}, "
            + ago.format(time=_span(now - key.webhook_last_failure_at, turn.locale))
            if key.webhook_last_failure_at is not None
            else _("none")
        )
        lines.append(
            _(
                "• key {id} ({name}): {state}; last success {success}; last failure {failure}; "
                "queued {queued}"
            ).format(
                id=key.id,
                name=esc(f"{key.name} — {item.organisation}"),
                state=state,
                success=success,
                failure=failure,
                queued=f"<b>{item.queued}</b>",
            )
        )
    return lines


# --- /stats --------------------------------------------------------------------------------


def role_titles(rt: Runtime, locale: Locale) -> dict[str, str]:
    """Every role's title in ``locale``."""
    lookup = rt.catalogs.content_lookup(locale)
    titles = {}
    for programme in rt.content.programmes.values():
        for role in localize(programme, "reflection", lookup).roles:
            titles[role.id] = role.title
    return titles


async def chart(update: Update, context: Context, turn: Turn) -> None:
    """The two-panel PNG: leaders' response rate by role and week, and dispatches per day."""
    from bot.services import stats

    chat = update.effective_chat
    if chat is None:
        return
    rt = turn.rt
    _ = turn.gettext
    with contextlib.suppress(TelegramError):  # only a hint that something is coming
        await chat.send_action(ChatAction.UPLOAD_PHOTO)
    data = await stats.chart_data(rt)
    png = await asyncio.to_thread(stats.draw_chart, data, _, role_titles(rt, turn.locale))
    parts = [
        _(
            "Leaders' response rate by role over the last {weeks} ISO weeks, all "
            "organisations; dispatches per day over the last {days} days."
        ).format(weeks=len(data.rates.weeks), days=len(data.days))
    ]
    hidden, minimum = data.rates.hidden, data.rates.min_group
    if hidden:
        parts.append(
            turn.ngettext(
                "{count} role-week with fewer than {min} leaders is not shown, so no one's "
                "silence can be read off the chart.",
                "{count} role-weeks with fewer than {min} leaders are not shown, so no one's "
                "silence can be read off the chart.",
                hidden,
            ).format(count=hidden, min=minimum)
        )
    else:
        parts.append(
            _("Role-weeks with fewer than {min} leaders are never shown.").format(min=minimum)
        )
    if data.empty:
        parts.append(_("No data yet."))
    await chat.send_photo(photo=png, caption="\n".join(parts)[:1024])


# --- /reload -------------------------------------------------------------------------------


async def reload(update: Update, context: Context, turn: Turn) -> None:
    """Validate the content and translations on disk and swap them in, or say what is wrong."""
    from bot.reload import reload_content, result_text  # the content check, babel's .po reader

    result = await reload_content(turn.rt)
    # turn.gettext reads rt.catalogs, so a successful reload answers with the new translations.
    await reply(update, esc(result_text(result, turn.gettext)))
    if result.ok:
        await _refresh_menu(context, turn)


def register(app: BotApplication, rt: Runtime) -> None:
    """Add the admin commands; registered before the common catch-alls."""
    private = filters.ChatType.PRIVATE & ~filters.UpdateType.EDITED
    for name, callback in (("status", status), ("stats", chart), ("reload", reload)):
        app.add_handler(CommandHandler(name, admin_only(name, callback), filters=private))
    if rt.settings.admin_user_ids and app.job_queue is not None:
        app.job_queue.run_once(admin_menus_at_start, when=0, name="admin-menus")
