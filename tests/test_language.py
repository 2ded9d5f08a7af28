"""A queued message is written when it is sent, in the person's language of that moment.

A leader who switches to Bokmål while this week's question (or a reminder) waits in the queue
gets it in Bokmål; a caller's pending check-in likewise. Nothing queued is rewritten: the rows
hold what to send (kind, references), not text, so the switch touches none of them.
"""

from __future__ import annotations

import datetime as dt

from bot.content.loader import localize
from bot.models import OutboxMessage, OutboxStatus, Person
from bot.runtime import Runtime
from bot.services import dispatches
from bot.services.people import choose_locale, ensure_person
from bot.services.weekly import send_due_prompts, send_due_reminders
from tests.test_weekly import DUE, add_leader, callback_data, outbox_rows, prompts_of, rendered


def question_text(rt: Runtime, locale: str, question_id: str) -> str:
    programme = localize(
        rt.content.programmes["systemperspektiv"],
        "reflection",
        rt.catalogs.content_lookup(locale),
    )
    return next(q.text for t in programme.themes for q in t.questions if q.id == question_id)


async def person_of(rt: Runtime, telegram_user_id: int) -> Person:
    return await ensure_person(rt.sessions, telegram_user_id, "nn")


def shape(row: OutboxMessage) -> dict[str, object]:
    return row.model_dump(exclude={"claimed_by", "claimed_until"})


async def test_a_queued_question_and_reminder_come_in_the_leaders_new_language(
    rt: Runtime,
) -> None:
    leader_id = await add_leader(rt, locale="nn", telegram_user_id=880_001)
    sent_at = DUE + dt.timedelta(minutes=1)
    await send_due_prompts(rt, sent_at)
    await send_due_reminders(rt, sent_at + dt.timedelta(hours=48))
    [prompt] = await prompts_of(rt, leader_id)
    nn_text = question_text(rt, "nn", prompt.question_id)
    nb_text = question_text(rt, "nb", prompt.question_id)
    assert nn_text != nb_text
    question, reminder = await outbox_rows(rt, "prompt:") + await outbox_rows(rt, "remind:")
    assert nn_text in (await rendered(rt, question)).text
    assert nn_text in (await rendered(rt, reminder)).text

    person = await choose_locale(rt.sessions, 880_001, "nb")

    assert (person.locale, person.locale_chosen) == ("nb", True)
    after = await outbox_rows(rt, "prompt:") + await outbox_rows(rt, "remind:")
    assert [shape(r) for r in after] == [shape(question), shape(reminder)]  # nothing rewritten
    as_question, as_reminder = [await rendered(rt, r) for r in after]
    assert nb_text in as_question.text and nn_text not in as_question.text
    assert nb_text in as_reminder.text
    assert as_reminder.text.startswith("En påminnelse")
    # The buttons still answer the same prompt, now labelled in Bokmål.
    assert as_question.buttons[0][0].label == "Svar"
    assert callback_data(as_question)[0][0] == f"r:ans:{prompt.id}"


async def test_a_pending_checkin_comes_in_the_callers_new_language(rt: Runtime) -> None:
    topic = next(t for t in rt.content.advice.values() if t.tailoring.checkin_hours)
    valid = dispatches.validate(
        {"topic": topic.id, "locale": "nn", "checkin_hours": topic.tailoring.checkin_hours[0]},
        rt,
    )
    created = await dispatches.create(rt, valid)
    token = created.deep_link.split("?start=a_", 1)[1]
    person = await person_of(rt, 880_002)
    opened = await dispatches.open_link(rt, token, person)
    assert opened.dispatch is not None
    [checkin] = await outbox_rows(rt, "checkin:")
    nn_question = (await rendered(rt, checkin)).text

    await choose_locale(rt.sessions, 880_002, "nb")

    [after] = await outbox_rows(rt, "checkin:")
    assert shape(after) == shape(checkin)
    nb_topic = dispatches.advice_for(rt, opened.dispatch, "nb")
    assert nb_topic is not None
    nb_question = (await rendered(rt, after)).text
    assert nb_question != nn_question
    assert nb_topic.title in nb_question
    assert after.status == OutboxStatus.PENDING
