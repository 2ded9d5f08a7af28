"""The event loop ``python -m bot run`` serves on: uvloop where it is installed, else asyncio's.

uvloop (libuv under asyncio's API) is in the lock for Linux and macOS, where the bot is deployed.
Measured with ``bench/bench_deeplink.py --small``, six pairs side by side on one quiet machine:
the bot's CPU per opened advice link 0.89× at 50/s and 0.86× at 25/s of asyncio's loop (the
selector, callbacks and sockets were ~15 % of that CPU); at full size 0.90× and 0.88×
(bench/RESULTS.md). Where uvloop is not installed (Windows,
PyPy) the bot runs on asyncio's loop; the start-up log (INFO) names the loop either way.

The benchmarks run the bot through ``run`` too, so they measure the loop production uses. The
one-shot commands (``apikey``, ``dispatch`` …) keep ``asyncio.run``: they are not hot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop when it is installed (SIGINT and clean-up as there)."""
    with asyncio.Runner(loop_factory=_factory()) as runner:
        return runner.run(main)


def describe(loop: asyncio.AbstractEventLoop) -> str:
    """The loop as a start-up log line names it: ``uvloop 0.23.0`` or ``asyncio``."""
    module = type(loop).__module__.split(".")[0]
    if module == "uvloop":
        import uvloop

        return f"uvloop {uvloop.__version__}"
    return "asyncio"
