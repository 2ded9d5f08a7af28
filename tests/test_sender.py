"""The one sender on the Telegram channel: a queued message is written with its cause, sent once
under the budget, retried on 429 (after retry_after) and on 5xx and network errors until its own
expiry, given up on 400; a 403 (the person blocked the bot) marks them, drops what was queued
for them (each told through a typed event) and queues nothing more until they write again."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import outbox
from bot.app import build_sender, telegram_bot
from bot.budget import TelegramBudget
from bot.channels.telegram import TelegramAdapter
from bot.db import Sessions
from bot.events import Delivery, MessageFinished
from bot.models import Channel, MessageKind, OutboxMessage, OutboxStatus, Person, utcnow
from bot.runtime import Runtime
from bot.sender import Sender
from bot.services.people import ensure_person
from devkit.localapi import LocalBotApi
from tests.conftest import drain_until_idle

KARI = 7101
OLA = 7102


def telegram_sender(rt: Runtime, local_api: LocalBotApi, **options: Any) -> Sender:
    """The one sender with the Telegram channel only, on a fast budget (limits: test_faults)."""
    bot = telegram_bot(local_api.token, local_api.base_url, 20)
    adapter = TelegramAdapter(bot, TelegramBudget(200, 100), concurrency=8)
    options.setdefault("max_backoff_seconds", 0.2)
    return build_sender(rt, [adapter], **options)


@pytest.fixture
def sessions(rt: Runtime) -> Sessions:
    return rt.sessions


@pytest.fixture
async def sender(rt: Runtime, local_api: LocalBotApi) -> AsyncIterator[Sender]:
    made = telegram_sender(rt, local_api)
    bot = bot_of(made)
    await bot.initialize()
    yield made
    await bot.shutdown()


def bot_of(sender: Sender) -> Any:
    adapter = sender.adapter(Channel.TELEGRAM)
    assert isinstance(adapter, TelegramAdapter)
    return adapter.bot


async def started(local_api: LocalBotApi, sessions: Sessions, user_id: int) -> int:
    """A person who has written to the bot (so Telegram lets the bot write back)."""
    local_api.user_message(user_id, "/start", first_name="Kari")
    async with sessions() as session:
        person = Person(telegram_user_id=user_id, locale="nb")
        session.add(person)
        await session.commit()
        await session.refresh(person)
        assert person.id is not None
        return person.id


async def add(
    sessions: Sessions,
    key: str,
    chat_id: int,
    text: str,
    person_id: int | None = None,
    **kwargs: Any,
) -> bool:
    """Queue a plain notice (the simplest kind) for ``chat_id``, keyed ``key``."""
    async with sessions() as session:
        inserted = await outbox.enqueue(
            session,
            MessageKind.ADMIN_NOTICE,
            dedupe_key=key,
            chat_id=chat_id,
            person_id=person_id,
            payload={"text": text},
            **kwargs,
        )
        await session.commit()
        return inserted is not None


async def row(sessions: Sessions, key: str) -> OutboxMessage:
    async with sessions() as session:
        found = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        ).one()
        return found


def texts(local_api: LocalBotApi, chat_id: int) -> list[str]:
    return [m.text for m in local_api.deliveries(chat_id)]


async def test_a_due_message_is_sent_once(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    assert await add(sessions, "prompt:1:2026-W48", KARI, "Ukas spørsmål")
    assert not await add(sessions, "prompt:1:2026-W48", KARI, "Ukas spørsmål")  # same key

    await drain_until_idle(sender)
    await sender.drain_once()

    assert texts(local_api, KARI) == ["Ukas spørsmål"]
    sent = await row(sessions, "prompt:1:2026-W48")
    assert sent.status == OutboxStatus.SENT and sent.provider_message_id is not None


async def test_nothing_is_written_when_the_cause_rolls_back(sessions: Sessions) -> None:
    async with sessions() as session:
        await outbox.enqueue(
            session, MessageKind.ADMIN_NOTICE, chat_id=KARI, payload={"text": "Korleis går det?"}
        )
        await session.rollback()
    async with sessions() as session:
        assert (await session.exec(select(OutboxMessage))).all() == []


async def test_not_before_it_is_due_and_never_after_its_window(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    now = utcnow()
    await add(sessions, "later", KARI, "Senere", due_at=now + dt.timedelta(hours=1))
    await add(
        sessions,
        "stale",
        KARI,
        "For sent",
        due_at=now - dt.timedelta(hours=2),
        expires_at=now - dt.timedelta(hours=1),
    )

    await sender.drain_once()

    assert texts(local_api, KARI) == []
    assert (await row(sessions, "later")).status == OutboxStatus.PENDING
    assert (await row(sessions, "stale")).status == OutboxStatus.EXPIRED


async def test_429_pauses_all_sending_for_retry_after_then_delivers_once(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    await started(local_api, sessions, OLA)
    local_api.inject("sendMessage", 429, times=1, retry_after=1)
    await add(sessions, "a", KARI, "Til Kari")
    await add(sessions, "b", OLA, "Til Ola")

    began = time.monotonic()
    await drain_until_idle(sender)
    elapsed = time.monotonic() - began

    assert sorted(texts(local_api, KARI) + texts(local_api, OLA)) == ["Til Kari", "Til Ola"]
    assert elapsed >= 0.9, "the sender must wait retry_after before sending again"
    assert sender.stats(Channel.TELEGRAM).throttled == 1
    statuses = {(await row(sessions, k)).status for k in ("a", "b")}
    assert statuses == {OutboxStatus.SENT}


async def test_5xx_is_retried_with_backoff_and_delivered_once(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    local_api.inject("sendMessage", 500, times=2)
    await add(sessions, "retry", KARI, "Kommer fram til slutt")

    await drain_until_idle(sender)

    assert texts(local_api, KARI) == ["Kommer fram til slutt"]
    sent = await row(sessions, "retry")
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 3)


async def test_transient_failures_are_retried_until_the_message_expires_not_counted(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    """There is no fixed number of attempts: a message is tried again for as long as it lives
    (backing off), and recorded as expired, never sent stale, when its life is over."""
    await started(local_api, sessions, KARI)
    sender.max_backoff = 0.05
    local_api.inject("sendMessage", 502, times=10_000)
    await add(sessions, "doomed", KARI, "Aldri", expires_at=utcnow() + dt.timedelta(seconds=1.5))

    await drain_until_idle(sender)

    expired = await row(sessions, "doomed")
    assert (expired.status, expired.last_error) == (OutboxStatus.EXPIRED, "Expired")
    assert expired.attempts == len(local_api.calls_to("sendMessage")) > 5
    assert texts(local_api, KARI) == []


async def test_403_stops_the_person_drops_their_queue_and_queues_nothing_more(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    person_id = await started(local_api, sessions, KARI)
    local_api.block(KARI)
    await add(sessions, "one", KARI, "En", person_id)
    await add(sessions, "two", KARI, "To", person_id, due_at=utcnow() + dt.timedelta(hours=1))

    await sender.drain_once()

    assert (await row(sessions, "one")).last_error == "Stopped"
    assert (await row(sessions, "two")).status == OutboxStatus.FAILED  # not tried in vain later
    async with sessions() as session:
        person = (await session.exec(select(Person).where(Person.telegram_user_id == KARI))).one()
    assert person.blocked_at is not None
    assert len(local_api.calls_to("sendMessage")) == 1
    # Nothing more is queued for them …
    assert not await add(sessions, "three", KARI, "Tre", person_id)
    # … until they write to the bot again.
    local_api.unblock(KARI)
    await ensure_person(sessions, KARI, "nb")
    assert await add(sessions, "four", KARI, "Fire", person_id)
    await drain_until_idle(sender)
    assert texts(local_api, KARI) == ["Fire"]


async def test_messages_dropped_for_a_blocked_person_are_told_as_typed_events(
    rt: Runtime, local_api: LocalBotApi
) -> None:
    # The hook is how a pending check-in ends up "failed" on its dispatch, not "scheduled".
    sender = telegram_sender(rt, local_api)
    told: list[MessageFinished] = []

    async def on_final(session: AsyncSession, event: MessageFinished) -> None:
        told.append(event)

    sender.events.subscribe(MessageFinished, on_final)
    await bot_of(sender).initialize()
    person_id = await started(local_api, rt.sessions, KARI)
    local_api.block(KARI)
    await add(rt.sessions, "one", KARI, "En", person_id)
    later = utcnow() + dt.timedelta(hours=3)
    await add(rt.sessions, "later", KARI, "Korleis går det?", person_id, due_at=later)

    await sender.drain_once()
    await bot_of(sender).shutdown()

    assert [(e.delivery, e.reason, e.kind) for e in told] == [
        (Delivery.FAILED, "Stopped", MessageKind.ADMIN_NOTICE)
    ] * 2
    assert {e.person_id for e in told} == {person_id}


async def test_an_unexpected_api_answer_is_retried_and_not_left_claimed(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    sender.max_backoff = 0.05
    local_api.inject("sendMessage", 409, times=2, description="Conflict: terminated by other")
    await add(sessions, "conflicted", KARI, "Hei")

    await drain_until_idle(sender)

    sent = await row(sessions, "conflicted")
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 3)
    assert sent.claimed_by is None
    assert texts(local_api, KARI) == ["Hei"]


async def test_400_gives_up_without_retrying(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    local_api.inject("sendMessage", 400, times=1, description="Bad Request: can't parse entities")
    await add(sessions, "bad", KARI, "Hei")

    await sender.drain_once()
    await sender.drain_once()

    bad = await row(sessions, "bad")
    assert (bad.status, bad.last_error) == (OutboxStatus.FAILED, "BadRequest")
    assert len(local_api.calls_to("sendMessage")) == 1


async def test_messages_to_one_chat_keep_their_order_through_a_retry(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    now = utcnow()
    for i, text in enumerate(["Tema: innledning", "Spørsmål 1", "Spørsmål 2"]):
        await add(sessions, f"m{i}", KARI, text, due_at=now + dt.timedelta(milliseconds=i))
    local_api.inject("sendMessage", 500, times=1)

    await drain_until_idle(sender)

    assert texts(local_api, KARI) == ["Tema: innledning", "Spørsmål 1", "Spørsmål 2"]


async def test_two_senders_on_one_database_send_each_message_once(
    rt: Runtime, local_api: LocalBotApi
) -> None:
    chats = list(range(7200, 7240))
    for chat in chats:
        await started(local_api, rt.sessions, chat)
        await add(rt.sessions, f"fan:{chat}", chat, f"Hei {chat}")
    senders = [telegram_sender(rt, local_api) for _ in range(2)]
    for s in senders:
        await bot_of(s).initialize()

    await asyncio.gather(*(drain_until_idle(s) for s in senders))

    assert sum(local_api.delivered_to(c) for c in chats) == len(chats)
    assert local_api.repeated_count == 0
    assert sum(s.stats(Channel.TELEGRAM).sent for s in senders) == len(chats)
    for s in senders:
        await bot_of(s).shutdown()


async def test_a_crashed_senders_claims_are_picked_up_after_the_lease(
    sessions: Sessions, sender: Sender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    await add(sessions, "orphan", KARI, "Etter krasj")
    async with sessions() as session:
        orphan = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == "orphan"))
        ).one()
        orphan.status = OutboxStatus.SENDING
        orphan.claimed_by = "sender-dead:1"
        orphan.claimed_until = utcnow() - dt.timedelta(seconds=1)
        session.add(orphan)
        await session.commit()

    await drain_until_idle(sender)

    assert texts(local_api, KARI) == ["Etter krasj"]
