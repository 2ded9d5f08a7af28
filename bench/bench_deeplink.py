"""Deep link → advice: callers open their advice links, each from a new chat, at a steady rate.

``python bench/bench_deeplink.py [--small]``

The real bot (``bot.app.running_bot``: long polling, handlers, the outbox sender and the tick)
runs against the local Bot API (no flood limits there; the bot's own Telegram budget still
applies) on SQLite in a temp dir. N dispatches are made with the real services (topics, locales,
notes and check-ins varied); then N simulated callers, each a different user id, send
``/start a_<token>`` at 50 openings per second (open loop: one every 20 ms, whether or not the
earlier ones were answered). The latency of one opening is the time from sending the update to
the whole advice (its last message, the one with the buttons) being readable on the user side.
Target: p99 < 100 ms. N = 1,000 (``--small``: 150).

A second, diagnostic phase opens N/5 more links at 25 per second: a load just under the 30 msg/s
that the bot's Telegram budget allows (Telegram's limit for a bot's messages, replies and queued
sends together), to separate the processing time from the queue that 50 replies a second must form.

Diagnosis only: ``--profile`` runs the bot's side of the first phase under cProfile and prints
where its CPU goes, by library and by function (the profiler slows it: read shares, not times).
``--no-reply-limit`` gives the bot's Telegram budget a limit of 1,000/s, to show
how much of the latency is that limit's queue.

The local Bot API and the simulated callers run in a child process (as Telegram and its users
are elsewhere), so the bot's process does only the bot's work; its CPU time per opening is
reported. Both processes share the machine's cores with whatever else is running.
"""

from __future__ import annotations

import asyncio
import cProfile
import multiprocessing
import pstats
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common import (
    Machine,
    SqlCounter,
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

RATE = 50.0
SLOW_RATE = 25.0
USER_BASE = 600_000_000


async def make_dispatches(rt: Any, n: int) -> list[str]:
    """N dispatches through the real validation and creation; returns their start payloads."""
    from bot.services import dispatches

    topics = sorted(rt.content.advice.values(), key=lambda t: t.id)
    payloads = []
    for i in range(n):
        topic = topics[i % len(topics)]
        data: dict[str, Any] = {"topic": topic.id, "locale": "nn" if i % 4 == 0 else "nb"}
        if i % 2 == 0 and topic.tailoring.checkin_hours:
            data["checkin_hours"] = topic.tailoring.checkin_hours[0]
        if i % 3 == 0 and topic.tailoring.note:
            data["note"] = "Ring igjen om feberen ikke går ned innen i morgen tidlig."
        created = await dispatches.create(rt, dispatches.validate(data, rt))
        payloads.append(created.deep_link.split("?start=", 1)[1])
    return payloads


async def open_links(
    api_url: str, payloads: list[str], first_user: int, rate: float
) -> tuple[list[float], list[float], int, float, float]:
    """Open every link from its own chat at ``rate`` per second.

    Returns (latency to the complete advice, latency to its first message, failures, the rate
    at which the openings were actually sent, CPU seconds of this process meanwhile).
    """
    import aiohttp

    from devkit.localapi import LocalUser

    connector = aiohttp.TCPConnector(limit=0)
    complete: list[float] = []
    first: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        users = [
            LocalUser(api_url, first_user + i, first_name="Innringer", session=session)
            for i in range(len(payloads))
        ]
        for user in users:
            await user.open()
        sent_at: list[float] = []

        async def one(user: LocalUser, payload: str) -> None:
            nonlocal failures
            began = time.perf_counter()
            sent_at.append(began)
            try:
                await user.writes(f"/start {payload}")
                seen_first = None
                while True:
                    replies = await user.replies(timeout=60, quiet=0)
                    now = time.perf_counter()
                    seen_first = seen_first or now
                    if any(m.buttons for m in replies):
                        break
                ok = any(
                    b.callback_data and b.callback_data.startswith("a:worse:")
                    for m in replies
                    for row in m.buttons
                    for b in row
                )
            except AssertionError:
                failures += 1
                return
            if not ok:
                failures += 1
                return
            complete.append(now - began)
            first.append(seen_first - began)

        start = time.perf_counter()
        cpu0 = time.process_time()
        tasks = []
        for i, (user, payload) in enumerate(zip(users, payloads, strict=True)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(user, payload)))
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu0
        span = max(sent_at) - min(sent_at) if len(sent_at) > 1 else 0.0
        achieved = (len(sent_at) - 1) / span if span > 0 else float("nan")
    return complete, first, failures, achieved, cpu


def user_side(port: int, conn: Connection) -> None:
    """The child process: the local Bot API on ``port`` and the callers, on command."""
    asyncio.run(_user_side(port, conn))


async def _user_side(port: int, conn: Connection) -> None:
    from devkit.localapi import serve_local_api

    quiet_logs()
    async with serve_local_api(port=port) as api:
        conn.send(("ready", api.token, api.base_url, api.url))
        while True:
            command, *args = await asyncio.to_thread(conn.recv)
            if command == "open":
                conn.send(await open_links(api.url, *args))
            elif command == "stats":
                conn.send(api.stats())
            else:
                break


def describe(prefix: str, complete: list[float], first: list[float]) -> None:
    ms = [v * 1000 for v in complete]
    out(
        f"{prefix}: complete advice p50 {median(ms):.1f} ms, p90 {percentile(ms, 90):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms (n={len(ms)})"
    )
    fm = [v * 1000 for v in first]
    out(f"{prefix}: first message p50 {median(fm):.1f} ms, p99 {percentile(fm, 99):.1f} ms")
    tenth = max(1, len(ms) // 10)
    out(
        f"{prefix}: p50 of the first tenth {median(ms[:tenth]):.1f} ms, "
        f"of the last tenth {median(ms[-tenth:]):.1f} ms (growth means a queue)"
    )


async def phase(
    conn: Connection,
    payloads: list[str],
    first_user: int,
    rate: float,
    sql: SqlCounter,
    profile: bool = False,
) -> tuple[list[float], list[float], int]:
    """One round of openings by the child; prints the figures and the bot's CPU per opening."""
    sql.take()
    # The event loop's thread's CPU time: waiting in epoll is not counted, and neither is the
    # database driver's thread (aiosqlite), which the bot's total CPU above includes.
    profiler = cProfile.Profile(time.thread_time) if profile else None
    cpu0 = time.process_time()
    if profiler is not None:
        profiler.enable()
    conn.send(("open", payloads, first_user, rate))
    complete, first, failures, achieved, user_cpu = await asyncio.to_thread(conn.recv)
    if profiler is not None:
        profiler.disable()
    cpu = time.process_time() - cpu0
    out(f"at {rate:g}/s: openings sent at {achieved:.1f}/s, failures {failures}")
    out(
        f"at {rate:g}/s: CPU per opening: bot process {cpu / len(payloads) * 1000:.1f} ms, "
        f"local Bot API and callers {user_cpu / len(payloads) * 1000:.1f} ms"
    )
    counts = sql.take()
    per = len(payloads)
    out(
        f"at {rate:g}/s: SQL per opening (with the tick and senders meanwhile): "
        + SqlCounter.describe(counts, per)
    )
    describe(f"at {rate:g}/s", complete, first)
    if profiler is not None:
        print_profile(profiler, per)
    return complete, first, failures


def _library(filename: str) -> str:
    """``telegram``, ``sqlalchemy``, ``bot``, ``asyncio`` … for a profiled function's file."""
    path = filename.replace("\\", "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for own in ("/bot/", "/handlers/", "/devkit/"):
        if own in path:
            return own.strip("/")
    if path.startswith("~") or path.startswith("<"):
        return "builtins"
    if "/lib/python" in path:
        folder = path.rsplit("/", 2)[-2]
        return "stdlib" if folder.startswith("python3") else folder
    return "other"


def print_profile(profiler: cProfile.Profile, per: int) -> None:
    """Own time by library, then the functions with the most own time (per opening)."""
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = vars(stats)["stats"]
    by_library: Counter[str] = Counter()
    rows = []
    for (filename, line, name), (_cc, _nc, own, cumulative, _callers) in raw.items():
        by_library[_library(filename)] += own
        rows.append((own, cumulative, f"{filename.rsplit('/', 1)[-1]}:{line}({name})"))
    total = sum(by_library.values()) or 1.0
    out(f"profile (cProfile, event loop thread CPU: {1000 * total / per:.1f} ms per opening):")
    for library, own in by_library.most_common(12):
        out(f"  {1000 * own / per:6.2f} ms {100 * own / total:5.1f} %  {library}")
    out("  functions with the most own time (ms per opening, own / cumulative):")
    for own, cumulative, where in sorted(rows, reverse=True)[:15]:
        out(f"  {1000 * own / per:6.3f} / {1000 * cumulative / per:6.3f}  {where}")


async def main() -> int:
    from bot.app import build_runtime, running_bot

    small = is_small()
    n = 150 if small else 1_000
    quiet_logs()
    unlimited = "--no-reply-limit" in sys.argv
    if unlimited:
        out("DIAGNOSIS: the bot's Telegram budget allows 1,000 msg/s in this run")
    machine = Machine("deep link → advice", small)
    machine.header()
    out(f"openings: {n} at {RATE:g}/s, then {n // 5} at {SLOW_RATE:g}/s (diagnostic)")
    context = multiprocessing.get_context("spawn")
    conn, child_conn = context.Pipe()
    child = context.Process(target=user_side, args=(free_port(), child_conn), daemon=True)
    child.start()
    try:
        _ready, token, base_url, _url = await asyncio.to_thread(conn.recv)
        with tempfile.TemporaryDirectory(prefix="bench-deeplink-") as tmp:
            settings = bench_settings(Path(tmp))
            if unlimited:
                settings = settings.model_copy(update={"outbox_rate_per_second": 1000.0})
            await asyncio.to_thread(migrate_db, settings)
            rt = build_runtime(settings)
            async with running_bot(rt, token, base_url, shutdown_deadline=2) as running:
                began = time.perf_counter()
                payloads = await make_dispatches(running.rt, n + n // 5)
                made = time.perf_counter() - began
                out(
                    f"dispatches: {len(payloads)} made in {made:.2f} s "
                    f"({made / len(payloads) * 1000:.1f} ms each)"
                )
                sql = SqlCounter(rt.engine)
                complete, _first, failures = await phase(
                    conn, payloads[:n], USER_BASE, RATE, sql, profile="--profile" in sys.argv
                )
                slow, _slow_first, slow_failures = await phase(
                    conn, payloads[n:], USER_BASE + n, SLOW_RATE, sql
                )
                conn.send(("stats",))
                out(f"local Bot API: {await asyncio.to_thread(conn.recv)}")
            await rt.engine.dispose()
    finally:
        conn.send(("stop",))
        child.join(timeout=10)
    p99 = percentile(complete, 99) * 1000
    slow_p99 = percentile(slow, 99) * 1000
    out("")
    out("summary (figure | target | met?)")
    out(
        f"deep link → advice at {RATE:g}/s: p50 {median(complete) * 1000:.1f} ms, "
        f"p99 {p99:.1f} ms | p99 < 100 ms | {verdict(p99 < 100 and failures == 0)}"
    )
    out(
        f"deep link → advice at {SLOW_RATE:g}/s (diagnostic): p50 {median(slow) * 1000:.1f} ms, "
        f"p99 {slow_p99:.1f} ms | p99 < 100 ms | {verdict(slow_p99 < 100 and slow_failures == 0)}"
    )
    machine.footer()
    return 0


if __name__ == "__main__":
    from bot import eventloop  # the loop `python -m bot run` serves on

    sys.exit(eventloop.run(main()))
