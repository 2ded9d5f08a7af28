"""Cold start to ready, as a deployment starts, and where the time goes.

``python bench/bench_startup.py [--small]``

1. Production mode: spawn ``python -m bot run`` with a token (``TELEGRAM_API_BASE_URL`` points at
   the local Bot API, run as its own process like Telegram), SQLite already migrated, its own
   VAR_DIR and ports, ``SMS_PROVIDER=none``; time until /healthz on its PORT answers 200, and
   the CPU seconds the process used until then (steadier than the wall time on a busy
   machine). Median of 5 (``--small``: 3); target < 1.0 s.
   The same start again from a venv with only what a deployment installs (``uv sync --no-dev``
   from uv.lock into a temporary folder, offline, from uv's cache): the dev tools in ``.venv``
   bring packages that httpx and httpcore import when they find them (trio, rich, pygments),
   which no deployed bot pays for. Skipped, saying so, when uv or its cache cannot make it.
2. Demo mode (no token: the local Bot API and the demo page in the bot's process), for
   comparison.
3. The import time of ``bot.app`` in a fresh interpreter (median of 5), next to an empty
   interpreter's start and to the libraries a serving bot cannot do without imported alone
   (the floor no change in this project can go below); the heaviest imports of the production
   start (``python -X importtime``) and whether it imported what it must not need (Alembic,
   matplotlib, the devkit, the SMS gateway's client).
4. Where the start-up time goes, measured in a fresh interpreter: the steps ``python -m bot
   run`` takes in production before it serves (settings, schema check, content and catalogs,
   Bot API calls, web server, polling; the command menus are set after, in the background).

Children run with this checkout first on ``PYTHONPATH`` and with bytecode caching on, as a
deployed host has it (``PYTHONDONTWRITEBYTECODE=1`` in a shell would time compiling instead).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import (
    PROJECT_ROOT,
    SECRET,
    Machine,
    bench_settings,
    bot_env,
    child_env,
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
marks["import bot.cli (settings, content loader)"] = time.perf_counter()
from bot import migrate
from bot.app import build_runtime, running_bot
from bot.logs import setup_logging
marks["import bot.app, bot.migrate"] = time.perf_counter()
settings = bot.cli._settings()
setup_logging(settings.log_level)
marks["settings"] = time.perf_counter()
migrate.require_current(settings.async_database_url)
marks["schema check (already at head)"] = time.perf_counter()
rt = build_runtime(settings)
marks["content, catalogs, engine"] = time.perf_counter()
from bot import eventloop


async def up():
    async with running_bot(
        rt,
        settings.telegram_bot_token.get_secret_value(),
        settings.telegram_api_base_url,
        web_host="127.0.0.1",
        web_port=0,
    ):
        now = time.perf_counter()
        marks["running_bot: handlers, getMe, web server, polling (menus: after)"] = now


eventloop.run(up())
last, result = t0, {}
for name, moment in marks.items():
    result[name] = moment - last
    last = moment
print(json.dumps(result))
"""

# Packages a production start must not import: they serve other commands (migrations, /stats'
# chart, the content check) or the demo.
# The local Bot API's default token (devkit.localapi.server.DEFAULT_TOKEN), not imported here:
# this process must stay light.
LOCAL_TOKEN = "123456789:LOCAL-sikkerhetsnett-not-a-real-tkn"
# What a serving bot must import whatever the project does: the ORM and its async engine,
# the Telegram library, the web server, the settings.
FLOOR = (
    "sqlalchemy.orm, sqlalchemy.ext.asyncio, sqlmodel, telegram.ext, aiohttp.web, pydantic_settings"
)
NOT_AT_START = ("alembic", "matplotlib", "devkit", "wordfreq", "mako")


def python(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        env=env or child_env(),
        cwd=cwd or PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout + done.stderr


def production_env(directory: Path, url: str, api_url: str) -> dict[str, str]:
    """``bot_env`` with a token: the bot talks to the local Bot API at ``api_url`` as to
    Telegram, and every production setting is given."""
    env = bot_env(directory, url, free_port(), free_port())
    env.update(
        TELEGRAM_BOT_TOKEN=LOCAL_TOKEN,
        TELEGRAM_API_BASE_URL=f"{api_url}/bot",
        SECRET_KEY=SECRET,
        PUBLIC_URL="https://sikkerhetsnett.example.no",
        SMS_PROVIDER="none",
    )
    return env


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_start(
    directory: Path, env: dict[str, str], *python_args: str, python: str = sys.executable
) -> tuple[float, float, int, str]:
    """Spawn ``python -m bot run``: seconds to /healthz 200, CPU seconds used by then, VmRSS
    then (KiB), and what it wrote to stderr (``-X importtime`` goes there)."""
    env = dict(env, PORT=str(free_port()))
    log_path = directory / "bot.log"
    log = log_path.open("wb")
    began = time.perf_counter()
    proc = subprocess.Popen(
        [python, *python_args, "-m", "bot", "run"],
        cwd=directory,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the bot exited with {proc.returncode}; see {log_path}")
            if time.perf_counter() - began > 60:
                raise RuntimeError("the bot did not answer /healthz within 60 s")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{env['PORT']}/healthz", timeout=1
                ) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - began
                        break
            except OSError:
                time.sleep(0.01)
        cpu = _cpu_seconds(proc.pid)
        rss, _hwm = rss_kib(proc.pid)
    finally:
        stop_bot(proc)
        log.close()
    return ready, cpu, rss, log_path.read_text(errors="replace")


def starts(
    directory: Path, env: dict[str, str], runs: int, label: str, python: str = sys.executable
) -> tuple[float, float]:
    """Median wall and CPU seconds to ready over ``runs`` starts (after one to warm caches)."""
    timed_start(directory, env, python=python)  # the OS file cache and __pycache__; not counted
    walls, cpus = [], []
    for _ in range(runs):
        ready, cpu, rss, _log = timed_start(directory, env, python=python)
        walls.append(ready)
        cpus.append(cpu)
        out(
            f"{label}: start to /healthz 200 {ready:.3f} s, CPU {cpu:.2f} s, "
            f"VmRSS {rss / 1024:.0f} MB"
        )
    wall, cpu = median(walls), median(cpus)
    out(f"{label}: median {wall:.3f} s of {runs} (min {min(walls):.3f} s), CPU median {cpu:.2f} s")
    return wall, cpu


def deployment_python(directory: Path) -> str | None:
    """A venv with only the bot's own dependencies (no dev group, no devkit), as ``uv sync``
    makes it from uv.lock, offline from uv's cache; its python, or None (and why) if uv cannot."""
    uv = PROJECT_ROOT / ".uv" / "bin" / "uv"
    venv = directory / "deploy-venv"
    env = dict(child_env(), UV_PROJECT_ENVIRONMENT=str(venv), UV_PYTHON_DOWNLOADS="never")
    env.pop("VIRTUAL_ENV", None)
    command = [str(uv), "sync", "--locked", "--no-dev", "--offline", "--quiet"]
    try:
        subprocess.run(
            [*command, "--python", sys.executable],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        out(f"deployment venv: not made ({type(exc).__name__}); its start is skipped")
        return None
    return str(venv / "bin" / "python")


def heaviest_imports(importtime: str, limit: int = 14) -> tuple[list[tuple[float, str]], set[str]]:
    """The modules a start spends most time importing (cumulative, nesting ≤ 2 levels), and
    every module it imported."""
    found: list[tuple[float, str]] = []
    modules: set[str] = set()
    for line in importtime.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if match:
            modules.add(match.group(4))
            if len(match.group(3)) <= 4:
                found.append((int(match.group(2)) / 1e6, match.group(4)))
    return sorted(found, reverse=True)[:limit], modules


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
        api_port = free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "devkit", "localapi", "--port", str(api_port)],
            cwd=directory,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            api_url = f"http://127.0.0.1:{api_port}"
            _wait_for(api_url)
            prod = production_env(directory, url, api_url)
            start, start_cpu = starts(directory, prod, runs, "production")
            deployed = deployment_python(directory)
            if deployed is not None:
                dep, dep_cpu = starts(
                    directory, prod, runs, "production, deployment venv", python=deployed
                )
            demo, demo_cpu = starts(
                directory, bot_env(directory, url, 0, free_port()), runs, "demo"
            )
            _r, _c, _m, importtime = timed_start(directory, prod, "-X", "importtime")
            phases = json.loads(
                python("-c", PHASES, env=prod, cwd=directory).strip().splitlines()[-1]
            )
        finally:
            stop_bot(api)
    code = "import time; t = time.perf_counter(); import bot.app; print(time.perf_counter() - t)"
    imports = [float(python("-c", code).split()[-1]) for _ in range(5)]
    # The floor: the libraries a serving bot cannot do without, imported alone. What bot.app
    # takes beyond this is the project's own; the floor is what no change here can remove.
    floor_code = code.replace("import bot.app", f"import {FLOOR}")
    floor = [float(python("-c", floor_code).split()[-1]) for _ in range(5)]
    bare = []
    for _ in range(5):
        began = time.perf_counter()
        python("-c", "pass")
        bare.append(time.perf_counter() - began)
    out(
        f"import bot.app in a fresh interpreter: median {median(imports):.3f} s of 5; "
        f"an empty interpreter starts in {median(bare):.3f} s"
    )
    out(
        f"the libraries alone ({FLOOR}): median {median(floor):.3f} s of 5, so the project's own"
        f" share of import bot.app is {median(imports) - median(floor):.3f} s"
    )
    heaviest, modules = heaviest_imports(importtime)
    out("heaviest imports of the production start (cumulative s, python -X importtime):")
    for seconds, name in heaviest:
        out(f"  {seconds:.3f} {name}")
    unwanted = sorted(m for m in modules if m.split(".")[0] in NOT_AT_START and "." not in m)
    out(f"imported by the production start although unused: {', '.join(unwanted) or 'none'}")
    dev_only = sorted(m for m in modules if m in ("rich", "pygments", "trio"))
    if dev_only:
        out(
            f"  (dev-only packages httpx/httpcore pick up when installed: {', '.join(dev_only)};"
            " a deployment, the wheel alone, has none of them)"
        )
    out("start-up steps of python -m bot run in production, in a fresh interpreter (s):")
    for name, seconds in phases.items():
        out(f"  {seconds:.3f} {name}")
    out("")
    out("summary (figure | target | met?)")
    out(
        f"cold start to /healthz 200, production: median {start:.3f} s (CPU {start_cpu:.2f} s)"
        f" | < 1.0 s | {verdict(start < 1.0)}"
    )
    if deployed is not None:
        out(
            f"cold start to /healthz 200, production, deployment venv: median {dep:.3f} s"
            f" (CPU {dep_cpu:.2f} s) | < 1.0 s | {verdict(dep < 1.0)}"
        )
    out(f"cold start to /healthz 200, demo: median {demo:.3f} s (CPU {demo_cpu:.2f} s) | - | -")
    out(f"import bot.app: median {median(imports):.3f} s | (information) | -")
    out(f"the libraries alone: median {median(floor):.3f} s | (the floor) | -")
    machine.footer()
    return 0


def _wait_for(url: str) -> None:
    """Until the local Bot API answers at all (any HTTP status)."""
    began = time.perf_counter()
    while time.perf_counter() - began < 30:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the local Bot API did not start within 30 s")


if __name__ == "__main__":
    sys.exit(main())
