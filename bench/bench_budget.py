"""One Telegram budget: callers open advice links while a 5,000-leader fan-out is going out.

``python bench/bench_budget.py [--small]``

The real bot (``bot.app.running_bot``) runs against the local Bot API *with Telegram's limits
enforced* (30 messages/s for the bot, 1/s per chat: more gets 429) on SQLite in a temp dir.
5,000 leaders (``--small``: 600) are due when the bot starts; its tick writes their questions
and the one sender starts the fan-out. Once 150 are out, callers open advice links at 25 per
second, each from a new chat, for 40 s (``--small``: 15 s): every opening is a direct reply that
draws on the same budget as the fan-out, ahead of it.

Figures: 429 answers from the local Bot API (target 0: the two budgets of before could send
58.5/s together), reply latency (sending ``/start a_…`` → the advice readable, p50/p99), the
fan-out's share of the messages while the callers were served, and the fan-out's own rate once
they are done (as a fraction of 30/s). The local Bot API and the callers run in a child process.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from bench_deeplink import make_dispatches, open_links
from bench_fanout import TARGET_RATE, seed_leaders
from common import (
    Machine,
    bench_settings,
    free_port,
    is_small,
    median,
    migrate_db,
    out,
    percentile,
    quiet_logs,
    verdict,
)

RATE = 25.0
USER_BASE = 700_000_000


def user_side(port: int, conn: Connection) -> None:
    asyncio.run(_user_side(port, conn))


async def _user_side(port: int, conn: Connection) -> None:
    from devkit.localapi import serve_local_api

    quiet_logs()
    async with serve_local_api(
        port=port,
        flood_limits=True,
        overall_per_second=30,
        per_chat_per_second=1,
        max_recorded_calls=200_000,
    ) as api:
        conn.send(("ready", api.token, api.base_url, api.url))
        while True:
            command, *args = await asyncio.to_thread(conn.recv)
            if command == "start_chats":
                for chat in args[0]:
                    api.user_message(chat, "/start", first_name="Leder", language_code="nb")
                # Those /start updates were handled long ago: drop them.
                api._updates.clear()
                conn.send(("ok",))
            elif command == "open":
                conn.send(await open_links(api.url, *args))
            elif command == "calls":
                conn.send(
                    [
                        (c.method, c.status, c.at, c.params.get("chat_id"))
                        for c in api.calls
                        if c.method == "sendMessage"
                    ]
                )
            elif command == "stats":
                conn.send((api.too_many_requests, api.repeated_count, api.delivered_count))
            else:
                break


async def main() -> int:
    from bot.app import build_runtime, running_bot
    from bot.models import Channel

    small = is_small()
    leaders = 600 if small else 5_000
    seconds = 15 if small else 40
    openings = int(RATE * seconds)
    quiet_logs()
    logging.getLogger("bot.sender").setLevel(logging.ERROR)
    machine = Machine("one Telegram budget: replies during a fan-out", small)
    machine.header()
    out(
        f"{leaders} leaders due at once; {openings} link openings at {RATE:g}/s meanwhile; "
        "local Bot API limits 30 msg/s overall, 1 msg/s per chat (429 beyond)"
    )
    context = multiprocessing.get_context("spawn")
    conn, child_conn = context.Pipe()
    child = context.Process(target=user_side, args=(free_port(), child_conn), daemon=True)
    child.start()
    try:
        _ready, token, base_url, _url = await asyncio.to_thread(conn.recv)
        with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp:
            settings = bench_settings(Path(tmp))
            await asyncio.to_thread(migrate_db, settings)
            rt = build_runtime(settings)
            payloads = await make_dispatches(rt, openings)  # made before, as a clinic would
            chats = await seed_leaders(rt, leaders)
            conn.send(("start_chats", chats))
            await asyncio.to_thread(conn.recv)
            wall0 = time.time()
            # The bot starts; its first tick finds every leader due and the fan-out begins.
            async with running_bot(rt, token, base_url, shutdown_deadline=2) as running:
                assert running.rt.sender is not None
                stats = running.rt.sender.stats(Channel.TELEGRAM)
                while stats.sent < 150:  # the fan-out runs at full speed for a while first
                    await asyncio.sleep(0.1)
                opened_at = time.time()
                conn.send(("open", payloads, USER_BASE, RATE))
                complete, _first, failures, achieved, _cpu = await asyncio.to_thread(conn.recv)
                served_at = time.time()
                deadline = time.monotonic() + leaders / TARGET_RATE * 2 + 60
                while stats.sent < leaders and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                done_at = time.time()
                conn.send(("calls",))
                calls = await asyncio.to_thread(conn.recv)
                conn.send(("stats",))
                too_many, repeated, delivered = await asyncio.to_thread(conn.recv)
                budget = running.rt.budget
            await rt.engine.dispose()
    finally:
        conn.send(("stop",))
        child.join(timeout=10)

    leader_chats = set(chats)
    ok = [(at, chat) for method, status, at, chat in calls if status == 200]
    fan = sorted(at for at, chat in ok if chat in leader_chats)
    replies = sorted(at for at, chat in ok if chat not in leader_chats)
    during = [at for at in fan if opened_at <= at <= served_at]
    during_replies = [at for at in replies if opened_at <= at <= served_at]
    span = served_at - opened_at
    share = len(during) / max(1, len(during) + len(during_replies))
    before = [at for at in fan if at < opened_at]
    after = [at for at in fan if at > served_at]
    after_rate = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 1 else 0.0
    ms = [v * 1000 for v in complete]
    out(f"openings sent at {achieved:.1f}/s; failures {failures}; {len(ms)} answered")
    out(
        f"replies: complete advice p50 {median(ms):.1f} ms, p90 {percentile(ms, 90):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms"
    )
    out(
        f"while callers were served ({span:.1f} s): {len(during_replies)} replies "
        f"({len(during_replies) / span:.1f}/s) and {len(during)} fan-out messages "
        f"({len(during) / span:.1f}/s): the fan-out's share {share:.2f}"
    )
    if len(before) > 1:
        rate_before = (len(before) - 1) / (before[-1] - before[0])
        out(f"fan-out alone before the callers: {rate_before:.1f} msg/s ({len(before)} messages)")
    out(
        f"fan-out alone after the callers: {after_rate:.2f} msg/s = "
        f"{after_rate / TARGET_RATE:.3f} of 30/s; all {len(fan)} of {leaders} delivered "
        f"{done_at - wall0:.0f} s after the tick"
    )
    if budget is not None:
        waited = budget.stats.reply_wait_seconds / max(1, budget.stats.replies) * 1000
        out(f"budget: replies waited {waited:.1f} ms on average for their slot")
    out(f"local Bot API: 429 answers {too_many}, duplicates {repeated}, delivered {delivered}")
    p99 = percentile(ms, 99)
    out("")
    out("summary (figure | target | met?)")
    out(f"429 answers during the fan-out with replies | 0 | {verdict(too_many == 0)}")
    out(
        f"reply p99 at {RATE:g}/s during the fan-out: {p99:.1f} ms | < 100 ms | "
        f"{verdict(p99 < 100 and failures == 0)}"
    )
    out(
        f"fan-out's share while replies are served: {share:.2f} | replies first "
        f"(≈ {(TARGET_RATE * 0.95 - RATE) / (TARGET_RATE * 0.95):.2f} left for it) | "
        f"{verdict(len(during_replies) >= len(ms) - failures)}"
    )
    out(
        f"fan-out rate once alone: {after_rate / TARGET_RATE:.3f} of 30/s | ≥ 0.9 | "
        f"{verdict(after_rate / TARGET_RATE >= 0.9)}"
    )
    out(
        f"fan-out complete, no duplicates: {len(fan)}/{leaders}, {repeated} | all, 0 | "
        f"{verdict(len(set(c for _a, c in ok if c in leader_chats)) == leaders and repeated == 0)}"
    )
    machine.footer()
    return 0


if __name__ == "__main__":
    from bot import eventloop  # the loop `python -m bot run` serves on

    sys.exit(eventloop.run(main()))
