"""Cold start to ready, and the import time of ``bot.app``.

``python bench/bench_startup.py [--small]``

1. Spawn ``python -m bot run`` (demo mode: the local Bot API in the same process) on a temp
   database that is already migrated, with its own VAR_DIR and ports, and time until /healthz
   on its PORT answers 200. Median of 5 (``--small``: 3); target < 1.5 s.
2. The import time of ``bot.app`` in a fresh interpreter (median of 5), next to an empty
   interpreter's start, and the heaviest imports from ``python -X importtime``.
3. Where the start-up time goes, measured in a fresh interpreter: the steps ``python -m bot
   run`` takes before it serves (settings, migrations check, content and catalogs, handlers).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import (
    PROJECT_ROOT,
    Machine,
    bench_settings,
    bot_env,
    free_port,
    is_small,
    median,
    migrate_db,
    out,
    rss_kib,
    sqlite_url,
    stop_bot,
    verdict,
)

PHASES = r"""
import json, os, sys, time
t0 = time.perf_counter()
marks = {}
import bot.cli
marks["import bot.cli"] = time.perf_counter()
from bot import migrate
from bot.app import build_runtime, serve
from bot.logs import setup_logging
marks["import bot.app, bot.migrate"] = time.perf_counter()
settings = bot.cli._settings()
setup_logging(settings.log_level)
marks["settings"] = time.perf_counter()
migrate.upgrade_if_behind(settings.async_database_url)
marks["migrations (already at head)"] = time.perf_counter()
rt = build_runtime(settings)
marks["content, catalogs, engine"] = time.perf_counter()
import asyncio
import handlers
from bot.app import running_bot
from devkit.localapi import serve_local_api
marks["import handlers, devkit.localapi"] = time.perf_counter()


async def up():
    async with serve_local_api(port=0) as api:
        marks["local Bot API listening"] = time.perf_counter()
        async with running_bot(rt, api.token, api.base_url, web_host="127.0.0.1", web_port=0):
            now = time.perf_counter()
            marks["running_bot: PTB start, command menus, web server, polling"] = now


asyncio.run(up())
last, result = t0, {}
for name, moment in marks.items():
    result[name] = moment - last
    last = moment
print(json.dumps(result))
"""


def python(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=cwd or PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout + done.stderr


def timed_start(directory: Path, url: str) -> tuple[float, int]:
    """Seconds from spawning ``python -m bot run`` to /healthz 200; and VmRSS then (KiB)."""
    port, api_port = free_port(), free_port()
    env = bot_env(directory, url, port, api_port)
    log = (directory / "bot.log").open("ab")
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=directory, env=env, stdout=log, stderr=log
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the bot exited with {proc.returncode}; see {log.name}")
            if time.perf_counter() - began > 60:
                raise RuntimeError("the bot did not answer /healthz within 60 s")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - began
                        break
            except OSError:
                time.sleep(0.01)
        rss, _hwm = rss_kib(proc.pid)
    finally:
        stop_bot(proc)
        log.close()
    return ready, rss


def heaviest_imports(limit: int = 12) -> list[tuple[float, str]]:
    """The modules ``import bot.app`` spends most time on (cumulative, nesting ≤ 2 levels)."""
    text = python("-X", "importtime", "-c", "import bot.app")
    found: list[tuple[float, str]] = []
    for line in text.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if match and len(match.group(3)) <= 4:
            found.append((int(match.group(2)) / 1e6, match.group(4)))
    return sorted(found, reverse=True)[:limit]


def main() -> int:
    small = is_small()
    runs = 3 if small else 5
    machine = Machine("cold start", small)
    machine.header()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        directory = Path(tmp)
        settings = bench_settings(directory)
        migrate_db(settings)
        url = sqlite_url(directory)
        timed_start(directory, url)  # warm the OS file cache once; not counted
        starts = []
        for _ in range(runs):
            ready, rss = timed_start(directory, url)
            starts.append(ready)
            out(f"start to /healthz 200: {ready:.3f} s (VmRSS then {rss / 1024:.0f} MB)")
        env = bot_env(directory, url, free_port(), free_port())
        phases = json.loads(python("-c", PHASES, env=env, cwd=directory).strip().splitlines()[-1])
    start = median(starts)
    out(f"cold start to ready: median {start:.3f} s of {runs} (min {min(starts):.3f} s)")
    code = "import time; t = time.perf_counter(); import bot.app; print(time.perf_counter() - t)"
    imports = [float(python("-c", code).split()[-1]) for _ in range(5)]
    bare = []
    for _ in range(5):
        began = time.perf_counter()
        python("-c", "pass")
        bare.append(time.perf_counter() - began)
    out(
        f"import bot.app in a fresh interpreter: median {median(imports):.3f} s of 5; "
        f"an empty interpreter starts in {median(bare):.3f} s"
    )
    out("heaviest imports under bot.app (cumulative s, python -X importtime):")
    for seconds, name in heaviest_imports():
        out(f"  {seconds:.3f} {name}")
    out("start-up steps of python -m bot run, in a fresh interpreter (s):")
    for name, seconds in phases.items():
        out(f"  {seconds:.3f} {name}")
    out("")
    out("summary (figure | target | met?)")
    out(f"cold start to /healthz 200: median {start:.3f} s | < 1.5 s | {verdict(start < 1.5)}")
    out(f"import bot.app: median {median(imports):.3f} s | (information) | -")
    machine.footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
