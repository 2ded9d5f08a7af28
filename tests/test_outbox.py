"""The outbox: written with its cause, sent once under Telegram's limits, retried on 429
(after retry_after), 5xx and network errors, given up on 400 and 403 (403 marks the person as
having blocked the bot), and never sent after its window."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator

import pytest
from sqlmodel import select
from telegram import Bot

from bot.db import Sessions
from bot.localapi import LocalBotApi
from bot.models import OutboxMessage, OutboxStatus, Person, utcnow
from bot.outbox import OutboxSender, enqueue

KARI = 7101
OLA = 7102


@pytest.fixture
async def sender(sessions: Sessions, local_api: LocalBotApi) -> AsyncIterator[OutboxSender]:
    bot = Bot(local_api.token, base_url=local_api.base_url)
    await bot.initialize()
    yield OutboxSender(sessions, bot, rate_per_second=100, chat_rate_per_second=100)
    await bot.shutdown()


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


async def add(sessions: Sessions, key: str, chat_id: int, text: str, **kwargs: object) -> bool:
    async with sessions() as session:
        inserted = await enqueue(
            session,
            key=key,
            chat_id=chat_id,
            payload={"text": text},
            **kwargs,  # type: ignore[arg-type]
        )
        await session.commit()
        return inserted


async def row(sessions: Sessions, key: str) -> OutboxMessage:
    async with sessions() as session:
        found = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
        ).one()
        return found


def texts(local_api: LocalBotApi, chat_id: int) -> list[str]:
    return [m.text for m in local_api.deliveries(chat_id)]


async def drain_until_idle(sender: OutboxSender, seconds: float = 10.0) -> None:
    """Run the sender until nothing is pending (as the tick would), within a time limit."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await sender.drain_once()
        async with sender.sessions() as session:
            waiting = (
                await session.exec(
                    select(OutboxMessage).where(
                        OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))  # type: ignore[attr-defined]
                    )
                )
            ).all()
        if not waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the outbox did not drain in time")


async def test_a_due_message_is_sent_once(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    assert await add(sessions, "prompt:1:2026-W48", KARI, "Ukas spørsmål")
    assert not await add(sessions, "prompt:1:2026-W48", KARI, "Ukas spørsmål")  # same key

    await drain_until_idle(sender)
    await sender.drain_once()

    assert texts(local_api, KARI) == ["Ukas spørsmål"]
    sent = await row(sessions, "prompt:1:2026-W48")
    assert sent.status == OutboxStatus.SENT and sent.telegram_message_id is not None


async def test_nothing_is_written_when_the_cause_rolls_back(sessions: Sessions) -> None:
    async with sessions() as session:
        await enqueue(session, key="checkin:9", chat_id=KARI, payload={"text": "Korleis går det?"})
        await session.rollback()
    async with sessions() as session:
        assert (await session.exec(select(OutboxMessage))).all() == []


async def test_not_before_it_is_due_and_never_after_its_window(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
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
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
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
    assert sender.stats.flood_waits == 1
    statuses = {(await row(sessions, k)).status for k in ("a", "b")}
    assert statuses == {OutboxStatus.SENT}


async def test_5xx_is_retried_with_backoff_and_delivered_once(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    sender.max_backoff = 0.2
    local_api.inject("sendMessage", 500, times=2)
    await add(sessions, "retry", KARI, "Kommer fram til slutt")

    await drain_until_idle(sender)

    assert texts(local_api, KARI) == ["Kommer fram til slutt"]
    sent = await row(sessions, "retry")
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 3)


async def test_gives_up_after_max_attempts(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    sender.max_backoff = 0.05
    sender.max_attempts = 3
    local_api.inject("sendMessage", 502, times=10)
    await add(sessions, "doomed", KARI, "Aldri")

    await drain_until_idle(sender)

    failed = await row(sessions, "doomed")
    assert (failed.status, failed.attempts, failed.last_error) == (OutboxStatus.FAILED, 3, "GaveUp")
    assert texts(local_api, KARI) == []


async def test_403_gives_up_and_marks_the_person_as_having_blocked_the_bot(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    local_api.block(KARI)
    await add(sessions, "one", KARI, "En")
    await add(sessions, "two", KARI, "To", due_at=utcnow() + dt.timedelta(hours=1))

    await sender.drain_once()

    assert (await row(sessions, "one")).status == OutboxStatus.FAILED
    assert (await row(sessions, "two")).status == OutboxStatus.FAILED  # not tried in vain later
    async with sessions() as session:
        person = (await session.exec(select(Person).where(Person.telegram_user_id == KARI))).one()
    assert person.blocked_at is not None
    assert len(local_api.calls_to("sendMessage")) == 1


async def test_messages_dropped_for_a_blocked_person_are_reported_as_failed(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
) -> None:
    # The hook is how a pending check-in ends up "failed" on its dispatch, not "scheduled".
    told: list[tuple[str, str]] = []

    async def on_final(message: OutboxMessage, status: str) -> None:
        told.append((message.idempotency_key, status))

    sender.on_final = on_final
    await started(local_api, sessions, KARI)
    local_api.block(KARI)
    await add(sessions, "one", KARI, "En")
    await add(
        sessions, "checkin:later", KARI, "Korleis går det?", due_at=utcnow() + dt.timedelta(hours=3)
    )

    await sender.drain_once()

    assert sorted(told) == [("checkin:later", OutboxStatus.FAILED), ("one", OutboxStatus.FAILED)]


async def test_an_unexpected_api_answer_is_retried_then_given_up_not_left_claimed(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    sender.max_backoff = 0.05
    sender.max_attempts = 3
    local_api.inject("sendMessage", 409, times=10, description="Conflict: terminated by other")
    await add(sessions, "conflicted", KARI, "Hei")

    await drain_until_idle(sender)

    failed = await row(sessions, "conflicted")
    assert (failed.status, failed.attempts) == (OutboxStatus.FAILED, 3)
    assert failed.last_error == "Conflict" and failed.claimed_by is None
    assert len(local_api.calls_to("sendMessage")) == 3


async def test_400_gives_up_without_retrying(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    async with sessions() as session:
        await enqueue(
            session,
            key="bad",
            chat_id=KARI,
            payload={"text": "<b>ikke lukket", "parse_mode": "HTML"},
        )
        await session.commit()

    await sender.drain_once()
    await sender.drain_once()

    bad = await row(sessions, "bad")
    assert (bad.status, bad.last_error) == (OutboxStatus.FAILED, "BadRequest")
    assert len(local_api.calls_to("sendMessage")) == 1


async def test_messages_to_one_chat_keep_their_order_through_a_retry(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    sender.max_backoff = 0.1
    now = utcnow()
    for i, text in enumerate(["Tema: innledning", "Spørsmål 1", "Spørsmål 2"]):
        await add(sessions, f"m{i}", KARI, text, due_at=now + dt.timedelta(milliseconds=i))
    local_api.inject("sendMessage", 500, times=1)

    await drain_until_idle(sender)

    assert texts(local_api, KARI) == ["Tema: innledning", "Spørsmål 1", "Spørsmål 2"]


async def test_two_senders_on_one_database_send_each_message_once(
    sessions: Sessions, local_api: LocalBotApi
) -> None:
    chats = list(range(7200, 7240))
    for chat in chats:
        await started(local_api, sessions, chat)
        await add(sessions, f"fan:{chat}", chat, f"Hei {chat}")
    bots = [Bot(local_api.token, base_url=local_api.base_url) for _ in range(2)]
    for b in bots:
        await b.initialize()
    senders = [OutboxSender(sessions, b, rate_per_second=200, in_flight=8) for b in bots]

    await asyncio.gather(*(drain_until_idle(s) for s in senders))

    assert sum(local_api.delivered_to(c) for c in chats) == len(chats)
    assert local_api.repeated_count == 0
    assert sum(s.stats.sent for s in senders) == len(chats)
    for b in bots:
        await b.shutdown()


async def test_a_crashed_senders_claims_are_picked_up_after_the_lease(
    sessions: Sessions, sender: OutboxSender, local_api: LocalBotApi
) -> None:
    await started(local_api, sessions, KARI)
    await add(sessions, "orphan", KARI, "Etter krasj")
    async with sessions() as session:
        orphan = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.idempotency_key == "orphan")
            )
        ).one()
        orphan.status = OutboxStatus.SENDING
        orphan.claimed_by = "sender-dead:1"
        orphan.claimed_until = utcnow() - dt.timedelta(seconds=1)
        session.add(orphan)
        await session.commit()

    await drain_until_idle(sender)

    assert texts(local_api, KARI) == ["Etter krasj"]
