"""One Telegram budget for the whole bot: direct replies and queued sends draw on the same
limits, replies first.

Telegram limits a bot to about 30 messages a second overall, about one a second in one chat,
and 20 a minute in one group. The budget hands out evenly spaced slots a little under the
overall limit (a bucket of 30 lets a whole second's worth go at once after a pause, which
Telegram answers with 429s). A reply to a person's own action reserves the next slot at once;
a queued send takes a slot only when one is free *now* and no reply is waiting for it, so a
person who pressed a button is served before a broadcast goes on. Queued sends also keep one
second between messages in a chat (replies are counted there but never wait: a person who
writes expects an answer now), and every message to a group counts against its 20 a minute.
A 429 from anywhere pauses everything for its ``retry_after``.

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
        group_per_minute: int = GROUP_PER_MINUTE,
    ) -> None:
        self.interval = 1 / (rate * spacing)
        self.chat_interval = 1 / chat_rate
        self.group_per_minute = group_per_minute
        self.stats = BudgetStats()
        self._next = 0.0  # loop time of the next free overall slot
        self._paused_until = 0.0
        self._queued_lock: asyncio.Lock | None = None
        self._chat_last: OrderedDict[int, float] = OrderedDict()
        self._groups: dict[int, deque[float]] = {}

    # --- the two ways in -------------------------------------------------------------------

    async def reply(self, chat_id: int | None) -> None:
        """A slot for a direct reply: reserved at once, ahead of any queued send."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        if chat_id is not None and chat_id < 0:
            await self._group_slot(chat_id)
        now = loop.time()
        slot = max(now, self._next, self._paused_until)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)
        self._note_chat(chat_id, loop.time())
        self.stats.replies += 1
        self.stats.reply_wait_seconds += loop.time() - began

    async def queued(self, chat_id: int | None) -> None:
        """A slot for a queued send: after the chat's last message by ``chat_rate``, and only
        when an overall slot is free now (replies reserve ahead and so come first)."""
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
                slot = max(self._next, self._paused_until)
                if slot <= now:
                    # Keep the spacing exact, not drifting by each timer's lateness.
                    self._next = (slot if now - slot < self.interval else now) + self.interval
                    break
                await asyncio.sleep(slot - now)
        self._note_chat(chat_id, loop.time())
        self.stats.queued += 1

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
