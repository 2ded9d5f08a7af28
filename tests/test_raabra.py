"""#Råbra as dialogues over the local Bot API: a leader tells a story (theme, sharing, the
fødselsnummer guard, edits), the button under the weekly question, staff invited with an invite
of kind raabra, one's own stories (/raabra mine: open, change, delete), the monthly digest
arriving in a leader's chat, and what deleting one's data does to stories.

Time passing is simulated by moving rows' times, as in test_leaders.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import update
from sqlmodel import col, select

from bot.app import RunningBot
from bot.models import (
    Leader,
    OutboxMessage,
    Person,
    Prompt,
    RaabraMember,
    RaabraStory,
    utcnow,
)
from bot.services import invites, raabra
from devkit.localapi import LocalUser
from tests.conftest import People
from tests.test_leaders import FNR, enrolled, leader_row, question_arrives

ORG = "Helse Vest HF"


async def stories(bot: RunningBot) -> list[RaabraStory]:
    async with bot.rt.sessions() as session:
        return list(await session.exec(select(RaabraStory).order_by(col(RaabraStory.id))))


async def staff_link(bot: RunningBot, uses: int = 5) -> str:
    created = await invites.create(bot.rt, ORG, None, kind="raabra", uses=uses)
    match = re.fullmatch(r"https://t\.me/\w+\?start=(s_[A-Za-z0-9_-]+)", created.deep_link)
    assert match, created.deep_link
    return match.group(1)


async def tell(user: LocalUser, text: str, theme: str, share: str) -> str:
    """The whole dialogue: /raabra, the story, a theme, who may read it; the last reply's text."""
    await user.says("/raabra")
    [saved] = await user.says(text)
    assert saved.text.startswith("Lagret. Foreløpig kan bare du lese den.")
    replies = await user.presses(theme)
    [question] = [m for m in replies if not m.edited]
    assert question.text.startswith("Hvem får lese historien din?")
    [done] = await user.presses(share)
    return done.text


async def test_a_leader_tells_a_story_with_a_theme_and_shares_it_with_her_name(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)
    assert ("raabra", "Fortell om noe som gikk bra (#Råbra)") in await lise.commands("nb")

    [ask] = await lise.says("/raabra")
    assert ask.text.startswith("#Råbra\n#Råbra er et avvikssystem med positivt fortegn")
    assert "• Hvorfor gikk det bra?" in ask.text  # the guiding questions, from content
    assert ask.text.endswith(
        "Ikke skriv navn på pasienter eller noe annet som kan vise hvem de er."
    )
    assert ask.button_texts == ["Ikke nå"]

    [held] = await lise.says(f"Sykepleieren fulgte opp pasient {FNR} godt.")
    assert held.text.startswith("Dette er ikke lagret: det inneholder noe som ser ut som et")
    assert [s.text_ciphertext for s in await stories(bot)] == [None]  # still waiting, empty

    [saved] = await lise.says("Nattevakten ringte pårørende før de rakk å bekymre seg.")
    story_message = lise.last_message_id
    assert saved.text == (
        "Lagret. Foreløpig kan bare du lese den. Hvilket tema passer best? Du trenger ikke "
        "velge noe."
    )
    assert saved.button_texts[:2] == ["Godt samarbeid", "En kollega som stilte opp"]
    assert saved.button_texts[-1] == "Uten tema"
    [story] = await stories(bot)
    assert story.text_ciphertext is not None and "Nattevakten" not in story.text_ciphertext

    # Until it is shared, editing the message edits the story.
    assert story_message is not None
    [updated] = await lise.edits(story_message, "Nattevakten ringte pårørende i tide.")
    assert updated.text == "Historien din er oppdatert."
    [held_edit] = await lise.edits(story_message, f"Gjelder {FNR}")
    assert held_edit.text.startswith("Denne endringen er ikke lagret")
    [story] = await stories(bot)
    assert raabra.story_text(bot.rt, story) == "Nattevakten ringte pårørende i tide."

    replies = await lise.presses("God kommunikasjon")
    [chosen] = [m for m in replies if m.edited]
    assert chosen.text.endswith("→ God kommunikasjon") and chosen.button_texts == []
    [question] = [m for m in replies if not m.edited]
    assert (
        "Bare meg: den blir her, og /raabra mine viser den. Ingen andre ser den." in question.text
    )
    assert (
        "Anonymt: lederne i Helse Vest HF får den i den månedlige #Råbra-oppsummeringen sin"
        in question.text
    )
    assert "Den vises bare hvis minst 5 personer i Helse Vest HF forteller anonymt" in question.text
    assert "Med navnet mitt: det samme, signert «Lise» (navnet ditt i Telegram)" in question.text
    assert question.button_texts == ["Bare meg", "Anonymt", "Med navnet mitt"]

    [shared] = await lise.presses("Med navnet mitt")
    assert shared.edited and shared.text.startswith("Delt med Helse Vest HF, signert «Lise».")
    assert "Takk for at du forteller!" in shared.text
    [story] = await stories(bot)
    assert (story.visibility, story.theme_id, story.step) == ("named", "kommunikasjon", "done")
    assert raabra.story_name(bot.rt, story) == "Lise" and story.shared_at is not None

    # Shared: an edit no longer changes what leaders read.
    [kept] = await lise.edits(story_message, "Noe helt annet")
    assert kept.text.startswith("Denne historien er allerede delt")
    [story] = await stories(bot)
    assert raabra.story_text(bot.rt, story) == "Nattevakten ringte pårørende i tide."


async def test_the_button_under_the_weekly_question_tells_a_story_without_answering_it(
    bot: RunningBot, people: People
) -> None:
    kari = await enrolled(bot, people, "Kari", language="Nynorsk")
    await question_arrives(bot, kari)
    [ask] = await kari.presses("Noko som gjekk bra?")
    assert ask.text.startswith("#Råbra\n#Råbra er eit avvikssystem med positivt forteikn")
    assert "• Kva skjedde?" in ask.text

    [saved] = await kari.says("Legevakta og heimetenesta fann ei løysing saman.")
    assert saved.text.startswith("Lagra. Førebels kan berre du lese ho. Kva tema passar best?")
    async with bot.rt.sessions() as session:
        [prompt] = (await session.exec(select(Prompt))).all()
    assert prompt.status == "sent" and prompt.answer_ciphertext is None  # not taken as an answer

    await kari.presses("Utan tema")
    [private] = await kari.presses("Berre meg")
    assert private.text.startswith("Halde privat: berre du kan lese ho.")

    [answer] = await kari.says("Eit svar på spørsmålet.")  # the next text is the answer again
    assert answer.text.startswith("Takk, svaret ditt er lagra.")
    [story] = await stories(bot)
    assert (story.visibility, story.theme_id, story.shared_at) == ("private", None, None)


async def test_not_now_and_people_who_may_not_tell(bot: RunningBot, people: People) -> None:
    stranger = await people("Per")
    [no] = await stranger.says("/raabra")
    assert no.text.startswith("#Råbra er for ledere i den ukentlige refleksjonen, og for ansatte")
    assert await stories(bot) == []

    lise = await enrolled(bot, people)
    await lise.says("/raabra")
    [cancelled] = await lise.presses("Ikke nå")
    assert cancelled.edited and cancelled.text.endswith("Greit, ingenting er lagret.")
    assert await stories(bot) == []
    [plain] = await lise.says("Dette er ikke en historie")
    assert plain.text.startswith("Det er ikke noe åpent spørsmål nå.")  # the leader's handler


async def test_staff_join_with_a_raabra_invite_and_tell_anonymously(
    bot: RunningBot, people: People
) -> None:
    payload = await staff_link(bot, uses=1)
    ola = await people("Ola")
    [welcome] = await ola.says(f"/start {payload}")
    assert welcome.text.startswith("Velkommen! Helse Vest HF har invitert deg til #Råbra.")
    assert welcome.text.endswith("Du får ingen andre meldinger fra denne boten.")
    menu = dict(await ola.commands("nb"))
    assert "raabra" in menu and "settings" not in menu
    [again] = await ola.says(f"/start {payload}")
    assert again.text == "Du kan allerede fortelle #Råbra-historier til Helse Vest HF: /raabra."
    [used] = await (await people("Siri")).says(f"/start {payload}")
    assert used.text.startswith("Denne invitasjonen er allerede brukt så mange ganger")
    async with bot.rt.sessions() as session:
        members = (await session.exec(select(RaabraMember))).all()
        leaders = (await session.exec(select(Leader))).all()
    assert len(members) == 1 and leaders == []  # staff get no weekly questions

    done = await tell(
        ola, "Kollegaen min tok over en tung vakt uten å bli spurt.", "Uten tema", "Anonymt"
    )
    assert done.startswith("Delt anonymt med Helse Vest HF. Den kommer i ledernes #Råbra-")
    assert "hvis minst 5 personer forteller anonymt den måneden" in done
    [story] = await stories(bot)
    assert (story.visibility, story.name_ciphertext) == ("anonymous", None)

    [plain] = await ola.says("Hei")  # no story waiting: the common answer
    assert plain.text.startswith("Jeg kan ikke lese meldinger her")


async def test_own_stories_are_listed_opened_changed_and_deleted(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)
    [none] = await lise.says("/raabra mine")
    assert none.text == "Du har ingen #Råbra-historier ennå. Med /raabra forteller du en."
    await tell(lise, "Første historie om samarbeid.", "Godt samarbeid", "Bare meg")
    await tell(lise, "Andre historie, delt anonymt.", "Uten tema", "Anonymt")

    [page] = await lise.says("/raabra mine")
    assert page.text.startswith("#Råbra-historiene dine 1–2 av 2, nyeste først")
    assert page.text.index("Andre historie") < page.text.index("Første historie")
    assert "Godt samarbeid · bare du" in page.text and "Uten tema · delt anonymt" in page.text
    assert page.button_texts == ["1", "2"]

    [opened] = await lise.presses("2")
    assert "Første historie om samarbeid." in opened.text
    assert "Hvem får lese historien din?" in opened.text
    assert opened.button_texts == [
        "Bare meg",
        "Anonymt",
        "Med navnet mitt",
        "Slett denne historien",
    ]
    [shared] = await lise.presses("Med navnet mitt")
    assert shared.text.startswith("Delt med Helse Vest HF, signert «Lise».")

    await lise.says("/raabra mine")
    await lise.presses("1")
    [ask] = await lise.presses("Slett denne historien")
    assert ask.text.startswith("Slette denne historien? Det kan ikke angres.")
    [deleted] = await lise.presses("Ja, slett")
    assert deleted.text == "Historien er slettet."
    [left] = await stories(bot)
    assert raabra.story_text(bot.rt, left) == "Første historie om samarbeid."
    assert left.visibility == "named"


async def test_deleting_ones_data_deletes_private_and_named_stories_and_unlinks_anonymous_ones(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)
    await tell(lise, "Privat historie.", "Uten tema", "Bare meg")
    await tell(lise, "Historie med navn.", "Uten tema", "Med navnet mitt")
    await tell(lise, "Anonym historie.", "Uten tema", "Anonymt")
    [privacy] = await lise.says("/privacy")
    assert "• Hvis du forteller #Råbra-historier: hver historie, temaet" in privacy.text
    assert "#Råbra-historier du har fortalt anonymt, blir værende hos virksomheten" in privacy.text
    await lise.presses("Slett dataene mine")
    await lise.presses("Ja, slett")

    [left] = await stories(bot)
    assert raabra.story_text(bot.rt, left) == "Anonym historie."
    assert (left.visibility, left.person_id, left.name_ciphertext) == ("anonymous", None, None)
    async with bot.rt.sessions() as session:
        assert (await session.exec(select(Person))).all() == []


async def test_the_monthly_digest_arrives_in_a_leaders_chat_with_what_may_be_shown(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)  # Tuesdays at 09:00
    await tell(lise, "Vi fikk en ny kollega godt i gang.", "Godt samarbeid", "Med navnet mitt")
    await tell(lise, "Bare for meg.", "Uten tema", "Bare meg")
    await tell(lise, "En anonym historie.", "Uten tema", "Anonymt")  # one person: held back

    # The month turns: the first Tuesday of next month at 09:00 has come.
    zone = bot.rt.settings.zone
    now = utcnow()
    first = raabra.add_months(now.astimezone(zone).date().replace(day=1), 1)
    leader = await leader_row(bot, lise)
    due = raabra.digest_due(first, leader, zone)
    assert due.astimezone(zone).weekday() == 1 and due.astimezone(zone).day <= 7
    assert await raabra.send_due_digests(bot.rt, due - dt.timedelta(minutes=1)) == 0  # not yet
    assert await raabra.send_due_digests(bot.rt, due + dt.timedelta(minutes=1)) == 1
    assert await raabra.send_due_digests(bot.rt, due + dt.timedelta(hours=1)) == 0  # once
    async with bot.rt.sessions() as session:
        await session.exec(
            update(OutboxMessage).values(
                due_at=utcnow(), expires_at=utcnow() + dt.timedelta(hours=1)
            )
        )
        await session.commit()
    assert bot.rt.sender is not None
    bot.rt.sender.wake()
    [digest] = await lise.replies(timeout=5)
    month = raabra.month_of(now, zone)
    assert digest.text.startswith("#Råbra: dette gikk bra i Helse Vest HF, ")
    assert digest.text.splitlines()[0].endswith(str(raabra.parse_month(month).year))
    assert "Delte historier: 1\n• Godt samarbeid: 1" in digest.text
    assert (
        "Fortalt med navn\n\nGodt samarbeid — Lise\nVi fikk en ny kollega godt i gang."
        in digest.text
    )
    assert "Bare for meg" not in digest.text and "En anonym historie" not in digest.text
    assert digest.text.endswith(
        "Historier som er fortalt anonymt, vises bare en måned der minst 5 personer i Helse Vest "
        "HF forteller anonymt; ellers blir de verken vist eller talt, så ingen kan kjennes igjen. "
        "Private historier vises ikke til noen."
    )
