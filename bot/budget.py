"""One Telegram budget for the whole bot: direct replies and queued sends draw on the same
limits, replies first.

Telegram limits a bot to about 30 messages a second overall, about one a second in one chat,
and 20 a minute in one group. The budget is a token bucket of one token (GCRA, the "generic
cell rate algorithm"): messages go evenly spaced at ``rate − 1`` a second (29 of Telegram's 30),
whoever sends them, and a send may go up to ``tolerance`` of a slot early so a timer that wakes
a little late does not slow the rate down. That puts at most ``rate`` messages in any second
(``floor((1 + τ) / T) + 1``), with about 25 ms to spare for the network's jitter, and no burst
ever follows a pause. A reply to a person's own action takes the next slot before any queued
send waiting for it; while people are being answered, queued sends also leave ``reserve`` slots
a second to replies. Queued sends keep one second between messages in a chat (replies are
counted there but never wait: a person who writes expects an answer now), and every message to
a group counts against its 20 a minute.

Jitter can still bunch requests on the way (a busy machine, the network), so the budget also
keeps the last ``rate`` sends and when each was answered: one more goes only a second after the
oldest of them was *answered*. Telegram counts a request somewhere between its start and its
answer, so this alone never puts ``rate + 1`` in one of Telegram's seconds, however late the
requests arrive; normally the answer comes in milliseconds and the bucket's spacing is what
binds. Callers hand their slot back with ``done`` when the answer (or failure) came; a slot
not handed back counts as answered ``STALE`` seconds after it began.

A 429 from anywhere pauses everything for its ``retry_after`` and backs the rate off (to
``backoff`` of what it was, never under half the ceiling); from the end of the pause it climbs
back to the ceiling in a straight line over ``recover_seconds``. Several 429s answering requests
already in flight count as one.

The arithmetic is ``TokenBucket``: plain numbers on a clock's readings, tested without sleeping.
Per process: instances sharing one bot token share the limit, which this does not coordinate.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

GROUP_PER_MINUTE = 20
MAX_CHATS = 50_000  # per-chat times remembered; the least recently used go first
WAITING_REPLY_POLL = 0.001  # a queued send that lets a waiting reply go first looks again
IN_FLIGHT_POLL = 0.002  # the oldest of the last second's sends is not answered yet: look again
STALE = 2.0  # a slot not handed back counts as answered this long after it began


class Slot:
    """One message's place in the budget: when it began and when its answer came."""

    __slots__ = ("chat_id", "end", "start")

    def __init__(self, start: float, chat_id: int | None) -> None:
        self.start = start
        self.end: float | None = None
        self.chat_id = chat_id


@dataclass
class BudgetStats:
    replies: int = 0
    queued: int = 0
    pauses: int = 0  # 429s that paused the budget (those answering requests in flight: one)
    reply_wait_seconds: float = 0.0  # summed time replies waited for a slot


class TokenBucket:
    """One token, refilled every ``1 / rate`` s (``rate`` adapts to 429s); all times are a
    clock's readings in seconds, passed in."""

    def __init__(
        self,
        ceiling: float,
        *,
        tolerance: float = 0.3,
        backoff: float = 0.85,
        recover_seconds: float = 30.0,
    ) -> None:
        self.ceiling = ceiling  # messages a second when nothing went wrong
        self.tolerance = tolerance  # how early in its slot a send may go, as a part of a slot
        self.backoff = backoff
        self.recover_seconds = recover_seconds
        self.floor = ceiling / 2
        self.next_slot = float("-inf")  # the theoretical time of the next send
        self.paused_until = float("-inf")
        self._low = ceiling  # the rate right after the last 429 …
        self._recover_from = float("-inf")  # … which climbs back to the ceiling from here

    def rate(self, now: float) -> float:
        """Messages a second at ``now``."""
        climbed = (now - self._recover_from) / self.recover_seconds
        if climbed >= 1:
            return self.ceiling
        return self._low + (self.ceiling - self._low) * max(0.0, climbed)

    def interval(self, now: float) -> float:
        return 1 / self.rate(now)

    def delay(self, now: float) -> float:
        """Seconds until one more message may go (0 or less: now)."""
        early = self.tolerance * self.interval(now)
        return max(self.paused_until - now, self.next_slot - early - now)

    def take(self, now: float) -> None:
        """A message goes at ``now`` (``delay(now) <= 0``): the next slot is one interval on,
        from the slot (a late timer does not slow the rate) or from now after a quiet spell."""
        self.next_slot = max(self.next_slot, now) + self.interval(now)

    def throttled(self, now: float, retry_after: float) -> bool:
        """Telegram said 429: pause for ``retry_after`` and back the rate off. False if the
        budget was already paused (a 429 for a request sent before the pause: nothing more)."""
        already = now < self.paused_until
        self.paused_until = max(self.paused_until, now + retry_after)
        if already:
            return False
        self._low = max(self.floor, self.rate(now) * self.backoff)
        self._recover_from = self.paused_until
        self.next_slot = max(self.next_slot, self.paused_until)
        return True


class TelegramBudget:
    """See the module docstring. ``rate`` (Telegram's limit) and ``chat_rate`` are messages per
    second; ``clock`` reads seconds (default: the running loop's time)."""

    def __init__(
        self,
        rate: float = 30.0,
        chat_rate: float = 1.0,
        *,
        headroom: float = 0.5,
        reserve: int = 2,
        group_per_minute: int = GROUP_PER_MINUTE,
        clock: Callable[[], float] | None = None,
    ) -> None:
        # Just under the limit, evenly spaced; the window below keeps `rate` in a second.
        self.bucket = TokenBucket(max(rate - headroom, rate / 2))
        self.limit = max(1, int(rate))
        self._window: deque[Slot] = deque(maxlen=self.limit)
        self.reserve = max(0, reserve)
        self.chat_interval = 1 / chat_rate
        self.group_per_minute = group_per_minute
        self.stats = BudgetStats()
        self._clock = clock
        self._last_reply = float("-inf")  # when the last reply went
        self._queued_next = float("-inf")  # while answering: the next queued send's turn
        self._replies_waiting = 0
        self._queued_lock: asyncio.Lock | None = None
        self._reply_lock: asyncio.Lock | None = None
        self._chat_last: OrderedDict[int, float] = OrderedDict()
        self._groups: dict[int, deque[float]] = {}

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # --- the two ways in -------------------------------------------------------------------

    async def reply(self, chat_id: int | None) -> Slot:
        """Room for a direct reply: the next slot, before any queued send waiting for it.
        Hand the slot back with ``done`` once the answer came."""
        began = self.now()
        if chat_id is not None and chat_id < 0:
            await self._group_slot(chat_id)
        self._replies_waiting += 1
        if self._reply_lock is None:
            self._reply_lock = asyncio.Lock()
        try:
            # In order of arrival, one reply at a time watches the clock (asyncio's Lock is
            # FIFO): when many wait, each slot wakes one of them, not every one of them.
            async with self._reply_lock:
                while (wait := self.delay(self.now())) > 0:
                    await asyncio.sleep(wait)
                now = self.now()
                slot = self._take(now, chat_id)
        finally:
            self._replies_waiting -= 1
        self._last_reply = now
        self.stats.replies += 1
        self.stats.reply_wait_seconds += now - began
        return slot

    async def queued(self, chat_id: int | None) -> Slot:
        """A slot for a queued send: after the chat's last message by ``chat_rate``, when no
        reply waits for the slot, and, while people are being answered, leaving ``reserve``
        slots a second to them. Hand it back with ``done`` once the answer came."""
        if chat_id is not None:
            last = self._chat_last.get(chat_id)
            if last is not None and (wait := last + self.chat_interval - self.now()) > 0:
                await asyncio.sleep(wait)
            if chat_id < 0:
                await self._group_slot(chat_id)
        if self._queued_lock is None:
            self._queued_lock = asyncio.Lock()
        async with self._queued_lock:  # one queued send at a time contends for the next slot
            while True:
                now = self.now()
                wait = self.delay(now)
                answering = now - self._last_reply < 1.0
                if answering:
                    wait = max(wait, self._queued_next - now)
                if wait <= 0 and self._replies_waiting == 0:
                    break
                await asyncio.sleep(wait if wait > 0 else WAITING_REPLY_POLL)
            slot = self._take(now, chat_id)
            rate = self.bucket.rate(now)
            self._queued_next = now + 1 / max(1.0, rate - self.reserve)
        self.stats.queued += 1
        return slot

    def done(self, slot: Slot) -> None:
        """The message's request was answered (or failed): the window counts it from now."""
        if slot.end is None:
            slot.end = self.now()
            self._note_chat(slot.chat_id, slot.end)

    def _take(self, now: float, chat_id: int | None) -> Slot:
        self.bucket.take(now)
        slot = Slot(now, chat_id)
        self._window.append(slot)
        self._note_chat(chat_id, now)
        return slot

    def delay(self, now: float) -> float:
        """Seconds until one more message may go: the bucket's spacing, and a second after the
        oldest of the last ``limit`` sends was answered."""
        wait = self.bucket.delay(now)
        if len(self._window) < self.limit:
            return wait
        oldest = self._window[0]
        end = oldest.end
        if end is None:
            if now - oldest.start < STALE:
                return max(wait, IN_FLIGHT_POLL)
            end = oldest.start + STALE
        return max(wait, end + 1.0 - now)

    def pause(self, seconds: float) -> None:
        """Telegram said 429: nothing goes out for ``seconds``, and the rate backs off."""
        if self.bucket.throttled(self.now(), seconds):
            self.stats.pauses += 1

    def rate(self) -> float:
        """Messages a second the budget allows now."""
        return self.bucket.rate(self.now())

    # --- chats and groups ----------------------------------------------------------------

    def _note_chat(self, chat_id: int | None, at: float) -> None:
        if chat_id is None:
            return
        self._chat_last[chat_id] = at
        self._chat_last.move_to_end(chat_id)
        if len(self._chat_last) > MAX_CHATS:
            self._chat_last.popitem(last=False)

    async def _group_slot(self, chat_id: int) -> None:
        """At most ``group_per_minute`` messages in any minute to one group chat."""
        times = self._groups.setdefault(chat_id, deque(maxlen=self.group_per_minute))
        while len(times) >= self.group_per_minute and (wait := times[0] + 60.0 - self.now()) > 0:
            await asyncio.sleep(wait)
        times.append(self.now())
