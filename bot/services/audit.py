"""The audit log of re-contact look-ups: who asked about a number, when, and what they saw.

A look-up tells the asker whether a person phoned a legevakt, about what, and how it went: health
data. Every one is written here, in the same transaction as the look-up (no row, no answer), with
the number only as its keyed hash. An admin reads it with ``python -m bot audit list`` and sees a
count in ``/status``. Rows are deleted after ``AUDIT_RETENTION_DAYS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import col, select

from bot.db import Sessions
from bot.models import LookupAudit, utcnow


@dataclass(frozen=True)
class Asker:
    """Who makes a look-up, and what they may see."""

    actor: str  # "API key 3 (Legevakten i Bergen)", "command line (ola)"
    api_key_id: int | None = None
    organisation_id: int | None = None
    visible: Sequence[int] | None = None  # organisations whose dispatches it sees; None: all


def record(
    session: Any,
    asker: Asker,
    *,
    phone_hash: str,
    hours: int,
    results: int,
    now: dt.datetime | None = None,
) -> LookupAudit:
    """Add the row to the look-up's own session; the caller commits."""
    row = LookupAudit(
        created_at=now or utcnow(),
        api_key_id=asker.api_key_id,
        organisation_id=asker.organisation_id,
        actor=asker.actor[:200],
        phone_hash=phone_hash,
        hours=hours,
        results=results,
    )
    session.add(row)
    return row


async def entries(
    sessions: Sessions,
    *,
    since: dt.datetime | None = None,
    phone_hashes: Sequence[str] | None = None,
    api_key_id: int | None = None,
    limit: int = 100,
) -> list[LookupAudit]:
    """The newest look-ups first, filtered by time, number (its hashes) or key."""
    query = select(LookupAudit)
    if since is not None:
        query = query.where(col(LookupAudit.created_at) >= since)
    if phone_hashes is not None:
        query = query.where(col(LookupAudit.phone_hash).in_(list(phone_hashes)))
    if api_key_id is not None:
        query = query.where(col(LookupAudit.api_key_id) == api_key_id)
    query = query.order_by(col(LookupAudit.created_at).desc(), col(LookupAudit.id).desc())
    async with sessions() as session:
        return list(await session.exec(query.limit(limit)))


async def summary(sessions: Sessions, since: dt.datetime) -> tuple[int, int]:
    """(look-ups, distinct askers) since ``since``, for /status."""
    async with sessions() as session:
        count, askers = (
            await session.exec(
                select(func.count(), func.count(func.distinct(col(LookupAudit.actor)))).where(
                    col(LookupAudit.created_at) >= since
                )
            )
        ).one()
    return int(count), int(askers)


async def purge_old(sessions: Sessions, days: int, *, now: dt.datetime | None = None) -> int:
    """Delete look-ups older than ``days``; how many went."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    async with sessions() as session:
        gone: Any = await session.exec(
            delete(LookupAudit).where(col(LookupAudit.created_at) < cutoff)
        )
        await session.commit()
    return int(gone.rowcount or 0)
