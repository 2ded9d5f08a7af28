"""Changing a person's language, including what the bot has queued for them but not sent yet.

A check-in, a weekly question or a reminder waits in the outbox with its text already written
(so that it survives restarts and content reloads). When the person picks the other language,
those waiting messages are written again in it; a message a sender has already claimed is left
alone (it is on its way).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from bot.i18n import Locale
from bot.models import Dispatch, OutboxMessage, OutboxStatus, Person, Prompt
from bot.runtime import Runtime
from bot.services import dispatches, people, weekly

log = logging.getLogger(__name__)


async def choose_language(rt: Runtime, telegram_user_id: int, locale: Locale) -> Person:
    """Store an explicit language choice and rewrite the person's queued messages in it."""
    person = await people.choose_locale(rt.sessions, telegram_user_id, locale)
    rewritten = await rewrite_pending(rt, person, locale)
    if rewritten:
        log.info("person %s: %d queued message(s) rewritten in %s", person.id, rewritten, locale)
    return person


async def rewrite_pending(rt: Runtime, person: Person, locale: Locale) -> int:
    """Rewrite the person's pending check-ins, weekly questions and reminders; returns how many."""
    async with rt.sessions() as session:
        rows = (
            await session.exec(
                select(OutboxMessage.id, OutboxMessage.idempotency_key).where(
                    col(OutboxMessage.person_id) == person.id,
                    col(OutboxMessage.status) == OutboxStatus.PENDING,
                )
            )
        ).all()
        rewritten = 0
        for row_id, key in rows:
            payload = await _payload_for(rt, session, key, locale)
            if payload is None:
                continue
            result: Any = await session.exec(
                update(OutboxMessage)
                .where(
                    col(OutboxMessage.id) == row_id,
                    col(OutboxMessage.status) == OutboxStatus.PENDING,
                )
                .values(payload=payload)
            )
            rewritten += result.rowcount
        await session.commit()
    return rewritten


async def _payload_for(
    rt: Runtime, session: Any, key: str, locale: Locale
) -> dict[str, Any] | None:
    """The message behind an outbox key, written in ``locale``; None for kinds not rewritten."""
    try:
        if key.startswith(dispatches.CHECKIN_KEY):
            dispatch = await session.get(Dispatch, key.removeprefix(dispatches.CHECKIN_KEY))
            return None if dispatch is None else dispatches.checkin_payload(rt, dispatch, locale)
        if key.startswith(weekly.PROMPT_KEY):
            leader_id, week = key.removeprefix(weekly.PROMPT_KEY).split(":", 1)
            prompt = (
                await session.exec(
                    select(Prompt).where(
                        col(Prompt.leader_id) == int(leader_id), col(Prompt.week) == week
                    )
                )
            ).one_or_none()
            if prompt is None:
                return None
            return weekly.prompt_payload(rt, prompt, locale, restarted=weekly.is_restart(prompt))
        if key.startswith(weekly.REMIND_KEY):
            prompt_id = key.removeprefix(weekly.REMIND_KEY).split(":", 1)[0]
            prompt = await session.get(Prompt, int(prompt_id))
            if prompt is None:
                return None
            return weekly.prompt_payload(rt, prompt, locale, reminder=True)
    except (ValueError, weekly.NoQuestions) as exc:  # an odd key or content gone: keep the text
        log.warning("outbox %s: not rewritten: %s", key.split(":", 1)[0], type(exc).__name__)
    return None
