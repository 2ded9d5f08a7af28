"""The one sender: claims due rows of every channel, renders them, hands them to the channel's
adapter, and acts on the outcome the adapter classified.

All the bookkeeping lives here once: the claim and its lease, release, the final state (with its
events, in the same transaction), retries with a capped backoff until the row's own
``expires_at``, a channel pause on ``Throttled`` and after transient failures in a row (only
the row's address waits when the outcome says so: a clinic's webhook), and a person who
``Stopped`` us (marked blocked, their queued rows dropped). Adapters only send and
classify (``bot.messages``); renderers only write (``bot.renderers``). Logs carry row ids, kinds
and reasons, never content, numbers or chat ids.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions, table_of
from bot.events import Delivery, Events, events_for
from bot.messages import (
    ChannelAdapter,
    Message,
    Permanent,
    Sent,
    Stopped,
    Throttled,
    Transient,
)
from bot.models import Channel, OutboxMessage, OutboxStatus, Person, utcnow
from bot.outbox import claim_due
from bot.worker import QueueWorker

log = logging.getLogger(__name__)

Rendered = Message | Permanent
RenderBatch = Callable[[Sequence[OutboxMessage]], Awaitable[Mapping[int, Rendered]]]


@dataclass
class ChannelStats:
    """Counters of one channel, for /status and /metrics (per process)."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    throttled: int = 0  # Throttled outcomes: the channel was paused for its retry_after
    stopped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # failures by reason


@dataclass
class _Lane:
    """A channel's state in this process: its pause and its run of transient failures."""

    adapter: ChannelAdapter
    gate: asyncio.Semaphore
    stats: ChannelStats = field(default_factory=ChannelStats)
    paused_until: float = 0.0  # loop time before which nothing of this channel is sent
    failures_in_a_row: int = 0


class Sender(QueueWorker):
    """Delivers the queue through the channel adapters; see the module docstring."""

    name = "sender"

    def __init__(
        self,
        sessions: Sessions,
        adapters: Sequence[ChannelAdapter],
        render: RenderBatch,
        events: Events | None = None,
        *,
        batch: int = 64,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        tick_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
    ) -> None:
        super().__init__(tick_seconds=tick_seconds)
        self.sessions = sessions
        self.render = render
        self.events = events or Events()
        self.worker = f"sender-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        self.lease = lease
        self.max_backoff = max_backoff_seconds
        self.last_tick: dt.datetime | None = None
        self._lanes = {
            a.channel: _Lane(a, asyncio.Semaphore(max(1, a.concurrency))) for a in adapters
        }

    def stats(self, channel: Channel) -> ChannelStats:
        return self._lanes[channel].stats

    @property
    def channels(self) -> list[Channel]:
        return list(self._lanes)

    def adapter(self, channel: Channel) -> ChannelAdapter:
        return self._lanes[channel].adapter

    # --- one round -------------------------------------------------------------------------

    async def drain_once(self, limit: int | None = None) -> int:
        """Claim a batch of due rows of the channels not paused and send them; how many."""
        self.last_tick = utcnow()
        now = _loop_time()
        open_channels = [c for c, lane in self._lanes.items() if lane.paused_until <= now]
        if not open_channels or self._stopping:
            return 0
        rows = await claim_due(
            self.sessions,
            worker=self.worker,
            limit=limit or self.batch,
            lease=self.lease,
            channels=open_channels,
        )
        if not rows:
            return 0
        try:
            rendered = await self.render(rows)
        except Exception:  # the database went away mid-round: give the rows back
            log.exception("sender: rendering a batch failed; released")
            await self._release(rows, utcnow())
            return 0
        # One lane per address (a chat, a clinic's webhook) so its messages keep their order and
        # a retry holds back only its own address; an address that is a secret (an SMS's number)
        # is its own lane.
        lanes: dict[tuple[str, str], list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            lanes[(row.channel, _address(row))].append(row)
        await asyncio.gather(*(self._lane(chain, rendered) for chain in lanes.values()))
        return len(rows)

    async def _lane(self, chain: list[OutboxMessage], rendered: Mapping[int, Rendered]) -> None:
        lane = self._lanes[Channel(chain[0].channel)]
        async with lane.gate:
            for index, row in enumerate(chain):
                if self._stopping:
                    await self._release(chain[index:], utcnow())
                    return
                assert row.id is not None
                hold = await self._deliver(lane, row, rendered.get(row.id))
                if hold is not None:
                    # Keep the chat's order: later messages wait for the one being retried.
                    await self._release(chain[index + 1 :], hold)
                    return

    async def _deliver(
        self, lane: _Lane, row: OutboxMessage, message: Rendered | None
    ) -> dt.datetime | None:
        """Send one row and act on the outcome; a time the rest of its lane must wait for."""
        if utcnow() > row.expires_at:
            await self._finish(lane, row, Delivery.EXPIRED, "Expired")
            return None
        if message is None:
            message = Permanent("NotRendered")
        if isinstance(message, Permanent):
            await self._finish(lane, row, Delivery.FAILED, message.reason)
            return None
        await self._while_paused(lane)
        if not await self._until_ready(lane, row) or self._claim_running_out(row):
            # Stopping: only requests already made are finished. A claim (nearly) out of lease,
            # e.g. after a long pause, may be another sender's by now.
            await self._release([row], utcnow())
            return utcnow()
        outcome = await lane.adapter.send(row, message)
        if isinstance(outcome, Sent):
            lane.failures_in_a_row = 0
            await self._finish(
                lane,
                row,
                Delivery.SENT,
                None,
                provider_id=outcome.provider_id,
                delivered=outcome.delivered,
            )
            return None
        if isinstance(outcome, Throttled):
            lane.stats.throttled += 1
            lane.paused_until = max(lane.paused_until, _loop_time() + outcome.retry_after)
            log.warning(
                "sender: %s asks us to wait %.0f s; pausing it", row.channel, outcome.retry_after
            )
            retry_at = utcnow() + dt.timedelta(seconds=outcome.retry_after)
            await self._retry(row, retry_at, "Throttled", count_attempt=False)
            return retry_at
        if isinstance(outcome, Stopped):
            await self._stopped(lane, row)
            return None
        if isinstance(outcome, Transient):
            if outcome.pause_channel:
                self._back_off(lane)
            return await self._transient(lane, row, outcome.reason)
        await self._finish(lane, row, Delivery.FAILED, outcome.reason)
        log.warning("sender: message %s (%s) refused: %s", row.id, row.kind, outcome.reason)
        # The rest of its lane was written while the address still stood: written again.
        return utcnow() if outcome.address_gone else None

    # --- outcomes ----------------------------------------------------------------------------

    def backoff(self, attempts: int) -> float:
        """Seconds before try ``attempts + 1``: doubling from 1 s, ±25 %, never above the cap."""
        return min(self.max_backoff, 2 ** (attempts - 1) * random.uniform(0.75, 1.25))

    async def _transient(self, lane: _Lane, row: OutboxMessage, reason: str) -> dt.datetime:
        """Retry after a backoff, however many attempts it takes, until the row's own expiry
        (where it is then recorded as expired)."""
        attempts = row.attempts + 1
        retry_at = min(utcnow() + dt.timedelta(seconds=self.backoff(attempts)), row.expires_at)
        await self._retry(row, retry_at, reason, count_attempt=True)
        lane.stats.retried += 1
        return retry_at

    async def _finish(
        self,
        lane: _Lane,
        row: OutboxMessage,
        delivery: Delivery,
        reason: str | None,
        *,
        provider_id: int | None = None,
        delivered: bool = True,
    ) -> bool:
        """Record a final state, erase the secret, and publish its events, in one transaction.

        False if this sender's claim no longer stands (another sender took the row over).
        """
        values: dict[str, Any] = {
            "status": OutboxStatus(delivery.value),
            "claimed_by": None,
            "claimed_until": None,
            "secret": None,
            "last_error": reason,
            "attempts": row.attempts + (0 if delivery is Delivery.EXPIRED else 1),
        }
        if delivery is Delivery.SENT:
            values.update(sent_at=utcnow(), provider_message_id=provider_id)
        for with_events in (True, False):
            async with self.sessions() as session:
                result: Any = await session.exec(
                    update(table_of(OutboxMessage))
                    .where(
                        col(OutboxMessage.id) == row.id,
                        col(OutboxMessage.claimed_by) == row.claimed_by,
                    )
                    .values(**values)
                )
                if result.rowcount != 1:
                    await session.rollback()
                    return False
                try:
                    if with_events:
                        await self._publish(session, row, delivery, reason, delivered=delivered)
                    await session.commit()
                except Exception:
                    await session.rollback()
                    if not with_events:
                        raise
                    log.exception("sender: a subscriber failed for message %s", row.id)
                    continue
            break
        self._count(lane.stats, delivery, reason)
        return True

    async def _publish(
        self,
        session: AsyncSession,
        row: OutboxMessage,
        delivery: Delivery,
        reason: str | None,
        *,
        delivered: bool = True,
    ) -> None:
        for event in events_for(row, delivery, reason, delivered=delivered):
            await self.events.publish(session, event)

    @staticmethod
    def _count(stats: ChannelStats, delivery: Delivery, reason: str | None) -> None:
        if delivery is Delivery.SENT:
            stats.sent += 1
        elif delivery is Delivery.EXPIRED:
            stats.expired += 1
        else:
            stats.failed += 1
            stats.reasons[reason or "?"] += 1

    async def _stopped(self, lane: _Lane, row: OutboxMessage) -> None:
        """The person blocked us: this row fails, the person is marked, and every other row
        queued for them is dropped (each recorded, with its events), in one transaction.
        Nothing more is queued for them until they write again (``outbox.enqueue``)."""
        lane.stats.stopped += 1
        table = table_of(OutboxMessage)
        now = utcnow()
        async with self.sessions() as session:
            finished: Any = await session.exec(
                update(table)
                .where(table.c.id == row.id, table.c.claimed_by == row.claimed_by)
                .values(
                    status=OutboxStatus.FAILED,
                    claimed_by=None,
                    claimed_until=None,
                    secret=None,
                    last_error="Stopped",
                    attempts=row.attempts + 1,
                )
            )
            if finished.rowcount != 1:
                await session.rollback()
                return
            who = []
            if row.person_id is not None:
                who.append(table.c.person_id == row.person_id)
            if row.chat_id is not None:
                who.append(table.c.chat_id == row.chat_id)
                await session.exec(
                    update(Person)
                    .where(col(Person.telegram_user_id) == row.chat_id)
                    .values(blocked_at=now)
                )
            elif row.person_id is not None:
                await session.exec(
                    update(Person).where(col(Person.id) == row.person_id).values(blocked_at=now)
                )
            dropped: list[OutboxMessage] = []
            if who:
                result = await session.exec(
                    update(table)
                    .where(
                        table.c.status == OutboxStatus.PENDING,
                        table.c.channel == row.channel,
                        or_(*who),
                    )
                    .values(status=OutboxStatus.FAILED, last_error="Stopped", secret=None)
                    .returning(*table.c)
                )
                dropped = [OutboxMessage.model_validate(dict(r._mapping)) for r in result]
            try:
                for final in (row, *dropped):
                    await self._publish(session, final, Delivery.FAILED, "Stopped")
            except Exception:
                log.exception("sender: a subscriber failed while dropping a blocked person's rows")
            await session.commit()
        for _final in (row, *dropped):
            self._count(lane.stats, Delivery.FAILED, "Stopped")
        log.info(
            "sender: a person stopped us (%s); %d queued message(s) dropped", row.kind, len(dropped)
        )

    # --- the claim -----------------------------------------------------------------------

    async def _retry(
        self, row: OutboxMessage, when: dt.datetime, reason: str, *, count_attempt: bool
    ) -> None:
        await self._update_claimed(
            row,
            status=OutboxStatus.PENDING,
            due_at=when,
            claimed_by=None,
            claimed_until=None,
            last_error=reason,
            attempts=row.attempts + (1 if count_attempt else 0),
        )

    async def _release(self, rows: Sequence[OutboxMessage], when: dt.datetime) -> None:
        """Give rows back unsent, due no earlier than ``when``; not an attempt."""
        for row in rows:
            await self._update_claimed(
                row,
                status=OutboxStatus.PENDING,
                due_at=max(when, row.due_at),
                claimed_by=None,
                claimed_until=None,
            )

    async def _release_own_claims(self) -> None:
        table = table_of(OutboxMessage)
        async with self.sessions() as session:
            await session.exec(
                update(table)
                .where(
                    table.c.status == OutboxStatus.SENDING,
                    table.c.claimed_by.like(f"{self.worker}:%"),
                )
                .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_until=None)
            )
            await session.commit()

    async def _update_claimed(self, row: OutboxMessage, **values: Any) -> None:
        """Change a row only while this sender's claim on it stands."""
        table = table_of(OutboxMessage)
        async with self.sessions() as session:
            await session.exec(
                update(table)
                .where(table.c.id == row.id, table.c.claimed_by == row.claimed_by)
                .values(**values)
            )
            await session.commit()

    def _claim_running_out(self, row: OutboxMessage) -> bool:
        """Too little of the claim's lease is left to make the request and record it."""
        if row.claimed_until is None:
            return False
        return utcnow() > row.claimed_until - self.lease / 4

    # --- pauses ------------------------------------------------------------------------------

    def _back_off(self, lane: _Lane) -> None:
        """A transient failure: the channel (or the way to it) is most likely down for every
        message, so pause the whole channel, twice as long after each failure in a row (reset
        by a success), up to the cap. Backing off per message alone would still probe with
        every waiting message through an outage."""
        now = _loop_time()
        if now < lane.paused_until:
            return  # a request made before the pause began: it does not make the pause longer
        lane.failures_in_a_row += 1
        lane.paused_until = now + self.backoff(lane.failures_in_a_row)

    async def _while_paused(self, lane: _Lane) -> None:
        while (delay := lane.paused_until - _loop_time()) > 0 and not self._stopping:
            await asyncio.sleep(min(delay, 1.0))

    async def _until_ready(self, lane: _Lane, row: OutboxMessage) -> bool:
        """The adapter's go-ahead (its rate limit's slot, a 429's pause), or False if the
        sender is told to stop first: a send not yet made is not made."""
        if self._stopping:
            return False
        ready = asyncio.ensure_future(lane.adapter.ready(row))
        stopped = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not ready.done():
                ready.cancel()
        return ready.done() and not ready.cancelled() and not self._stopping

    def paused_for(self, channel: Channel) -> float:
        """Seconds the channel is still paused (0 when it is not)."""
        return max(0.0, self._lanes[channel].paused_until - _loop_time())


def _address(row: OutboxMessage) -> str:
    """Where a row goes, as far as ordering and holding back go: its chat, its webhook's key,
    or (a secret address) the row itself."""
    assert row.id is not None
    if row.chat_id is not None:
        return f"chat:{row.chat_id}"
    if row.api_key_id is not None:
        return f"key:{row.api_key_id}"
    return f"row:{row.id}"


def _loop_time() -> float:
    return asyncio.get_running_loop().time()
