"""Shared helpers for the benchmarks: machine description, CPU share of others, temp settings,
a migrated SQLite database, free ports, percentiles and plain-line output.

The benchmarks run the real code (services, outbox sender, running bot) against SQLite in a
temporary directory and the local Bot API; they are not part of CI (``make bench``).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # `python bench/bench_x.py` puts bench/ first, not the root
    sys.path.insert(1, str(PROJECT_ROOT))

SECRET = "bench-secret-" + "x" * 32


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _proc_stat() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def _own_cpu() -> float:
    """CPU seconds used by this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Machine:
    """Prints the machine at the start; at the end, how busy it was and who kept it busy."""

    def __init__(self, name: str, small: bool) -> None:
        self.name = name
        self.small = small
        self.started = time.monotonic()
        self.busy0, self.total0 = _proc_stat()
        self.own0 = _own_cpu()
        self.load0 = os.getloadavg()

    def header(self) -> None:
        out(f"benchmark: {self.name} ({'small' if self.small else 'full'} size)")
        out(f"date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
        out(f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.machine()}")
        out(f"python: {platform.python_version()} ({sys.executable})")
        out(f"load average at start (1/5/15 min): {_loads(self.load0)}")

    def footer(self) -> None:
        busy1, _total = _proc_stat()
        own = _own_cpu() - self.own0
        wall = time.monotonic() - self.started
        cores = os.cpu_count() or 1
        machine_busy = (busy1 - self.busy0) / wall if wall > 0 else 0.0
        others = max(0.0, machine_busy - own / wall) if wall > 0 else 0.0
        out(f"wall time: {wall:.1f} s")
        out(
            f"CPU during the run: {machine_busy:.2f} of {cores} cores busy "
            f"(this benchmark and its children {own / wall:.2f}, other processes {others:.2f})"
        )
        out(f"load average at end (1/5/15 min): {_loads(os.getloadavg())}")


def _loads(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def out(line: str) -> None:
    print(line, flush=True)


def is_small(argv: list[str] | None = None) -> bool:
    return "--small" in (sys.argv[1:] if argv is None else argv)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'bench.db'}"


def bench_settings(directory: Path, **overrides: Any) -> Any:
    """Settings as the demo has them (limits at their defaults), on a temp SQLite file."""
    from bot.config import Settings

    values: dict[str, Any] = {
        "telegram_bot_token": None,
        "database_url": sqlite_url(directory),
        "var_dir": directory / "var",
        "secret_key": SECRET,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def migrate_db(settings: Any) -> float:
    """Bring the temp database to the newest schema (call it in a thread from async code);
    returns the seconds it took."""
    from bot import migrate

    began = time.perf_counter()
    migrate.upgrade(settings.async_database_url)
    return time.perf_counter() - began


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), nearest-rank on the sorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def bot_env(directory: Path, database_url: str, port: int, api_port: int) -> dict[str, str]:
    """Environment for ``python -m bot run`` in demo mode on its own files and ports."""
    env = child_env()
    env.update(
        DATABASE_URL=database_url,
        VAR_DIR=str(directory / "var"),
        PORT=str(port),
        LOCAL_BOT_API_PORT=str(api_port),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def child_env() -> dict[str, str]:
    """The environment for a child Python: none of the bot's settings, this checkout's code first
    (``PYTHONPATH``: the editable install may point at another worktree), and bytecode cached as
    on a deployed host (``PYTHONDONTWRITEBYTECODE`` would time compiling every module)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "DATABASE_", "SMS_", "SECRET_", "PUBLIC_URL"))
        and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


def stop_bot(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM a ``python -m bot run`` child, as a service manager would; kill it after 20 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc/<pid>/status."""
    found = {"VmRSS": 0, "VmHWM": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in found:
            found[key] = int(rest.split()[0])
    return found["VmRSS"], found["VmHWM"]


def quiet_logs() -> None:
    """Warnings and errors only; the libraries' per-request noise is left out."""
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("telegram", "httpx", "httpcore", "apscheduler", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message=".*do_api_request.*")


class SqlCounter:
    """Counts the bot's SQL statements by their first words (e.g. ``UPDATE outbox_message``)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.counts: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()  # time in the driver, by the same keys
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine, "after_cursor_execute", self._executed)
        event.listen(engine.sync_engine, "commit", self._commit)

    def _statement(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        key = self._key(statement)
        self.counts[key] += 1
        conn.info["bench_started"] = (key, time.perf_counter())

    def _executed(self, conn: Any, *_args: Any) -> None:
        key, started = conn.info.pop("bench_started", ("?", time.perf_counter()))
        self.seconds[key] += time.perf_counter() - started

    def slowest(self, per: int, n: int = 4) -> str:
        """``"UPDATE leader 3.10 ms, …"``: driver time per unit of work, largest first."""
        seconds, self.seconds = self.seconds, Counter()
        return ", ".join(f"{k} {1000 * v / per:.2f} ms" for k, v in seconds.most_common(n))

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def _key(statement: str) -> str:
        """Cached: the bot runs the same few statements (built once) over and over, and this
        runs in the bot's process, whose CPU the benchmarks report."""
        words = statement.split()
        verb = words[0].upper() if words else "?"
        table = {"SELECT": "FROM", "UPDATE": "UPDATE", "INSERT": "INTO", "DELETE": "FROM"}
        marker = table.get(verb)
        upper = [w.upper().strip('"') for w in words]
        name = words[upper.index(marker) + 1].strip('"(') if marker in upper else ""
        return f"{verb} {name}".strip()

    def _commit(self, _conn: Any) -> None:
        self.counts["COMMIT"] += 1

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts

    @staticmethod
    def describe(counts: Counter[str], per: int) -> str:
        """``"8.5 statements, 3.1 commits; SELECT person 3.00, …"`` per unit of work."""
        statements = sum(v for k, v in counts.items() if k != "COMMIT")
        top = ", ".join(f"{k} {v / per:.2f}" for k, v in counts.most_common(9) if k != "COMMIT")
        return f"{statements / per:.1f} statements, {counts['COMMIT'] / per:.1f} commits; {top}"
