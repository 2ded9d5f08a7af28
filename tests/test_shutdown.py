"""Graceful shutdown: ``python -m bot run`` gets SIGTERM in the middle of a large batch.

It must stop claiming, let the requests already made finish (and record them as sent), put
every other claimed row back (pending, no claim), and exit 0 within its shutdown deadline. The
next process sends the rest, and nobody gets a message twice: unlike a crash
(``tests/test_crash.py``), a clean stop leaves nothing in doubt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from bot.db import Sessions
from bot.models import OutboxMessage, OutboxStatus, utcnow
from devkit.localapi import LocalBotApi
from tests import test_crash
from tests.test_crash import (
    BotProcess,
    bot_env,
    claimed_rows,
    cli,
    outbox_counts,
    seed_leaders,
    started_chats,
)

# The fixtures of the crash test: the local Bot API, the database, the bot processes.
fast_api = test_crash.fast_api
db = test_crash.db
bots = test_crash.bots

BATCH = 500
DEADLINE = 10.0  # the shutdown deadline of ``python -m bot run`` (``running_bot``'s default)
IN_FLIGHT = 16


async def prepared(
    api: LocalBotApi, db: Sessions, tmp_path: Path
) -> tuple[dict[str, str], list[int]]:
    """A migrated database with ``BATCH`` weekly questions waiting in the outbox."""
    env = bot_env(
        api,
        tmp_path,
        OUTBOX_RATE_PER_SECOND="60",  # slow enough that the batch is mid-way when we stop it
        OUTBOX_IN_FLIGHT=str(IN_FLIGHT),
    )
    await cli(env, tmp_path, "db", "upgrade")
    chats = await seed_leaders(db, BATCH, due=utcnow() - dt.timedelta(minutes=1), backlog=BATCH)
    await started_chats(api, chats)
    return env, chats


async def until_row_throttled(db: Sessions, process: BotProcess) -> None:
    """Wait until a row is back in the queue after a 429 (the sender has taken it in)."""

    async def throttled() -> bool:
        async with db() as session:
            found = await session.exec(
                select(OutboxMessage.id).where(  # type: ignore[call-overload]
                    OutboxMessage.last_error == "Throttled",
                    OutboxMessage.status == OutboxStatus.PENDING,
                )
            )
            return found.first() is not None

    deadline = time.monotonic() + 10
    while not await throttled():
        assert process.running and time.monotonic() < deadline, process.log()
        await asyncio.sleep(0.05)


async def stop_gracefully(process: BotProcess) -> float:
    """SIGTERM; the seconds until the process exited 0."""
    process.signal(signal.SIGTERM)
    began = time.monotonic()
    code = await process.wait(DEADLINE + 10)
    took = time.monotonic() - began
    assert code == 0, f"exit code {code}:\n{process.log()}"
    assert took < DEADLINE + 3, f"took {took:.1f} s to stop:\n{process.log()}"
    return took


async def assert_left_clean(db: Sessions, api: LocalBotApi) -> dict[str, int]:
    """Every delivered message is recorded as sent; everything else is pending, unclaimed."""
    counts = await outbox_counts(db)
    assert set(counts) <= {OutboxStatus.SENT, OutboxStatus.PENDING}, counts
    assert counts.get(OutboxStatus.SENT, 0) == api.delivered_count
    assert await claimed_rows(db) == 0
    async with db() as session:
        attempts = (await session.exec(select(OutboxMessage.attempts))).scalars().all()  # type: ignore[call-overload]
    assert sum(attempts) == api.delivered_count, "a released row must not count as an attempt"
    return counts


async def test_sigterm_mid_batch_finishes_in_flight_releases_the_rest_and_exits_0(
    tmp_path: Path, fast_api: LocalBotApi, db: Sessions, bots: list[BotProcess]
) -> None:
    env, chats = await prepared(fast_api, db, tmp_path)
    first = BotProcess(env, tmp_path, "first")
    bots.append(first)
    await first.start()
    await first.until("150 deliveries", lambda: fast_api.delivered_count >= 150, 40)
    # From now on each send is performed at once but answered a second later: whatever is in
    # flight at SIGTERM has reached "Telegram", so abandoning it would mean a duplicate later.
    fast_api.inject_delay("sendMessage", 1.0, times=BATCH, act="before")
    injected_at = fast_api.delivered_count
    # Sends are in flight: performed, their answers held for a second.
    await first.until("held sends", lambda: fast_api.delivered_count >= injected_at + 4, 10)
    at_signal = fast_api.delivered_count
    signalled = time.time()
    took = await stop_gracefully(first)
    stopped_at = fast_api.delivered_count
    # The process has exited (stop_gracefully waited for it): nothing can be sent any more.
    assert not first.running

    counts = await assert_left_clean(db, fast_api)
    answered = [c for c in fast_api.calls_to("sendMessage") if c.at > signalled]
    print(
        f"\nSIGTERM after {at_signal} deliveries: exited 0 in {took:.1f} s; {len(answered)} "
        f"sends in flight were answered after the signal and recorded, {stopped_at - at_signal} "
        f"new ones made; {counts.get(OutboxStatus.PENDING, 0)} rows released for later"
    )
    assert answered, "nothing was in flight: the test did not test waiting for it"
    assert all(call.status == 200 for call in answered)
    assert 0 < counts.get(OutboxStatus.PENDING, 0) < BATCH - 150
    # Made before the sender saw the signal: a window, not the rest of the batch.
    assert stopped_at - at_signal <= 2 * IN_FLIGHT

    fast_api.clear_faults()
    second = BotProcess({**env, "OUTBOX_RATE_PER_SECOND": "1000"}, tmp_path, "second")
    bots.append(second)
    await second.start()
    await second.until("the rest", lambda: fast_api.delivered_count >= BATCH, 40)
    await stop_gracefully(second)  # finishes what is in flight and exits: nothing comes later

    assert Counter(fast_api.delivered_to(chat) for chat in chats) == {1: BATCH}
    assert fast_api.repeated_count == 0
    assert await outbox_counts(db) == {OutboxStatus.SENT: BATCH}
    await assert_left_clean(db, fast_api)


async def test_sigterm_during_a_flood_pause_sends_nothing_more_and_exits_at_once(
    tmp_path: Path, fast_api: LocalBotApi, db: Sessions, bots: list[BotProcess]
) -> None:
    """Telegram said "retry after 10 s". Stopping must not cut the pause short by sending the
    rows that were waiting for it; it releases them and exits long before the 10 s are up.
    (The row that got the 429 is due again only after those 10 s: the restart honours that.)"""
    env, chats = await prepared(fast_api, db, tmp_path)
    first = BotProcess(env, tmp_path, "first")
    bots.append(first)
    await first.start()
    await first.until("100 deliveries", lambda: fast_api.delivered_count >= 100, 40)
    fast_api.inject("sendMessage", 429, times=1, retry_after=10)
    await first.until(
        "a 429", lambda: any(c.status == 429 for c in fast_api.calls_to("sendMessage")), 10
    )
    limited = next(c for c in fast_api.calls_to("sendMessage") if c.status == 429)
    # The sender took the 429 in: the row that got it waits again, marked throttled.
    await until_row_throttled(db, first)
    took = await stop_gracefully(first)

    sends_in_pause = [
        call
        for call in fast_api.calls_to("sendMessage")
        if limited.at + 0.5 < call.at < limited.at + 10
    ]
    print(f"\nSIGTERM in a 10 s flood pause: exited 0 in {took:.1f} s")
    assert sends_in_pause == [], "sent while Telegram's retry_after was in force"
    assert took < 5, "the pause must not hold up the shutdown"
    counts = await assert_left_clean(db, fast_api)
    assert counts.get(OutboxStatus.PENDING, 0) >= BATCH - fast_api.delivered_count

    second = BotProcess({**env, "OUTBOX_RATE_PER_SECOND": "1000"}, tmp_path, "second")
    bots.append(second)
    await second.start()
    await second.until("the rest", lambda: fast_api.delivered_count >= BATCH, 40)
    last = max(c.at for c in fast_api.calls_to("sendMessage") if c.status == 200)
    assert last >= limited.at + 10 - 0.5, "the row that got the 429 was sent before retry_after"
    await stop_gracefully(second)
    assert Counter(fast_api.delivered_to(chat) for chat in chats) == {1: BATCH}
    assert fast_api.repeated_count == 0
    assert await outbox_counts(db) == {OutboxStatus.SENT: BATCH}
