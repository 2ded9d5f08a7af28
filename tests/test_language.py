"""Choosing the other language rewrites what is queued for the person but not sent yet.

A leader who switches to Bokmål while this week's question (or a reminder) waits in the outbox
gets it in Bokmål; a caller's pending check-in likewise. A message a sender has already
claimed is on its way and is left as it is.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlmodel import col

from bot.content.loader import localize
from bot.models import OutboxMessage, OutboxStatus, Person
from bot.runtime import Runtime
from bot.services import dispatches
from bot.services.language import choose_language
from bot.services.people import ensure_person
from bot.services.weekly import send_due_prompts, send_due_reminders
from tests.test_weekly import DUE, add_leader, outbox_rows, prompts_of


def question_text(rt: Runtime, locale: str, question_id: str) -> str:
    programme = localize(
        rt.content.programmes["systemperspektiv"],
        "reflection",
        rt.catalogs.content_lookup(locale),
    )
    return next(q.text for t in programme.themes for q in t.questions if q.id == question_id)


async def person_of(rt: Runtime, telegram_user_id: int) -> Person:
    return await ensure_person(rt.sessions, telegram_user_id, "nn")


async def test_a_queued_question_and_reminder_follow_the_leaders_new_language(
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
    assert nn_text in question.payload["text"] and nn_text in reminder.payload["text"]

    person = await choose_language(rt, 880_001, "nb")

    assert (person.locale, person.locale_chosen) == ("nb", True)
    question, reminder = await outbox_rows(rt, "prompt:") + await outbox_rows(rt, "remind:")
    assert nb_text in question.payload["text"] and nn_text not in question.payload["text"]
    assert nb_text in reminder.payload["text"]
    assert reminder.payload["text"].startswith("En påminnelse")
    # The buttons still answer the same prompt, now labelled in Bokmål.
    buttons = question.payload["reply_markup"]["inline_keyboard"][0]
    assert buttons[0]["text"] == "Svar"
    assert buttons[0]["callback_data"] == f"r:ans:{prompt.id}"


async def test_a_pending_checkin_follows_the_callers_new_language(rt: Runtime) -> None:
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
    nn_question = checkin.payload["text"]

    await choose_language(rt, 880_002, "nb")

    [checkin] = await outbox_rows(rt, "checkin:")
    nb_topic = dispatches.advice_for(rt, opened.dispatch, "nb")
    assert nb_topic is not None
    assert checkin.payload["text"] != nn_question
    assert nb_topic.title in checkin.payload["text"]
    assert checkin.status == OutboxStatus.PENDING


async def test_a_message_already_being_sent_is_not_rewritten(rt: Runtime) -> None:
    await add_leader(rt, locale="nn", telegram_user_id=880_003)
    await send_due_prompts(rt, DUE + dt.timedelta(minutes=1))
    [question] = await outbox_rows(rt, "prompt:")
    async with rt.sessions() as session:
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == question.id)
            .values(status=OutboxStatus.SENDING)
        )
        await session.commit()

    await choose_language(rt, 880_003, "nb")

    [after] = await outbox_rows(rt, "prompt:")
    assert after.payload == question.payload
