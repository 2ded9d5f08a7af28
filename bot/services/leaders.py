"""Leaders in the weekly reflection: joining with an invite, settings, answers, pause, stop.

The schedule itself (which question when, reminders, missed weeks) is ``bot.services.weekly``;
the enrolment questions and the schedule settings are ``bot.services.enrolment``.
Answers are free text and never logged. No Telegram types here.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import col, select

from bot.models import (
    Invite,
    Leader,
    LeaderStatus,
    Organisation,
    Person,
    Prompt,
    PromptStatus,
    utcnow,
)
from bot.privacy import contains_national_id, token_hash
from bot.runtime import Runtime
from bot.services.weekly import leader_zone, next_due, tomorrow_at

log = logging.getLogger(__name__)

ANSWER = "answer"  # the purpose of the key answers are encrypted with (``Runtime.cipher``)

SKIP_REASONS = ("not_relevant", "busy", "leave")
# The largest id an INTEGER primary key can hold on PostgreSQL (int4; SQLite's are wider). A
# button's id above it names no row, and PostgreSQL refuses even to look it up.
MAX_ROW_ID = 2**31 - 1


def zone_of(leader: Leader) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(leader.timezone)


# --- joining -------------------------------------------------------------------------------


class Joined(enum.Enum):
    ENROLLING = "enrolling"  # new, or in the middle of the enrolment questions
    ALREADY = "already"  # already taking part: show the settings, never enrol twice
    UNKNOWN = "unknown"
    EXPIRED = "expired"  # expired or revoked
    USED_UP = "used_up"


@dataclass(frozen=True)
class JoinResult:
    outcome: Joined
    leader: Leader | None = None
    organisation: Organisation | None = None


async def join(
    rt: Runtime, token: str, person: Person, *, now: dt.datetime | None = None
) -> JoinResult:
    """Redeem an invite for this person, or find their existing enrolment."""
    now = now or utcnow()
    async with rt.sessions() as session:
        leader = (
            await session.exec(select(Leader).where(Leader.person_id == person.id))
        ).one_or_none()
        if leader is not None and leader.status != LeaderStatus.STOPPED:
            organisation = await session.get(Organisation, leader.organisation_id)
            outcome = (
                Joined.ENROLLING if leader.status == LeaderStatus.ENROLLING else Joined.ALREADY
            )
            return JoinResult(outcome, leader, organisation)
        invite = (
            await session.exec(select(Invite).where(Invite.token_hash == token_hash(token)))
        ).one_or_none()
        if invite is None or invite.role_id not in rt.content.roles:
            return JoinResult(Joined.UNKNOWN)
        if invite.revoked_at is not None or now > invite.expires_at:
            return JoinResult(Joined.EXPIRED)
        used: Any = await session.exec(
            update(Invite)
            .where(col(Invite.id) == invite.id, col(Invite.uses) < Invite.max_uses)
            .values(uses=Invite.uses + 1)
        )
        if used.rowcount != 1:
            await session.rollback()
            return JoinResult(Joined.USED_UP)
        programme, _role = rt.content.roles[invite.role_id]
        if leader is None:
            assert person.id is not None  # a stored person
            leader = Leader(
                person_id=person.id,
                organisation_id=invite.organisation_id,
                role_id=invite.role_id,
                programme_id=programme.id,
                timezone=rt.settings.timezone,
            )
        # A leader who left and comes back keeps their old answers and starts afresh.
        leader.organisation_id = invite.organisation_id
        leader.role_id = invite.role_id
        leader.programme_id = programme.id
        leader.status = LeaderStatus.ENROLLING
        leader.enrol_step = "language"  # enrolment.State.LANGUAGE
        leader.invite_id = invite.id
        leader.stopped_at = None
        leader.next_due_at = None
        leader.paused_until = None
        session.add(leader)
        await session.commit()
        await session.refresh(leader)
        organisation = await session.get(Organisation, leader.organisation_id)
    log.info("leader %s joined with invite %s", leader.id, invite.id)
    return JoinResult(Joined.ENROLLING, leader, organisation)


async def leader_of(rt: Runtime, person: Person, *, stopped_too: bool = False) -> Leader | None:
    """The person's enrolment; one who left (keeping answers) only with ``stopped_too``."""
    async with rt.sessions() as session:
        leader = (
            await session.exec(select(Leader).where(Leader.person_id == person.id))
        ).one_or_none()
    if leader is None or (leader.status == LeaderStatus.STOPPED and not stopped_too):
        return None
    return leader


async def organisation_of(rt: Runtime, leader: Leader) -> Organisation | None:
    async with rt.sessions() as session:
        return await session.get(Organisation, leader.organisation_id)


async def save(rt: Runtime, leader: Leader, **values: Any) -> Leader:
    """Write ``values`` to the leader; the leader as saved."""
    async with rt.sessions() as session:
        row = await session.get(Leader, leader.id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row


# --- answers -------------------------------------------------------------------------------


class Saved(enum.Enum):
    SAVED = "saved"
    UPDATED = "updated"
    HELD = "held"  # holds a national identity number: not stored
    NO_QUESTION = "no_question"  # nothing open to answer
    ALREADY = "already"  # this week's question is answered; edit the answer to change it


async def latest_prompt(rt: Runtime, leader: Leader) -> Prompt | None:
    """The newest question the leader was sent (missed weeks do not count)."""
    async with rt.sessions() as session:
        return (
            await session.exec(
                select(Prompt)
                .where(Prompt.leader_id == leader.id, Prompt.status != PromptStatus.MISSED)
                .order_by(col(Prompt.due_at).desc())
                .limit(1)
            )
        ).one_or_none()


async def save_answer(
    rt: Runtime, leader: Leader, text: str, message_id: int, *, now: dt.datetime | None = None
) -> tuple[Saved, Prompt | None]:
    """The leader's text as the answer to the open question (the newest, until the next)."""
    prompt = await latest_prompt(rt, leader)
    if prompt is None:
        return Saved.NO_QUESTION, None
    if prompt.status == PromptStatus.ANSWERED:
        return Saved.ALREADY, prompt
    if contains_national_id(text):
        return Saved.HELD, prompt
    now = now or utcnow()
    async with rt.sessions() as session:
        row = await session.get(Prompt, prompt.id)
        assert row is not None
        row.answer_ciphertext = rt.cipher(ANSWER).encrypt(text)
        row.answer_message_id = message_id
        row.answered_at = now
        row.status = PromptStatus.ANSWERED
        row.skip_reason = None
        row.reminder_due_at = None
        session.add(row)
        await session.commit()
        await session.refresh(row)
    log.info("leader %s answered prompt %s", leader.id, row.id)
    return Saved.SAVED, row


async def edit_answer(
    rt: Runtime, leader: Leader, message_id: int, text: str, *, now: dt.datetime | None = None
) -> tuple[Saved, Prompt | None]:
    """The leader edited the message that was their answer: the answer follows the edit."""
    async with rt.sessions() as session:
        row = (
            await session.exec(
                select(Prompt).where(
                    Prompt.leader_id == leader.id, Prompt.answer_message_id == message_id
                )
            )
        ).one_or_none()
        if row is None:
            return Saved.NO_QUESTION, None
        if contains_national_id(text):
            return Saved.HELD, row
        row.answer_ciphertext = rt.cipher(ANSWER).encrypt(text)
        row.edited_at = now or utcnow()
        session.add(row)
        await session.commit()
        await session.refresh(row)
    log.info("leader %s edited the answer to prompt %s", leader.id, row.id)
    return Saved.UPDATED, row


def answer_text(rt: Runtime, prompt: Prompt) -> str | None:
    """The leader's answer in clear; None if there is none, or it cannot be read (made with a
    SECRET_KEY that is no longer given)."""
    if prompt.answer_ciphertext is None:
        return None
    text = rt.cipher(ANSWER).decrypt(prompt.answer_ciphertext)
    if text is None:
        log.warning("prompt %s: the answer cannot be decrypted (SECRET_KEY changed?)", prompt.id)
    return text


async def own_prompt(rt: Runtime, leader: Leader, prompt_id: int) -> Prompt | None:
    if not 0 < prompt_id <= MAX_ROW_ID:
        return None
    async with rt.sessions() as session:
        row = await session.get(Prompt, prompt_id)
    return row if row is not None and row.leader_id == leader.id else None


async def skip(rt: Runtime, leader: Leader, prompt_id: int) -> Prompt | None:
    """Skip this week's question (not a missed week). None if it is not theirs or answered."""
    async with rt.sessions() as session:
        row = await session.get(Prompt, prompt_id)
        if row is None or row.leader_id != leader.id or row.status == PromptStatus.ANSWERED:
            return None
        row.status = PromptStatus.SKIPPED
        row.reminder_due_at = None
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def skip_reason(rt: Runtime, leader: Leader, prompt_id: int, reason: str) -> Prompt | None:
    if reason not in SKIP_REASONS:
        return None
    async with rt.sessions() as session:
        row = await session.get(Prompt, prompt_id)
        if row is None or row.leader_id != leader.id or row.status != PromptStatus.SKIPPED:
            return None
        row.skip_reason = reason
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def remind_tomorrow(
    rt: Runtime, leader: Leader, prompt_id: int, *, now: dt.datetime | None = None
) -> Prompt | None:
    """Ask again tomorrow at the leader's own time of day, in their zone (24 hours on if they
    have none); the tick sends it through the outbox."""
    now = now or utcnow()
    async with rt.sessions() as session:
        row = await session.get(Prompt, prompt_id)
        if row is None or row.leader_id != leader.id or row.status != PromptStatus.SENT:
            return None
        if leader.minute_of_day is None:
            row.reminder_due_at = now + dt.timedelta(hours=24)
        else:
            row.reminder_due_at = tomorrow_at(now, leader.minute_of_day, leader_zone(rt, leader))
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def share(rt: Runtime, leader: Leader, prompt_id: int, shared: bool) -> Prompt | None:
    """Share an answer with the organisation (it appears in the report), or stop sharing."""
    async with rt.sessions() as session:
        row = await session.get(Prompt, prompt_id)
        if row is None or row.leader_id != leader.id or row.status != PromptStatus.ANSWERED:
            return None
        row.shared = shared
        session.add(row)
        await session.commit()
        await session.refresh(row)
    log.info("leader %s %s prompt %s", leader.id, "shared" if shared else "unshared", row.id)
    return row


async def answers(
    rt: Runtime,
    leader: Leader,
    *,
    offset: int = 0,
    limit: int | None = None,
    question_id: str | None = None,
) -> tuple[list[Prompt], int]:
    """The leader's own answers (to one question, with ``question_id``), newest first, and how
    many there are."""
    where = [col(Prompt.leader_id) == leader.id, col(Prompt.status) == PromptStatus.ANSWERED]
    if question_id is not None:
        where.append(col(Prompt.question_id) == question_id)
    async with rt.sessions() as session:
        total = (await session.exec(select(func.count()).select_from(Prompt).where(*where))).one()
        query = select(Prompt).where(*where).order_by(col(Prompt.due_at).desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        rows = list(await session.exec(query))
    return rows, int(total)


async def answered_questions(rt: Runtime, leader: Leader) -> list[Prompt]:
    """One prompt per question the leader has answered (the newest), newest first: what
    ``/answers`` can be filtered by."""
    rows, _total = await answers(rt, leader)
    seen: set[tuple[str, str]] = set()
    found = []
    for prompt in rows:
        key = (prompt.programme_id, prompt.question_id)
        if key not in seen:
            seen.add(key)
            found.append(prompt)
    return found


# --- pause and stop ------------------------------------------------------------------------


async def pause(
    rt: Runtime, leader: Leader, weeks: int | None, *, now: dt.datetime | None = None
) -> Leader:
    """No questions for ``weeks`` weeks, or (None) until /resume."""
    now = now or utcnow()
    until = now + dt.timedelta(weeks=weeks) if weeks else None
    log.info("leader %s paused", leader.id)
    return await save(rt, leader, status=LeaderStatus.PAUSED, paused_until=until)


async def resume(rt: Runtime, leader: Leader, *, now: dt.datetime | None = None) -> Leader:
    now = now or utcnow()
    assert leader.weekday is not None and leader.minute_of_day is not None
    due = next_due(now, leader.weekday, leader.minute_of_day, zone_of(leader))
    log.info("leader %s resumed", leader.id)
    return await save(rt, leader, status=LeaderStatus.ACTIVE, paused_until=None, next_due_at=due)


async def stop(rt: Runtime, leader: Leader, *, delete_answers: bool) -> None:
    """Leave the reflection. With ``delete_answers`` every answer goes too."""
    async with rt.sessions() as session:
        if delete_answers:
            await session.exec(delete(Leader).where(col(Leader.id) == leader.id))
        else:
            await session.exec(
                update(Leader)
                .where(col(Leader.id) == leader.id)
                .values(
                    status=LeaderStatus.STOPPED,
                    stopped_at=utcnow(),
                    next_due_at=None,
                    enrol_step=None,
                )
            )
        await session.commit()
    log.info("leader %s stopped (answers %s)", leader.id, "deleted" if delete_answers else "kept")
