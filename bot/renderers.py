"""The renderer registry: for each kind of queued message, the function that writes it at send
time, from the domain rows it refers to, in the person's current language.

``RENDERERS`` maps a ``MessageKind`` to ``(runtime, subject, locale) → Message | None`` (None:
what it refers to is gone, e.g. a topic removed from the content). ``Renderers`` loads the
people, dispatches and prompts of a whole claimed batch in one go and calls them; the sender
asks it for every batch. A language switch needs no rewriting of queued rows: they hold no text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import col, select

from bot import render, render_groups, render_raabra
from bot.content.schema import Programme, Question, Theme
from bot.i18n import Locale, as_locale, format_date_with_year
from bot.messages import Message, Permanent
from bot.models import (
    ApiKey,
    ClinicEvent,
    Dispatch,
    GroupPost,
    MessageKind,
    OutboxMessage,
    Person,
    Prompt,
    PromptStatus,
    TeamGroup,
    utcnow,
)
from bot.privacy import Cipher
from bot.runtime import Runtime
from bot.services import clinic_events, dispatches, groups, leaders, raabra, webhooks, weekly
from bot.sms import open_secret, sms_cipher

log = logging.getLogger(__name__)
M = TypeVar("M", Person, Dispatch, Prompt, GroupPost, TeamGroup, ClinicEvent, ApiKey)


@dataclass(frozen=True)
class Subject:
    """A queued row and the domain rows it refers to (those that still exist)."""

    row: OutboxMessage
    person: Person | None = None
    dispatch: Dispatch | None = None
    prompt: Prompt | None = None
    cipher: Cipher | None = None
    earlier: Prompt | None = None  # the leader's last answer to the same question, if any
    digest: raabra.Month | None = None  # a #Råbra digest's month, as it may be shown now
    group_post: GroupPost | None = None
    group: TeamGroup | None = None
    event: ClinicEvent | None = None  # a webhook's event
    api_key: ApiKey | None = None  # the key whose webhook it goes to


# None: what the row refers to is gone (a Permanent says more precisely why).
Renderer = Callable[[Runtime, Subject, Locale], Message | Permanent | None]


def checkin(rt: Runtime, subject: Subject, locale: Locale) -> Message | None:
    """ "How is it going now?" with better / the same / worse, about the dispatch's topic."""
    dispatch = subject.dispatch
    if dispatch is None:
        return None
    topic = dispatches.advice_for(rt, dispatch, locale)
    if topic is None:
        return None
    _ = rt.catalogs.gettext(locale)
    return Message(render.checkin_question(topic, _), render.checkin_buttons(_, dispatch.id))


def _question(rt: Runtime, subject: Subject, locale: Locale, *, reminder: bool) -> Message | None:
    prompt = subject.prompt
    if prompt is None or prompt.id is None:
        return None
    try:
        source, theme, question, first = weekly.prompt_question(rt, prompt)
    except weekly.NoQuestions:
        return None
    programme = rt.localized(source, "reflection", locale)
    theme = next(t for t in programme.themes if t.id == theme.id)
    question = next(q for q in theme.questions if q.id == question.id)
    _ = rt.catalogs.gettext(locale)
    text = render.prompt_text(
        theme,
        question,
        _,
        first_of_theme=first,
        reminder=reminder,
        restarted=not reminder and weekly.is_restart(prompt),
        earlier=_earlier_answer(rt, subject.earlier, locale),
    )
    return Message(text, render.prompt_buttons(_, prompt.id))


def _earlier_answer(rt: Runtime, earlier: Prompt | None, locale: Locale) -> tuple[str, str] | None:
    """(the date with year, the first lines) of an earlier answer, decrypted now; None if there
    is none, or it cannot be read."""
    if earlier is None:
        return None
    text = leaders.answer_text(rt, earlier)
    if not text:
        return None
    day = (earlier.answered_at or earlier.due_at).astimezone(rt.settings.zone).date()
    return format_date_with_year(day, locale), render.first_lines(text)


def weekly_question(rt: Runtime, subject: Subject, locale: Locale) -> Message | None:
    """The leader's question of the week, with answer / skip / remind me tomorrow."""
    return _question(rt, subject, locale, reminder=False)


def reminder(rt: Runtime, subject: Subject, locale: Locale) -> Message | None:
    """The same question again, opening with a reminder line."""
    return _question(rt, subject, locale, reminder=True)


def raabra_digest(rt: Runtime, subject: Subject, locale: Locale) -> Message | None:
    """A leader's monthly #Råbra digest, from the stories as they may be shown at send time
    (a story deleted or made private since is not in it); None if they are no longer a leader
    of the organisation, or there is nothing left to show."""
    month = subject.digest
    if month is None or not month.shown:
        return None
    content = rt.content.raabra
    localized = rt.localized(content, "raabra", locale) if content is not None else None
    _ = rt.catalogs.gettext(locale)
    return Message(render_raabra.digest_text(month, localized, _, locale))


def admin_notice(rt: Runtime, subject: Subject, locale: Locale) -> Message | None:
    """A plain text for an admin (e.g. the outcome of a reload), written when it was queued."""
    text = (subject.row.payload or {}).get("text")
    return Message(render.esc(text)) if isinstance(text, str) and text else None


def sms_link(rt: Runtime, subject: Subject, locale: Locale) -> Message | None:
    """The SMS with the advice link, as written when the dispatch was made (its number and
    text wait encrypted; only the gateway sees them)."""
    if subject.cipher is None:
        return None
    opened = open_secret(subject.cipher, subject.row.secret)
    if opened is None:
        return None
    to, text = opened
    return Message(text, html=False, recipient=to)


def _group_content(
    rt: Runtime, post: GroupPost, locale: Locale
) -> tuple[Programme, Theme, Question | None] | None:
    """The post's programme, theme and question, localised; None if the content is gone."""
    source = rt.content.programmes.get(post.programme_id)
    if source is None:
        return None
    programme = rt.localized(source, "reflection", locale)
    theme = next((t for t in programme.themes if t.id == post.theme_id), None)
    if theme is None:
        return None
    question = next((q for q in theme.questions if q.id == post.question_id), None)
    if post.question_id is not None and question is None:
        return None
    return programme, theme, question


def group_question(rt: Runtime, subject: Subject, locale: Locale) -> Message | None:
    """The week's question for discussion in a leader group, in the group's language."""
    if subject.group_post is None or subject.group is None:
        return None
    found = _group_content(rt, subject.group_post, locale)
    if found is None:
        return None
    programme, theme, question = found
    _ = rt.catalogs.gettext(locale)
    return Message(render_groups.group_question_text(programme, theme, question, _))


def group_answer(rt: Runtime, subject: Subject, locale: Locale) -> Message | None:
    """A leader's shared answer, as they saw it in the preview (the text waits encrypted)."""
    if subject.group_post is None or subject.group is None:
        return None
    post = groups.AnswerPost.open(groups.group_cipher(rt), subject.row.secret)
    found = _group_content(rt, subject.group_post, locale)
    if post is None:
        return None
    _ = rt.catalogs.gettext(locale)
    question = found[2] if found is not None else None
    return Message(render_groups.group_answer_text(question, post.name, post.text, _))


def clinic_event(rt: Runtime, subject: Subject, locale: Locale) -> Message | Permanent:
    """The event's JSON, as the feed shows it, for the key's webhook, with the secrets to sign
    it with (decrypted now). Fails cleanly if the event is purged or the webhook is gone."""
    event, key = subject.event, subject.api_key
    if event is None:
        return Permanent("EventGone")
    if key is not None and key.webhook_disabled_at is not None:
        return Permanent("WebhookDisabled")  # after a 410
    if key is None or not webhooks.live(key) or key.webhook_url is None:
        return Permanent("NoWebhook")
    signing = webhooks.signing_secrets(key, webhooks.cipher(rt.settings), utcnow())
    if not signing:
        return Permanent("KeyChanged")
    body = json.dumps(clinic_events.as_json(event), ensure_ascii=False, separators=(",", ":"))
    return Message(body, html=False, recipient=key.webhook_url, signing=signing)


RENDERERS: dict[MessageKind, Renderer] = {
    MessageKind.CHECKIN: checkin,
    MessageKind.WEEKLY_QUESTION: weekly_question,
    MessageKind.REMINDER: reminder,
    MessageKind.ADMIN_NOTICE: admin_notice,
    MessageKind.SMS_LINK: sms_link,
    MessageKind.RAABRA_DIGEST: raabra_digest,
    MessageKind.GROUP_QUESTION: group_question,
    MessageKind.GROUP_ANSWER: group_answer,
    MessageKind.CLINIC_EVENT: clinic_event,
}


class Renderers:
    """Renders a claimed batch for the sender: ``await renderers(rows)`` → row id → message,
    or ``Permanent`` for a row that cannot be written (``ContentGone``, ``KeyChanged``)."""

    def __init__(self, rt: Runtime, registry: Mapping[MessageKind, Renderer] = RENDERERS) -> None:
        self.rt = rt
        self.registry = registry
        self._cipher = sms_cipher(rt.settings)

    async def __call__(self, rows: Sequence[OutboxMessage]) -> dict[int, Message | Permanent]:
        person_ids = {r.person_id for r in rows if r.person_id is not None}
        chat_ids = {r.chat_id for r in rows if r.person_id is None and r.chat_id is not None}
        dispatch_ids = {r.dispatch_id for r in rows if r.dispatch_id is not None}
        prompt_ids = {r.prompt_id for r in rows if r.prompt_id is not None}
        post_ids = {r.group_post_id for r in rows if r.group_post_id is not None}
        event_ids = {r.clinic_event_id for r in rows if r.clinic_event_id is not None}
        key_ids = {r.api_key_id for r in rows if r.api_key_id is not None}
        async with self.rt.sessions() as session:
            people = await _where_in(session, Person, Person.id, person_ids)
            # An admin notice has only a chat: the admin's language, if they ever wrote to us.
            people += await _where_in(session, Person, Person.telegram_user_id, chat_ids)
            found_dispatches = {
                d.id: d for d in await _where_in(session, Dispatch, Dispatch.id, dispatch_ids)
            }
            prompts = {p.id: p for p in await _where_in(session, Prompt, Prompt.id, prompt_ids)}
            earlier = await _earlier_answers(session, list(prompts.values()))
            digests = {
                r.id: await raabra.digest_for(self.rt, session, r.person_id, r.payload)
                for r in rows
                if r.kind == MessageKind.RAABRA_DIGEST
            }
            posts = {p.id: p for p in await _where_in(session, GroupPost, GroupPost.id, post_ids)}
            group_ids = {p.group_id for p in posts.values()}
            teams = {g.id: g for g in await _where_in(session, TeamGroup, TeamGroup.id, group_ids)}
            events = {
                e.id: e for e in await _where_in(session, ClinicEvent, ClinicEvent.id, event_ids)
            }
            keys = {k.id: k for k in await _where_in(session, ApiKey, ApiKey.id, key_ids)}
        by_id = {p.id: p for p in people}
        by_chat = {p.telegram_user_id: p for p in people}
        default = self.rt.settings.default_locale
        out: dict[int, Message | Permanent] = {}
        for row in rows:
            assert row.id is not None
            person = by_id.get(row.person_id) if row.person_id is not None else None
            if person is None and row.chat_id is not None:
                person = by_chat.get(row.chat_id)
            locale = as_locale(person.locale, default) if person is not None else default
            post = posts.get(row.group_post_id) if row.group_post_id is not None else None
            group = teams.get(post.group_id) if post is not None else None
            if group is not None:  # a group reads its own language, not a person's
                person, locale = None, groups.locale_of(self.rt, group)
            subject = Subject(
                row,
                person,
                found_dispatches.get(row.dispatch_id) if row.dispatch_id else None,
                prompts.get(row.prompt_id) if row.prompt_id is not None else None,
                self._cipher,
                earlier.get(row.prompt_id) if row.prompt_id is not None else None,
                digests.get(row.id),
                post,
                group,
                events.get(row.clinic_event_id) if row.clinic_event_id is not None else None,
                keys.get(row.api_key_id) if row.api_key_id is not None else None,
            )
            out[row.id] = self._one(subject, locale)
        return out

    def _one(self, subject: Subject, locale: Locale) -> Message | Permanent:
        row = subject.row
        renderer = self.registry.get(MessageKind(row.kind))
        if renderer is None:
            return Permanent("NoRenderer")
        try:
            message = renderer(self.rt, subject, locale)
        except Exception as exc:  # a content problem must not stop the batch
            log.error("render: message %s (%s) failed: %s", row.id, row.kind, type(exc).__name__)
            return Permanent("RenderFailed")
        if message is None:
            return Permanent("KeyChanged" if row.kind == MessageKind.SMS_LINK else "ContentGone")
        return message


async def _earlier_answers(session: Any, prompts: list[Prompt]) -> dict[int, Prompt]:
    """For each prompt, the same leader's latest answered prompt of the same question before it
    (the programme has come round again): one query for the batch."""
    if not prompts:
        return {}
    answered = list(
        await session.exec(
            select(Prompt)
            .where(
                col(Prompt.leader_id).in_({p.leader_id for p in prompts}),
                col(Prompt.question_id).in_({p.question_id for p in prompts}),
                col(Prompt.status) == PromptStatus.ANSWERED,
                col(Prompt.answer_ciphertext).is_not(None),
            )
            .order_by(col(Prompt.due_at))
        )
    )
    found: dict[int, Prompt] = {}
    for prompt in prompts:
        assert prompt.id is not None
        for other in answered:  # oldest first: the last one that fits is the latest
            if (
                other.leader_id == prompt.leader_id
                and other.question_id == prompt.question_id
                and other.programme_id == prompt.programme_id
                and other.due_at < prompt.due_at
            ):
                found[prompt.id] = other
    return found


async def _where_in(session: Any, model: type[M], column: Any, values: set[Any]) -> list[M]:
    """The rows of ``model`` whose ``column`` is one of ``values`` (no query for none)."""
    if not values:
        return []
    return list(await session.exec(select(model).where(col(column).in_(values))))
