"""Crash safety: the bot as a real process, killed with SIGKILL in the middle of a large batch of
weekly questions, and started again.

The local Bot API runs in the test process (so it outlives the bot and keeps count); the bot is
``python -m bot run`` with a token and ``TELEGRAM_API_BASE_URL`` pointing at it, on a temporary
SQLite file migrated with ``python -m bot db upgrade``.

What a crash may cost, by design: the messages that were in flight when the process died (sent
to Telegram, not yet marked sent) are sent again by the next process, once their lease has run
out. So duplicates are bounded by the sender's in-flight window; nothing is lost; each leader
still has exactly one ``Prompt`` for the week (it is written in the same transaction as the
outbox row).

The helpers here (``BotProcess``, ``seed_leaders``, ``started_chats``, …) are shared with
``tests/test_shutdown.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, insert, select, update

from bot.app import build_runtime
from bot.config import Settings, to_async_url
from bot.db import Sessions, make_engine, make_sessions
from bot.models import (
    Channel,
    Leader,
    LeaderStatus,
    MessageKind,
    Organisation,
    OutboxMessage,
    OutboxStatus,
    Person,
    Prompt,
    PromptStatus,
    utcnow,
)
from bot.services import weekly
from devkit.localapi import LocalBotApi, serve_local_api
from tests.conftest import free_port

PROJECT = Path(__file__).resolve().parent.parent
FIRST_CHAT = 30_000_001
IN_FLIGHT = 8
LEADERS = 2_000
BACKLOG = 1_500  # of them, already written to the outbox by an earlier tick


# --- the bot as a process ---------------------------------------------------------------------


def bot_env(api: LocalBotApi, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a production-like bot talking to the local Bot API: only what is
    set here, so no setting of the surrounding shell (or a .env) changes the bot under test."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT")
    env = {key: value for key, value in os.environ.items() if key in keep or key.startswith("LC_")}
    env.update(
        PYTHONPATH=str(PROJECT),
        PYTHONUNBUFFERED="1",
        TELEGRAM_BOT_TOKEN=api.token,
        TELEGRAM_API_BASE_URL=api.base_url,
        SECRET_KEY="crash-test-secret-" + "k" * 32,
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        SMS_PROVIDER="none",  # production must choose; these bots send no SMS
        PUBLIC_URL="https://rad.example.no",
        VAR_DIR=str(tmp_path / "var"),
        HOST="127.0.0.1",
        PORT=str(free_port()),
        LOG_LEVEL="WARNING",
        OUTBOX_TICK_SECONDS="0.2",
        OUTBOX_RATE_PER_SECOND="1000",
        OUTBOX_CHAT_RATE_PER_SECOND="100",
        OUTBOX_IN_FLIGHT=str(IN_FLIGHT),
        REMINDER_AFTER_HOURS="0",
    )
    env.update(extra)
    return env


async def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    """Run ``python -m bot <args>`` to completion; its output, or a failed test."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"python -m bot {' '.join(args)} failed:\n{text}"
    return text


class BotProcess:
    """``python -m bot run`` in the background, its output in a log file."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str) -> None:
        self.env = env
        self.cwd = cwd
        self.log_path = cwd / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                env=self.env,
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def log(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-4000:]

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    async def wait(self, timeout: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a power cut or the OOM killer."""
        if self.running:
            self.signal(signal.SIGKILL)
            await self.wait(10)

    async def until(self, what: str, condition: Any, timeout: float) -> None:
        """Wait until ``condition()`` is true while the process lives; fail with its log."""
        deadline = time.monotonic() + timeout
        while not condition():
            if not self.running:
                raise AssertionError(f"the bot exited while waiting for {what}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")
            await asyncio.sleep(0.02)


@pytest.fixture
async def bots() -> AsyncIterator[list[BotProcess]]:
    """Bot processes started by a test; whatever is left running at the end is killed."""
    started: list[BotProcess] = []
    yield started
    for process in started:
        await process.kill()


@pytest.fixture
async def fast_api() -> AsyncIterator[LocalBotApi]:
    """The local Bot API without flood limits, keeping count of every call."""
    async with serve_local_api(max_recorded_calls=200_000) as api:
        yield api


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Sessions]:
    engine = make_engine(to_async_url(f"sqlite:///{tmp_path / 'bot.db'}"))
    yield make_sessions(engine)
    await engine.dispose()


# --- people and rows --------------------------------------------------------------------------


async def started_chats(api: LocalBotApi, chat_ids: list[int]) -> None:
    """People who started the bot some time ago: the bot may write to them, and their /start
    updates were consumed long since (so the bot under test has nothing to answer)."""
    last = 0
    for chat_id in chat_ids:
        last, _message_id = api.user_message(chat_id, "/start", first_name="Leder")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{api.base_url}{api.token}/getUpdates", json={"offset": last + 1, "timeout": 0}
        ) as response,
    ):
        assert (await response.json())["ok"]
    assert api.pending_update_count == 0


async def seed_leaders(
    sessions: Sessions, count: int, *, due: dt.datetime, backlog: int = 0
) -> list[int]:
    """``count`` active leaders whose week's question is due at ``due``; returns their chat ids.

    For the first ``backlog`` of them an earlier tick has already done its part: their
    ``Prompt`` and queued row (rendered when it is sent) are written and their schedule
    has moved a week on, exactly as ``weekly.send_due_prompts`` leaves it. The others are still
    due. (The tick writes ~50 leaders a second on SQLite here, so a backlog keeps the test short
    while the batch stays large.)
    """
    now = utcnow()
    zone = ZoneInfo("Europe/Oslo")
    week = weekly.iso_week(due, zone)
    chat_ids = list(range(FIRST_CHAT, FIRST_CHAT + count))
    roles = ["review-leader", "unit-leader", "top-leader"]
    rt = build_runtime(Settings(_env_file=None, database_url="sqlite://", secret_key="s" * 40))  # type: ignore[call-arg]

    def role(chat_id: int) -> str:
        return roles[chat_id % len(roles)]

    def locale(chat_id: int) -> str:
        return "nn" if chat_id % 5 == 0 else "nb"

    async with sessions() as session:
        org: Any = await session.exec(
            insert(Organisation.__table__).values(name="Krasj HF", created_at=now)  # type: ignore[attr-defined]
        )
        org_id = org.inserted_primary_key[0]
        await session.exec(
            insert(Person.__table__),  # type: ignore[attr-defined]
            params=[
                {
                    "telegram_user_id": chat_id,
                    "locale": locale(chat_id),
                    "locale_chosen": True,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for chat_id in chat_ids
            ],
        )
        people = dict(
            (await session.exec(select(Person.telegram_user_id, Person.id))).all()  # type: ignore[call-overload]
        )
        await session.exec(
            insert(Leader.__table__),  # type: ignore[attr-defined]
            params=[
                {
                    "person_id": people[chat_id],
                    "organisation_id": org_id,
                    "role_id": role(chat_id),
                    "programme_id": "systemperspektiv",
                    "status": LeaderStatus.ACTIVE,
                    "weekday": due.astimezone(zone).weekday(),
                    "minute_of_day": 9 * 60,
                    "timezone": "Europe/Oslo",
                    "position": 1 if index < backlog else 0,
                    "cycle": 0,
                    "next_due_at": due + weekly.WEEK if index < backlog else due,
                    "enrolled_at": now,
                    "created_at": now,
                }
                for index, chat_id in enumerate(chat_ids)
            ],
        )
        leaders = dict(
            (await session.exec(select(Leader.person_id, Leader.id))).all()  # type: ignore[call-overload]
        )
        first_questions = {
            r: weekly.question_at(rt, Leader(role_id=r, programme_id="systemperspektiv"))
            for r in roles
        }
        if backlog:
            await session.exec(
                insert(Prompt.__table__),  # type: ignore[attr-defined]
                params=[
                    {
                        "leader_id": leaders[people[chat_id]],
                        "programme_id": "systemperspektiv",
                        "theme_id": first_questions[role(chat_id)][1].id,
                        "question_id": first_questions[role(chat_id)][2].id,
                        "role_id": role(chat_id),
                        "position": 0,
                        "cycle": 0,
                        "week": week,
                        "due_at": due,
                        "status": PromptStatus.SENT,
                        "sent_at": now,
                        "reminders_sent": 0,
                        "shared": False,
                        "created_at": now,
                    }
                    for chat_id in chat_ids[:backlog]
                ],
            )
        prompts = await session.exec(select(Prompt))  # type: ignore[call-overload]
        by_leader = {prompt.leader_id: prompt for (prompt,) in prompts.all()}
        rows = []
        for chat_id in chat_ids[:backlog]:
            prompt = by_leader[leaders[people[chat_id]]]
            assert prompt.id is not None
            rows.append(
                {
                    "channel": Channel.TELEGRAM,
                    "kind": MessageKind.WEEKLY_QUESTION,
                    "dedupe_key": f"prompt:{prompt.leader_id}:{week}",
                    "person_id": people[chat_id],
                    "chat_id": chat_id,
                    "prompt_id": prompt.id,
                    "status": OutboxStatus.PENDING,
                    "due_at": due,
                    "expires_at": due + dt.timedelta(hours=12),
                    "attempts": 0,
                    "created_at": now,
                }
            )
        if rows:
            await session.exec(insert(OutboxMessage.__table__), params=rows)  # type: ignore[attr-defined]
        await session.commit()
    await rt.engine.dispose()
    return chat_ids


async def outbox_counts(sessions: Sessions) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.exec(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)  # type: ignore[arg-type]
        )
        return {str(status): int(n) for status, n in rows.all()}


async def claimed_chats(sessions: Sessions) -> set[int]:
    """The chats of the rows a sender has claimed (status ``sending``)."""
    async with sessions() as session:
        table: Any = OutboxMessage.__table__
        result = await session.exec(
            select(table.c.chat_id).where(table.c.status == OutboxStatus.SENDING)
        )
        return {int(chat_id) for (chat_id,) in result.all()}


async def claimed_rows(sessions: Sessions) -> int:
    """Rows that carry a claim (status ``sending`` or a leftover ``claimed_by``)."""
    async with sessions() as session:
        table: Any = OutboxMessage.__table__
        return int(
            (
                await session.exec(
                    select(func.count()).where(
                        (table.c.status == OutboxStatus.SENDING) | table.c.claimed_by.is_not(None)
                    )
                )
            ).scalar_one()
        )


async def expire_leases(sessions: Sessions) -> int:
    """Make every claim look older than its lease (60 s), as if the restart came a minute later.

    Saves the test a minute of waiting; the reclaiming itself is the production code's.
    """
    table: Any = OutboxMessage.__table__
    async with sessions() as session:
        result: Any = await session.exec(
            update(table)
            .where(table.c.status == OutboxStatus.SENDING)
            .values(claimed_until=utcnow() - dt.timedelta(seconds=1))
        )
        await session.commit()
        return int(result.rowcount or 0)


def deliveries_per_chat(api: LocalBotApi, chat_ids: list[int]) -> Counter[int]:
    """How many chats got 0, 1, 2, … messages."""
    return Counter(api.delivered_to(chat_id) for chat_id in chat_ids)


# --- the test ---------------------------------------------------------------------------------


async def test_sigkill_mid_batch_loses_nothing_and_repeats_at_most_the_in_flight_window(
    tmp_path: Path, fast_api: LocalBotApi, db: Sessions, bots: list[BotProcess]
) -> None:
    began = time.monotonic()
    env = bot_env(fast_api, tmp_path)
    await cli(env, tmp_path, "db", "upgrade")
    chat_ids = await seed_leaders(
        db, LEADERS, due=utcnow() - dt.timedelta(minutes=1), backlog=BACKLOG
    )
    await started_chats(fast_api, chat_ids)
    seeded = time.monotonic()

    first = BotProcess(env, tmp_path, "first")
    bots.append(first)
    await first.start()
    await first.until("300 deliveries", lambda: fast_api.delivered_count >= 300, 40)
    first.signal(signal.SIGKILL)
    await first.wait(10)
    killed_at = fast_api.delivered_count
    killed = time.monotonic()

    assert 300 <= killed_at < LEADERS, "the kill must come in the middle of the batch"
    in_flight_at_kill = await claimed_chats(db)
    async with db() as session:
        prompts_at_kill = (await session.exec(select(func.count(Prompt.id)))).scalar_one()  # type: ignore[arg-type]
    await expire_leases(db)

    second = BotProcess(env, tmp_path, "second")
    bots.append(second)
    await second.start()
    await second.until("every leader's question", lambda: fast_api.delivered_count >= LEADERS, 40)
    # Let the tick and the sender settle: nothing more may arrive.
    await asyncio.sleep(1.0)
    second.signal(signal.SIGTERM)
    assert await second.wait(20) == 0, second.log()
    done = time.monotonic()

    per_chat = deliveries_per_chat(fast_api, chat_ids)
    twice = per_chat.get(2, 0)
    print(
        f"\ncrash test: seeded {LEADERS} leaders in {seeded - began:.1f} s; killed after "
        f"{killed_at} deliveries ({killed - seeded:.1f} s, {prompts_at_kill} prompts written, "
        f"{len(in_flight_at_kill)} rows claimed); restart finished in {done - killed:.1f} s; "
        f"{twice} chats got the question twice; total {done - began:.1f} s"
    )
    assert per_chat.get(0, 0) == 0, "a leader never got the week's question"
    assert set(per_chat) <= {1, 2}, f"deliveries per chat: {per_chat}"
    assert twice <= IN_FLIGHT, f"{twice} duplicates, more than the in-flight window"
    doubled = {chat for chat in chat_ids if fast_api.delivered_to(chat) == 2}
    assert doubled <= in_flight_at_kill, "a duplicate of a message that was not being sent"
    assert twice == fast_api.repeated_count
    assert fast_api.delivered_count == LEADERS + twice

    async with db() as session:
        per_leader = (
            await session.exec(
                select(Prompt.leader_id, func.count()).group_by(Prompt.leader_id)  # type: ignore[call-overload]
            )
        ).all()
        leaders = (await session.exec(select(func.count(Leader.id)))).scalar_one()  # type: ignore[arg-type]
    assert leaders == LEADERS
    assert len(per_leader) == LEADERS and {n for _leader, n in per_leader} == {1}
    counts = await outbox_counts(db)
    assert counts == {OutboxStatus.SENT: LEADERS}, counts
    assert await claimed_rows(db) == 0
