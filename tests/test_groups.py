"""Leader groups, as dialogues over the local Bot API: linking a group with the CLI's
``startgroup`` link, the week's question posted at the group's time once a week, the bot
removed (the link dropped) and the group becoming a supergroup (the link kept), the bot staying
silent (and storing nothing) when members talk, and a leader sharing an answer with a preview.

Time passing is simulated by moving the group's next due time into the past, and by calling
the tick's own function with a ``now``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from bot.app import RunningBot
from bot.messages import Message
from bot.models import (
    GroupLink,
    GroupPost,
    OutboxMessage,
    TeamGroup,
    utcnow,
)
from bot.renderers import Renderers
from bot.services import groups
from devkit.localapi import LocalBotApi, LocalGroup
from tests.conftest import People, settled
from tests.test_leaders import enrolled, question_arrives

OSLO = ZoneInfo("Europe/Oslo")
ORG = "Helse Vest HF"
GROUP_ID = -4001
CHATTER = "Hei alle, jeg syns pasienten på rom 12 var tydelig dårligere i går"


async def group_link(bot: RunningBot, **kwargs: Any) -> str:
    """A link as `python -m bot group link` prints it; the payload the group gets."""
    if "role_id" not in kwargs:
        kwargs.setdefault("programme_id", "systemperspektiv")
    created = await groups.create_link(bot.rt, ORG, **kwargs)
    match = re.fullmatch(r"https://t\.me/\w+\?startgroup=(g_[A-Za-z0-9_-]+)", created.deep_link)
    assert match, created.deep_link
    return match.group(1)


@pytest.fixture
async def group(bot: RunningBot, local_api: LocalBotApi) -> AsyncIterator[LocalGroup]:
    """A Telegram group where Per (7001) can add the bot; the bot is not in it yet."""
    async with LocalGroup(
        local_api.url,
        GROUP_ID,
        "Ledergruppa Medisinsk klinikk",
        7001,
        member_name="Per",
        settle=settled(bot),
    ) as made:
        yield made


async def linked(bot: RunningBot, group: LocalGroup, **kwargs: Any) -> TeamGroup:
    """The bot added to the group with a fresh group link: the group's row."""
    await group.adds_bot(await group_link(bot, **kwargs))
    row = await groups.group_of_chat(bot.rt, group.chat_id)
    assert row is not None
    return row


async def week_passes(bot: RunningBot, row: TeamGroup) -> dict[str, int]:
    """The group's time has come: the tick's own function, then the sender."""
    async with bot.rt.sessions() as session:
        await session.exec(
            update(TeamGroup)
            .where(col(TeamGroup.id) == row.id)
            .values(next_due_at=utcnow() - dt.timedelta(minutes=1))
        )
        await session.commit()
    counts = await groups.send_due_group_questions(bot.rt)
    assert bot.rt.sender is not None
    bot.rt.sender.wake()
    return counts


async def test_a_group_linked_with_the_cli_link_gets_the_weeks_question_once_a_week(
    bot: RunningBot, group: LocalGroup
) -> None:
    payload = await group_link(bot, role_id="unit-leader", weekday=1, minute_of_day=8 * 60 + 30)

    [linked] = await group.adds_bot(payload)
    assert linked.text.startswith("Ferdig: gruppa er koblet til.")
    assert "Denne gruppa er ledergruppa til Helse Vest HF for Leder i virksomheten." in linked.text
    assert "Hver tirsdag kl. 08:30 legger jeg ut ukens spørsmål" in linked.text
    assert "Jeg leser ikke og tar ikke vare på det dere skriver her" in linked.text

    row = await groups.group_of_chat(bot.rt, group.chat_id)
    assert row is not None and row.title == "Ledergruppa Medisinsk klinikk"
    assert row.next_due_at is not None
    local = row.next_due_at.astimezone(OSLO)
    assert (local.weekday(), local.hour, local.minute) == (1, 8, 30)

    first_due = row.next_due_at
    assert await week_passes(bot, row) == {"sent": 1, "missed": 0}
    [question] = await group.replies()
    assert question.text.startswith("Ukens spørsmål til diskusjon\n\nLedelse av gjennomganger")
    assert "Hva gjør jeg for å støtte leder av gjennomgangen" in question.text
    assert question.buttons == []

    # The tick again, or a second process whose claim raced ours for the same week: nothing.
    assert await groups.send_due_group_questions(bot.rt) == {"sent": 0, "missed": 0}
    await week_passes(bot, row)  # due "again" within the same week
    await group.silence()
    async with bot.rt.sessions() as session:
        posts = list(await session.exec(select(GroupPost)))
        queued = list(await session.exec(select(OutboxMessage)))
    assert len(posts) == 1 and len(queued) == 1
    assert queued[0].kind == "group_question" and queued[0].status == "sent"

    # At the group's time a week on, the next question is queued for it.
    row = await groups.group_of_chat(bot.rt, group.chat_id)
    assert row is not None and row.next_due_at is not None and row.next_due_at > utcnow()
    local = row.next_due_at.astimezone(OSLO)
    assert (local.weekday(), local.hour, local.minute) == (1, 8, 30)
    assert first_due is not None
    at = row.next_due_at + dt.timedelta(minutes=1)
    assert await groups.send_due_group_questions(bot.rt, at) == {"sent": 1, "missed": 0}
    async with bot.rt.sessions() as session:
        [next_post] = (
            await session.exec(select(GroupPost).where(GroupPost.id != posts[0].id))
        ).all()
        [next_row] = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.status == "pending"))
        ).all()
    assert next_post.week != posts[0].week and next_row.due_at == at
    assert next_row.dedupe_key == f"group:{row.id}:{next_post.week}"
    rendered = await Renderers(bot.rt)([next_row])
    message = rendered[next_row.id or 0]
    assert isinstance(message, Message)
    assert "Hvordan kommuniserer jeg viktigheten av dette arbeidet?" in message.text


async def test_a_link_works_once_and_not_after_it_expires(
    bot: RunningBot, group: LocalGroup, local_api: LocalBotApi
) -> None:
    payload = await group_link(bot)
    await group.adds_bot(payload)
    async with LocalGroup(
        local_api.url, -4002, "Ei anna gruppe", 7002, settle=settled(bot)
    ) as other:
        [used] = await other.adds_bot(payload)
        assert (
            used.text == "Denne lenken er allerede brukt. Be den som sendte den til deg, om en ny."
        )
        old = await group_link(bot, locale="nn")
        async with bot.rt.sessions() as session:
            await session.exec(
                update(GroupLink)
                .where(col(GroupLink.used_at).is_(None))
                .values(expires_at=utcnow() - dt.timedelta(minutes=1))
            )
            await session.commit()
        [expired] = await other.says(f"/start@{local_api.username} {old}")
        assert expired.text.startswith("Denne lenken har gått ut.")
        [nonsense] = await other.says(f"/start@{local_api.username} g_0000")
        assert nonsense.text.startswith("Denne lenken er ikke gyldig.")
    assert [g.group.chat_id for g in await groups.list_groups(bot.rt)] == [GROUP_ID]


async def test_removing_the_bot_unlinks_the_group_and_drops_what_was_queued(
    bot: RunningBot, group: LocalGroup
) -> None:
    row = await linked(bot, group)
    assert bot.rt.sender is not None
    await bot.rt.sender.stop(deadline=1)  # hold the queue, so the week's question waits
    await week_passes(bot, row)
    async with bot.rt.sessions() as session:
        [waiting] = (await session.exec(select(OutboxMessage))).all()
    assert waiting.kind == "group_question" and waiting.status == "pending"

    await group.removes_bot()
    assert await groups.group_of_chat(bot.rt, GROUP_ID) is None
    async with bot.rt.sessions() as session:
        for table in (TeamGroup, GroupPost, OutboxMessage):
            assert (await session.exec(select(func.count()).select_from(table))).one() == 0
    # The link is spent: adding the bot again without a new one links nothing.
    assert await groups.send_due_group_questions(bot.rt) == {"sent": 0, "missed": 0}


async def test_a_group_that_becomes_a_supergroup_keeps_its_link(
    bot: RunningBot, group: LocalGroup
) -> None:
    row = await linked(bot, group, locale="nn")
    new_id = await group.becomes_supergroup()
    assert new_id != GROUP_ID
    moved = await groups.group_of_chat(bot.rt, new_id)
    assert moved is not None and moved.id == row.id
    assert await groups.group_of_chat(bot.rt, GROUP_ID) is None

    await week_passes(bot, moved)
    [question] = await group.replies()  # in the supergroup, in Nynorsk
    assert question.text.startswith("Spørsmålet for veka, til diskusjon")


async def test_the_bot_answers_only_its_own_commands_and_keeps_nothing_of_the_chatter(
    bot: RunningBot,
    group: LocalGroup,
    local_api: LocalBotApi,
    caplog: pytest.LogCaptureFixture,
    production_logging_at_debug: None,
) -> None:
    row = await linked(bot, group)
    await week_passes(bot, row)
    [question] = await group.replies()
    before = await everything(bot)

    with caplog.at_level(logging.DEBUG):
        # Privacy mode: Telegram does not even give the bot this one …
        await group.says(CHATTER, expect_silence=True)
        assert group.last_update_id is None
        # … but it does give it replies to its own message, and everything with privacy mode off.
        await group.says(CHATTER, reply_to=question.message_id, by=7003, expect_silence=True)
        assert group.last_update_id is not None
        local_api.group_privacy = False
        await group.says(CHATTER + " (uten personvernmodus)", expect_silence=True)
        await group.says("/help@en_annen_bot", expect_silence=True)  # another bot's command
        assert group.last_update_id is not None

    assert await everything(bot) == before  # no person, no row, nothing stored
    assert "rom 12" not in caplog.text and "7003" not in caplog.text

    [help_] = await group.says("/help")
    assert help_.text.startswith("Sikkerhetsnett i denne gruppa\n\nDenne gruppa er ledergruppa")
    [privacy] = await group.says(f"/privacy@{local_api.username}")
    assert "Ingenting av det dere skriver her, blir lest eller tatt vare på" in privacy.text
    assert await everything(bot) == before


async def everything(bot: RunningBot) -> dict[str, int]:
    """How many rows every table holds."""
    from bot.models import metadata

    counts = {}
    async with bot.rt.sessions() as session:
        for name, table in metadata.tables.items():
            counts[name] = (await session.exec(select(func.count()).select_from(table))).one()
    return counts


async def test_a_leader_shares_an_answer_in_the_group_after_seeing_exactly_what_is_posted(
    bot: RunningBot, group: LocalGroup, people: People
) -> None:
    await linked(bot, group, role_id="unit-leader")
    lise = await enrolled(bot, people)
    await question_arrives(bot, lise)
    answer = "Vi må bli bedre på å lære av hendelser, og da må lederne være til stede."
    [saved] = await lise.says(answer)
    assert saved.button_texts == ["Del med Helse Vest HF", "Del i ledergruppa"]

    [preview] = await lise.presses("Del i ledergruppa")
    assert not preview.edited  # the confirmation stays; the preview is a message of its own
    assert preview.text.startswith("Dette blir lagt ut i Ledergruppa Medisinsk klinikk:\n\n")
    assert "Lise deler svaret sitt på ukens spørsmål:" in preview.text
    assert answer in preview.text
    assert (
        "Alle i Telegram-gruppa Ledergruppa Medisinsk klinikk vil lese det: 2 medlemmer nå, "
        "meg medregnet. Ikke alle trenger å være ledere i refleksjonen." in preview.text
    )
    assert preview.text.endswith("Vil du legge det ut?")
    assert preview.button_texts == [
        "Legg det ut",
        "Vis bare fornavnet mitt",
        "Uten navnet mitt",
        "Avbryt",
    ]
    [anonymous] = await lise.presses("Uten navnet mitt")
    assert anonymous.edited and "En leder deler svaret sitt på ukens spørsmål:" in anonymous.text
    quoted = anonymous.html.split("<blockquote>")[1].split("</blockquote>")[0]

    [posted] = await lise.presses("Legg det ut")
    assert posted.text == "Delt: svaret ditt er lagt ut i Ledergruppa Medisinsk klinikk."
    [in_the_group] = await group.replies()
    assert in_the_group.html == quoted  # exactly what she saw
    async with bot.rt.sessions() as session:
        [row] = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "group_answer"))
        ).all()
    assert row.status == "sent" and row.secret is None  # the text is not kept

    # Once per group; the confirmation's button still works, and says so.
    [again] = await lise.presses("Del i ledergruppa")
    assert again.text == "Du har allerede delt dette svaret i Ledergruppa Medisinsk klinikk."


async def test_only_groups_of_the_leaders_organisation_and_role_are_offered(
    bot: RunningBot, group: LocalGroup, people: People
) -> None:
    await linked(bot, group, role_id="top-leader")  # another role's group
    lise = await enrolled(bot, people)  # unit-leader in Helse Vest HF
    await question_arrives(bot, lise)
    [saved] = await lise.says("Et svar")
    assert saved.button_texts == ["Del med Helse Vest HF"]
    # A made-up press for that group is refused, and nothing is queued.
    row = await groups.group_of_chat(bot.rt, GROUP_ID)
    prompt_id = int(str(saved.buttons[0][0].callback_data).rsplit(":", 1)[1])
    assert row is not None
    await lise.send_update(
        {
            "callback_query": {
                "id": "forged-1",
                "from": {"id": lise.user_id, "is_bot": False, "first_name": "Lise"},
                "chat_instance": "1",
                "data": f"g:post:{prompt_id}:{row.id}:full",
                "message": {
                    "message_id": saved.message_id,
                    "date": 0,
                    "chat": {"id": lise.user_id, "type": "private"},
                    "text": saved.text,
                },
            }
        }
    )
    [refused] = await lise.replies()
    assert refused.text == "Du kan ikke dele i den gruppa."
    async with bot.rt.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(GroupPost))).one() == 0


async def test_a_message_sent_just_after_the_upgrade_goes_to_the_supergroup(
    local_api: LocalBotApi,
) -> None:
    """Before the migration's update is handled, a send to the old id still arrives: Telegram
    names the new id in its refusal, and the adapter sends it there once."""
    from bot.app import telegram_bot
    from bot.budget import TelegramBudget
    from bot.channels.telegram import TelegramAdapter
    from bot.messages import Sent

    local_api.group_add_bot(7001, GROUP_ID, "Ledergruppa")
    new_id = local_api.group_migrate(7001, GROUP_ID)
    bot = telegram_bot(local_api.token, local_api.base_url, 4)
    async with bot:
        adapter = TelegramAdapter(bot, TelegramBudget(100, 100))
        row = OutboxMessage(
            id=1, channel="telegram", kind="group_question", chat_id=GROUP_ID, expires_at=utcnow()
        )
        outcome = await adapter.send(row, Message("Ukens spørsmål"))
    assert isinstance(outcome, Sent)
    assert [m.text for m in local_api.deliveries(new_id)] == ["Ukens spørsmål"]
    assert local_api.deliveries(GROUP_ID) == []
