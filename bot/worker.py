"""The loop of a queue worker: drain a database queue, sleep until woken or the next tick.

``bot.sender.Sender`` claims and delivers; starting, waking, polling and stopping with a
deadline live here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class QueueWorker:
    """A background task that calls ``drain_once`` until nothing is due, then waits.

    It waits ``tick_seconds``, or less if ``wake()`` is called (someone queued work). A failed
    round (say, the database was away) is logged and tried again at the next tick.
    """

    name = "worker"  # the task's name and the log prefix

    def __init__(self, *, tick_seconds: float) -> None:
        self.tick_seconds = tick_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._stop_event = asyncio.Event()  # set by stop(): waits that may be abandoned end
        self._task: asyncio.Task[None] | None = None
        self.busy = False  # inside a round (drain_once) right now

    async def drain_once(self, limit: int | None = None) -> int:
        """Claim and handle a batch of due rows; returns how many were handled."""
        raise NotImplementedError

    async def _release_own_claims(self) -> None:
        """Give back rows this worker claimed but did not finish (called by ``stop``)."""
        raise NotImplementedError

    def start(self) -> None:
        self._stopping = False
        self._stop_event.clear()
        self._task = asyncio.create_task(self.run(), name=self.name)

    def wake(self) -> None:
        """Look for due rows now instead of at the next tick (e.g. after queueing)."""
        self._wake.set()

    async def stop(self, deadline: float = 10.0) -> None:
        """Stop claiming, let in-flight work finish within ``deadline`` s, release the rest."""
        self._stopping = True
        self._stop_event.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), deadline)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        await self._release_own_claims()

    async def run(self) -> None:
        while not self._stopping:
            self.busy = True
            try:
                handled = await self.drain_once()
            except Exception:  # a database hiccup must not kill the worker
                log.exception("%s: drain failed; retrying at next tick", self.name)
                handled = 0
            finally:
                self.busy = False
            if handled == 0 and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.tick_seconds)
