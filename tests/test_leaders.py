"""The leader's side, as dialogues over the local Bot API: joining with an invite, the weekly
question, answering (and the identity-number guard), skipping, reminders, settings, pause,
reading and exporting one's answers, and leaving.

Time passing is simulated by moving the leader's next due time into the past.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import func, update
from sqlmodel import select

from bot.app import RunningBot, build_runtime, running_bot
from bot.config import Settings
from bot.i18n import format_when
from bot.models import Invite, Leader, Person, Prompt, utcnow
from bot.services import invites, leaders, weekly
from devkit.localapi import LocalBotApi, LocalUser
from tests.conftest import People

OSLO = ZoneInfo("Europe/Oslo")
FNR = "01019000083"  # passes the fødselsnummer check digits


async def invite_link(bot: RunningBot, role: str = "unit-leader", **kwargs: object) -> str:
    created = await invites.create(bot.rt, "Helse Vest HF", role, **kwargs)  # type: ignore[arg-type]
    match = re.fullmatch(r"https://t\.me/\w+\?start=(i_[A-Za-z0-9_-]+)", created.deep_link)
    assert match, created.deep_link
    return match.group(1)


async def enrolled(
    bot: RunningBot, people: People, name: str = "Lise", language: str = "Bokmål"
) -> LocalUser:
    """A leader who has joined: Tuesday at 09:00."""
    leader = await people(name, language_code="nb")
    await leader.says(f"/start {await invite_link(bot)}")
    await leader.presses(language)
    await leader.presses("Tirsdag" if language == "Bokmål" else "Tysdag")
    await leader.presses("09:00")
    return leader


async def leader_row(bot: RunningBot, user: LocalUser) -> Leader:
    async with bot.rt.sessions() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_user_id == user.user_id))
        ).one()
        return (await session.exec(select(Leader).where(Leader.person_id == person.id))).one()


async def question_arrives(bot: RunningBot, user: LocalUser) -> list[str]:
    """Let the week pass: the leader's question is due now and the tick's work is done."""
    leader = await leader_row(bot, user)
    async with bot.rt.sessions() as session:
        await session.exec(
            update(Leader)
            .where(Leader.id == leader.id)  # type: ignore[arg-type]
            .values(next_due_at=utcnow() - dt.timedelta(minutes=1))
        )
        await session.commit()
    await weekly.send_due_prompts(bot.rt)
    assert bot.rt.sender is not None
    bot.rt.sender.wake()
    return [m.text for m in await user.replies(timeout=5)]


async def test_a_leader_joins_in_four_taps_and_is_told_when_the_first_question_comes(
    bot: RunningBot, people: People
) -> None:
    lise = await people("Lise", language_code="nb")

    welcome, language = await lise.says(f"/start {await invite_link(bot)}")
    assert welcome.text.startswith("Velkommen! Helse Vest HF har invitert deg til ukentlig")
    assert "som Leder i virksomheten" in welcome.text
    assert language.text == "Hvilket språk vil du ha?"
    assert language.button_texts == ["Bokmål", "Nynorsk"]

    replies = await lise.presses("Nynorsk")
    [day] = [m for m in replies if not m.edited]
    assert day.text == "Kva vekedag vil du få spørsmålet?"
    assert day.button_texts[:3] == ["Måndag", "Tysdag", "Onsdag"]

    replies = await lise.presses("Tysdag")
    [time] = [m for m in replies if not m.edited]
    assert time.text.startswith("Kva klokkeslett?")
    assert "09:00" in time.button_texts

    replies = await lise.presses("09:00")
    [done] = [m for m in replies if not m.edited]
    leader = await leader_row(bot, lise)
    assert leader.status == "active" and leader.weekday == 1 and leader.minute_of_day == 540
    assert leader.next_due_at is not None
    when = format_when(leader.next_due_at, "nn", OSLO)
    assert when.startswith("tysdag ") and when.endswith(" kl. 09:00")
    assert done.text.startswith(
        f"Ferdig! Du får eit spørsmål kvar tysdag kl. 09:00. Det første kjem {when}."
    )
    menu = dict(await lise.commands("nn"))
    assert menu["settings"] == "Dag, klokkeslett og språk for det vekentlege spørsmålet"
    assert "stop" in menu and "answers" in menu


async def test_a_typed_time_is_accepted_and_a_wrong_one_explained(
    bot: RunningBot, people: People
) -> None:
    ola = await people("Ola", language_code="nb")
    await ola.says(f"/start {await invite_link(bot)}")
    await ola.presses("Bokmål")
    await ola.presses("Fredag")

    [wrong] = await ola.says("halv ni")
    assert wrong.text.startswith("Jeg forsto ikke klokkeslettet. Skriv det som TT:MM")
    [done] = await ola.says("8.30")
    assert done.text.startswith("Ferdig! Du får et spørsmål hver fredag kl. 08:30.")
    assert (await leader_row(bot, ola)).minute_of_day == 8 * 60 + 30


async def test_opening_an_invite_again_shows_the_settings_and_never_enrols_twice(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)
    already, settings = await lise.says(f"/start {await invite_link(bot)}")
    assert already.text == "Du er allerede med i den ukentlige refleksjonen."
    assert settings.text.startswith("Ditt ukentlige spørsmål\nDag: tirsdag\nKlokkeslett: 09:00")
    async with bot.rt.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Leader))).one() == 1


async def test_expired_and_used_up_invites_are_refused_plainly(
    bot: RunningBot, people: People
) -> None:
    payload = await invite_link(bot, uses=1)
    first, second = await people("A"), await people("B")
    await first.says(f"/start {payload}")
    [used] = await second.says(f"/start {payload}")
    assert used.text.startswith("Denne invitasjonen er allerede brukt så mange ganger")

    old = await invite_link(bot)
    async with bot.rt.sessions() as session:
        await session.exec(update(Invite).values(expires_at=utcnow() - dt.timedelta(minutes=1)))
        await session.commit()
    [expired] = await (await people("C")).says(f"/start {old}")
    assert expired.text.startswith("Denne invitasjonen har gått ut.")


async def test_the_weekly_question_is_answered_shared_and_the_answer_edited(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)
    [question] = await question_arrives(bot, lise)
    programme, _role = bot.rt.content.roles["unit-leader"]
    theme, first = programme.questions_for("unit-leader")[0]
    assert question.startswith(theme.title)  # the theme's introduction comes first
    assert first.text in question  # word for word from the learning material
    [message] = [m for m in await lise.inbox() if m.text == question]
    assert message.button_texts == [
        "Svar",
        "Hopp over",
        "Minn meg på i morgen",
        "Noe som gikk bra?",
    ]
    [how] = await lise.presses("Svar")
    assert how.text.startswith("Skriv svaret ditt her som en melding.")

    [held] = await lise.says(f"Pasienten ({FNR}) ble skrevet ut for tidlig.")
    assert held.text.startswith("Dette er ikke lagret: det inneholder noe som ser ut som et")
    async with bot.rt.sessions() as session:
        [prompt] = (await session.exec(select(Prompt))).all()
    assert prompt.status == "sent" and prompt.answer_ciphertext is None

    [saved] = await lise.says("Vi må bli bedre på å lære av hendelser.")
    answer_id = lise.last_message_id
    assert saved.text.startswith("Takk, svaret ditt er lagret. Bare du kan lese det")
    assert saved.button_texts == ["Del med Helse Vest HF"]

    [ask] = await lise.presses("Del med Helse Vest HF")  # first told who would see what
    assert ask.edited and ask.text.endswith("Vil du dele dette svaret?")
    [shared] = await lise.presses("Ja, del det")
    assert shared.edited and shared.text.startswith("Delt med Helse Vest HF.")
    assert shared.button_texts == ["Slutt å dele"]

    [again] = await lise.says("Og et tillegg")
    assert again.text.startswith("Du har allerede svart på ukens spørsmål.")

    assert answer_id is not None
    [updated] = await lise.edits(answer_id, "Vi må lære mer av hendelser, sammen.")
    assert updated.text == "Svaret ditt er oppdatert."
    async with bot.rt.sessions() as session:
        [prompt] = (await session.exec(select(Prompt))).all()
    assert prompt.status == "answered" and prompt.shared
    assert leaders.answer_text(bot.rt, prompt) == "Vi må lære mer av hendelser, sammen."
    assert prompt.edited_at is not None

    [held_edit] = await lise.edits(answer_id, f"Gjelder {FNR[:6]} {FNR[6:]}")
    assert held_edit.text.startswith("Dette er ikke lagret")
    async with bot.rt.sessions() as session:
        [prompt] = (await session.exec(select(Prompt))).all()
    assert leaders.answer_text(bot.rt, prompt) == "Vi må lære mer av hendelser, sammen."


async def test_skip_with_a_reason_and_remind_me_tomorrow(bot: RunningBot, people: People) -> None:
    lise = await enrolled(bot, people)
    await question_arrives(bot, lise)

    pressed_at = utcnow()
    [later] = await lise.presses(callback_data=await button_data(lise, "r:later:"))
    # At the time she chose (Tuesdays at 09:00), the next day: not 24 hours on.
    assert later.text == "Greit, jeg minner deg på det i morgen kl. 09:00."
    async with bot.rt.sessions() as session:
        [prompt] = (await session.exec(select(Prompt))).all()
    assert prompt.reminder_due_at is not None
    reminder = prompt.reminder_due_at.astimezone(OSLO)
    assert (reminder.hour, reminder.minute) == (9, 0)
    assert reminder.date() == pressed_at.astimezone(OSLO).date() + dt.timedelta(days=1)

    [why] = await lise.presses(callback_data=await button_data(lise, "r:skip:"))
    assert why.text == "Hoppet over. Vil du si hvorfor? (Du trenger ikke.)"
    assert why.button_texts == ["Ikke aktuelt nå", "Travelt", "Permisjon"]
    await lise.presses("Travelt")
    async with bot.rt.sessions() as session:
        [prompt] = (await session.exec(select(Prompt))).all()
    assert (prompt.status, prompt.skip_reason) == ("skipped", "busy")


async def button_data(user: LocalUser, prefix: str) -> str:
    for message in reversed(await user.inbox()):
        for row in message.buttons:
            for button in row:
                if button.callback_data and button.callback_data.startswith(prefix):
                    return button.callback_data
    raise AssertionError(f"no button {prefix}… in the chat")


async def test_settings_change_the_day_and_time_of_the_next_question(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)
    [settings] = await lise.says("/settings")
    assert settings.button_texts == ["Endre dag", "Endre klokkeslett", "Endre språk"]

    await lise.presses("Endre dag")
    replies = await lise.presses("Torsdag")
    [saved] = [m for m in replies if not m.edited]
    leader = await leader_row(bot, lise)
    assert leader.weekday == 3 and leader.next_due_at is not None
    assert leader.next_due_at.astimezone(OSLO).weekday() == 3
    assert saved.text.startswith("Lagret. Neste spørsmål kommer torsdag ")

    await lise.presses("Endre klokkeslett")
    [saved] = await lise.says("14:15")
    leader = await leader_row(bot, lise)
    assert leader.next_due_at is not None
    assert leader.next_due_at.astimezone(OSLO).strftime("%H:%M") == "14:15"
    assert saved.text.endswith("kl. 14:15.")


async def test_pause_for_weeks_or_until_resume(bot: RunningBot, people: People) -> None:
    lise = await enrolled(bot, people)
    [how_long] = await lise.says("/pause")
    assert how_long.button_texts == ["1 uke", "2 uker", "4 uker", "Til jeg skriver /resume"]

    [paused] = await lise.presses("2 uker")
    assert "På pause til " in paused.text
    leader = await leader_row(bot, lise)
    assert leader.status == "paused" and leader.paused_until is not None
    # While paused, no question comes even when the day comes.
    async with bot.rt.sessions() as session:
        await session.exec(update(Leader).values(next_due_at=utcnow() - dt.timedelta(minutes=1)))
        await session.commit()
    await weekly.send_due_prompts(bot.rt)
    await lise.silence(0.5)

    [back] = await lise.says("/resume")
    assert back.text.startswith("Velkommen tilbake! Neste spørsmål kommer tirsdag")
    assert (await leader_row(bot, lise)).status == "active"

    await lise.says("/pause")
    [until] = await lise.presses("Til jeg skriver /resume")
    assert until.text.endswith("→ På pause til du skriver /resume.")


async def test_answers_are_read_back_newest_first_and_exported(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)
    [none] = await lise.says("/answers")
    assert none.text == "Du har ingen lagrede svar ennå."
    # Seven weeks of answers (one question per ISO week, so they are written as past weeks).
    leader = await leader_row(bot, lise)
    programme, _role = bot.rt.content.roles[leader.role_id]
    order = programme.questions_for(leader.role_id)
    async with bot.rt.sessions() as session:
        for n in range(7):
            due = utcnow() - dt.timedelta(weeks=7 - n)
            theme, question = order[n % len(order)]
            session.add(
                Prompt(
                    leader_id=leader.id,  # type: ignore[arg-type]
                    programme_id=programme.id,
                    theme_id=theme.id,
                    question_id=question.id,
                    role_id=leader.role_id,
                    position=n,
                    week=weekly.iso_week(due, OSLO),
                    due_at=due,
                    sent_at=due,
                    status="answered",
                    answer_ciphertext=bot.rt.cipher(leaders.ANSWER).encrypt(f"Svar nummer {n}"),
                    answered_at=due,
                )
            )
        await session.commit()

    [page] = await lise.says("/answers")
    assert page.text.startswith("Svarene dine 1–5 av 7, nyeste først")
    assert page.text.index("Svar nummer 6") < page.text.index("Svar nummer 2")
    assert "Svar nummer 1" not in page.text
    [older] = await lise.presses("Eldre")
    assert older.edited and "Svar nummer 0" in older.text and "Svar nummer 6" not in older.text

    [document] = await lise.says("/export")
    assert document.caption == "Svarene dine, 7 i alt."
    markdown = (await lise.file(document.message_id)).decode()
    assert markdown.startswith("# Mine svar i den ukentlige refleksjonen")
    assert all(f"Svar nummer {n}" in markdown for n in range(7))


async def test_leaving_keeps_or_deletes_the_answers(bot: RunningBot, people: People) -> None:
    keeper = await enrolled(bot, people, "Kari")
    await question_arrives(bot, keeper)
    await keeper.says("Et svar jeg vil beholde")
    await keeper.says("/stop")
    [left] = await keeper.presses("Avslutt, behold svarene mine")
    assert left.text.startswith("Du har avsluttet den ukentlige refleksjonen. Svarene dine er")
    [page] = await keeper.says("/answers")
    assert "Et svar jeg vil beholde" in page.text
    assert "settings" not in dict(await keeper.commands("nb"))

    deleter = await enrolled(bot, people, "Per")
    await question_arrives(bot, deleter)
    await deleter.says("Et svar som skal bort")
    await deleter.says("/stop")
    [gone] = await deleter.presses("Avslutt og slett svarene mine")
    assert gone.text == "Du har avsluttet den ukentlige refleksjonen, og svarene dine er slettet."
    async with bot.rt.sessions() as session:
        texts = [leaders.answer_text(bot.rt, p) for p in (await session.exec(select(Prompt))).all()]
    assert texts == ["Et svar jeg vil beholde"]


async def test_leader_commands_are_explained_to_people_who_are_not_leaders(
    people: People,
) -> None:
    kari = await people("Kari")
    [answer] = await kari.says("/pause")
    assert answer.text.startswith("Dette er for ledere i den ukentlige refleksjonen.")
    [plain] = await kari.says("Hei, hvordan har dere det?")
    assert plain.text.startswith("Jeg kan ikke lese meldinger her")


async def test_a_restart_sends_no_second_question_the_same_week(
    bot: RunningBot, people: People, settings: Settings, local_api: LocalBotApi
) -> None:
    lise = await enrolled(bot, people)
    await question_arrives(bot, lise)
    # The deploy: the bot stops, and its replacement starts on the same database. Even if the
    # schedule says the question is due again (say the leader moved their day), the week has one.
    await bot.app.updater.stop()  # type: ignore[union-attr]
    async with bot.rt.sessions() as session:
        await session.exec(update(Leader).values(next_due_at=utcnow() - dt.timedelta(minutes=1)))
        await session.commit()
    rt = build_runtime(settings)
    try:
        async with running_bot(rt, local_api.token, local_api.base_url, shutdown_deadline=1):
            await asyncio.sleep(1.0)  # several ticks
            await lise.silence(0.5)
    finally:
        await rt.engine.dispose()
    async with bot.rt.sessions() as session:
        prompts = (await session.exec(select(Prompt))).all()
    assert len(prompts) == 1
    assert len([m for m in await lise.inbox() if m.button_texts[:1] == ["Svar"]]) == 1


async def test_before_sharing_a_leader_is_told_truthfully_who_will_see_what(
    bot: RunningBot, people: People
) -> None:
    from bot.models import LeaderStatus, Organisation
    from bot.services import reports
    from tests.conftest import active_leaders

    async def answer(user: LocalUser, text: str) -> None:
        await question_arrives(bot, user)
        [saved] = await user.says(text)
        assert saved.button_texts == ["Del med Helse Vest HF"]

    # Alone in her role, and no other small role to hide among: held back.
    lise = await enrolled(bot, people)
    await answer(lise, "Vi må bli bedre på å lære av hendelser.")
    [ask] = await lise.presses("Del med Helse Vest HF")
    assert ask.text.startswith("Rollen din har færre enn 5 ledere i Helse Vest HF, og det er for")
    assert "svaret ditt holdes tilbake og vises ikke til noen før minst 5 ledere" in ask.text
    assert "ta bort alt som kan vise hvem du er" in ask.text
    assert ask.button_texts == ["Ja, del det", "Nei"]
    [kept] = await lise.presses("Nei")
    assert kept.text == "Ikke delt. Bare du kan lese det."
    assert kept.button_texts == ["Del med Helse Vest HF"]
    async with bot.rt.sessions() as session:
        [prompt] = (await session.exec(select(Prompt))).all()
    assert not prompt.shared

    await lise.presses("Del med Helse Vest HF")
    [shared] = await lise.presses("Ja, del det")
    assert shared.text.startswith("Delt med Helse Vest HF. Rollen din har færre enn 5 ledere")
    report = reports.as_text(await reports.participation(bot.rt, "Helse Vest HF"))
    assert "Vi må bli bedre" not in report  # as she was told

    # Four more unit leaders join: the role is large enough to be shown whole.
    async with bot.rt.sessions() as session:
        org = (await session.exec(select(Organisation))).one()
        made = await active_leaders(session, bot.rt, org, "unit-leader", 4, iter(range(9001, 9010)))
        assert all(leader.status == LeaderStatus.ACTIVE for leader in made)
        await session.commit()
    [ask] = await lise.presses("Slutt å dele")
    assert ask.text == "Ikke delt lenger. Bare du kan lese det."
    [ask] = await lise.presses("Del med Helse Vest HF")
    assert ask.text.startswith(
        "De som leser rapporten om deltakelsen i Helse Vest HF, ser svaret ditt med uke, rollen "
        "din (Leder i virksomheten), tema og spørsmål, aldri navnet ditt."
    )
    await lise.presses("Ja, del det")
    report = reports.as_text(await reports.participation(bot.rt, "Helse Vest HF"))
    assert "Leder i virksomheten" in report and "Vi må bli bedre" in report
