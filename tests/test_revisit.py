"""Revisiting one's answers, as dialogues over the local Bot API: when the programme comes round
again to a question the leader answered before, the question shows that answer (date with year,
first lines) and asks what has changed; /answers can be narrowed to one question."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, update
from sqlmodel import col

from bot.app import RunningBot
from bot.models import Leader, OutboxMessage, Prompt
from bot.services import leaders, weekly
from tests.conftest import People
from tests.test_leaders import OSLO, enrolled, leader_row, question_arrives

ANSWERED = dt.datetime(2025, 11, 4, 8, 30, tzinfo=dt.UTC)


async def past_answer(
    bot: RunningBot,
    leader: Leader,
    index: int,
    text: str | None,
    when: dt.datetime,
    *,
    cycle: int = 0,
) -> None:
    """The leader's prompt for the role's question ``index``, answered ``text`` at ``when``
    (skipped if ``text`` is None)."""
    programme, _role = bot.rt.content.roles[leader.role_id]
    theme, question = programme.questions_for(leader.role_id)[index]
    async with bot.rt.sessions() as session:
        session.add(
            Prompt(
                leader_id=leader.id or 0,
                programme_id=programme.id,
                theme_id=theme.id,
                question_id=question.id,
                role_id=leader.role_id,
                position=index,
                cycle=cycle,
                week=weekly.iso_week(when, OSLO),
                due_at=when,
                sent_at=when,
                status="answered" if text is not None else "skipped",
                answer_ciphertext=bot.rt.cipher(leaders.ANSWER).encrypt(text) if text else None,
                answered_at=when if text is not None else None,
            )
        )
        await session.commit()


async def test_a_question_that_comes_round_again_shows_the_earlier_answer(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)
    leader = await leader_row(bot, lise)
    await past_answer(bot, leader, 0, "Linje en\nLinje to\n\nLinje tre\nLinje fire", ANSWERED)
    await past_answer(bot, leader, 1, None, ANSWERED + dt.timedelta(weeks=1))  # skipped
    async with bot.rt.sessions() as session:  # the programme is done once: it starts again
        await session.exec(
            update(Leader).where(col(Leader.id) == leader.id).values(position=0, cycle=1)
        )
        await session.commit()

    [question] = await question_arrives(bot, lise)
    programme, _role = bot.rt.content.roles[leader.role_id]
    _theme, first = programme.questions_for(leader.role_id)[0]
    assert "vi begynner på nytt fra det første" in question
    assert (
        f"{first.text}" in question
        and "Sist du svarte på dette spørsmålet (4. november 2025):\n"
        "Linje en\nLinje to\nLinje tre …\nHva har endret seg siden da?"
        in question
    )
    assert question.index(first.text) < question.index("Sist du svarte")
    [saved] = await lise.says("Nå gjør vi det annerledes.")
    assert saved.text.startswith("Takk, svaret ditt er lagret.")

    # The next question was skipped the first time round: nothing to look back on. (A week
    # later: this week's question moves to a past week and its sent message is purged, so this
    # week is free again.)
    async with bot.rt.sessions() as session:
        await session.exec(update(Prompt).where(col(Prompt.cycle) == 1).values(week="2025-W52"))
        await session.exec(delete(OutboxMessage))
        await session.commit()
    [second] = await question_arrives(bot, lise)
    assert "Sist du svarte" not in second and "Hva har endret seg" not in second


async def test_the_earlier_answer_is_read_in_the_leaders_language_when_sent(
    bot: RunningBot, people: People
) -> None:
    kari = await enrolled(bot, people, "Kari", language="Nynorsk")
    leader = await leader_row(bot, kari)
    await past_answer(bot, leader, 0, "Vi lærte mykje.", ANSWERED)
    async with bot.rt.sessions() as session:
        await session.exec(update(Leader).values(position=0, cycle=1))
        await session.commit()
    [question] = await question_arrives(bot, kari)
    assert "Sist du svara på dette spørsmålet (4. november 2025):\nVi lærte mykje." in question
    assert "Kva har endra seg sidan då?" in question


async def test_answers_can_be_narrowed_to_one_question(bot: RunningBot, people: People) -> None:
    lise = await enrolled(bot, people)
    leader = await leader_row(bot, lise)
    programme, _role = bot.rt.content.roles[leader.role_id]
    order = programme.questions_for(leader.role_id)
    await past_answer(bot, leader, 0, "Første runde", ANSWERED)
    await past_answer(bot, leader, 1, "Om spørsmål to", ANSWERED + dt.timedelta(weeks=1))
    await past_answer(bot, leader, 0, "Andre runde", ANSWERED + dt.timedelta(weeks=5), cycle=1)

    [page] = await lise.says("/answers")
    assert page.text.startswith("Svarene dine 1–3 av 3, nyeste først")
    assert page.button_texts == ["Etter spørsmål"]

    [which] = await lise.presses("Etter spørsmål")
    assert which.edited and which.text == "Hvilket spørsmål? Svarene dine på det, nyeste først."
    labels = which.button_texts
    assert len(labels) == 3 and labels[-1] == "Alle svar"
    assert order[0][1].text.startswith(labels[0].removesuffix(" …"))  # newest answered first
    assert order[1][1].text.startswith(labels[1].removesuffix(" …"))

    [one] = await lise.presses(labels[0])
    assert one.text.startswith("Svarene dine 1–2 av 2 på dette spørsmålet, nyeste først")
    assert order[0][1].text in one.text
    assert one.text.index("Andre runde") < one.text.index("Første runde")
    assert "Om spørsmål to" not in one.text
    assert one.button_texts == ["Alle svar"]

    [back] = await lise.presses("Alle svar")
    assert back.text.startswith("Svarene dine 1–3 av 3, nyeste først")
