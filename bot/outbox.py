"""The queue: one table of messages waiting to go out on any channel, and its bookkeeping.

``enqueue`` writes a typed row (channel, kind, references to the domain rows, its own expiry)
in the caller's transaction, with the event that caused it. ``claim_due`` hands due rows to a
sender under a lease. Nothing here sends, renders or knows a channel's protocol: the sender
(``bot.sender``) does that through the renderers and the channel adapters.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import Insert, and_, bindparam, delete, func, or_, select, update
from sqlmodel import col
from sqlmodel import select as select_rows
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions, dialect_of, engine_of, insert_for, table_of
from bot.models import (
    FINAL,
    Channel,
    MessageKind,
    OutboxMessage,
    OutboxStatus,
    Person,
    utcnow,
)


@dataclass(frozen=True)
class KindSpec:
    """What every message of a kind shares: its channel, and how long it may wait at most."""

    channel: Channel
    life: dt.timedelta  # the default expiry after due_at, for rows enqueued without one


KINDS: dict[MessageKind, KindSpec] = {
    MessageKind.CHECKIN: KindSpec(Channel.TELEGRAM, dt.timedelta(hours=2)),
    MessageKind.WEEKLY_QUESTION: KindSpec(Channel.TELEGRAM, dt.timedelta(hours=12)),
    MessageKind.REMINDER: KindSpec(Channel.TELEGRAM, dt.timedelta(hours=12)),
    MessageKind.ADMIN_NOTICE: KindSpec(Channel.TELEGRAM, dt.timedelta(hours=24)),
    MessageKind.SMS_LINK: KindSpec(Channel.SMS, dt.timedelta(hours=6)),
    MessageKind.RAABRA_DIGEST: KindSpec(Channel.TELEGRAM, dt.timedelta(days=7)),
    MessageKind.GROUP_QUESTION: KindSpec(Channel.TELEGRAM, dt.timedelta(hours=12)),
    MessageKind.GROUP_ANSWER: KindSpec(Channel.TELEGRAM, dt.timedelta(hours=24)),
    MessageKind.CLINIC_EVENT: KindSpec(Channel.WEBHOOK, dt.timedelta(hours=24)),
}


async def enqueue(
    session: AsyncSession,
    kind: MessageKind,
    *,
    dedupe_key: str | None = None,
    person_id: int | None = None,
    chat_id: int | None = None,
    dispatch_id: str | None = None,
    prompt_id: int | None = None,
    group_post_id: int | None = None,
    clinic_event_id: int | None = None,
    api_key_id: int | None = None,
    secret: str | None = None,
    payload: dict[str, Any] | None = None,
    due_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    person_unblocked: bool = False,
) -> int | None:
    """Add a message inside the caller's transaction (the caller commits); the new row's id.

    None, and nothing written, if ``dedupe_key`` was used before, or if the person has blocked
    the bot (nothing is queued for them until they write again). ``person_unblocked``: the
    caller knows they have not (they wrote just now), so that is not looked up.
    """
    spec = KINDS[kind]
    if person_id is not None and spec.channel is Channel.TELEGRAM and not person_unblocked:
        blocked = (
            await session.exec(select_rows(Person.blocked_at).where(col(Person.id) == person_id))
        ).first()
        if blocked is not None:
            return None
    now = utcnow()
    due = due_at or now
    values = {
        "channel": spec.channel,
        "kind": kind,
        "dedupe_key": dedupe_key,
        "person_id": person_id,
        "chat_id": chat_id,
        "dispatch_id": dispatch_id,
        "prompt_id": prompt_id,
        "group_post_id": group_post_id,
        "clinic_event_id": clinic_event_id,
        "api_key_id": api_key_id,
        "secret": secret,
        "payload": payload,
        "status": OutboxStatus.PENDING,
        "due_at": due,
        "expires_at": expires_at or due + spec.life,
        "attempts": 0,
        "created_at": now,
    }
    connection = await session.connection()
    row = (await connection.execute(_enqueue_one(dialect_of(session)), values)).first()
    return None if row is None else int(row[0])


@functools.cache
def _enqueue_one(dialect: str) -> Insert:
    """``enqueue``'s statement, built once per dialect, every value bound at execution through
    its column's type (UTCDateTime). RETURNING, not rowcount: PostgreSQL's implicit RETURNING
    of the key made rowcount 1 even on a conflict."""
    table = table_of(OutboxMessage)
    return (
        insert_for(dialect)(table)
        .values({name: bindparam(name, type_=table.c[name].type) for name in _ENQUEUED})
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id)
    )


_ENQUEUED = (
    "channel",
    "kind",
    "dedupe_key",
    "person_id",
    "chat_id",
    "dispatch_id",
    "prompt_id",
    "group_post_id",
    "clinic_event_id",
    "api_key_id",
    "secret",
    "payload",
    "status",
    "due_at",
    "expires_at",
    "attempts",
    "created_at",
)


async def enqueue_many(
    session: AsyncSession,
    kind: MessageKind,
    rows: list[dict[str, Any]],
    *,
    check_blocked: bool = True,
) -> dict[str, int]:
    """``enqueue`` for many messages of one kind in one INSERT (the tick's fan-out): each of
    ``rows`` holds ``enqueue``'s keyword arguments, with a ``dedupe_key``. Returns dedupe key
    → new id for the rows written; a key used before, or a person who blocked the bot, writes
    nothing (``check_blocked=False``: the caller has just checked the people in this
    transaction)."""
    if not rows:
        return {}
    spec = KINDS[kind]
    if check_blocked and spec.channel is Channel.TELEGRAM:
        people = {row["person_id"] for row in rows if row.get("person_id") is not None}
        blocked = set(
            (
                await session.exec(
                    select_rows(Person.id).where(
                        col(Person.id).in_(people), col(Person.blocked_at).is_not(None)
                    )
                )
            ).all()
        )
        rows = [row for row in rows if row.get("person_id") not in blocked]
        if not rows:
            return {}
    now = utcnow()
    values = []
    for row in rows:
        due = row.get("due_at") or now
        values.append(
            {
                "channel": spec.channel,
                "kind": kind,
                "dedupe_key": row["dedupe_key"],
                "person_id": row.get("person_id"),
                "chat_id": row.get("chat_id"),
                "dispatch_id": row.get("dispatch_id"),
                "prompt_id": row.get("prompt_id"),
                "group_post_id": row.get("group_post_id"),
                "secret": row.get("secret"),
                "payload": row.get("payload"),
                "status": OutboxStatus.PENDING,
                "due_at": due,
                "expires_at": row.get("expires_at") or due + spec.life,
                "attempts": 0,
                "created_at": now,
            }
        )
    result: Any = await session.exec(_enqueue_statement(dialect_of(session)), params=values)
    return {str(key): int(new_id) for new_id, key in result.all()}


@functools.cache
def _enqueue_statement(dialect: str) -> Any:
    """``enqueue_many``'s INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING: built once per
    dialect."""
    table = table_of(OutboxMessage)
    return (
        insert_for(dialect)(table)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id, table.c.dedupe_key)
    )


async def claim_due(
    sessions: Sessions,
    *,
    worker: str,
    limit: int,
    lease: dt.timedelta,
    channels: list[Channel] | None = None,
) -> list[OutboxMessage]:
    """Claim up to ``limit`` due rows (of ``channels``, or all) for one sender.

    Due: pending with ``due_at`` passed, or sending with a lease that ran out (a crashed
    sender). One conditional ``UPDATE … RETURNING``; on PostgreSQL the candidates are locked
    with ``FOR UPDATE SKIP LOCKED`` so several processes never claim the same row.
    """
    now = utcnow()
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    table = table_of(OutboxMessage)
    due = or_(
        and_(table.c.status == OutboxStatus.PENDING, table.c.due_at <= now),
        and_(table.c.status == OutboxStatus.SENDING, table.c.claimed_until < now),
    )
    if channels is not None:
        due = and_(due, table.c.channel.in_([str(c) for c in channels]))
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
        rows = [OutboxMessage.model_validate(dict(r._mapping)) for r in result]
        await session.commit()
    rows.sort(key=attrgetter("due_at", "id"))
    return rows


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


@dataclass(frozen=True)
class Depth:
    """How many rows of a channel wait (pending or being sent), how many are due, the oldest."""

    waiting: int
    due: int
    oldest_due: dt.datetime | None


async def depth(
    sessions: Sessions, channel: Channel | None = None, now: dt.datetime | None = None
) -> Depth:
    """The queue's depth, for one channel or all: one statement (built once) on a plain
    connection."""
    params: dict[str, Any] = {"now": now or utcnow()}
    if channel is not None:
        params["channel"] = channel
    async with engine_of(sessions).connect() as connection:
        row = (await connection.execute(_depth_query(channel is not None), params)).one()
    oldest = row[2]
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return Depth(int(row[0]), int(row[1]), oldest)


@functools.cache
def _depth_query(one_channel: bool) -> Any:
    """Rows waiting, due at ``:now``, the oldest due time (of ``:channel`` if ``one_channel``),
    on ``outbox(status, due_at)``."""
    table = table_of(OutboxMessage)
    query = select(
        func.count(),
        func.count().filter(table.c.due_at <= bindparam("now")),
        func.min(table.c.due_at),
    ).where(table.c.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)))
    if one_channel:
        query = query.where(table.c.channel == bindparam("channel"))
    return query
