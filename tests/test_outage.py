"""A 4-minute outage with the sockets closed, at production settings: the Bot API and the SMS
gateway stop listening (connections refused, not an injected 502) while a weekly question, a
check-in and an SMS fall due. Each arrives exactly once when they are back.

The old sender gave a message up after 8 attempts, 141 s into an outage, although it had hours
to live; now a message is retried until its own ``expires_at``. The whole bot runs as
``python -m bot run`` builds it (``running_bot``: polling, tick, the one sender), with the
settings' defaults for everything that decides the timing (tick, backoff cap, lives).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
from sqlmodel import col, select

from bot import migrate
from bot.app import RunningBot, build_runtime, running_bot
from bot.config import Settings
from bot.models import (
    FINAL,
    Channel,
    Dispatch,
    Leader,
    LeaderStatus,
    MessageKind,
    Organisation,
    OutboxMessage,
    OutboxStatus,
    Person,
    SmsStatus,
    utcnow,
)
from bot.services import dispatches
from bot.services.people import ensure_person
from devkit.localapi import LocalBotApi
from tests.conftest import Gateway
from tests.test_crash import started_chats

OUTAGE = 240.0  # seconds: longer than the old retry count survived (141 s)
LEADER_CHAT = 960_001
CALLER_CHAT = 960_002
PHONE = "+4791234567"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Production timing: the conftest's short tick undone; every other timing is a default."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    return settings.model_copy(update={"outbox_tick_seconds": defaults.outbox_tick_seconds})


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float) -> float:
    """Wait for a condition, polling the database; the seconds it took."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        await asyncio.sleep(0.5)
    return time.monotonic() - began


async def queued(running: RunningBot) -> dict[MessageKind, OutboxMessage]:
    async with running.rt.sessions() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    return {MessageKind(row.kind): row for row in rows}


@pytest.fixture
async def outage_bot(
    settings: Settings, local_api: LocalBotApi, gateway: Gateway
) -> AsyncIterator[RunningBot]:
    settings = settings.model_copy(update={"sms_provider": "http", "sms_http_url": gateway.url})
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    # Both people started the bot long ago (it may write to them; nothing left to answer).
    await started_chats(local_api, [LEADER_CHAT, CALLER_CHAT])
    rt = build_runtime(settings)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(rt.engine.dispose)
        yield await stack.enter_async_context(
            running_bot(rt, local_api.token, local_api.base_url, shutdown_deadline=5)
        )


async def test_a_question_a_checkin_and_an_sms_due_in_a_4_minute_outage_arrive_once(
    outage_bot: RunningBot, local_api: LocalBotApi, gateway: Gateway
) -> None:
    rt = outage_bot.rt
    assert rt.settings.send_max_backoff_seconds == 60  # the default being tested
    due = utcnow() + dt.timedelta(seconds=10)
    # A leader whose weekly question falls due in 10 s.
    async with rt.sessions() as session:
        org = Organisation(name="Utfall HF")
        leader_person = Person(telegram_user_id=LEADER_CHAT, locale="nb")
        session.add_all([org, leader_person])
        await session.flush()
        programme, _role = rt.content.roles["unit-leader"]
        local = due.astimezone(rt.settings.zone)
        assert leader_person.id is not None and org.id is not None
        session.add(
            Leader(
                person_id=leader_person.id,
                organisation_id=org.id,
                role_id="unit-leader",
                programme_id=programme.id,
                status=LeaderStatus.ACTIVE,
                weekday=local.weekday(),
                minute_of_day=local.hour * 60 + local.minute,
                next_due_at=due,
                enrolled_at=utcnow(),
            )
        )
        await session.commit()
    # A caller who opened their advice; the check-in falls due in 10 s (6 h after the call).
    valid = dispatches.validate({"topic": "fever-child", "locale": "nb", "checkin_hours": 6}, rt)
    called = due - dt.timedelta(hours=6)
    made = await dispatches.create(rt, valid, now=called)
    caller = await ensure_person(rt.sessions, CALLER_CHAT, "nb")
    token = made.deep_link.split("start=a_", 1)[1]
    opened = await dispatches.open_link(rt, token, caller, now=called + dt.timedelta(minutes=5))
    assert opened.outcome is dispatches.Opened.FIRST

    # Telegram and the SMS gateway go away: their sockets close.
    await local_api.go_offline()
    await gateway.stop()
    went_down = time.monotonic()
    # The nurse sends advice by SMS during the outage.
    with_sms = dispatches.validate(
        {"topic": "fever-child", "locale": "nb", "phone": PHONE, "send_sms": True}, rt
    )
    sms_dispatch = (await dispatches.create(rt, with_sms)).dispatch
    assert rt.sender is not None
    rt.sender.wake()

    async def all_three_tried() -> bool:
        rows = await queued(outage_bot)
        return len(rows) == 3 and all(row.attempts >= 1 for row in rows.values())

    await until("all three queued and tried", all_three_tried, 60)
    # The outage lasts its 4 minutes (this is the fault being injected, not a wait for a result).
    await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - went_down)))
    during = await queued(outage_bot)
    assert {row.status for row in during.values()} <= {OutboxStatus.PENDING, OutboxStatus.SENDING}
    assert all(row.last_error for row in during.values()), "each was tried and failed"
    assert gateway.requests == [] and local_api.delivered_to(LEADER_CHAT) == 0

    await local_api.come_back()
    await gateway.start()  # the same port
    back = time.monotonic()

    async def all_final() -> bool:
        rows = await queued(outage_bot)
        return all(row.status in FINAL for row in rows.values())

    took = await until("everything delivered after the outage", all_final, 180)
    rows = await queued(outage_bot)
    print(
        f"\n{OUTAGE:.0f} s outage: delivered {took:.0f} s after it ended; attempts "
        + ", ".join(f"{kind}: {row.attempts}" for kind, row in rows.items())
    )
    assert {kind: row.status for kind, row in rows.items()} == {
        MessageKind.WEEKLY_QUESTION: OutboxStatus.SENT,
        MessageKind.CHECKIN: OutboxStatus.SENT,
        MessageKind.SMS_LINK: OutboxStatus.SENT,
    }
    assert time.monotonic() - back < 150
    # Exactly once each: the queue is idle (every row final), so nothing more can come.
    assert local_api.delivered_to(LEADER_CHAT) == 1
    assert local_api.delivered_to(CALLER_CHAT) == 1
    assert local_api.repeated_count == 0
    assert [r["json"]["to"] for r in gateway.requests] == [PHONE]
    assert rows[MessageKind.SMS_LINK].secret is None
    async with rt.sessions() as session:
        checked = await session.get(Dispatch, made.dispatch.id)
        texted = await session.get(Dispatch, sms_dispatch.id)
    assert checked is not None and checked.checkin_status == "sent"
    assert texted is not None and texted.sms_status == SmsStatus.SENT
    assert rows[MessageKind.SMS_LINK].channel == Channel.SMS
    async with rt.sessions() as session:
        waiting = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.PENDING)
            )
        ).all()
    assert waiting == []
