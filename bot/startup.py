"""Bot API calls at start-up that must not stop the bot when Telegram has a bad minute.

``until_it_answers`` runs ``getMe`` (through PTB's ``initialize``) until the Bot API answers: only
a refused token (401/404, ``InvalidToken``) ends start-up, as ``BotTokenRefused``. Everything
else a start needs but can do without for a while (the command menus, ``setWebhook``, starting
long polling) is a ``StartupTasks`` entry: tried once during start-up, and if that fails, again
in the background with backoff until it succeeds, while the bot serves; what it serves without
(the command menus) is tried in the background from the first try on (``begin``). Each failure
is logged once, when it first happens, and once more when it finally succeeds; ``/healthz``
shows each task's state.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram.error import InvalidToken, TelegramError

log = logging.getLogger(__name__)

FIRST_DELAY = 1.0
MAX_DELAY = 300.0


class BotTokenRefused(Exception):
    """The Bot API refused TELEGRAM_BOT_TOKEN (401 or 404 to getMe): start-up cannot go on."""


def _backoff(attempt: int, first: float, most: float) -> float:
    return min(most, first * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


async def until_it_answers(
    call: Callable[[], Awaitable[object]],
    what: str,
    *,
    first_delay: float | None = None,
    max_delay: float | None = None,
) -> None:
    """Run ``call`` until it succeeds, backing off between tries; a refused token ends it."""
    first_delay = FIRST_DELAY if first_delay is None else first_delay
    max_delay = MAX_DELAY if max_delay is None else max_delay
    attempt = 0
    while True:
        try:
            await call()
        except InvalidToken:
            raise BotTokenRefused(
                "The Bot API refused TELEGRAM_BOT_TOKEN (401): check the token from @BotFather."
            ) from None
        except (TelegramError, OSError) as exc:
            attempt += 1
            if attempt == 1:  # once, not every try; the error class only (URLs hold the token)
                log.warning(
                    "start-up: the Bot API did not answer %s (%s); trying again until it does",
                    what,
                    type(exc).__name__,
                )
            await asyncio.sleep(_backoff(attempt, first_delay, max_delay))
            continue
        if attempt:
            log.info("start-up: %s answered after %d failed attempts", what, attempt)
        return


@dataclass
class _Task:
    name: str
    call: Callable[[], Awaitable[object]]
    essential: bool  # without it the bot gets no updates: /healthz says 503 while it fails
    state: str = "pending"  # pending, retrying, ok
    failures: int = 0


class StartupTasks:
    """Best-effort start-up calls, retried in the background until each succeeds."""

    def __init__(self, *, first_delay: float | None = None, max_delay: float | None = None) -> None:
        self.first_delay = FIRST_DELAY if first_delay is None else first_delay
        self.max_delay = MAX_DELAY if max_delay is None else max_delay
        self._tasks: list[_Task] = []
        self._running: set[asyncio.Task[None]] = set()

    async def start(
        self, name: str, call: Callable[[], Awaitable[object]], *, essential: bool = False
    ) -> None:
        """Try ``call`` now; if it fails, keep trying in the background. Never raises.

        ``name`` is what /healthz and the log call it; ``essential`` tasks make /healthz answer
        503 while they fail.
        """
        task = _Task(name, call, essential)
        self._tasks.append(task)
        if await self._attempt(task):
            return
        self._in_background(task, self._retry(task))

    def begin(self, name: str, call: Callable[[], Awaitable[object]]) -> None:
        """As ``start``, but the first try too runs in the background: for what the bot can
        serve without (the command menus), so start-up does not wait for it. Not essential."""
        task = _Task(name, call, essential=False)
        self._tasks.append(task)
        self._in_background(task, self._first_then_retry(task))

    async def _first_then_retry(self, task: _Task) -> None:
        if not await self._attempt(task):
            await self._retry(task)

    def _in_background(self, task: _Task, work: Coroutine[Any, Any, None]) -> None:
        runner = asyncio.create_task(work, name=f"startup:{task.name}")
        self._running.add(runner)
        runner.add_done_callback(self._running.discard)

    async def _attempt(self, task: _Task) -> bool:
        try:
            await task.call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: try again later, never stop the bot
            task.failures += 1
            task.state = "retrying"
            if task.failures == 1:  # the error class only: Bot API errors can hold the URL
                log.warning(
                    "start-up: %s failed (%s); retrying in the background",
                    task.name,
                    type(exc).__name__,
                )
            return False
        if task.failures:
            log.info("start-up: %s done after %d failed attempts", task.name, task.failures)
        task.state = "ok"
        return True

    async def _retry(self, task: _Task) -> None:
        while True:
            await asyncio.sleep(_backoff(task.failures, self.first_delay, self.max_delay))
            if await self._attempt(task):
                return

    def states(self) -> dict[str, str]:
        """Each task's state: ``pending`` (first try under way), ``retrying`` or ``ok``."""
        return {task.name: task.state for task in self._tasks}

    @property
    def healthy(self) -> bool:
        """False while an essential task (receiving updates) is failing."""
        return not any(task.essential and task.state == "retrying" for task in self._tasks)

    async def wait(self) -> None:
        """Until every task has succeeded (for tests and benchmarks)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel what is still retrying (at shutdown)."""
        for runner in list(self._running):
            runner.cancel()
        if self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
