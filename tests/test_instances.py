"""Several instances on one PostgreSQL database: two complete bots (each its own engine, outbox
sender, SMS sender, tick and web server, updates by webhook) share the work of one busy minute,
and every person gets each message exactly once.

Only on PostgreSQL (``make test-pg``): that is where several processes share a database; a
SQLite file belongs to one process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import col, select
from telegram import Bot

from bot import migrate
from bot.app import RunningBot, build_runtime, running_bot
from bot.config import Settings
from bot.models import (
    Channel,
    CheckinStatus,
    Dispatch,
    Leader,
    LeaderStatus,
    Organisation,
    OutboxMessage,
    OutboxStatus,
    Person,
    Prompt,
)
from bot.runtime import Runtime
from bot.services import dispatches, people
from devkit.localapi import LocalBotApi
from tests.conftest import ON_POSTGRES, free_port

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="several instances share a PostgreSQL database; set TEST_DATABASE_URL (make test-pg)",
)

LEADERS = 300
CHECKINS = 50
LEADER_CHATS = range(810_000, 810_000 + LEADERS)
CALLER_CHATS = range(820_000, 820_000 + CHECKINS)
SECRET = "instances-secret-" + "s" * 32


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Fast enough that a few seconds suffice, slow enough that neither instance can do it all.
    return settings.model_copy(update={"outbox_rate_per_second": 60.0, "outbox_tick_seconds": 0.2})


@pytest.fixture
async def instances(settings: Settings, local_api: LocalBotApi) -> AsyncIterator[list[RunningBot]]:
    """Two bots on the same database and the same Bot API, as two processes would run."""
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    # Every person has written to the bot once (so it may write to them); those old updates
    # are gone, as they would be long handled.
    for chat in [*LEADER_CHATS, *CALLER_CHATS]:
        local_api.user_message(chat, "/start", first_name="Kari", language_code="nb")
    async with Bot(local_api.token, base_url=local_api.base_url) as admin:
        await admin.delete_webhook(drop_pending_updates=True)
    assert local_api.pending_update_count == 0

    runtimes = [build_runtime(settings), build_runtime(settings)]
    async with AsyncExitStack() as stack:
        for rt in runtimes:
            stack.push_async_callback(rt.engine.dispose)
        running = []
        for rt in runtimes:
            # Webhook mode, as behind a load balancer: no two long polls taking turns with 409s.
            port = free_port()
            running.append(
                await stack.enter_async_context(
                    running_bot(
                        rt,
                        local_api.token,
                        local_api.base_url,
                        web_host="127.0.0.1",
                        web_port=port,
                        shutdown_deadline=5,
                        webhook_url=f"http://127.0.0.1:{port}/telegram",
                        webhook_secret=SECRET,
                    )
                )
            )
        yield running


async def seed_leaders(rt: Runtime, now: dt.datetime) -> None:
    """Active leaders whose weekly question was due a minute ago, as enrolment leaves them."""
    pairs = [
        (programme.id, role.id)
        for programme in rt.content.programmes.values()
        for role in programme.roles
        if programme.questions_for(role.id)
    ]
    due = (now - dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    local = due.astimezone(rt.settings.zone)
    async with rt.sessions() as session:
        org = Organisation(name="Legevakten i Bergen")
        persons = [
            Person(telegram_user_id=chat, locale="nn" if chat % 3 else "nb")
            for chat in LEADER_CHATS
        ]
        session.add(org)
        session.add_all(persons)
        await session.flush()
        for i, person in enumerate(persons):
            programme_id, role_id = pairs[i % len(pairs)]
            assert person.id is not None and org.id is not None
            session.add(
                Leader(
                    person_id=person.id,
                    organisation_id=org.id,
                    role_id=role_id,
                    programme_id=programme_id,
                    status=LeaderStatus.ACTIVE,
                    weekday=local.weekday(),
                    minute_of_day=local.hour * 60 + local.minute,
                    timezone=rt.settings.timezone,
                    position=i % 5,
                    next_due_at=due,
                    enrolled_at=now - dt.timedelta(days=30),
                )
            )
        await session.commit()


async def seed_checkins(rt: Runtime, now: dt.datetime) -> list[str]:
    """Callers who opened their advice hours ago; each check-in was due an hour ago."""
    ids = []
    for chat in CALLER_CHATS:
        valid = dispatches.validate(
            {"topic": "fever-child", "locale": "nb", "checkin_hours": 6}, rt
        )
        made = await dispatches.create(rt, valid, now=now - dt.timedelta(hours=7))
        person = await people.ensure_person(rt.sessions, chat, "nb")
        token = made.deep_link.split("start=a_", 1)[1]
        opened = await dispatches.open_link(rt, token, person, now=now - dt.timedelta(hours=6.5))
        assert opened.outcome is dispatches.Opened.FIRST
        ids.append(made.dispatch.id)
    return ids


async def outbox_left(rt: Runtime) -> int:
    async with rt.sessions() as session:
        waiting = select(func.count()).where(
            col(OutboxMessage.status).in_((OutboxStatus.PENDING, OutboxStatus.SENDING))
        )
        return int((await session.exec(waiting)).one())


async def test_two_instances_share_the_work_and_send_everything_exactly_once(
    instances: list[RunningBot], local_api: LocalBotApi
) -> None:
    first, second = instances
    rt = first.rt
    now = dt.datetime.now(dt.UTC)
    # The check-ins first, while no leader is due yet: they are ready for the senders at once.
    dispatch_ids = await seed_checkins(rt, now)
    await seed_leaders(rt, now)
    for running in instances:
        assert running.rt.sender is not None
        running.rt.sender.wake()

    began = time.monotonic()
    expected = LEADERS + CHECKINS
    while time.monotonic() - began < 90:
        async with rt.sessions() as session:
            prompts = int((await session.exec(select(func.count()).select_from(Prompt))).one())
        if prompts == LEADERS and await outbox_left(rt) == 0:
            break
        await asyncio.sleep(0.2)
    took = time.monotonic() - began
    # Every row is final now: a sender finishes a row only after its request came back, and a
    # final row is never claimed again, so nothing is in flight and nothing more can come.

    # Every leader got exactly one weekly question, every caller exactly one check-in.
    assert [c for c in LEADER_CHATS if local_api.delivered_to(c) != 1] == [], took
    assert [c for c in CALLER_CHATS if local_api.delivered_to(c) != 1] == []
    assert local_api.repeated_count == 0
    async with rt.sessions() as session:
        outbox: Any = (await session.exec(select(OutboxMessage))).all()
        assert len(outbox) == expected
        assert {row.status for row in outbox} == {OutboxStatus.SENT}
        prompt_rows = (await session.exec(select(Prompt))).all()
        assert len({p.leader_id for p in prompt_rows}) == LEADERS
        made = (
            await session.exec(select(Dispatch).where(col(Dispatch.id).in_(dispatch_ids)))
        ).all()
        assert {d.checkin_status for d in made} == {CheckinStatus.SENT}
        # Each leader's next question is a week on: claimed once, not moved twice.
        leaders = (await session.exec(select(Leader))).all()
        assert {lead.next_due_at - now > dt.timedelta(days=6) for lead in leaders} == {True}

    # Both instances sent part of it, and together exactly all of it.
    sent = [
        running.rt.sender.stats(Channel.TELEGRAM).sent for running in instances if running.rt.sender
    ]
    assert all(n > 0 for n in sent), sent
    assert sum(sent) == expected, sent
    assert second.rt.engine is not first.rt.engine
