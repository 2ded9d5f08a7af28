"""The clinic's events: what happened to the dispatches it made, as it happens.

Each event is one ``ClinicEvent`` row, written by ``emit`` in the same transaction as the
change it tells of (a caller pressed "worse" exactly when ``dispatch.worse`` exists). The
clinic reads them from the events feed (``feed``, ``GET /api/v1/events``) and, where its key
has a webhook, gets each one POSTed, signed (``bot.channels.webhook``).

What an event may carry is fixed here (``DATA_KEYS``): ids, times, counts and fixed words,
never a phone number, a note, a name or a caller's words. ``emit`` refuses anything else.

Ordering: ``seq`` numbers one clinic's events 1, 2, 3 … in commit order. On PostgreSQL a
transaction-scoped advisory lock per clinic is taken before the number is chosen and held
until commit, so a reader polling ``after=<id>`` never misses an event committed later with a
smaller number. SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import Insert, bindparam, delete, func, insert, literal_column, text
from sqlalchemy import select as select_rows
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import detached, table_of
from bot.models import ClinicEvent, Dispatch, utcnow
from bot.services import webhooks

_EVENT = table_of(ClinicEvent)

# The advisory lock's key space (PostgreSQL): this constant plus the organisation's id.
_LOCK_BASE = 0x5E_C0_0000


class EventType(StrEnum):
    """What happened. The names are the API's (``type`` in the JSON); never rename one."""

    DISPATCH_CREATED = "dispatch.created"
    SMS_SENT = "sms.sent"
    SMS_FAILED = "sms.failed"
    DISPATCH_OPENED = "dispatch.opened"
    DISPATCH_WORSE = "dispatch.worse"
    CHECKIN_SENT = "checkin.sent"
    CHECKIN_ANSWERED = "checkin.answered"
    CHECKIN_EXPIRED = "checkin.expired"
    CHECKIN_FAILED = "checkin.failed"
    DISPATCH_DELETED = "dispatch.deleted"
    DISPATCH_EXPIRED = "dispatch.expired"


# The only keys an event's ``data`` may hold, and the types of their values. Nothing personal:
# the dispatch id is random and means something only to the clinic's own system.
Scalar = str | int | bool | None
DATA_KEYS: dict[EventType, dict[str, tuple[type, ...]]] = {
    EventType.DISPATCH_CREATED: {
        "topic": (str,),
        "locale": (str,),
        "checkin_hours": (int, type(None)),
        "sms": (bool,),  # an SMS with the link was queued
        "expires_at": (str,),  # the link's end, ISO 8601
    },
    EventType.SMS_SENT: {"delivered": (bool,)},  # False: a provider that only pretends
    EventType.SMS_FAILED: {"reason": (str, type(None))},  # a fixed reason code, no text
    EventType.DISPATCH_OPENED: {"via": (str,), "first": (bool,)},  # "telegram" | "web"
    EventType.DISPATCH_WORSE: {"via": (str,), "count": (int,)},
    EventType.CHECKIN_SENT: {},
    EventType.CHECKIN_ANSWERED: {"answer": (str,)},  # "better" | "same" | "worse"
    EventType.CHECKIN_EXPIRED: {},
    EventType.CHECKIN_FAILED: {"reason": (str, type(None))},
    EventType.DISPATCH_DELETED: {"via": (str,)},
    EventType.DISPATCH_EXPIRED: {},  # the link's life ended unopened
}


def _checked(type_: EventType, data: Mapping[str, Scalar]) -> dict[str, Scalar]:
    allowed = DATA_KEYS[type_]
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise ValueError(f"{type_} may not carry {extra}")
    for key, value in data.items():
        if not isinstance(value, allowed[key]):
            raise ValueError(f"{type_}.{key} must be {allowed[key]}, not {type(value).__name__}")
    return dict(data)


async def emit(
    session: AsyncSession,
    dispatch: Dispatch,
    type_: EventType,
    data: Mapping[str, Scalar] | None = None,
    *,
    now: dt.datetime | None = None,
) -> ClinicEvent:
    """Add one event about ``dispatch`` to the session (the caller commits it with the change
    it tells of). Raises ValueError for data outside ``DATA_KEYS``."""
    checked = _checked(type_, data or {})
    org = dispatch.organisation_id
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        connection = await session.connection()
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_BASE + (org or 0)}
        )
    # Pending ORM changes go first, as the ORM's own SELECT here flushed them before.
    if session.new or session.dirty or session.deleted:
        await session.flush()
    values: dict[str, Any] = {
        "public_id": "evt_" + secrets.token_hex(12),
        "organisation_id": org,
        "api_key_id": dispatch.api_key_id,
        "dispatch_id": dispatch.id,
        "type": type_.value,
        "data": checked,
        "created_at": now or utcnow(),
    }
    connection = await session.connection()
    row = (await connection.execute(_insert_event(org is None), values)).one()
    event = detached(ClinicEvent, values | {"id": row.id, "seq": row.seq})
    await webhooks.enqueue_event(session, event)  # if the key has a live webhook
    return event


@functools.cache
def _insert_event(no_clinic: bool) -> Insert:
    """``emit``'s one statement, built once: the row with the clinic's next ``seq`` (its
    largest so far plus one, read in the same statement), returning its id and seq."""
    c = _EVENT.c
    same_clinic = (
        c.organisation_id.is_(None)
        if no_clinic
        else c.organisation_id == bindparam("organisation_id")
    )
    one: Any = literal_column("1")  # inline constants: no parameter for PostgreSQL to type
    next_seq = select_rows(func.coalesce(func.max(c.seq), literal_column("0")) + one).where(
        same_clinic
    )
    columns = ("public_id", "organisation_id", "api_key_id", "dispatch_id", "type", "data")
    values: dict[str, Any] = {name: bindparam(name, type_=c[name].type) for name in columns}
    values["created_at"] = bindparam("created_at", type_=c.created_at.type)
    values["seq"] = next_seq.scalar_subquery()
    return insert(_EVENT).values(values).returning(c.id, c.seq)


def as_json(event: ClinicEvent) -> dict[str, Any]:
    """The event as the feed and the webhook send it (the API's documented shape)."""
    return {
        "id": event.public_id,
        "type": event.type,
        "created_at": event.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "dispatch_id": event.dispatch_id,
        "data": dict(event.data),
    }


async def feed(
    session: AsyncSession, organisation_id: int, *, after: str | None, limit: int
) -> Sequence[ClinicEvent] | None:
    """One clinic's events after the one with public id ``after`` (from the first if None),
    oldest first, at most ``limit``. None when ``after`` is not one of this clinic's events."""
    start = 0
    if after is not None:
        found = (
            await session.exec(
                select(ClinicEvent.seq).where(
                    col(ClinicEvent.public_id) == after,
                    col(ClinicEvent.organisation_id) == organisation_id,
                )
            )
        ).one_or_none()
        if found is None:
            return None
        start = found
    rows = await session.exec(
        select(ClinicEvent)
        .where(
            col(ClinicEvent.organisation_id) == organisation_id,
            col(ClinicEvent.seq) > start,
        )
        .order_by(col(ClinicEvent.seq))
        .limit(limit)
    )
    return rows.all()


async def purge_older_than(session: AsyncSession, cutoff: dt.datetime) -> int:
    """Delete events older than the dispatches' retention (the caller commits)."""
    result: Any = await session.exec(
        delete(ClinicEvent).where(col(ClinicEvent.created_at) < cutoff)
    )
    return int(result.rowcount or 0)
