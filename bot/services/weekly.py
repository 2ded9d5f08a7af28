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
  on> WHERE next_due_at = <the due time seen>`` (returned: ours); a round of due leaders is
  claimed in one such statement. Their prompts, their outbox rows and their new places in the
  programme are written in that same transaction, so two processes running the tick at once
  send one question, and a crash sends none or one. One leader's failure rolls back only that
  leader's savepoint.
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
import functools
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Integer, and_, bindparam, case, exists, literal, or_, select, update

from bot import outbox
from bot.content.schema import Programme, Question, Theme
from bot.db import dialect_of, insert_for, table_of
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


def leader_zone(rt: Runtime, leader: Leader | _Due) -> ZoneInfo:
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
#
# One round: one query finds up to BATCH leaders that are due or whose pause is over; their
# weeks are planned in Python (zone, next time, question); then ONE transaction writes the
# round: resumed pauses (one UPDATE), the claim of every due week (one conditional UPDATE …
# RETURNING; on PostgreSQL it skips rows another process holds), the prompts (one INSERT … ON
# CONFLICT DO NOTHING RETURNING) and their queued rows (one INSERT). Those writes run in a
# savepoint; if any statement fails, the savepoint is rolled back and each leader is written
# again in a savepoint of its own, so one leader's failure never stops the others.


@dataclass(slots=True)
class _Due:
    """A due leader as the tick reads it: the columns it needs, no ORM object (a Core row)."""

    id: int
    person_id: int
    status: str
    weekday: int | None
    minute_of_day: int | None
    timezone: str
    programme_id: str
    role_id: str
    position: int
    cycle: int
    next_due_at: dt.datetime | None
    paused_until: dt.datetime | None
    chat_id: int  # the person's Telegram user id


@dataclass
class _Week:
    """One due week of one leader, as planned before the round's transaction."""

    leader: _Due
    old_due: dt.datetime
    new_due: dt.datetime | None
    week: str
    missed: bool
    # The prompt's columns (None: the content has no question for the leader; logged, claimed)
    prompt: dict[str, Any] | None
    problem: str = ""
    position: int = 0  # the leader's place after this week (moved on only if sent)
    cycle: int = 0
    prompt_id: int | None = None  # once written


async def send_due_prompts(rt: Runtime, now: dt.datetime | None = None) -> dict[str, int]:
    """Resume leaders whose pause is over, then send (or record as missed) every due question.

    Returns ``{"sent": n, "missed": m, "resumed": k}`` for this process.
    """
    now = now or utcnow()
    counts = {"sent": 0, "missed": 0, "resumed": 0}
    skip: set[int] = set()  # failed, or held by another process: not again in this call
    for _round in range(MAX_ROUNDS):  # the rest, if any, at the next tick
        rows = await _due_leaders(rt, now, skip)
        if not rows:
            break
        resumes = [leader for leader in rows if leader.status != ACTIVE]
        weeks: list[_Week] = []
        for leader in rows:
            if leader.status != ACTIVE:
                continue
            try:
                weeks.append(_plan_week(rt, leader, now))
            except Exception:  # one leader's trouble must not stop the others
                skip.add(leader.id)
                log.exception("leader %s: weekly question failed", leader.id)
        again = await _write_round(rt, resumes, weeks, now, counts, skip)
        if len(rows) < BATCH and not again:
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


ACTIVE = LeaderStatus.ACTIVE


async def _due_leaders(rt: Runtime, now: dt.datetime, skip: set[int]) -> list[_Due]:
    """Up to BATCH leaders with a week due (not blocked) or a pause that is over: one query,
    each half of it on its own index (``leader(status, next_due_at)``,
    ``leader(status, paused_until)``), on a plain connection (no session: a look-up needs no
    identity map, and a session's close costs the driver a second rollback)."""
    query = _due_leaders_query()
    if skip:
        query = query.where(table_of(Leader).c.id.not_in(skip))
    async with rt.engine.connect() as connection:
        found = (await connection.execute(query, {"now": now})).all()
    return [_Due(*row) for row in found]


def _leaders_due_where() -> Any:
    """Due at ``:now`` (active, not blocked) or the pause over then: the tick's look-up and
    ``send_due``'s check share it."""
    leader, person = table_of(Leader), table_of(Person)
    return and_(
        or_(
            and_(leader.c.status == ACTIVE, leader.c.next_due_at <= bindparam("now")),
            and_(
                leader.c.status == LeaderStatus.PAUSED,
                leader.c.paused_until <= bindparam("now"),
            ),
        ),
        # Not to people who blocked the bot: due again once they write.
        or_(person.c.blocked_at.is_(None), leader.c.status != ACTIVE),
    )


@functools.cache
def _due_leaders_query() -> Any:
    """Up to BATCH leaders due at ``:now`` (not blocked) or whose pause is over then, with the
    columns ``_Due`` holds: built once."""
    leader, person = table_of(Leader), table_of(Person)
    c = leader.c
    return (
        select(
            c.id,
            c.person_id,
            c.status,
            c.weekday,
            c.minute_of_day,
            c.timezone,
            c.programme_id,
            c.role_id,
            c.position,
            c.cycle,
            c.next_due_at,
            c.paused_until,
            person.c.telegram_user_id,
        )
        .select_from(leader.join(person, person.c.id == c.person_id))
        .where(_leaders_due_where())
        .limit(BATCH)
    )


def _plan_week(rt: Runtime, leader: _Due, now: dt.datetime) -> _Week:
    """What this leader's due week will write: pure, before the transaction."""
    assert leader.next_due_at is not None
    old_due = leader.next_due_at
    zone = leader_zone(rt, leader)
    if leader.weekday is None or leader.minute_of_day is None:
        new_due = None  # no schedule: stop until someone sets one
        log.warning("leader %s: active without a weekday and time", leader.id)
    else:
        new_due = next_due(old_due, leader.weekday, leader.minute_of_day, zone)
    week = iso_week(old_due, zone)
    missed = now - old_due > dt.timedelta(hours=rt.settings.prompt_late_hours)
    plan = _Week(leader, old_due, new_due, week, missed, None)
    plan.position, plan.cycle = leader.position, leader.cycle
    try:
        _programme, questions = _role_questions(rt, leader.programme_id, leader.role_id)
    except NoQuestions as exc:
        plan.problem = str(exc)
        return plan
    count = len(questions)
    index = leader.position % count
    theme, question = questions[index]
    # Every column of a new ``Prompt`` (its defaults written out): a plain dict for the round's
    # one INSERT, without building and validating a model object per leader.
    plan.prompt = {
        "leader_id": leader.id,
        "programme_id": leader.programme_id,
        "theme_id": theme.id,
        "question_id": question.id,
        "role_id": leader.role_id,
        "position": index,
        "cycle": leader.cycle,
        "week": week,
        "due_at": old_due,
        "status": PromptStatus.MISSED if missed else PromptStatus.SENT,
        "sent_at": None if missed else now,
        "reminder_due_at": None if missed else _reminder_due(rt, now),
        "reminders_sent": 0,
        "skip_reason": None,
        "answer_ciphertext": None,
        "answer_message_id": None,
        "answered_at": None,
        "edited_at": None,
        "shared": False,
        "created_at": now,
    }
    if not missed:
        plan.position, plan.cycle = index + 1, leader.cycle
        if plan.position >= count:
            plan.position, plan.cycle = 0, plan.cycle + 1
    return plan


async def _write_round(
    rt: Runtime,
    resumes: list[_Due],
    weeks: list[_Week],
    now: dt.datetime,
    counts: dict[str, int],
    skip: set[int],
) -> bool:
    """The round's one transaction. True if a leader may be due again already (a missed week
    followed by another, a pause over at a time already come)."""
    again = False
    async with rt.sessions() as session:
        if resumes:
            dues = _resumed_due(rt, resumes)
            resumed = await _resume(session, resumes, dues)
            counts["resumed"] += len(resumed)
            for leader_id in resumed:
                log.info("leader %s: pause over, resumed", leader_id)
                due = dues[leader_id]
                again = again or (due is not None and due <= now)
            for leader in resumes:
                if leader.id not in resumed:
                    skip.add(leader.id)
        done: list[tuple[_Week, str]] = []
        if weeks:
            try:
                async with session.begin_nested():
                    done = await _write_weeks(rt, session, weeks, now)
            except Exception:
                log.warning("weekly: a round of %d failed; writing leader by leader", len(weeks))
                done = []
                for plan in weeks:
                    try:
                        async with session.begin_nested():
                            done += await _write_weeks(rt, session, [plan], now)
                    except Exception:  # one leader's trouble must not stop the others
                        skip.add(plan.leader.id)
                        log.exception("leader %s: weekly question failed", plan.leader.id)
        await session.commit()
    claimed = {plan.leader.id for plan, _outcome in done}
    for plan in weeks:
        if plan.leader.id not in claimed:
            skip.add(plan.leader.id)  # another process has it, or it failed
    for plan, outcome in done:
        who = plan.leader.id
        if outcome == "sent":
            counts["sent"] += 1
            log.info("leader %s: week %s sent (prompt %s)", who, plan.week, plan.prompt_id)
        elif outcome == "missed":
            counts["missed"] += 1
            log.info("leader %s: week %s missed (bot was down)", who, plan.week)
        elif outcome == "duplicate":
            log.info("leader %s: week %s already has a question; not sent again", who, plan.week)
        else:
            log.error("leader %s: week not sent: %s", who, plan.problem)
        if plan.new_due is not None and plan.new_due <= now:
            again = True  # another week due as well (the bot was down)
    return again


def _resumed_due(rt: Runtime, resumes: list[_Due]) -> dict[int, dt.datetime | None]:
    """The first scheduled time at or after the end of each pause."""
    dues: dict[int, dt.datetime | None] = {}
    for leader in resumes:
        assert leader.paused_until is not None
        if leader.weekday is None or leader.minute_of_day is None:
            dues[leader.id] = None
        else:
            dues[leader.id] = first_due_at_or_after(
                leader.paused_until, leader.weekday, leader.minute_of_day, leader_zone(rt, leader)
            )
    return dues


def _per_id(table: Any, values: dict[int, Any], column: str) -> Any:
    """``CASE id WHEN … THEN … END``: one value per row in one statement, bound with the
    column's own type (UTC times). Also for a condition the same for every row (``status =
    CASE id …``): a plain ``status = 'active'`` lets SQLite walk ``leader(status, …)``, every
    active leader, instead of finding the few rows by id."""
    kind = table.c[column].type
    return case(
        {key: literal(value, kind) for key, value in values.items()},
        value=table.c.id,
        else_=table.c[column],
    )


def _cases(table: Any, column: str, n: int, prefix: str) -> Any:
    """``_per_id``'s CASE for ``n`` rows with bound parameters: ``:k0…`` the ids (shared by every
    CASE of a statement), ``:<prefix>0…`` the values. A statement built from these is built once
    per (shape, n) and cached; ``_case_params`` fills it."""
    return case(
        {
            bindparam(f"k{i}", type_=table.c.id.type): bindparam(
                f"{prefix}{i}", type_=table.c[column].type
            )
            for i in range(n)
        },
        value=table.c.id,
        else_=table.c[column],
    )


def _case_params(ids: list[int], **columns: list[Any]) -> dict[str, Any]:
    """The parameters of a statement built with ``_cases``: ``ids`` as ``:ids`` (the expanding
    IN) and ``:k0…``, each of ``columns`` (values in the order of ``ids``) as ``:<name>0…``."""
    params: dict[str, Any] = {"ids": ids}
    params.update((f"k{i}", key) for i, key in enumerate(ids))
    for name, values in columns.items():
        params.update((f"{name}{i}", value) for i, value in enumerate(values))
    return params


@functools.lru_cache(maxsize=64)
def _claim_weeks_statement(n: int, postgres: bool) -> Any:
    """The claim of ``n`` due weeks (see ``_write_weeks``), built once per ``n``."""
    table, person = table_of(Leader), table_of(Person)
    # The conditions sit in the subquery, which finds the rows by their ids: SQLite would
    # otherwise walk every active leader on ``leader(status, …)``. (PostgreSQL re-checks them
    # on the locked row.)
    candidates: Any = select(table.c.id).where(
        table.c.id.in_(bindparam("ids", expanding=True)),
        table.c.status == _cases(table, "status", n, "status"),
        table.c.next_due_at == _cases(table, "next_due_at", n, "old_due"),
        table.c.position == _cases(table, "position", n, "old_position"),
        table.c.cycle == _cases(table, "cycle", n, "old_cycle"),
        table.c.person_id.in_(
            select(person.c.id).where(
                person.c.id.in_(bindparam("people", expanding=True)),
                person.c.blocked_at.is_(None),
            )
        ),
    )
    if postgres:
        candidates = candidates.with_for_update(of=table, skip_locked=True)
    return (
        update(table)
        .where(table.c.id.in_(candidates.scalar_subquery()))
        .values(
            next_due_at=_cases(table, "next_due_at", n, "new_due"),
            position=_cases(table, "position", n, "position"),
            cycle=_cases(table, "cycle", n, "cycle"),
        )
        .returning(table.c.id)
    )


async def _resume(
    session: Any, resumes: list[_Due], dues: dict[int, dt.datetime | None]
) -> set[int]:
    """Make the leaders active again, each only if still paused until the time seen."""
    table = table_of(Leader)
    until = {leader.id: leader.paused_until for leader in resumes}
    result: Any = await session.exec(
        update(table)
        .where(
            table.c.id.in_(
                select(table.c.id)
                .where(
                    table.c.id.in_(list(until)),
                    table.c.status
                    == _per_id(table, dict.fromkeys(until, LeaderStatus.PAUSED), "status"),
                    table.c.paused_until == _per_id(table, until, "paused_until"),
                )
                .scalar_subquery()
            )
        )
        .values(status=ACTIVE, paused_until=None, next_due_at=_per_id(table, dues, "next_due_at"))
        .returning(table.c.id)
    )
    return {int(row[0]) for row in result.all()}


@functools.cache
def _insert_prompts_statement(dialect: str) -> Any:
    """The round's prompts: INSERT … ON CONFLICT (leader, week) DO NOTHING RETURNING, built once
    per dialect."""
    prompts = table_of(Prompt)
    return (
        insert_for(dialect)(prompts)
        .on_conflict_do_nothing(index_elements=["leader_id", "week"])
        .returning(prompts.c.id, prompts.c.leader_id)
    )


async def _write_weeks(
    rt: Runtime, session: Any, weeks: list[_Week], now: dt.datetime
) -> list[tuple[_Week, str]]:
    """Claim the weeks and write their prompts and queued rows; each claimed week with what
    became of it: ``sent``, ``missed``, ``duplicate`` (the week has its question already) or
    ``problem`` (no question in the content: claimed, so it does not repeat every tick)."""
    late = dt.timedelta(hours=rt.settings.prompt_late_hours)
    by_id = {plan.leader.id: plan for plan in weeks}
    plans = list(by_id.values())
    table = table_of(Leader)
    # The claim: only one process moves a due time on. Each row only if it is still as read
    # (due then, active, at that place in the programme), its person has not blocked the bot
    # since, and (PostgreSQL) no other process holds it. One statement, built once per size.
    postgres = dialect_of(session) == "postgresql"
    params = _case_params(
        list(by_id),
        status=[ACTIVE] * len(plans),
        old_due=[p.old_due for p in plans],
        old_position=[p.leader.position for p in plans],
        old_cycle=[p.leader.cycle for p in plans],
        new_due=[p.new_due for p in plans],
        position=[p.position for p in plans],
        cycle=[p.cycle for p in plans],
    )
    params["people"] = [p.leader.person_id for p in plans]
    result: Any = await session.exec(_claim_weeks_statement(len(plans), postgres), params=params)
    claimed = [by_id[int(row[0])] for row in result.all()]
    done: list[tuple[_Week, str]] = [(plan, "problem") for plan in claimed if plan.prompt is None]
    writing = [plan for plan in claimed if plan.prompt is not None]
    if not writing:
        return done
    values = [plan.prompt for plan in writing if plan.prompt]
    inserted: Any = await session.exec(
        _insert_prompts_statement(dialect_of(session)), params=values
    )
    ids = {int(leader_id): int(prompt_id) for prompt_id, leader_id in inserted.all()}
    queued: list[dict[str, Any]] = []
    undo: list[_Week] = []
    for plan in writing:
        assert plan.prompt is not None
        prompt_id = ids.get(plan.leader.id)
        if prompt_id is None:
            done.append((plan, "duplicate"))
            if not plan.missed:
                undo.append(plan)  # the place in the programme stays as it was
            continue
        plan.prompt_id = prompt_id
        if plan.missed:
            done.append((plan, "missed"))
            continue
        done.append((plan, "sent"))
        queued.append(
            {
                "dedupe_key": f"prompt:{plan.leader.id}:{plan.week}",
                "person_id": plan.leader.person_id,
                "chat_id": plan.leader.chat_id,
                "prompt_id": prompt_id,
                "due_at": now,
                "expires_at": plan.old_due + late,
            }
        )
    if undo:  # rare: the leader moved their day within a week that has its question
        await session.exec(
            update(table)
            .where(table.c.id.in_([plan.leader.id for plan in undo]))
            .values(
                position=_per_id(table, {p.leader.id: p.leader.position for p in undo}, "position"),
                cycle=_per_id(table, {p.leader.id: p.leader.cycle for p in undo}, "cycle"),
            )
        )
    if queued:
        # The claim checked the people in this transaction: no second look for blocked ones.
        await outbox.enqueue_many(session, MessageKind.WEEKLY_QUESTION, queued, check_blocked=False)
    return done


def _reminder_due(rt: Runtime, sent_at: dt.datetime) -> dt.datetime | None:
    hours = rt.settings.reminder_after_hours
    return sent_at + dt.timedelta(hours=hours) if hours > 0 else None


# --- the tick: reminders -----------------------------------------------------------------


@dataclass(slots=True)
class _Reminder:
    """A due reminder as the tick reads it (a Core row), and whether it is still wanted."""

    id: int  # the prompt's
    reminder_due_at: dt.datetime
    reminders_sent: int
    leader_id: int
    leader_status: str
    person_id: int
    chat_id: int
    blocked_at: dt.datetime | None
    superseded: bool
    wanted: bool = False


def _reminders_due_where() -> Any:
    """Open prompts whose reminder is due at ``:now``: the look-up and ``send_due``'s check
    share it (``prompt(status, reminder_due_at)``)."""
    prompt = table_of(Prompt)
    return and_(
        prompt.c.status == PromptStatus.SENT,
        prompt.c.reminder_due_at.is_not(None),
        prompt.c.reminder_due_at <= bindparam("now"),
    )


@functools.cache
def _due_reminders_query() -> Any:
    """Open prompts whose reminder is due at ``:now``, with what is needed of their leader and
    person and whether a newer question has been sent: built once (building it each tick cost
    more than running it)."""
    prompt, leader, person = table_of(Prompt), table_of(Leader), table_of(Person)
    newer = prompt.alias("newer")
    superseded = exists().where(
        newer.c.leader_id == prompt.c.leader_id,
        newer.c.due_at > prompt.c.due_at,
        newer.c.sent_at.is_not(None),
    )
    return (
        select(
            prompt.c.id,
            prompt.c.reminder_due_at,
            prompt.c.reminders_sent,
            leader.c.id,
            leader.c.status,
            person.c.id,
            person.c.telegram_user_id,
            person.c.blocked_at,
            superseded.label("superseded"),
        )
        .select_from(
            prompt.join(leader, leader.c.id == prompt.c.leader_id).join(
                person, person.c.id == leader.c.person_id
            )
        )
        .where(_reminders_due_where())
        .order_by(prompt.c.reminder_due_at, prompt.c.id)
        .limit(BATCH)
    )


async def send_due_reminders(rt: Runtime, now: dt.datetime | None = None) -> int:
    """Remind active leaders of their latest question, still open, once its time has come.

    A due reminder that no longer applies (a newer question was sent, the leader paused or
    left, or it is more than ``PROMPT_LATE_HOURS`` late) is cleared without sending.
    """
    now = now or utcnow()
    late = dt.timedelta(hours=rt.settings.prompt_late_hours)
    query = _due_reminders_query()
    async with rt.engine.connect() as connection:  # a look-up: no session (see _due_leaders)
        rows = (await connection.execute(query, {"now": now})).all()
    if not rows:
        return 0
    plans: list[_Reminder] = []
    for row in rows:
        plan = _Reminder(*row)
        plan.superseded = bool(plan.superseded)
        stale = now - plan.reminder_due_at > late
        plan.wanted = (
            plan.leader_status == LeaderStatus.ACTIVE
            and plan.blocked_at is None
            and not plan.superseded
            and not stale
        )
        plans.append(plan)
    # One transaction: the claim of every reminder (cleared, and counted if it is sent) in one
    # conditional UPDATE … RETURNING, then the queued rows in one INSERT; in a savepoint, and
    # reminder by reminder in savepoints of their own if that fails.
    done: list[_Reminder] = []
    async with rt.sessions() as session:
        try:
            async with session.begin_nested():
                done = await _write_reminders(session, plans, now, late)
        except Exception:
            log.warning("weekly: %d reminders failed together; one by one", len(plans))
            for plan in plans:
                try:
                    async with session.begin_nested():
                        done += await _write_reminders(session, [plan], now, late)
                except Exception:  # one leader's trouble must not stop the others
                    log.exception("leader %s: reminder failed", plan.leader_id)
        await session.commit()
    sent = 0
    for plan in done:
        if plan.wanted:
            sent += 1
            log.info(
                "leader %s: reminder %s for prompt %s",
                plan.leader_id,
                plan.reminders_sent + 1,
                plan.id,
            )
        else:
            log.info("leader %s: reminder for prompt %s dropped", plan.leader_id, plan.id)
    if sent and rt.sender is not None:
        rt.sender.wake()
    return sent


@functools.lru_cache(maxsize=64)
def _claim_reminders_statement(n: int) -> Any:
    """The claim of ``n`` due reminders: each cleared (and counted if it is sent) only if still
    as read, and one to be sent only if its person has not blocked the bot since (checked here,
    in the claim, so the queued rows need no second look); built once per ``n``. Status
    compared through ``CASE id …`` as in the weeks'."""
    table, leader, person = table_of(Prompt), table_of(Leader), table_of(Person)
    reachable = (
        select(leader.c.id)
        .select_from(leader.join(person, person.c.id == leader.c.person_id))
        .where(leader.c.id.in_(bindparam("leaders", expanding=True)), person.c.blocked_at.is_(None))
    )
    wanted = case(
        {
            bindparam(f"k{i}", type_=table.c.id.type): bindparam(f"wanted{i}", type_=Integer)
            for i in range(n)
        },
        value=table.c.id,
    )
    return (
        update(table)
        .where(
            table.c.id.in_(bindparam("ids", expanding=True)),
            table.c.status == _cases(table, "status", n, "status"),
            table.c.reminder_due_at == _cases(table, "reminder_due_at", n, "seen_due"),
            table.c.reminders_sent == _cases(table, "reminders_sent", n, "seen_count"),
            or_(wanted == 0, table.c.leader_id.in_(reachable)),
        )
        .values(reminder_due_at=None, reminders_sent=_cases(table, "reminders_sent", n, "counted"))
        .returning(table.c.id)
    )


async def _write_reminders(
    session: Any, plans: list[_Reminder], now: dt.datetime, late: dt.timedelta
) -> list[_Reminder]:
    """Claim the reminders (each only if still as read) and queue the wanted ones."""
    by_id = {plan.id: plan for plan in plans}
    mine = list(by_id.values())
    params = _case_params(
        list(by_id),
        status=[PromptStatus.SENT] * len(mine),
        seen_due=[plan.reminder_due_at for plan in mine],
        seen_count=[plan.reminders_sent for plan in mine],
        counted=[plan.reminders_sent + (1 if plan.wanted else 0) for plan in mine],
        wanted=[1 if plan.wanted else 0 for plan in mine],
    )
    params["leaders"] = [plan.leader_id for plan in mine if plan.wanted]
    result: Any = await session.exec(_claim_reminders_statement(len(mine)), params=params)
    done = [by_id[int(row[0])] for row in result.all()]
    queued = [
        {
            "dedupe_key": f"remind:{plan.id}:{plan.reminders_sent + 1}",
            "person_id": plan.person_id,
            "chat_id": plan.chat_id,
            "prompt_id": plan.id,
            "due_at": now,
            "expires_at": now + late,
        }
        for plan in done
        if plan.wanted
    ]
    if queued:
        # The claim checked the people in this transaction: no second look for blocked ones.
        await outbox.enqueue_many(session, MessageKind.REMINDER, queued, check_blocked=False)
    return done


# --- the tick: both, with one look first ---------------------------------------------------


@functools.cache
def _anything_due_query() -> Any:
    """Whether a leader is due (or a pause over) and whether a reminder is due at ``:now``: one
    statement, one indexed probe per table (the look-ups' own conditions): built once."""
    leader, person, prompt = table_of(Leader), table_of(Person), table_of(Prompt)
    leaders = (
        select(leader.c.id)
        .select_from(leader.join(person, person.c.id == leader.c.person_id))
        .where(_leaders_due_where())
        .exists()
    )
    reminders = select(prompt.c.id).where(_reminders_due_where()).exists()
    return select(leaders.label("leaders"), reminders.label("reminders"))


@dataclass
class Due:
    """What one tick of ``send_due`` wrote: ``send_due_prompts``'s counts and the reminders."""

    sent: int = 0
    missed: int = 0
    resumed: int = 0
    reminders: int = 0


async def send_due(rt: Runtime, now: dt.datetime | None = None) -> Due:
    """The scheduler tick's weekly part: ``send_due_prompts`` and ``send_due_reminders``, each
    only if one look (``_anything_due_query``, one statement on a plain connection) finds it
    has something to do. Most ticks find nothing, and then this is all they cost."""
    now = now or utcnow()
    async with rt.engine.connect() as connection:
        leaders, reminders = (await connection.execute(_anything_due_query(), {"now": now})).one()
    done = Due()
    if leaders:
        counts = await send_due_prompts(rt, now)
        done.sent, done.missed, done.resumed = counts["sent"], counts["missed"], counts["resumed"]
    if reminders:
        done.reminders = await send_due_reminders(rt, now)
    return done
