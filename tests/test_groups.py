"""Leader groups, as dialogues over the local Bot API: linking a group with the CLI's
``startgroup`` link, the week's question posted at the group's time once a week, the bot
removed (the link dropped) and the group becoming a supergroup (the link kept), the bot staying
silent (and storing nothing) when members talk, and a leader sharing an answer with a preview.

Time passing is simulated by moving the group's next due time into the past, and by calling
the tick's own function with a ``now``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.app import RunningBot
from bot.messages import Message
from bot.models import (
    GroupPost,
    OutboxMessage,
    TeamGroup,
    utcnow,
)
from bot.renderers import Renderers
from bot.services import groups
from devkit.localapi import LocalBotApi, LocalGroup
from tests.conftest import settled

OSLO = ZoneInfo("Europe/Oslo")
ORG = "Helse Vest HF"
GROUP_ID = -4001
CHATTER = "Hei alle, jeg syns pasienten på rom 12 var tydelig dårligere i går"


async def group_link(bot: RunningBot, **kwargs: Any) -> str:
    """A link as `python -m bot group link` prints it; the payload the group gets."""
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
