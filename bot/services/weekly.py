"""The weekly schedule: which leader gets which question when, and the reminder after it.

The rules:

- **The database is the schedule.** Each active leader has ``next_due_at`` (UTC, indexed). The
  scheduler tick calls ``send_due_prompts`` and ``send_due_reminders``; nothing is kept in
  memory, so a restart or a second process changes nothing.
- **Local time.** A leader picks a weekday and a time of day in their own zone
  (``Leader.timezone``, Europe/Oslo by default); 09:00 stays 09:00 across daylight saving. A time
  that does not exist that night (spring forward, 02:30 on the last Sunday of March) moves to the
  first minute after the gap (03:00); a time that happens twice (autumn, 02:30 on the last Sunday
  of October) is used once, the first time.
- **Claiming.** A due leader is claimed by a conditional ``UPDATE … SET next_due_at = <a week
  on> WHERE next_due_at = <the due time seen>`` (rowcount 1: ours). Its prompt, its outbox row
  and the leader's new place in the programme are written in that same transaction, so two
  processes running the tick at once send one question, and a crash sends none or one.
- **One question a week.** ``Prompt`` is unique per (leader, ISO week of the due time in the
  leader's zone), and its queued message refers to it (``prompt_id``; rendered at send time in
  the leader's language of that moment). A week that already has a prompt (the leader moved
  their day within the week) is not sent again.
- **Not to people who blocked the bot.** A leader whose person has ``blocked_at`` set is not
  due until they write again; the weeks in between are then recorded as missed.
- **Never stale.** A question more than ``PROMPT_LATE_HOURS`` late (the bot was down) is not
  sent: the week is recorded as ``missed`` and the leader keeps their place. Each missed week
  is recorded on its own; the outbox row also expires that long after the due time.
- **Programme order.** The leader's ``position`` indexes the role's questions in programme order
  (``Programme.questions_for``); after the last one it goes back to the first, ``cycle`` counts
  up, and that first question says that we start again. The first question of a theme (for
  the role) carries the theme's title and introduction.
- **Pauses.** A leader paused until a time is resumed by the tick when that time has passed; the
  next question comes at the first scheduled time at or after the end of the pause (at once
  only if that time has already come).
- **Reminders.** ``REMINDER_AFTER_HOURS`` after a question is sent (0: never), if it is still
  open, the leader gets it again with a reminder line; only for the leader's latest question,
  and only while the leader is active. A reminder too late to be useful is dropped.

Logs carry ids, weeks and counts only: never names, chat ids or text.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import exists, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from bot import outbox
from bot.content.schema import Programme, Question, Theme
from bot.db import table_of, upsert_insert
from bot.models import Leader, LeaderStatus, MessageKind, Person, Prompt, PromptStatus, utcnow
from bot.runtime import Runtime

log = logging.getLogger(__name__)

WEEK = dt.timedelta(days=7)
BATCH = 200  # leaders or prompts read per query
MAX_ROUNDS = 50  # batches of leaders per call


# --- time: pure functions ----------------------------------------------------------------


def local_occurrence(day: dt.date, minute_of_day: int, zone: ZoneInfo) -> dt.datetime:
    """The moment ``day`` at ``minute_of_day`` (local) happens in ``zone``, as aware UTC.

    A local time that does not exist (the spring-forward gap) becomes the first minute after
    the gap; one that happens twice (autumn) is the first of the two.
    """
    if not 0 <= minute_of_day < 24 * 60:
        raise ValueError(f"minute_of_day must be 0..1439, not {minute_of_day}")
    wall = dt.datetime.combine(day, dt.time(minute_of_day // 60, minute_of_day % 60))
    candidate = wall
    # Gaps are an hour in Norway; some zones have skipped a whole day (Samoa, 2011).
    for _minute in range(2 * 24 * 60):
        moment = candidate.replace(tzinfo=zone, fold=0)
        utc = moment.astimezone(dt.UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == candidate:
            return utc
        candidate += dt.timedelta(minutes=1)
    raise ValueError(f"no valid local time after {wall} in {zone}")  # pragma: no cover


def next_due(after: dt.datetime, weekday: int, minute_of_day: int, zone: ZoneInfo) -> dt.datetime:
    """The first ``weekday`` (0 = Monday) at ``minute_of_day`` local time strictly after
    ``after``, as aware UTC."""
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday must be 0..6, not {weekday}")
    if after.tzinfo is None:
        raise ValueError("naive datetime given to next_due")
    start = after.astimezone(zone).date() - dt.timedelta(days=1)
    first = start + dt.timedelta(days=(weekday - start.weekday()) % 7)
    for week in range(3):
        moment = local_occurrence(first + week * WEEK, minute_of_day, zone)
        if moment > after:
            return moment
    raise AssertionError("unreachable: a week always has the weekday")  # pragma: no cover


def iso_week(moment: dt.datetime, zone: ZoneInfo) -> str:
    """The ISO week of the local date of ``moment`` in ``zone``: ``"2026-W49"``."""
    year, week, _day = moment.astimezone(zone).date().isocalendar()
    return f"{year}-W{week:02d}"


def leader_zone(rt: Runtime, leader: Leader) -> ZoneInfo:
    """The leader's zone; the bot's own if the stored name is not a known zone."""
    try:
        return ZoneInfo(leader.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("leader %s: unknown time zone; using the bot's", leader.id)
        return rt.settings.zone


def first_due_at_or_after(
    moment: dt.datetime, weekday: int, minute_of_day: int, zone: ZoneInfo
) -> dt.datetime:
    """Like ``next_due``, but ``moment`` itself counts if it is a scheduled time."""
    return next_due(moment - dt.timedelta(microseconds=1), weekday, minute_of_day, zone)


def tomorrow_at(now: dt.datetime, minute_of_day: int, zone: ZoneInfo) -> dt.datetime:
    """``minute_of_day`` (local) on the day after ``now``'s local date, as aware UTC: "remind
    me tomorrow" at the leader's own time, whatever the clocks do that night."""
    tomorrow = now.astimezone(zone).date() + dt.timedelta(days=1)
    return local_occurrence(tomorrow, minute_of_day, zone)


# --- which question ----------------------------------------------------------------------


class NoQuestions(LookupError):
    """The leader's programme or role is not in the live content (or has no questions)."""


def _role_questions(rt: Runtime, programme_id: str, role_id: str) -> tuple[Programme, list[Any]]:
    programme = rt.content.programmes.get(programme_id)
    if programme is None:
        raise NoQuestions(f"no programme '{programme_id}'")
    questions = programme.questions_for(role_id)
    if not questions:
        raise NoQuestions(f"programme '{programme_id}' has no questions for role '{role_id}'")
    return programme, questions


def _first_of_theme(questions: list[tuple[Theme, Question]], index: int) -> bool:
    return index == 0 or questions[index - 1][0].id != questions[index][0].id


def question_at(rt: Runtime, leader: Leader) -> tuple[Programme, Theme, Question, bool]:
    """The leader's next question (Bokmål source), and whether it opens its theme for the role.

    ``position`` wraps modulo the role's question count, so shortened content never fails.
    """
    programme, questions = _role_questions(rt, leader.programme_id, leader.role_id)
    index = leader.position % len(questions)
    theme, question = questions[index]
    return programme, theme, question, _first_of_theme(questions, index)


def prompt_question(rt: Runtime, prompt: Prompt) -> tuple[Programme, Theme, Question, bool]:
    """The question a prompt asked (Bokmål source), and whether it opened its theme: by id, or
    by position if the content has changed since. Raises NoQuestions if the programme is gone."""
    programme, questions = _role_questions(rt, prompt.programme_id, prompt.role_id)
    ids = [question.id for _theme, question in questions]
    if prompt.question_id in ids:
        index = ids.index(prompt.question_id)
    else:
        index = prompt.position % len(questions)
    theme, question = questions[index]
    return programme, theme, question, _first_of_theme(questions, index)


def is_restart(prompt: Prompt) -> bool:
    """The first question of a new round through the programme."""
    return prompt.position == 0 and prompt.cycle > 0


# --- the tick: questions -----------------------------------------------------------------


async def send_due_prompts(rt: Runtime, now: dt.datetime | None = None) -> dict[str, int]:
    """Resume leaders whose pause is over, then send (or record as missed) every due question.

    Returns ``{"sent": n, "missed": m, "resumed": k}`` for this process.
    """
    now = now or utcnow()
    counts = {"sent": 0, "missed": 0, "resumed": 0}
    counts["resumed"] = await _resume_paused(rt, now)
    failed: set[int] = set()
    for _round in range(MAX_ROUNDS):  # the rest, if any, at the next tick
        query = (
            select(Leader.id)
            .join(Person, col(Person.id) == col(Leader.person_id))
            .where(
                col(Leader.status) == LeaderStatus.ACTIVE,
                col(Leader.next_due_at) <= now,
                col(Person.blocked_at).is_(None),
            )
            .order_by(col(Leader.next_due_at), col(Leader.id))
            .limit(BATCH)
        )
        if failed:  # only failures stay due; do not retry them in this round
            query = query.where(col(Leader.id).not_in(failed))
        async with rt.sessions() as session:
            ids = [i for i in (await session.exec(query)).all() if i is not None]
        for leader_id in ids:
            try:
                await _send_leader(rt, leader_id, now, counts)
            except Exception:  # one leader's trouble must not stop the others
                failed.add(leader_id)
                log.exception("leader %s: weekly question failed", leader_id)
        if len(ids) < BATCH:
            break
    if counts["sent"] and rt.sender is not None:
        rt.sender.wake()
    if any(counts.values()):
        log.info(
            "weekly: %d sent, %d missed, %d resumed",
            counts["sent"],
            counts["missed"],
            counts["resumed"],
        )
    return counts


async def _resume_paused(rt: Runtime, now: dt.datetime) -> int:
    resumed = 0
    async with rt.sessions() as session:
        leaders = list(
            (
                await session.exec(
                    select(Leader)
                    .where(
                        Leader.status == LeaderStatus.PAUSED,
                        col(Leader.paused_until).is_not(None),
                        col(Leader.paused_until) <= now,
                    )
                    .limit(BATCH)
                )
            ).all()
        )
    for leader in leaders:
        assert leader.paused_until is not None
        if leader.weekday is None or leader.minute_of_day is None:
            due = None
        else:
            due = first_due_at_or_after(
                leader.paused_until, leader.weekday, leader.minute_of_day, leader_zone(rt, leader)
            )
        async with rt.sessions() as session:
            result: Any = await session.exec(
                update(Leader)
                .where(
                    col(Leader.id) == leader.id,
                    col(Leader.status) == LeaderStatus.PAUSED,
                    col(Leader.paused_until) == leader.paused_until,
                )
                .values(status=LeaderStatus.ACTIVE, paused_until=None, next_due_at=due)
            )
            await session.commit()
        if result.rowcount == 1:
            resumed += 1
            log.info("leader %s: pause over, resumed", leader.id)
    return resumed


async def _send_leader(
    rt: Runtime, leader_id: int, now: dt.datetime, counts: dict[str, int]
) -> None:
    """Handle every due week of one leader, one transaction per week."""
    late = dt.timedelta(hours=rt.settings.prompt_late_hours)
    while True:
        async with rt.sessions() as session:
            found = (
                await session.exec(
                    select(Leader, Person)
                    .join(Person, col(Person.id) == col(Leader.person_id))
                    .where(col(Leader.id) == leader_id)
                )
            ).one_or_none()
            if found is None:
                return
            leader, person = found
            if (
                leader.status != LeaderStatus.ACTIVE
                or leader.next_due_at is None
                or leader.next_due_at > now
                or person.blocked_at is not None  # blocked us since: due again once they write
            ):
                return
            old_due = leader.next_due_at
            zone = leader_zone(rt, leader)
            if leader.weekday is None or leader.minute_of_day is None:
                new_due = None  # no schedule: stop until someone sets one
                log.warning("leader %s: active without a weekday and time", leader.id)
            else:
                new_due = next_due(old_due, leader.weekday, leader.minute_of_day, zone)
            # The claim: only one process moves this due time on.
            claimed: Any = await session.exec(
                update(Leader)
                .where(
                    col(Leader.id) == leader.id,
                    col(Leader.next_due_at) == old_due,
                    col(Leader.status) == LeaderStatus.ACTIVE,
                    col(Leader.position) == leader.position,
                    col(Leader.cycle) == leader.cycle,
                )
                .values(next_due_at=new_due)
            )
            if claimed.rowcount != 1:
                await session.rollback()
                return
            try:
                _programme, theme, question, _first = question_at(rt, leader)
                count = len(
                    rt.content.programmes[leader.programme_id].questions_for(leader.role_id)
                )
            except NoQuestions as exc:
                await session.commit()  # keep the claim, or this repeats every tick
                log.error("leader %s: week not sent: %s", leader.id, exc)
                return
            week = iso_week(old_due, zone)
            missed = now - old_due > late
            index = leader.position % count
            prompt = Prompt(
                leader_id=leader_id,
                programme_id=leader.programme_id,
                theme_id=theme.id,
                question_id=question.id,
                role_id=leader.role_id,
                position=index,
                cycle=leader.cycle,
                week=week,
                due_at=old_due,
                status=PromptStatus.MISSED if missed else PromptStatus.SENT,
                sent_at=None if missed else now,
                reminder_due_at=None if missed else _reminder_due(rt, now),
                created_at=now,
            )
            # Another week due as well (the bot was down)? Otherwise no need to look again.
            more = new_due is not None and new_due <= now
            prompt.id = await _insert_prompt(session, prompt)
            if prompt.id is None:
                await session.commit()  # the week has its question already: move on
                log.info(
                    "leader %s: week %s already has a question; not sent again", leader_id, week
                )
                if more:
                    continue
                return
            if missed:
                await session.commit()
                counts["missed"] += 1
                log.info("leader %s: week %s missed (bot was down)", leader_id, week)
                if more:
                    continue
                return
            await outbox.enqueue(
                session,
                MessageKind.WEEKLY_QUESTION,
                dedupe_key=f"prompt:{leader_id}:{week}",
                person_id=person.id,
                chat_id=person.telegram_user_id,
                prompt_id=prompt.id,
                due_at=now,
                expires_at=old_due + late,
            )
            position, cycle = index + 1, leader.cycle
            if position >= count:
                position, cycle = 0, cycle + 1
            await session.exec(
                update(Leader)
                .where(col(Leader.id) == leader_id)
                .values(position=position, cycle=cycle)
            )
            await session.commit()
        counts["sent"] += 1
        log.info("leader %s: week %s sent (prompt %s)", leader_id, week, prompt.id)
        if not more:
            return


def _reminder_due(rt: Runtime, sent_at: dt.datetime) -> dt.datetime | None:
    hours = rt.settings.reminder_after_hours
    return sent_at + dt.timedelta(hours=hours) if hours > 0 else None


async def _insert_prompt(session: Any, prompt: Prompt) -> int | None:
    """Insert unless the leader's week has a prompt already; the new id, or None."""
    values = prompt.model_dump(exclude={"id"})
    insert = upsert_insert(session)
    table = table_of(Prompt)
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["leader_id", "week"])
        .returning(table.c.id)
    )
    result: Any = await session.exec(stmt)
    row = result.first()
    return None if row is None else int(row[0])


# --- the tick: reminders -----------------------------------------------------------------


async def send_due_reminders(rt: Runtime, now: dt.datetime | None = None) -> int:
    """Remind active leaders of their latest question, still open, once its time has come.

    A due reminder that no longer applies (a newer question was sent, the leader paused or
    left, or it is more than ``PROMPT_LATE_HOURS`` late) is cleared without sending.
    """
    now = now or utcnow()
    late = dt.timedelta(hours=rt.settings.prompt_late_hours)
    newer = aliased(Prompt)
    superseded = exists().where(
        col(newer.leader_id) == col(Prompt.leader_id),
        col(newer.due_at) > col(Prompt.due_at),
        col(newer.sent_at).is_not(None),
    )
    query: Any = (
        select(Prompt, Leader, Person)
        .join(Leader, col(Leader.id) == col(Prompt.leader_id))
        .join(Person, col(Person.id) == col(Leader.person_id))
        .where(
            col(Prompt.status) == PromptStatus.SENT,
            col(Prompt.reminder_due_at).is_not(None),
            col(Prompt.reminder_due_at) <= now,
        )
        .add_columns(superseded.label("superseded"))
        .order_by(col(Prompt.reminder_due_at), col(Prompt.id))
        .limit(BATCH)
    )
    sent = 0
    async with rt.sessions() as session:
        rows = list((await session.exec(query)).all())
    for prompt, leader, person, superseded in rows:
        assert prompt.reminder_due_at is not None
        stale = now - prompt.reminder_due_at > late
        number = prompt.reminders_sent + 1
        wanted = (
            leader.status == LeaderStatus.ACTIVE
            and person.blocked_at is None
            and not superseded
            and not stale
        )
        async with rt.sessions() as session:
            values: dict[str, Any] = {"reminder_due_at": None}
            if wanted:
                values["reminders_sent"] = number
            claimed: Any = await session.exec(
                update(Prompt)
                .where(
                    col(Prompt.id) == prompt.id,
                    col(Prompt.status) == PromptStatus.SENT,
                    col(Prompt.reminder_due_at) == prompt.reminder_due_at,
                    col(Prompt.reminders_sent) == prompt.reminders_sent,
                )
                .values(**values)
            )
            if claimed.rowcount != 1:
                await session.rollback()
                continue
            if wanted:
                await outbox.enqueue(
                    session,
                    MessageKind.REMINDER,
                    dedupe_key=f"remind:{prompt.id}:{number}",
                    person_id=person.id,
                    chat_id=person.telegram_user_id,
                    prompt_id=prompt.id,
                    due_at=now,
                    expires_at=now + late,
                )
            await session.commit()
        if wanted:
            sent += 1
            log.info("leader %s: reminder %s for prompt %s", leader.id, number, prompt.id)
        else:
            log.info("leader %s: reminder for prompt %s dropped", leader.id, prompt.id)
    if sent and rt.sender is not None:
        rt.sender.wake()
    return sent
