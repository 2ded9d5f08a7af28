"""The weekly schedule: local time across daylight saving, one question a week per leader (also
with two ticks at once), missed weeks after downtime, programme order and the new round,
reminders, and the end of a pause.

Time is simulated by passing ``now``; the first test goes end to end through the running bot
and the local Bot API to the leader's chat. Texts are checked in Nynorsk against the content
catalog, and buttons by their callback data (the UI labels are translated separately).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.app import RunningBot
from bot.content.loader import localize
from bot.content.schema import Programme
from bot.messages import Message
from bot.models import (
    Leader,
    LeaderStatus,
    Organisation,
    OutboxMessage,
    Person,
    Prompt,
    PromptStatus,
)
from bot.renderers import Renderers
from bot.runtime import Runtime
from bot.services.weekly import (
    Due,
    iso_week,
    local_occurrence,
    next_due,
    question_at,
    send_due,
    send_due_prompts,
    send_due_reminders,
    tomorrow_at,
)
from tests.conftest import People

OSLO = ZoneInfo("Europe/Oslo")
MONDAY, WEDNESDAY, SUNDAY = 0, 2, 6
NINE = 9 * 60
# Monday 7 December 2026, 09:00 in Oslo (winter time, UTC+1).
DUE = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
RESTART = "You have been through all the questions; we start again from the first."
REMINDER = "A reminder: this week's question is still open."
WRITE_HERE = "Write your answer as a message here."


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(OSLO)


# --- time ----------------------------------------------------------------------------------


def test_nine_on_monday_stays_nine_across_both_daylight_saving_changes() -> None:
    # Last Sunday of March 2026 is the 29th: Monday 23rd is winter time, 30th summer time.
    before = local_occurrence(dt.date(2026, 3, 23), NINE, OSLO)
    after = next_due(before, MONDAY, NINE, OSLO)
    assert after == utc(2026, 3, 30, 7, 0)
    assert (local(before).hour, local(after).hour) == (9, 9)
    assert local(before).utcoffset() == dt.timedelta(hours=1)
    assert local(after).utcoffset() == dt.timedelta(hours=2)
    # Last Sunday of October 2026 is the 25th: back to winter time.
    before = local_occurrence(dt.date(2026, 10, 19), NINE, OSLO)
    after = next_due(before, MONDAY, NINE, OSLO)
    assert (before, after) == (utc(2026, 10, 19, 7, 0), utc(2026, 10, 26, 8, 0))
    assert local(after).strftime("%A %H:%M") == "Monday 09:00"
    assert local(after).utcoffset() == dt.timedelta(hours=1)


def test_next_due_is_strictly_after_and_on_the_weekday() -> None:
    assert next_due(DUE, MONDAY, NINE, OSLO) == DUE + dt.timedelta(days=7)
    just_before = DUE - dt.timedelta(seconds=1)
    assert next_due(just_before, MONDAY, NINE, OSLO) == DUE
    # Sunday evening in UTC is already Monday in Oslo: the local date decides.
    assert next_due(utc(2026, 12, 6, 23, 30), MONDAY, 30, OSLO) == utc(2026, 12, 13, 23, 30)
    assert next_due(utc(2026, 12, 6, 23, 29), MONDAY, 30, OSLO) == utc(2026, 12, 6, 23, 30)
    wednesday = next_due(DUE, WEDNESDAY, 17 * 60 + 45, OSLO)
    assert local(wednesday).strftime("%Y-%m-%d %A %H:%M") == "2026-12-09 Wednesday 17:45"
    with pytest.raises(ValueError):
        next_due(DUE.replace(tzinfo=None), MONDAY, NINE, OSLO)


def test_a_time_that_does_not_exist_moves_to_the_end_of_the_gap() -> None:
    # 02:30 on Sunday 29 March 2026 does not happen in Oslo: the clocks go from 02:00 to 03:00.
    moment = local_occurrence(dt.date(2026, 3, 29), 2 * 60 + 30, OSLO)
    assert local(moment).strftime("%H:%M") == "03:00"
    assert moment == utc(2026, 3, 29, 1, 0)
    assert local_occurrence(dt.date(2026, 3, 29), 2 * 60, OSLO) == moment
    week_before = local_occurrence(dt.date(2026, 3, 22), 2 * 60 + 30, OSLO)
    assert next_due(week_before, SUNDAY, 2 * 60 + 30, OSLO) == moment
    # And the week after it is 02:30 again.
    assert local(next_due(moment, SUNDAY, 150, OSLO)).strftime("%d %H:%M") == "05 02:30"


def test_a_time_that_happens_twice_is_used_once() -> None:
    # 02:30 on Sunday 25 October 2026 happens at 00:30 UTC (summer time) and 01:30 UTC.
    first = local_occurrence(dt.date(2026, 10, 25), 2 * 60 + 30, OSLO)
    assert first == utc(2026, 10, 25, 0, 30)
    following = utc(2026, 11, 1, 1, 30)  # 02:30 winter time a week later
    assert next_due(first, SUNDAY, 150, OSLO) == following
    assert next_due(first + dt.timedelta(minutes=1), SUNDAY, 150, OSLO) == following
    # Even between the two 02:30s, the second one is not another occurrence.
    assert next_due(utc(2026, 10, 25, 1, 29), SUNDAY, 150, OSLO) == following


def test_remind_me_tomorrow_is_the_leaders_time_the_next_day_across_daylight_saving() -> None:
    # Pressed on Saturday 28 March 2026 at 23:30 in Oslo (22:30 UTC): Sunday is the 29th, when
    # the clocks go forward, so 09:00 is 07:00 UTC, not 24 hours on (08:30 local).
    pressed = utc(2026, 3, 28, 22, 30)
    assert tomorrow_at(pressed, NINE, OSLO) == utc(2026, 3, 29, 7, 0)
    # 00:10 on Monday in Oslo is still Sunday in UTC: tomorrow is Tuesday, by the local date.
    assert tomorrow_at(utc(2026, 12, 6, 23, 10), NINE, OSLO) == utc(2026, 12, 8, 8, 0)
    # A time in the spring-forward gap moves to the end of the gap.
    assert local(tomorrow_at(utc(2026, 3, 28, 12, 0), 150, OSLO)).strftime("%H:%M") == "03:00"


def test_iso_week_of_the_local_date_at_year_boundaries() -> None:
    assert dt.date(2026, 12, 31).isocalendar()[:2] == (2026, 53)  # Python agrees
    assert iso_week(utc(2026, 12, 31, 12, 0), OSLO) == "2026-W53"
    assert iso_week(utc(2027, 1, 3, 12, 0), OSLO) == "2026-W53"  # Sunday
    assert iso_week(utc(2025, 12, 29, 12, 0), OSLO) == "2026-W01"  # Monday of week 1
    # 23:30 UTC on Sunday 3 January 2027 is Monday 00:30 in Oslo: the week has turned.
    assert iso_week(utc(2027, 1, 3, 23, 30), OSLO) == "2027-W01"
    assert iso_week(utc(2027, 1, 3, 23, 30), ZoneInfo("UTC")) == "2026-W53"
    assert iso_week(DUE, OSLO) == "2026-W50"


# --- the database ---------------------------------------------------------------------------


_user_ids = iter(range(700_001, 800_000))


async def add_leader(
    rt: Runtime,
    *,
    next_due_at: dt.datetime | None = DUE,
    weekday: int = MONDAY,
    minute_of_day: int = NINE,
    programme_id: str = "systemperspektiv",
    role_id: str = "unit-leader",
    locale: str = "nn",
    status: str = LeaderStatus.ACTIVE,
    paused_until: dt.datetime | None = None,
    telegram_user_id: int | None = None,
) -> int:
    """An enrolled leader, written straight into the database."""
    async with rt.sessions() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_user_id == telegram_user_id))
        ).one_or_none()
        if person is None:
            person = Person(telegram_user_id=telegram_user_id or next(_user_ids), locale=locale)
            session.add(person)
        org = Organisation(name=f"Legevakt {person.telegram_user_id}")
        session.add(org)
        await session.flush()
        assert person.id is not None and org.id is not None
        leader = Leader(
            person_id=person.id,
            organisation_id=org.id,
            role_id=role_id,
            programme_id=programme_id,
            status=status,
            weekday=weekday,
            minute_of_day=minute_of_day,
            next_due_at=next_due_at,
            paused_until=paused_until,
            enrolled_at=DUE - dt.timedelta(days=30),
        )
        session.add(leader)
        await session.commit()
        assert leader.id is not None
        return leader.id


async def get_leader(rt: Runtime, leader_id: int) -> Leader:
    async with rt.sessions() as session:
        leader = await session.get(Leader, leader_id)
        assert leader is not None
        return leader


async def prompts_of(rt: Runtime, leader_id: int) -> list[Prompt]:
    async with rt.sessions() as session:
        query = select(Prompt).where(Prompt.leader_id == leader_id).order_by(col(Prompt.due_at))
        return list((await session.exec(query)).all())


async def outbox_rows(rt: Runtime, prefix: str = "") -> list[OutboxMessage]:
    async with rt.sessions() as session:
        query = (
            select(OutboxMessage)
            .where(col(OutboxMessage.dedupe_key).startswith(prefix))
            .order_by(col(OutboxMessage.id))
        )
        return list((await session.exec(query)).all())


def nynorsk(rt: Runtime, programme_id: str) -> Programme:
    """The programme as a Nynorsk reader sees it (and proof that it is translated)."""
    source = rt.content.programmes[programme_id]
    translated = localize(source, "reflection", rt.catalogs.content_lookup("nn"))
    assert translated.themes[0].title != source.themes[0].title
    return translated


async def rendered(rt: Runtime, row: OutboxMessage) -> Message:
    """The queued message as the sender writes it now (bot.renderers), in the person's language."""
    assert row.id is not None
    message = (await Renderers(rt)([row]))[row.id]
    assert isinstance(message, Message), message
    return message


def callback_data(message: Message) -> list[list[str]]:
    return [[button.data.pack() for button in row] for row in message.buttons]


def ui(rt: Runtime, text: str) -> str:
    """A UI string as a Nynorsk reader gets it (English until it is translated)."""
    return rt.catalogs.gettext("nn")(text)


async def test_a_leader_gets_this_weeks_question_once_in_their_chat(
    bot: RunningBot, people: People
) -> None:
    rt = bot.rt
    kari = await people("Kari", language_code="nn")
    await kari.says("/start")
    now = dt.datetime.now(dt.UTC)
    due = (now - dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
    leader_id = await add_leader(
        rt,
        telegram_user_id=kari.user_id,
        next_due_at=due,
        weekday=local(due).weekday(),
        minute_of_day=local(due).hour * 60 + local(due).minute,
    )

    await send_due_prompts(rt, now)  # the bot's own tick may get there first: the same either way
    [message] = await kari.replies()

    nn = nynorsk(rt, "systemperspektiv")
    theme = nn.themes[0]
    question = next(q for q in theme.questions if q.role == "unit-leader")
    assert message.text.startswith(theme.title + "\n" + str(theme.intro))
    assert f"<b>{theme.title}</b>" in message.html
    assert question.text in message.text and f"<b>{question.text}</b>" in message.html
    assert str(theme.prompt) in message.text
    assert message.text.endswith(ui(rt, WRITE_HERE))
    [prompt] = await prompts_of(rt, leader_id)
    assert [[b.callback_data for b in row] for row in message.buttons] == [
        [f"r:ans:{prompt.id}", f"r:skip:{prompt.id}", f"r:later:{prompt.id}"],
        ["rb:new"],
    ]
    assert (prompt.status, prompt.question_id, prompt.position, prompt.cycle) == (
        PromptStatus.SENT,
        question.id,
        0,
        0,
    )

    # Again, and from two ticks at once: nothing more.
    results = await asyncio.gather(send_due_prompts(rt, now), send_due_prompts(rt, now))
    assert await send_due_prompts(rt, now + dt.timedelta(minutes=5)) == {
        "sent": 0,
        "missed": 0,
        "resumed": 0,
    }
    assert sum(r["sent"] for r in results) == 0
    await kari.silence()
    assert len(await prompts_of(rt, leader_id)) == 1
    [row] = await outbox_rows(rt, "prompt:")
    assert row.dedupe_key == f"prompt:{leader_id}:{iso_week(due, OSLO)}"
    leader = await get_leader(rt, leader_id)
    assert leader.next_due_at is not None
    assert local(leader.next_due_at).replace(tzinfo=None) == local(due).replace(
        tzinfo=None
    ) + dt.timedelta(days=7)
    assert leader.position == 1


async def test_two_ticks_at_once_send_one_question(rt: Runtime) -> None:
    leader_ids = [await add_leader(rt) for _ in range(3)]
    now = DUE + dt.timedelta(minutes=1)
    results = await asyncio.gather(*(send_due_prompts(rt, now) for _ in range(4)))
    assert sum(r["sent"] for r in results) == 3
    assert len(await outbox_rows(rt, "prompt:")) == 3
    for leader_id in leader_ids:
        assert len(await prompts_of(rt, leader_id)) == 1
        leader = await get_leader(rt, leader_id)
        assert (leader.next_due_at, leader.position) == (DUE + dt.timedelta(days=7), 1)


async def test_a_question_more_than_twelve_hours_late_is_recorded_as_missed(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    now = DUE + dt.timedelta(hours=13)
    late = await add_leader(rt, telegram_user_id=7_123_456_789)
    in_time = await add_leader(rt, next_due_at=DUE + dt.timedelta(hours=2))

    with caplog.at_level(logging.INFO, logger="bot.services.weekly"):
        assert await send_due_prompts(rt, now) == {"sent": 1, "missed": 1, "resumed": 0}
    assert f"leader {late}: week 2026-W50 missed (bot was down)" in caplog.messages
    assert "7123456789" not in caplog.text  # ids and counts only, never a chat id

    [missed] = await prompts_of(rt, late)
    assert (missed.status, missed.sent_at, missed.week, missed.position) == (
        PromptStatus.MISSED,
        None,
        "2026-W50",
        0,
    )
    leader = await get_leader(rt, late)
    assert leader.next_due_at == DUE + dt.timedelta(days=7) and leader.next_due_at > now
    assert leader.position == 0  # the same question comes next week
    [row] = await outbox_rows(rt)
    assert row.dedupe_key == f"prompt:{in_time}:2026-W50"
    assert row.expires_at == DUE + dt.timedelta(hours=14)
    next_week = await send_due_prompts(rt, DUE + dt.timedelta(days=7, minutes=1))
    assert next_week == {"sent": 2, "missed": 0, "resumed": 0}
    first, second = await prompts_of(rt, late)
    assert (second.status, second.week, second.question_id) == (
        PromptStatus.SENT,
        "2026-W51",
        first.question_id,
    )


async def test_after_weeks_of_downtime_each_week_is_missed_and_this_week_sent(
    rt: Runtime,
) -> None:
    leader_id = await add_leader(rt, next_due_at=DUE - dt.timedelta(days=21))
    assert await send_due_prompts(rt, DUE + dt.timedelta(hours=11)) == {
        "sent": 1,
        "missed": 3,
        "resumed": 0,
    }
    prompts = await prompts_of(rt, leader_id)
    assert [(p.week, p.status) for p in prompts] == [
        ("2026-W47", PromptStatus.MISSED),
        ("2026-W48", PromptStatus.MISSED),
        ("2026-W49", PromptStatus.MISSED),
        ("2026-W50", PromptStatus.SENT),
    ]
    assert prompts[-1].position == 0
    assert (await get_leader(rt, leader_id)).next_due_at == DUE + dt.timedelta(days=7)


async def test_questions_come_in_programme_order_and_start_again(rt: Runtime) -> None:
    leader_id = await add_leader(rt)
    programme = rt.content.programmes["systemperspektiv"]
    expected = programme.questions_for("unit-leader")
    nn = nynorsk(rt, "systemperspektiv")
    rounds = len(expected) + 2

    leader = await get_leader(rt, leader_id)
    for _week in range(rounds):
        assert leader.next_due_at is not None
        sent = await send_due_prompts(rt, leader.next_due_at + dt.timedelta(minutes=1))
        assert sent["sent"] == 1
        leader = await get_leader(rt, leader_id)

    prompts = await prompts_of(rt, leader_id)
    rows = await outbox_rows(rt, "prompt:")
    assert len(prompts) == len(rows) == rounds
    order = [*expected, *expected][:rounds]
    assert [p.question_id for p in prompts] == [q.id for _t, q in order]
    assert [p.position for p in prompts] == [0, 1, 2, 3, 0, 1]
    assert [p.cycle for p in prompts] == [0, 0, 0, 0, 1, 1]
    assert (leader.position, leader.cycle) == (2, 1)
    themes = [t.id for t, _q in expected]
    intros = 0
    for index, (prompt, row) in enumerate(zip(prompts, rows, strict=True)):
        message = await rendered(rt, row)
        text = message.text
        theme = next(t for t in nn.themes if t.id == prompt.theme_id)
        question = next(q for q in theme.questions if q.id == prompt.question_id)
        assert f"<b>{question.text}</b>" in text
        opens_theme = prompt.position == 0 or themes[prompt.position - 1] != theme.id
        assert (str(theme.intro) in text) == opens_theme, index
        assert (f"<b>{theme.title}</b>" in text) == opens_theme, index
        intros += opens_theme
        assert (ui(rt, RESTART) in text) == (index == len(expected)), index
        assert message.html
        assert callback_data(message) == [
            [f"r:ans:{prompt.id}", f"r:skip:{prompt.id}", f"r:later:{prompt.id}"],
            ["rb:new"],
        ]
    # The theme with two questions for this role introduces itself once per round: the
    # intro comes with positions 0, 1 and 3, then 0 and 1 again.
    assert len(set(themes)) == 3 and intros == 5


async def test_question_at_wraps_and_follow_ups_are_bullets(rt: Runtime) -> None:
    leader_id = await add_leader(
        rt, programme_id="gjentatte-henvendelser", role_id="legevakt-leader"
    )
    leader = await get_leader(rt, leader_id)
    programme, theme, question, first = question_at(rt, leader)
    assert (programme.id, theme.id, question.id, first) == (
        "gjentatte-henvendelser",
        "risiko-og-kvalitetsforbedring",
        "kjennskap-til-risikoomrader",
        True,
    )
    count = len(programme.questions_for("legevakt-leader"))
    leader.position = count + 1
    assert question_at(rt, leader)[2].id == programme.questions_for("legevakt-leader")[1][1].id
    assert question_at(rt, leader)[3] is False

    await send_due_prompts(rt, DUE + dt.timedelta(minutes=1))
    [row] = await outbox_rows(rt)
    nn = nynorsk(rt, "gjentatte-henvendelser")
    nn_theme = next(t for t in nn.themes if t.id == theme.id)
    nn_question = next(q for q in nn_theme.questions if q.id == question.id)
    assert nn_question.follow_ups
    text = (await rendered(rt, row)).text
    for follow_up in nn_question.follow_ups:
        assert f"\n• {follow_up.text}" in text
    assert text.startswith(f"<b>{nn_theme.title}</b>\n\n<b>{nn_question.text}</b>")


async def test_a_reminder_comes_once_after_the_set_hours(rt: Runtime) -> None:
    leader_id = await add_leader(rt)
    sent_at = DUE + dt.timedelta(minutes=1)
    await send_due_prompts(rt, sent_at)
    [prompt] = await prompts_of(rt, leader_id)
    assert prompt.reminder_due_at == sent_at + dt.timedelta(hours=48)

    assert await send_due_reminders(rt, sent_at + dt.timedelta(hours=47)) == 0
    reminded = await asyncio.gather(
        send_due_reminders(rt, sent_at + dt.timedelta(hours=48)),
        send_due_reminders(rt, sent_at + dt.timedelta(hours=48)),
    )
    assert sum(reminded) == 1
    assert await send_due_reminders(rt, sent_at + dt.timedelta(hours=50)) == 0

    [row] = await outbox_rows(rt, "remind:")
    assert row.dedupe_key == f"remind:{prompt.id}:1"
    question = next(
        q
        for t in nynorsk(rt, "systemperspektiv").themes
        for q in t.questions
        if q.id == prompt.question_id
    )
    message = await rendered(rt, row)
    assert message.text.startswith(ui(rt, REMINDER))
    assert f"<b>{question.text}</b>" in message.text
    assert callback_data(message)[0][0] == f"r:ans:{prompt.id}"
    [prompt] = await prompts_of(rt, leader_id)
    assert (prompt.reminders_sent, prompt.reminder_due_at) == (1, None)


async def test_no_reminder_for_an_older_week_or_a_paused_leader(rt: Runtime) -> None:
    leader_id = await add_leader(rt)
    paused_id = await add_leader(rt)
    await send_due_prompts(rt, DUE + dt.timedelta(minutes=1))
    await send_due_prompts(rt, DUE + dt.timedelta(days=7, minutes=1))
    older, newer = await prompts_of(rt, leader_id)
    # "Remind me tomorrow" on last week's question, after this week's came.
    async with rt.sessions() as session:
        stored = await session.get(Prompt, older.id)
        assert stored is not None
        stored.reminder_due_at = DUE + dt.timedelta(days=7, hours=2)
        session.add(stored)
        paused = await session.get(Leader, paused_id)
        assert paused is not None
        paused.status = LeaderStatus.PAUSED
        session.add(paused)
        await session.commit()

    assert await send_due_reminders(rt, DUE + dt.timedelta(days=7, hours=3)) == 0
    assert (await prompts_of(rt, leader_id))[0].reminder_due_at is None
    assert await send_due_reminders(rt, DUE + dt.timedelta(days=9, hours=1)) == 1
    [row] = await outbox_rows(rt, "remind:")
    assert row.dedupe_key == f"remind:{newer.id}:1"
    assert all(p.reminders_sent == 0 for p in await prompts_of(rt, paused_id))


async def test_no_reminders_when_switched_off(rt: Runtime) -> None:
    rt.settings = rt.settings.model_copy(update={"reminder_after_hours": 0})
    leader_id = await add_leader(rt)
    await send_due_prompts(rt, DUE + dt.timedelta(minutes=1))
    [prompt] = await prompts_of(rt, leader_id)
    assert prompt.reminder_due_at is None
    assert await send_due_reminders(rt, DUE + dt.timedelta(days=6)) == 0
    assert await outbox_rows(rt, "remind:") == []


async def test_a_reminder_is_not_sent_to_someone_who_blocked_the_bot_after_the_tick_read_it(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They block the bot between the tick's look-up and its write: nothing is queued and the
    reminder is not counted as sent; the next tick drops it."""
    from sqlalchemy import update

    from bot.services import weekly

    leader_id = await add_leader(rt, telegram_user_id=881_002)
    sent_at = DUE + dt.timedelta(minutes=1)
    await send_due_prompts(rt, sent_at)
    write = weekly._write_reminders

    async def blocked_meanwhile(session, plans, now, late):  # type: ignore[no-untyped-def]
        async with rt.sessions() as other:
            await other.exec(
                update(Person)
                .where(col(Person.telegram_user_id) == 881_002)
                .values(blocked_at=sent_at)
            )
            await other.commit()
        return await write(session, plans, now, late)

    monkeypatch.setattr(weekly, "_write_reminders", blocked_meanwhile)
    assert await send_due_reminders(rt, sent_at + dt.timedelta(hours=48)) == 0
    monkeypatch.undo()
    assert await outbox_rows(rt, "remind:") == []
    [prompt] = await prompts_of(rt, leader_id)
    assert prompt.reminders_sent == 0

    assert await send_due_reminders(rt, sent_at + dt.timedelta(hours=49)) == 0
    [prompt] = await prompts_of(rt, leader_id)
    assert (prompt.reminders_sent, prompt.reminder_due_at) == (0, None)  # dropped
    assert await outbox_rows(rt, "remind:") == []


async def test_the_rounds_prompt_rows_name_every_column_a_prompt_has(rt: Runtime) -> None:
    """The round writes its prompts as plain rows, not model objects: a column added to
    ``Prompt`` later must be added there too, or it would be written without its default."""
    from bot.db import table_of
    from bot.services import weekly

    leader_id = await add_leader(rt)
    [due] = await weekly._due_leaders(rt, DUE + dt.timedelta(minutes=1), set())
    assert due.id == leader_id
    plan = weekly._plan_week(rt, due, DUE + dt.timedelta(minutes=1))
    assert plan.prompt is not None
    assert set(plan.prompt) == {column.name for column in table_of(Prompt).columns} - {"id"}


async def test_one_tick_sends_what_is_due_and_nothing_twice(rt: Runtime) -> None:
    """``send_due``, as the scheduler calls it: nothing due, nothing written; a week and a
    reminder due, each written once; the next tick finds nothing more."""
    early = await add_leader(rt, next_due_at=DUE - dt.timedelta(days=2), weekday=MONDAY + 5)
    await send_due_prompts(rt, DUE - dt.timedelta(days=2) + dt.timedelta(minutes=1))
    leader_id = await add_leader(rt)
    assert await send_due(rt, DUE - dt.timedelta(minutes=1)) == Due()
    assert len(await outbox_rows(rt)) == 1

    now = DUE + dt.timedelta(minutes=1)
    assert await send_due(rt, now) == Due(sent=1, reminders=1)
    assert len(await prompts_of(rt, leader_id)) == 1
    assert len(await outbox_rows(rt, f"prompt:{leader_id}:")) == 1
    [earlier] = await prompts_of(rt, early)
    [row] = await outbox_rows(rt, "remind:")
    assert row.dedupe_key == f"remind:{earlier.id}:1"
    assert await send_due(rt, now + dt.timedelta(minutes=1)) == Due()
    assert len(await outbox_rows(rt)) == 3


async def test_a_paused_leader_resumes_at_the_next_scheduled_time(rt: Runtime) -> None:
    leader_id = await add_leader(
        rt,
        status=LeaderStatus.PAUSED,
        paused_until=DUE - dt.timedelta(hours=1),
        weekday=WEDNESDAY,
        next_due_at=DUE - dt.timedelta(days=12),  # stale from before the pause
    )
    assert await send_due_prompts(rt, DUE) == {"sent": 0, "missed": 0, "resumed": 1}
    leader = await get_leader(rt, leader_id)
    wednesday = DUE + dt.timedelta(days=2)
    assert (leader.status, leader.paused_until, leader.next_due_at) == (
        LeaderStatus.ACTIVE,
        None,
        wednesday,
    )
    assert await prompts_of(rt, leader_id) == []
    assert await send_due_prompts(rt, wednesday - dt.timedelta(minutes=1)) == {
        "sent": 0,
        "missed": 0,
        "resumed": 0,
    }
    assert await send_due_prompts(rt, wednesday + dt.timedelta(minutes=1)) == {
        "sent": 1,
        "missed": 0,
        "resumed": 0,
    }


async def test_a_pause_that_ends_at_the_scheduled_time_sends_that_weeks_question(
    rt: Runtime,
) -> None:
    leader_id = await add_leader(
        rt, status=LeaderStatus.PAUSED, paused_until=DUE, next_due_at=DUE - dt.timedelta(days=14)
    )
    result = await send_due_prompts(rt, DUE + dt.timedelta(seconds=30))
    assert result == {"sent": 1, "missed": 0, "resumed": 1}
    [prompt] = await prompts_of(rt, leader_id)
    assert (prompt.week, prompt.due_at) == ("2026-W50", DUE)


async def test_a_leader_whose_programme_is_gone_does_not_stop_the_others(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    orphan = await add_leader(rt, programme_id="removed-programme")
    other = await add_leader(rt)
    with caplog.at_level(logging.ERROR, logger="bot.services.weekly"):
        result = await send_due_prompts(rt, DUE + dt.timedelta(minutes=1))
    assert result == {"sent": 1, "missed": 0, "resumed": 0}
    assert await prompts_of(rt, orphan) == [] and len(await prompts_of(rt, other)) == 1
    # Moved on a week, so the tick does not try again every few seconds.
    assert (await get_leader(rt, orphan)).next_due_at == DUE + dt.timedelta(days=7)
    assert any(f"leader {orphan}: week not sent" in m for m in caplog.messages)


async def test_no_question_is_queued_for_a_leader_who_blocked_the_bot_until_they_write(
    rt: Runtime,
) -> None:
    """A 403 marked them blocked: weeks are not queued (each would fail again), and the week
    comes once they write to the bot again."""
    from sqlalchemy import update

    from bot.services.people import ensure_person

    leader_id = await add_leader(rt, telegram_user_id=881_001)
    async with rt.sessions() as session:
        await session.exec(
            update(Person).where(col(Person.telegram_user_id) == 881_001).values(blocked_at=DUE)
        )
        await session.commit()
    sent_at = DUE + dt.timedelta(minutes=1)

    assert (await send_due_prompts(rt, sent_at))["sent"] == 0
    assert await outbox_rows(rt) == [] and await prompts_of(rt, leader_id) == []

    await ensure_person(rt.sessions, 881_001, "nn")  # they write again
    assert (await send_due_prompts(rt, sent_at + dt.timedelta(minutes=1)))["sent"] == 1
    [row] = await outbox_rows(rt, "prompt:")
    assert row.person_id is not None and row.kind == "weekly_question"


async def _fail_prompts_of(rt: Runtime, leader_id: int | None) -> None:
    """A database that refuses to store one leader's prompt (None: lifts the refusal)."""
    from sqlalchemy import text

    async with rt.engine.begin() as connection:
        if rt.engine.dialect.name == "postgresql":
            await connection.execute(text("DROP TRIGGER IF EXISTS refuse ON prompt"))
            if leader_id is not None:
                await connection.execute(
                    text(
                        "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                        f"IF NEW.leader_id = {int(leader_id)} THEN RAISE EXCEPTION 'refused'; "
                        "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                    )
                )
                await connection.execute(
                    text(
                        "CREATE TRIGGER refuse BEFORE INSERT ON prompt "
                        "FOR EACH ROW EXECUTE FUNCTION refuse()"
                    )
                )
        else:
            await connection.execute(text("DROP TRIGGER IF EXISTS refuse"))
            if leader_id is not None:
                await connection.execute(
                    text(
                        "CREATE TRIGGER refuse BEFORE INSERT ON prompt "
                        f"WHEN NEW.leader_id = {int(leader_id)} "
                        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                    )
                )


async def test_a_leader_the_database_refuses_does_not_stop_the_others_in_the_round(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """The round is written in one transaction; when one leader's row fails there, every other
    leader's week is still written (each in its own savepoint), and the failed one keeps its
    due time: it comes at the next tick, once."""
    others = [await add_leader(rt) for _ in range(3)]
    refused = await add_leader(rt)
    reminded = await add_leader(rt, next_due_at=DUE - dt.timedelta(days=7))
    await send_due_prompts(rt, DUE - dt.timedelta(days=7) + dt.timedelta(minutes=1))
    await _fail_prompts_of(rt, refused)
    now = DUE + dt.timedelta(minutes=1)

    with caplog.at_level(logging.ERROR, logger="bot.services.weekly"):
        assert await send_due_prompts(rt, now) == {"sent": 4, "missed": 0, "resumed": 0}
    assert any(f"leader {refused}: weekly question failed" in m for m in caplog.messages)
    for leader_id in others:
        [prompt] = await prompts_of(rt, leader_id)
        assert prompt.week == "2026-W50"
        assert (await get_leader(rt, leader_id)).position == 1
    assert len(await prompts_of(rt, reminded)) == 2
    assert await prompts_of(rt, refused) == []
    still = await get_leader(rt, refused)
    assert (still.next_due_at, still.position) == (DUE, 0)  # its claim was rolled back too
    assert len(await outbox_rows(rt, "prompt:")) == 5  # last week's one and this week's four

    await _fail_prompts_of(rt, None)
    assert await send_due_prompts(rt, now + dt.timedelta(minutes=1)) == {
        "sent": 1,
        "missed": 0,
        "resumed": 0,
    }
    [prompt] = await prompts_of(rt, refused)
    assert prompt.week == "2026-W50"
    assert len(await outbox_rows(rt, f"prompt:{refused}:")) == 1
