"""One Telegram budget for the whole bot: direct replies and queued sends draw on the same
limits, replies first.

Telegram limits a bot to about 30 messages a second overall, about one a second in one chat,
and 20 a minute in one group. The budget lets at most 28 messages (95 %) go in any second,
whoever sends them. Queued sends are evenly spaced within that (a bucket of 30 would let a whole
second's worth go at once after a pause, which Telegram answers with 429s) and, while people
are being answered, never take the last two places of a second: those are kept for replies. So
a reply to a person's own action goes at once unless a full second's worth just went out, and a
broadcast fills what replies leave. Queued sends also keep one second between messages in a
chat (replies are counted there but never wait: a person who writes expects an answer now), and
every message to a group counts against its 20 a minute. A 429 from anywhere pauses everything
for its ``retry_after``.

Per process: instances sharing one bot token share the limit, which this does not coordinate.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass

GROUP_PER_MINUTE = 20
MAX_CHATS = 50_000  # per-chat times remembered; the least recently used go first


@dataclass
class BudgetStats:
    replies: int = 0
    queued: int = 0
    pauses: int = 0
    reply_wait_seconds: float = 0.0  # summed time replies waited for a slot


class TelegramBudget:
    """See the module docstring. ``rate`` and ``chat_rate`` are messages per second."""

    def __init__(
        self,
        rate: float = 30.0,
        chat_rate: float = 1.0,
        *,
        spacing: float = 0.95,
        reserve: int = 2,
        group_per_minute: int = GROUP_PER_MINUTE,
    ) -> None:
        # At most `limit` messages in any second (28 of Telegram's 30), whoever sends them …
        self.limit = max(1, int(rate * spacing))
        # … queued sends evenly spaced within that, and, while people are being answered, never
        # into the last `reserve` places of a second: a reply finds room even during a fan-out.
        self.interval = 1 / (rate * spacing)
        self.reserve = max(0, min(reserve, self.limit - 1))
        self.chat_interval = 1 / chat_rate
        self.group_per_minute = group_per_minute
        self.stats = BudgetStats()
        self._sent: deque[float] = deque()  # loop times of the sends in the last second
        self._next = 0.0  # loop time of the next queued send's slot
        self._last_reply = -1e9  # loop time of the last reply
        self._paused_until = 0.0
        self._queued_lock: asyncio.Lock | None = None
        self._chat_last: OrderedDict[int, float] = OrderedDict()
        self._groups: dict[int, deque[float]] = {}

    # --- the two ways in -------------------------------------------------------------------

    async def reply(self, chat_id: int | None) -> None:
        """Room for a direct reply: at once, unless a full second's worth just went out (or a
        429's pause is on); replies may use the places queued sends leave free for them."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        if chat_id is not None and chat_id < 0:
            await self._group_slot(chat_id)
        while (wait := self._wait(loop.time(), keep=0)) > 0:
            await asyncio.sleep(wait)
        self._record(chat_id, loop.time())
        self._last_reply = loop.time()
        self.stats.replies += 1
        self.stats.reply_wait_seconds += loop.time() - began

    async def queued(self, chat_id: int | None) -> None:
        """A slot for a queued send: after the chat's last message by ``chat_rate``, evenly
        spaced, and only while the second has room beyond what is kept for replies."""
        loop = asyncio.get_running_loop()
        if chat_id is not None:
            last = self._chat_last.get(chat_id)
            if last is not None and (wait := last + self.chat_interval - loop.time()) > 0:
                await asyncio.sleep(wait)
            if chat_id < 0:
                await self._group_slot(chat_id)
        if self._queued_lock is None:
            self._queued_lock = asyncio.Lock()
        async with self._queued_lock:  # one queued send at a time contends for the next slot
            while True:
                now = loop.time()
                answering = now - self._last_reply < 1.0  # replies went out this last second
                keep = self.reserve if answering else 0
                wait = max(self._next - now, self._wait(now, keep=keep))
                if wait <= 0:
                    # Spaced from the slot, so timers' lateness does not slow the rate down,
                    # but never catching up by more than half a slot.
                    self._next = max(self._next, now - self.interval / 2) + self.interval
                    break
                await asyncio.sleep(wait)
            self._record(chat_id, loop.time())
        self.stats.queued += 1

    def _wait(self, now: float, *, keep: int) -> float:
        """Seconds until one more message may go, leaving ``keep`` places of the second free
        (0: it may go now)."""
        sent = self._sent
        while sent and sent[0] <= now - 1.0:
            sent.popleft()
        allowed = self.limit - keep
        wait = self._paused_until - now
        if len(sent) >= allowed:
            wait = max(wait, sent[len(sent) - allowed] + 1.0 - now)
        return wait

    def _record(self, chat_id: int | None, at: float) -> None:
        self._sent.append(at)
        self._note_chat(chat_id, at)

    def pause(self, seconds: float) -> None:
        """Telegram said 429: nothing goes out for ``seconds``."""
        self.stats.pauses += 1
        until = asyncio.get_running_loop().time() + seconds
        self._paused_until = max(self._paused_until, until)

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
        loop = asyncio.get_running_loop()
        times = self._groups.setdefault(chat_id, deque(maxlen=self.group_per_minute))
        while len(times) >= self.group_per_minute and (wait := times[0] + 60.0 - loop.time()) > 0:
            await asyncio.sleep(wait)
        times.append(loop.time())
