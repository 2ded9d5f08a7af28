"""Guessing links gets nowhere: failures per key in a sliding window, in memory, per process.

Used for bad ``/start`` links in Telegram (per person, ``handlers/common.py``) and for unknown
advice-page links on the web (per client address, ``bot/advicepage.py``).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class LinkThrottle(Generic[K]):
    """Links that did not work, per key (a Telegram user id; a client address for the advice
    page), in a sliding window; in memory, per process.

    After ``limit`` failures within ``window`` seconds a person is paused until the oldest of them
    leaves the window. Attempts while paused are not counted (a person is never locked out for
    longer than the window). At most ``max_people`` people are tracked; the least recently seen
    are forgotten first.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_people: int = 10_000,  # people or addresses
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_people = max_people
        self.clock = clock
        self._failures: OrderedDict[K, deque[float]] = OrderedDict()

    def _recent(self, key: K) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def paused(self, key: K) -> bool:
        times = self._recent(key)
        return times is not None and len(times) >= self.limit

    def failed(self, key: K) -> bool:
        """Count a link that did not work; True if that pauses the person."""
        times = self._recent(key)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.limit)
        times.append(self.clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_people:
            self._failures.popitem(last=False)
        return len(times) >= self.limit
