"""The one way out: a durable table of messages the bot sends on its own initiative, and the sender.

``enqueue`` writes a row in the caller's transaction (with the event that caused it), keyed for
idempotency. ``OutboxSender`` claims due rows, sends them under Telegram's flood limits, retries
429/5xx/network errors and gives up on 400/403. It knows no domain logic and logs no content.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import uuid
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, TypeVar

from aiolimiter import AsyncLimiter
from sqlalchemy import and_, delete, or_, select, update
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import Bot, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)

from bot.db import Sessions, table_of, upsert_insert
from bot.models import OutboxMessage, OutboxStatus, Person, utcnow
from bot.worker import QueueWorker

# A queued row holds a method name and its JSON payload, so it is sent with do_api_request;
# PTB would rather see its typed methods and says so at every send.
warnings.filterwarnings(
    "ignore", message=r"Please use 'Bot\.\w+' instead of", category=UserWarning, module=__name__
)

log = logging.getLogger(__name__)

FINAL = (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.EXPIRED)


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    chat_id: int,
    payload: dict[str, Any],
    person_id: int | None = None,
    method: str = "sendMessage",
    due_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> bool:
    """Add a message to the outbox inside the caller's transaction; False if the key exists.

    The caller commits: the message exists exactly when the event that caused it does.
    """
    values = {
        "idempotency_key": key,
        "chat_id": chat_id,
        "person_id": person_id,
        "method": method,
        "payload": payload,
        "status": OutboxStatus.PENDING,
        "due_at": due_at or utcnow(),
        "expires_at": expires_at,
        "attempts": 0,
        "created_at": utcnow(),
    }
    insert = upsert_insert(session)
    table = table_of(OutboxMessage)
    # Bind through the column types (UTCDateTime) by going via the table's insert. RETURNING, not
    # rowcount: PostgreSQL's implicit RETURNING of the key made rowcount 1 even on a conflict.
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.id)
    )
    result: Any = await session.exec(stmt)
    return result.first() is not None


async def purge_finished(sessions: Sessions, older_than: dt.timedelta) -> int:
    """Delete sent, failed and expired rows older than the retention period."""
    cutoff = utcnow() - older_than
    async with sessions() as session:
        result: Any = await session.exec(
            delete(OutboxMessage).where(
                col(OutboxMessage.status).in_(FINAL),
                col(OutboxMessage.created_at) < cutoff,
            )
        )
        await session.commit()
        return int(result.rowcount or 0)


async def depth(sessions: Sessions) -> tuple[int, dt.datetime | None]:
    """How many rows wait to be sent, and the due time of the oldest."""
    from sqlalchemy import func
    from sqlmodel import select as select_rows

    async with sessions() as session:
        row = (
            await session.exec(
                select_rows(func.count(), func.min(col(OutboxMessage.due_at))).where(
                    col(OutboxMessage.status).in_((OutboxStatus.PENDING, OutboxStatus.SENDING))
                )
            )
        ).one()
        oldest = row[1]
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        return int(row[0]), oldest


M = TypeVar("M", bound=SQLModel)


async def claim_due(
    sessions: Sessions, model: type[M], *, worker: str, limit: int, lease: dt.timedelta
) -> list[M]:
    """Claim up to ``limit`` due rows of a queue table (the outbox, the SMS queue) for one sender.

    Due: pending with ``due_at`` passed, or sending with a lease that ran out (a crashed sender).
    One conditional ``UPDATE … RETURNING``; on PostgreSQL the candidates are locked with
    ``FOR UPDATE SKIP LOCKED`` so several processes never claim the same row.
    """
    now = utcnow()
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    table = table_of(model)
    due = or_(
        and_(table.c.status == OutboxStatus.PENDING, table.c.due_at <= now),
        and_(table.c.status == OutboxStatus.SENDING, table.c.claimed_until < now),
    )
    async with sessions() as session:
        candidates = select(table.c.id).where(due).order_by(table.c.due_at, table.c.id)
        candidates = candidates.limit(limit)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        stmt = (
            update(table)
            .where(table.c.id.in_(candidates.scalar_subquery()), due)
            .values(status=OutboxStatus.SENDING, claimed_by=token, claimed_until=now + lease)
            .returning(*table.c)
        )
        result = await session.exec(stmt)
        rows = [model.model_validate(dict(r._mapping)) for r in result]
        await session.commit()
    rows.sort(key=attrgetter("due_at", "id"))
    return rows


@dataclass
class SenderStats:
    """Counters for /status and /metrics."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    flood_waits: int = 0
    last_tick: dt.datetime | None = None
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class OutboxSender(QueueWorker):
    """Claims due outbox rows and delivers them through the Bot API, within flood limits."""

    name = "outbox-sender"

    def __init__(
        self,
        sessions: Sessions,
        bot: Bot,
        *,
        rate_per_second: float = 30.0,
        chat_rate_per_second: float = 1.0,
        in_flight: int = 16,
        max_attempts: int = 8,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        tick_seconds: float = 1.0,
        max_backoff_seconds: float = 300.0,
        on_sent: Callable[[OutboxMessage, Message | None], Awaitable[None]] | None = None,
        on_final: Callable[[OutboxMessage, str], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(tick_seconds=tick_seconds)
        self.sessions = sessions
        self.bot = bot
        self.worker = f"sender-{uuid.uuid4().hex[:8]}"
        self.in_flight = in_flight
        self.max_attempts = max_attempts
        self.lease = lease
        self.max_backoff = max_backoff_seconds
        self.on_sent = on_sent
        self.on_final = on_final  # told of every sent, failed or expired row (e.g. check-ins)
        self.stats = SenderStats()
        # Evenly spaced, a little under the limit: a bucket of `rate` lets a whole second's worth
        # go at once after any pause, which Telegram answers with 429 (bench/bench_fanout.py).
        self._limiter = AsyncLimiter(1, 1 / (rate_per_second * 0.95))
        self._chat_rate = chat_rate_per_second
        self._chat_limiters: OrderedDict[int, AsyncLimiter] = OrderedDict()
        self._paused_until = 0.0  # loop time before which nothing is sent (a 429's retry_after)
        self._failures_in_a_row = 0  # 5xx, timeouts and network errors since the last success

    # --- one round -------------------------------------------------------------------------

    async def drain_once(self, limit: int | None = None) -> int:
        """Claim a batch of due rows and send them; returns how many were handled."""
        self.stats.last_tick = utcnow()
        await self._sleep_while_paused()
        if self._stopping:  # woken from a pause by stop(): claim nothing more
            return 0
        rows = await self._claim(limit or self.in_flight * 4)
        if not rows:
            return 0
        by_chat: dict[int, list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            by_chat[row.chat_id].append(row)
        gate = asyncio.Semaphore(self.in_flight)

        async def one_chat(chat_rows: list[OutboxMessage]) -> None:
            async with gate:
                for index, row in enumerate(chat_rows):
                    if self._stopping:
                        await self._release(chat_rows[index:], utcnow())
                        return
                    retry_at = await self._deliver(row)
                    if retry_at is not None:
                        # Keep the chat's order: later messages wait for the one being retried.
                        await self._release(chat_rows[index + 1 :], retry_at)
                        return

        await asyncio.gather(*(one_chat(r) for r in by_chat.values()))
        return len(rows)

    async def _claim(self, limit: int) -> list[OutboxMessage]:
        return await claim_due(
            self.sessions, OutboxMessage, worker=self.worker, limit=limit, lease=self.lease
        )

    async def _deliver(self, row: OutboxMessage) -> dt.datetime | None:
        """Send one row and record the outcome; returns a retry time if it must wait."""
        now = utcnow()
        if row.expires_at is not None and now > row.expires_at:
            await self._finish(row, OutboxStatus.EXPIRED, error="Expired")
            self.stats.expired += 1
            return None
        async with self._limiter, self._chat_limiter(row.chat_id):
            # Checked last before the request: a pause may have begun while this row waited.
            await self._sleep_while_paused()
            if self._stopping or self._claim_running_out(row):
                # Stopping: only requests already made are finished. A claim (nearly) out of
                # lease, e.g. after a long retry_after, may be another sender's by now.
                await self._release([row], utcnow())
                return utcnow()
            try:
                result = await self.bot.do_api_request(
                    row.method,
                    api_kwargs={"chat_id": row.chat_id, **row.payload},
                    return_type=Message,
                )
            except RetryAfter as exc:
                wait = _seconds(exc.retry_after)
                self.stats.flood_waits += 1
                self._paused_until = max(self._paused_until, _loop_time() + wait)
                log.warning("outbox: flood limit, pausing all sending for %.0f s", wait)
                retry_at = utcnow() + dt.timedelta(seconds=wait)
                await self._retry(row, retry_at, "RetryAfter", count_attempt=False)
                return retry_at
            except Forbidden:
                await self._finish(row, OutboxStatus.FAILED, error="Forbidden")
                await self._mark_blocked(row.chat_id)
                self.stats.failed += 1
                return None
            except BadRequest as exc:
                log.warning(
                    "outbox: message %s refused by the Bot API (400): %s", row.id, exc.message[:80]
                )
                await self._finish(row, OutboxStatus.FAILED, error="BadRequest")
                self.stats.failed += 1
                return None
            except InvalidToken:
                log.error("outbox: the Bot API refused the token; sending paused")
                self._paused_until = _loop_time() + 60
                retry_at = utcnow() + dt.timedelta(seconds=60)
                await self._retry(row, retry_at, "InvalidToken", count_attempt=False)
                return retry_at
            except NetworkError as exc:  # 5xx, timeouts, connection errors
                self._back_off_everyone()
                return await self._failed_attempt(row, type(exc).__name__, given_up_as="GaveUp")
            except ChatMigrated:  # a group became a supergroup: the bot writes to people only
                await self._finish(row, OutboxStatus.FAILED, error="ChatMigrated")
                self.stats.failed += 1
                return None
            except Exception as exc:  # 409 Conflict, an unexpected answer, a bug in a payload …
                # Counted like a network error, so a row that always fails this way is given up
                # after max_attempts instead of coming back at every lease forever.
                name = type(exc).__name__
                log.error("outbox: message %s failed with %s", row.id, name)
                return await self._failed_attempt(row, name, given_up_as=name)
        self._failures_in_a_row = 0
        message_id = result.message_id if isinstance(result, Message) else None
        await self._finish(row, OutboxStatus.SENT, message_id=message_id)
        self.stats.sent += 1
        if self.on_sent is not None:
            await self.on_sent(row, result if isinstance(result, Message) else None)
        return None

    # --- bookkeeping -----------------------------------------------------------------------

    async def _failed_attempt(
        self, row: OutboxMessage, error: str, *, given_up_as: str
    ) -> dt.datetime | None:
        """Count a failed attempt: retry after an exponential backoff (±25 %), or, at
        ``max_attempts``, give the row up. Returns the retry time, None if given up."""
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            await self._finish(row, OutboxStatus.FAILED, error=given_up_as, attempts=attempts)
            self.stats.failed += 1
            log.warning("outbox: message %s given up after %d attempts", row.id, attempts)
            return None
        backoff = min(self.max_backoff, 2 ** (attempts - 1)) * random.uniform(0.75, 1.25)
        retry_at = utcnow() + dt.timedelta(seconds=backoff)
        await self._retry(row, retry_at, error, count_attempt=True)
        self.stats.retried += 1
        return retry_at

    async def _finish(
        self,
        row: OutboxMessage,
        status: str,
        *,
        error: str | None = None,
        message_id: int | None = None,
        attempts: int | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status,
            "claimed_by": None,
            "claimed_until": None,
            "last_error": error,
            "attempts": attempts if attempts is not None else row.attempts + 1,
        }
        if status == OutboxStatus.SENT:
            values.update(sent_at=utcnow(), telegram_message_id=message_id)
        self.stats.outcomes[status] += 1
        await self._update_claimed(row, values)
        await self._told_final(row, status)

    async def _told_final(self, row: OutboxMessage, status: str = OutboxStatus.FAILED) -> None:
        if self.on_final is not None:
            try:
                await self.on_final(row, status)
            except Exception:  # bookkeeping must not stop the sending
                log.exception("outbox: on_final failed for message %s", row.id)

    async def _retry(
        self, row: OutboxMessage, when: dt.datetime, error: str, *, count_attempt: bool
    ) -> None:
        await self._update_claimed(
            row,
            {
                "status": OutboxStatus.PENDING,
                "due_at": when,
                "claimed_by": None,
                "claimed_until": None,
                "last_error": error,
                "attempts": row.attempts + (1 if count_attempt else 0),
            },
        )

    async def _release(self, rows: list[OutboxMessage], when: dt.datetime) -> None:
        for row in rows:
            await self._update_claimed(
                row,
                {
                    "status": OutboxStatus.PENDING,
                    "due_at": max(when, row.due_at),
                    "claimed_by": None,
                    "claimed_until": None,
                },
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

    async def _update_claimed(self, row: OutboxMessage, values: dict[str, Any]) -> None:
        # Only touch the row while this sender's claim on it stands.
        table = table_of(OutboxMessage)
        async with self.sessions() as session:
            await session.exec(
                update(table)
                .where(table.c.id == row.id, table.c.claimed_by == row.claimed_by)
                .values(**values)
            )
            await session.commit()

    async def _mark_blocked(self, chat_id: int) -> None:
        """The person blocked the bot: remember it and stop queueing more for them."""
        now = utcnow()
        table = table_of(OutboxMessage)
        async with self.sessions() as session:
            await session.exec(
                update(Person).where(col(Person.telegram_user_id) == chat_id).values(blocked_at=now)
            )
            dropped = (
                await session.exec(
                    update(table)
                    .where(table.c.chat_id == chat_id, table.c.status == OutboxStatus.PENDING)
                    .values(status=OutboxStatus.FAILED, last_error="Blocked")
                    .returning(table)
                )
            ).all()
            await session.commit()
        log.info("outbox: a person blocked the bot; their pending messages were dropped")
        for dropped_row in dropped:  # e.g. a check-in: the dispatch records that it failed
            await self._told_final(OutboxMessage.model_validate(dict(dropped_row._mapping)))

    def _chat_limiter(self, chat_id: int) -> AsyncLimiter:
        limiter = self._chat_limiters.get(chat_id)
        if limiter is None:
            limiter = self._chat_limiters[chat_id] = AsyncLimiter(1, 1 / self._chat_rate)
            if len(self._chat_limiters) > 50_000:
                self._chat_limiters.popitem(last=False)
        else:
            self._chat_limiters.move_to_end(chat_id)
        return limiter

    def _back_off_everyone(self) -> None:
        """A 5xx, timeout or network error: the Bot API (or the way to it) is most likely down
        for every chat, so pause all sending, twice as long after each failure in a row (reset
        by a success). Backing off per message alone would still probe with every waiting
        message, at the full rate, through an outage."""
        now = _loop_time()
        if now < self._paused_until:
            return  # a request made before the pause began: it does not make the pause longer
        self._failures_in_a_row += 1
        pause = min(self.max_backoff, 2 ** (self._failures_in_a_row - 1))
        self._paused_until = now + pause * random.uniform(0.75, 1.25)

    def _claim_running_out(self, row: OutboxMessage) -> bool:
        """Too little of the claim's lease is left to make the request and record it."""
        if row.claimed_until is None:
            return False
        until = row.claimed_until
        if until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
        return utcnow() > until - self.lease / 4

    async def _sleep_while_paused(self) -> None:
        while (delay := self._paused_until - _loop_time()) > 0 and not self._stopping:
            await asyncio.sleep(min(delay, 1.0))


def _seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()
