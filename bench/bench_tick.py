"""The scheduler tick at scale, and the idle bot's memory.

``python bench/bench_tick.py [--small] [--bulk N]``

A temp SQLite database gets 100,000 leaders (``--small``: 10,000) by bulk insert: 90 % active
with their next question later this week, the rest paused, stopped or enrolling; each active
leader has last week's prompt and its sent outbox row, as a running bot would have. Then:

1. One tick as the scheduler runs it: ``weekly.send_due`` (one look, then
   ``send_due_prompts`` and ``send_due_reminders`` if anything is due) + the outbox depth
   query. Before each timed tick (not timed) five leaders are made due and five prompts'
   reminders fall due: "a handful due". Median of 20 ticks (target < 20 ms); the
   same with nothing due; and, for information, the hourly purge at that scale.
   Then a whole organisation due at once: 20,000 leaders (``--small``: 2,000; ``--bulk N``)
   made due together, and the prompts written per second until none is left (target ≥ 500/s).
2. Resident memory of the idle bot: ``python -m bot run`` in demo mode on that database (its own
   VAR_DIR and ports); VmRSS from /proc/<pid>/status once /healthz answers and a few ticks have
   run (target < 150 MB).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import (
    Machine,
    SqlCounter,
    bench_settings,
    bot_env,
    free_port,
    is_small,
    median,
    migrate_db,
    out,
    percentile,
    quiet_logs,
    rss_kib,
    sqlite_url,
    stop_bot,
    verdict,
)

TICKS = 20
HANDFUL = 5
USER_BASE = 800_000_000


def seed(url: str, n: int, zone: Any, pairs: list[tuple[str, str, int]]) -> dict[str, int]:
    """Bulk-insert n leaders with their people, organisations, last week's prompts and outbox
    rows, through a synchronous engine (Core executemany); returns row counts."""
    from sqlalchemy import create_engine, insert

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
    )
    from bot.services.weekly import iso_week

    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    engine = create_engine(url.replace("+aiosqlite", ""))
    orgs = max(1, n // 100)
    people: list[dict[str, Any]] = []
    leaders: list[dict[str, Any]] = []
    prompts: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for i in range(n):
        chat = USER_BASE + i
        programme_id, role_id, count = pairs[i % len(pairs)]
        roll = rng.random()
        status = (
            LeaderStatus.ACTIVE
            if roll < 0.90
            else LeaderStatus.PAUSED
            if roll < 0.95
            else LeaderStatus.STOPPED
            if roll < 0.98
            else LeaderStatus.ENROLLING
        )
        due = now + dt.timedelta(seconds=rng.uniform(120, 7 * 86400))  # later this week
        local = due.astimezone(zone)
        people.append(
            {
                "id": i + 1,
                "telegram_user_id": chat,
                "locale": "nn" if i % 3 == 0 else "nb",
                "locale_chosen": True,
                "created_at": now - dt.timedelta(days=60),
                "last_seen_at": now - dt.timedelta(days=rng.uniform(0, 40)),
            }
        )
        leaders.append(
            {
                "id": i + 1,
                "person_id": i + 1,
                "organisation_id": i % orgs + 1,
                "role_id": role_id,
                "programme_id": programme_id,
                "status": status,
                "weekday": local.weekday(),
                "minute_of_day": local.hour * 60 + local.minute,
                "timezone": "Europe/Oslo",
                "position": i % count,
                "cycle": 0,
                "next_due_at": due if status == LeaderStatus.ACTIVE else None,
                "paused_until": due + dt.timedelta(days=14)
                if status == LeaderStatus.PAUSED
                else None,
                "enrolled_at": now - dt.timedelta(days=60),
                "created_at": now - dt.timedelta(days=60),
            }
        )
        if status != LeaderStatus.ACTIVE:
            continue
        last = due - dt.timedelta(days=7)
        answered = rng.random() < 0.6
        week = iso_week(last, zone)
        prompts.append(
            {
                "id": len(prompts) + 1,
                "leader_id": i + 1,
                "programme_id": programme_id,
                "theme_id": "t",
                "question_id": "q",
                "role_id": role_id,
                "position": (i % count - 1) % count,
                "cycle": 0,
                "week": week,
                "due_at": last,
                "status": PromptStatus.ANSWERED if answered else PromptStatus.SENT,
                "sent_at": last,
                # sent less than two days ago: the reminder is still ahead
                "reminder_due_at": last + dt.timedelta(hours=48)
                if not answered and last + dt.timedelta(hours=48) > now
                else None,
                "reminders_sent": 0,
                "answer_ciphertext": "gAAAA-a-sealed-answer" if answered else None,
                "answered_at": last + dt.timedelta(hours=3) if answered else None,
                "shared": False,
                "created_at": last,
            }
        )
        rows.append(
            {
                "channel": Channel.TELEGRAM,
                "kind": MessageKind.WEEKLY_QUESTION,
                "dedupe_key": f"prompt:{i + 1}:{week}",
                "person_id": i + 1,
                "chat_id": chat,
                "prompt_id": len(prompts),
                "status": OutboxStatus.SENT,
                "due_at": last,
                "expires_at": last + dt.timedelta(hours=12),
                "attempts": 1,
                "sent_at": last,
                "provider_message_id": 2,
                "created_at": last,
            }
        )
    with engine.begin() as connection:
        connection.execute(
            insert(Organisation.__table__),  # type: ignore[arg-type]
            [
                {"id": o + 1, "name": f"Helseforetak {o + 1}", "created_at": now}
                for o in range(orgs)
            ],
        )
        for table, values in (
            (Person.__table__, people),
            (Leader.__table__, leaders),
            (Prompt.__table__, prompts),
            (OutboxMessage.__table__, rows),
        ):
            for start in range(0, len(values), 10_000):
                connection.execute(insert(table), values[start : start + 10_000])  # type: ignore[arg-type]
    engine.dispose()
    return {
        "organisations": orgs,
        "people": len(people),
        "leaders": len(leaders),
        "prompts": len(prompts),
        "outbox rows": len(rows),
    }


async def make_due(rt: Any, rng: random.Random, active: list[int], prompt_ids: list[int]) -> None:
    """A handful of leaders due now, and a handful of reminders due now (not timed)."""
    from sqlalchemy import update

    from bot.models import Leader, Prompt

    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    async with rt.sessions() as session:
        for _ in range(HANDFUL):
            leader_id = active.pop(rng.randrange(len(active)))
            await session.exec(
                update(Leader).where(Leader.id == leader_id).values(next_due_at=now)  # type: ignore[arg-type]
            )
        for _ in range(HANDFUL):
            prompt_id = prompt_ids.pop(rng.randrange(len(prompt_ids)))
            await session.exec(
                update(Prompt).where(Prompt.id == prompt_id).values(reminder_due_at=now)  # type: ignore[arg-type]
            )
        await session.commit()


CPU: list[float] = []  # process CPU seconds (all threads) of each tick, in order


async def one_tick(rt: Any) -> tuple[float, dict[str, int], int]:
    from bot import outbox
    from bot.services import weekly

    began, cpu = time.perf_counter(), time.process_time()
    due = await weekly.send_due(rt)
    await outbox.depth(rt.sessions)
    CPU.append(time.process_time() - cpu)
    counts = {"sent": due.sent, "missed": due.missed, "resumed": due.resumed}
    return time.perf_counter() - began, counts, due.reminders


async def ticks(rt: Any, n_leaders: int) -> tuple[float, float]:
    """Time 20 ticks with a handful due and 20 with nothing due; returns both medians in ms."""
    from sqlalchemy import exists
    from sqlmodel import select

    from bot.models import Leader, LeaderStatus, Person, Prompt, PromptStatus
    from bot.services.weekly import iso_week

    rng = random.Random(11)
    this_week = iso_week(dt.datetime.now(dt.UTC), rt.settings.zone)
    async with rt.sessions() as session:
        # Leaders whose question this week is still to come (made due now, they get it).
        active = list(
            (
                await session.exec(
                    select(Leader.id).where(
                        Leader.status == LeaderStatus.ACTIVE,  # type: ignore[arg-type]
                        ~exists().where(
                            Prompt.leader_id == Leader.id,  # type: ignore[arg-type]
                            Prompt.week == this_week,  # type: ignore[arg-type]
                        ),
                    )
                )
            ).all()
        )
        open_prompts = list(
            (
                await session.exec(
                    select(Prompt.id)
                    .join(Leader, Leader.id == Prompt.leader_id)  # type: ignore[arg-type]
                    .join(Person, Person.id == Leader.person_id)  # type: ignore[arg-type]
                    .where(
                        Prompt.status == PromptStatus.SENT,  # type: ignore[arg-type]
                        Leader.status == LeaderStatus.ACTIVE,  # type: ignore[arg-type]
                    )
                )
            ).all()
        )
    await one_tick(rt)  # warm-up: statement caches, connections
    sql = SqlCounter(rt.engine)
    busy: list[float] = []
    sent = reminded = 0
    for _ in range(TICKS):
        await make_due(rt, rng, active, open_prompts)
        seconds, counts, reminders = await one_tick(rt)
        busy.append(seconds * 1000)
        sent += counts["sent"]
        reminded += reminders
    busy_sql = sql.take()
    busy_slowest = sql.slowest(TICKS)  # with make_due's own statements
    busy_cpu = [c * 1000 for c in CPU[-TICKS:]]
    idle: list[float] = []
    for _ in range(TICKS):
        seconds, counts, reminders = await one_tick(rt)
        idle.append(seconds * 1000)
    out(
        f"tick, {HANDFUL} leaders and {HANDFUL} reminders due: median {median(busy):.1f} ms, "
        f"p90 {percentile(busy, 90):.1f} ms, max {max(busy):.1f} ms "
        f"({sent} questions and {reminded} reminders written in {TICKS} ticks)"
    )
    out(
        f"tick, nothing due: median {median(idle):.1f} ms, p90 {percentile(idle, 90):.1f} ms, "
        f"max {max(idle):.1f} ms"
    )
    idle_sql = sql.take()
    idle_slowest = sql.slowest(TICKS)
    idle_cpu = [c * 1000 for c in CPU[-TICKS:]]
    out(
        f"tick: CPU time of the process (all threads), median: {median(busy_cpu):.1f} ms with a "
        f"handful due, {median(idle_cpu):.1f} ms with nothing due (wall minus CPU is waiting)"
    )
    per_leader = (median(busy) - median(idle)) / (2 * HANDFUL)
    out(
        f"tick: about {per_leader:.1f} ms per question or reminder written (median difference / 10)"
    )
    out(f"tick, nothing due: SQL per tick {SqlCounter.describe(idle_sql, TICKS)}")
    busy_sql.subtract(idle_sql)  # what the due work added
    out(
        f"tick: SQL per question or reminder written "
        f"{SqlCounter.describe(busy_sql, max(1, sent + reminded))}"
    )
    out(f"tick, nothing due: time in the database driver per tick: {idle_slowest}")
    out(f"tick, a handful due (and setting them due): driver time per tick: {busy_slowest}")
    return median(busy), median(idle)


async def bulk_due(rt: Any, n: int) -> float:
    """A whole organisation due at once: ``n`` leaders whose question this week is still to
    come made due now, then the tick's ``send_due_prompts`` until nothing more is written.
    Returns prompts written per second (``--bulk N`` for another n; 0: skip)."""
    from sqlalchemy import exists, update
    from sqlmodel import select

    from bot.models import Leader, LeaderStatus, Prompt
    from bot.services import weekly
    from bot.services.weekly import iso_week

    if n <= 0:
        return 0.0
    this_week = iso_week(dt.datetime.now(dt.UTC), rt.settings.zone)
    async with rt.sessions() as session:
        ids = list(
            (
                await session.exec(
                    select(Leader.id)
                    .where(
                        Leader.status == LeaderStatus.ACTIVE,  # type: ignore[arg-type]
                        Leader.next_due_at > dt.datetime.now(dt.UTC),  # type: ignore[arg-type,operator]
                        ~exists().where(
                            Prompt.leader_id == Leader.id,  # type: ignore[arg-type]
                            Prompt.week == this_week,  # type: ignore[arg-type]
                        ),
                    )
                    .limit(n)
                )
            ).all()
        )
        due = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
        for start in range(0, len(ids), 500):
            await session.exec(
                update(Leader)
                .where(Leader.id.in_(ids[start : start + 500]))  # type: ignore[union-attr]
                .values(next_due_at=due)
            )
        await session.commit()
    written = calls = 0
    began = time.perf_counter()
    while True:
        counts = await weekly.send_due_prompts(rt)
        calls += 1
        written += counts["sent"] + counts["missed"]
        if counts["sent"] + counts["missed"] == 0:
            break
    took = time.perf_counter() - began
    rate = written / took if took > 0 else 0.0
    out(
        f"a whole organisation due at once: {len(ids)} leaders made due, {written} prompts "
        f"written in {took:.2f} s by {calls} calls of send_due_prompts = {rate:.0f} prompts/s"
    )
    return rate


async def purge(rt: Any) -> None:
    """The hourly part of the tick, once, for information."""
    from bot import outbox
    from bot.services.dispatches import purge_old

    began = time.perf_counter()
    await outbox.purge_finished(rt.sessions, dt.timedelta(days=rt.settings.retention_days))
    await purge_old(rt)
    took = (time.perf_counter() - began) * 1000
    out(f"hourly purge (outbox rows, dispatches, people): {took:.1f} ms")


def wait_healthy(port: int, proc: subprocess.Popen[bytes], limit: float = 60.0) -> float:
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"the bot exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError("the bot did not answer /healthz in time")


def idle_memory(directory: Path, url: str) -> float:
    """Start ``python -m bot run`` on the database; VmRSS in MB once idle."""
    port, api_port = free_port(), free_port()
    env = bot_env(directory, url, port, api_port)
    log = (directory / "bot.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=directory,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = wait_healthy(port, proc)
        time.sleep(5.0)  # a few ticks over the big tables, the first hourly purge
        rss, hwm = rss_kib(proc.pid)
        time.sleep(5.0)
        rss_later, hwm_later = rss_kib(proc.pid)
    finally:
        stop_bot(proc)
        log.close()
    out(
        f"idle bot (python -m bot run, demo): ready after {ready:.2f} s; VmRSS {rss / 1024:.1f} MB "
        f"5 s later, {rss_later / 1024:.1f} MB 10 s later; peak (VmHWM) {hwm_later / 1024:.1f} MB"
    )
    del hwm
    return max(rss, rss_later) / 1024


def bulk_size(small: bool) -> int:
    """``--bulk N``: leaders due at once for the prompts-per-second figure (default 20,000;
    ``--small``: 2,000)."""
    if "--bulk" in sys.argv:
        return int(sys.argv[sys.argv.index("--bulk") + 1])
    return 2_000 if small else 20_000


async def main() -> int:
    from bot.app import build_runtime

    small = is_small()
    n = 10_000 if small else 100_000
    quiet_logs()
    machine = Machine("tick at scale", small)
    machine.header()
    with tempfile.TemporaryDirectory(prefix="bench-tick-") as tmp:
        directory = Path(tmp)
        settings = bench_settings(directory)
        await asyncio.to_thread(migrate_db, settings)
        rt = build_runtime(settings)
        pairs = [
            (programme.id, role.id, len(programme.questions_for(role.id)))
            for programme in rt.content.programmes.values()
            for role in programme.roles
            if programme.questions_for(role.id)
        ]
        began = time.perf_counter()
        counts = await asyncio.to_thread(seed, settings.async_database_url, n, settings.zone, pairs)
        size = os.path.getsize(directory / "bench.db") / 1e6
        out(
            f"seeded in {time.perf_counter() - began:.1f} s: "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
            + f"; database {size:.0f} MB"
        )
        busy, idle = await ticks(rt, n)
        await purge(rt)
        bulk = await bulk_due(rt, bulk_size(small))
        await rt.engine.dispose()
        rss = await asyncio.to_thread(idle_memory, directory, sqlite_url(directory))
    out("")
    out("summary (figure | target | met?)")
    out(
        f"tick with {n} leaders, a handful due: median {busy:.1f} ms (nothing due "
        f"{idle:.1f} ms) | < 20 ms | {verdict(busy < 20)}"
    )
    if bulk:
        ok = verdict(bulk >= 500)
        out(f"prompts written per second, many due at once: {bulk:.0f} | ≥ 500 | {ok}")
    out(f"idle bot resident memory: {rss:.1f} MB | < 150 MB | {verdict(rss < 150)}")
    machine.footer()
    return 0


if __name__ == "__main__":
    from bot import eventloop  # the loop `python -m bot run` serves on

    sys.exit(eventloop.run(main()))
