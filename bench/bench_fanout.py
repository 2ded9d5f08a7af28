"""Fan-out: many leaders due at once, sent through the real tick and the one sender.

``python bench/bench_fanout.py [--small]``

N leaders (Organisation, Person, Leader rows) with ``next_due_at`` in the past; the real
``weekly.send_due_prompts`` writes the prompts and their queued rows, and the one sender
(``bot.app.make_sender``: the settings' limits, 30 msg/s overall and 1 msg/s per chat, through
the shared ``TelegramBudget``; each question rendered at send time) sends them to the local Bot
API, which enforces 30 msg/s overall and 1 msg/s per chat with 429 answers.

Figures: achieved rate as a ratio of 30/s (target ≥ 0.95), 429 answers (target 0), duplicate
deliveries (``repeated_count``) and losses (target 0). N = 5,000 (``--small``: 600).
(The comparison with PTB's ``AIORateLimiter`` alone is in bench/RESULTS.md's earlier runs; the
bot no longer depends on it.) With callers answered at the same time: ``bench_budget.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from common import Machine, bench_settings, is_small, migrate_db, out, quiet_logs, verdict

TARGET_RATE = 30.0
CHAT_BASE = 900_000_000


async def seed_leaders(rt: Any, n: int) -> list[int]:
    """N active leaders due two minutes ago, one chat each; returns the chat ids."""
    from sqlalchemy import insert

    from bot.models import Leader, LeaderStatus, Organisation, Person

    pairs = [
        (programme.id, role.id)
        for programme in rt.content.programmes.values()
        for role in programme.roles
        if programme.questions_for(role.id)
    ]
    now = dt.datetime.now(dt.UTC)
    due = (now - dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
    local = due.astimezone(rt.settings.zone)
    orgs = max(1, n // 100)
    chats = [CHAT_BASE + i for i in range(n)]
    async with rt.sessions() as session:
        await session.exec(
            insert(Organisation.__table__),  # type: ignore[arg-type]
            params=[
                {"id": o + 1, "name": f"Helseforetak {o + 1}", "created_at": now}
                for o in range(orgs)
            ],
        )
        await session.exec(
            insert(Person.__table__),  # type: ignore[arg-type]
            params=[
                {
                    "id": i + 1,
                    "telegram_user_id": chat,
                    "locale": "nn" if i % 3 == 0 else "nb",
                    "locale_chosen": True,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for i, chat in enumerate(chats)
            ],
        )
        leaders = []
        for i in range(n):
            programme_id, role_id = pairs[i % len(pairs)]
            leaders.append(
                {
                    "id": i + 1,
                    "person_id": i + 1,
                    "organisation_id": i % orgs + 1,
                    "role_id": role_id,
                    "programme_id": programme_id,
                    "status": LeaderStatus.ACTIVE,
                    "weekday": local.weekday(),
                    "minute_of_day": local.hour * 60 + local.minute,
                    "timezone": rt.settings.timezone,
                    "position": i % 7,
                    "cycle": 0,
                    "next_due_at": due,
                    "enrolled_at": now - dt.timedelta(days=30),
                    "created_at": now - dt.timedelta(days=30),
                }
            )
        await session.exec(insert(Leader.__table__), params=leaders)  # type: ignore[arg-type]
        await session.commit()
    return chats


def flood_api() -> Any:
    from devkit.localapi import serve_local_api

    return serve_local_api(flood_limits=True, overall_per_second=30, per_chat_per_second=1)


def start_chats(api: Any, chats: list[int]) -> None:
    """Every leader has written to the bot once, so Telegram lets the bot write to them."""
    for chat in chats:
        api.user_message(chat, "/start", first_name="Leder", language_code="nb")


def deliveries(api: Any) -> list[float]:
    return sorted(c.at for c in api.calls if c.method == "sendMessage" and c.status == 200)


def refusals(api: Any) -> list[float]:
    return sorted(c.at for c in api.calls if c.method == "sendMessage" and c.status == 429)


def timeline(prefix: str, api: Any, began: float) -> None:
    """When the 429s came, in seconds from the start (the first 20)."""
    moments = refusals(api)
    if moments:
        shown = ", ".join(f"{m - began:.1f}" for m in moments[:20])
        more = f" … ({len(moments)} in all)" if len(moments) > 20 else ""
        out(f"{prefix}: 429 answers at s {shown}{more}")
        windows: dict[int, int] = {}
        for moment in moments:
            windows[int((moment - began) // 30)] = windows.get(int((moment - began) // 30), 0) + 1
        spread = ", ".join(f"{w * 30}–{w * 30 + 30} s: {c}" for w, c in sorted(windows.items()))
        out(f"{prefix}: 429 answers per 30 s: {spread}")


def max_in_one_second(times: list[float]) -> int:
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def report_rate(prefix: str, n: int, times: list[float], began: float) -> float:
    """Print the rate figures; returns the steady ratio (first to last delivery)."""
    if len(times) < 2:
        out(f"{prefix}: fewer than two deliveries; no rate")
        return 0.0
    span = times[-1] - times[0]
    steady = (len(times) - 1) / span if span > 0 else float("inf")
    overall = len(times) / (times[-1] - began)
    out(
        f"{prefix}: {len(times)} delivered, first after {times[0] - began:.2f} s, "
        f"last after {times[-1] - began:.1f} s"
    )
    out(
        f"{prefix}: rate first→last delivery {steady:.2f} msg/s = {steady / TARGET_RATE:.3f} of "
        f"30/s; from the start {overall:.2f} msg/s = {overall / TARGET_RATE:.3f} of 30/s"
    )
    out(f"{prefix}: most deliveries in any 1 s window: {max_in_one_second(times)}")
    gaps = [b - a for a, b in pairwise(times) if b - a > 0.1]
    out(
        f"{prefix}: pauses between deliveries longer than 0.1 s: {len(gaps)}, "
        f"{sum(gaps):.1f} s in all (at 30/s the gap is 0.033 s)"
    )
    return steady / TARGET_RATE


async def sender_variant(directory: Path, n: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from bot.app import build_runtime, make_sender
    from bot.models import Channel, OutboxMessage, OutboxStatus
    from bot.services import weekly
    from bot.sms import ConsoleSmsProvider

    settings = bench_settings(directory)
    await asyncio.to_thread(migrate_db, settings)
    rt = build_runtime(settings)
    out(
        f"settings: OUTBOX_RATE_PER_SECOND={settings.outbox_rate_per_second:g}, "
        f"OUTBOX_CHAT_RATE_PER_SECOND={settings.outbox_chat_rate_per_second:g}, "
        f"OUTBOX_IN_FLIGHT={settings.outbox_in_flight}, "
        f"OUTBOX_TICK_SECONDS={settings.outbox_tick_seconds:g}"
    )
    began = time.perf_counter()
    chats = await seed_leaders(rt, n)
    out(f"sender: seeded {n} due leaders in {time.perf_counter() - began:.2f} s")
    figures: dict[str, Any] = {}
    async with flood_api() as api:
        start_chats(api, chats)
        # As running_bot makes it: the one sender, the shared budget, rendering at send time.
        rt.sender = make_sender(rt, api.token, api.base_url, ConsoleSmsProvider())
        telegram: Any = rt.sender.adapter(Channel.TELEGRAM)
        await telegram.bot.initialize()
        wall0 = time.time()
        t0 = time.perf_counter()
        rt.sender.start()
        counts = await weekly.send_due_prompts(rt)  # what the tick does
        tick = time.perf_counter() - t0
        out(
            f"sender: send_due_prompts wrote {counts['sent']} prompts in {tick:.2f} s "
            f"({counts['sent'] / tick:.0f} prompts/s; missed {counts['missed']})"
        )
        stats = rt.sender.stats(Channel.TELEGRAM)
        deadline = time.perf_counter() + n / TARGET_RATE * 2 + 60
        while stats.sent + stats.failed + stats.expired < counts["sent"]:
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.25)
        # Every row is final now: nothing is in flight, so nothing more can arrive.
        await rt.sender.stop(deadline=5)
        times = deliveries(api)
        figures["ratio"] = report_rate("sender", n, times, wall0)
        timeline("sender", api, wall0)
        async with rt.sessions() as session:
            statuses = dict(
                (
                    await session.exec(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                    )
                ).all()
            )
        lost = sum(1 for chat in chats if api.delivered_to(chat) == 0)
        figures.update(
            too_many=api.too_many_requests, repeated=api.repeated_count, lost=lost, sent=len(times)
        )
        out(
            f"sender: 429 answers {api.too_many_requests}, throttled pauses {stats.throttled}, "
            f"duplicates {api.repeated_count}, lost {lost} (chats with no message), rows by "
            f"status {statuses}"
        )
        out(
            f"sender: sent {stats.sent}, retried {stats.retried}, failed {stats.failed}, expired "
            f"{stats.expired}; all {n} sent: {statuses.get(OutboxStatus.SENT, 0) == n}"
        )
        await telegram.bot.shutdown()
    await rt.engine.dispose()
    return figures


async def main() -> int:
    small = is_small()
    n = 600 if small else 5_000
    quiet_logs()
    logging.getLogger("bot.sender").setLevel(logging.ERROR)  # one line per 429; counted instead
    machine = Machine("fan-out", small)
    machine.header()
    out(f"leaders due at once: {n}; local Bot API limits: 30 msg/s overall, 1 msg/s per chat")
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        ours = await sender_variant(Path(tmp), n)
    variants = [("the one sender", ours)]
    out("")
    out("summary (figure | target | met?)")
    for name, figures in variants:
        ok_rate = figures["ratio"] >= 0.95
        ok_429 = figures["too_many"] == 0
        ok_loss = figures["repeated"] == 0 and figures["lost"] == 0
        out(f"{name}: rate ratio {figures['ratio']:.3f} | ≥ 0.95 | {verdict(ok_rate)}")
        out(f"{name}: 429 answers {figures['too_many']} | 0 | {verdict(ok_429)}")
        out(
            f"{name}: duplicates {figures['repeated']}, lost {figures['lost']} | 0, 0 | "
            f"{verdict(ok_loss)}"
        )
    machine.footer()
    return 0


if __name__ == "__main__":
    from bot import eventloop  # the loop `python -m bot run` serves on

    sys.exit(eventloop.run(main()))
