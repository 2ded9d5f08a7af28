"""API keys for the clinic's call system: made by an admin, shown once, stored as SHA-256.

A key is 256 random bits, so an unkeyed hash is enough and lookup by hash takes the same time
whatever the key. Every key belongs to a clinic (an ``Organisation``); a clinic's look-ups see
its own dispatches and those of the clinics in its region.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import or_, update
from sqlmodel import col, select

from bot.db import Sessions
from bot.models import DISPLAY_NAME_MAX, ApiKey, Organisation, utcnow
from bot.privacy import new_api_key
from bot.services.invites import find_organisation, normalise_org_name

# ``last_used_at`` is for people reading `apikey list`: a write per request would be a write
# per call to the database's hottest row, for no one's benefit.
LAST_USED_EVERY = dt.timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create(
    sessions: Sessions, name: str, organisation: str, *, display_name: str | None = None
) -> tuple[ApiKey, str]:
    """A new key for ``name`` (the system) of the clinic ``organisation`` (made if new); the
    plaintext is returned once and never stored. ``display_name`` (checked with
    ``display_name_problem`` first) sets the name callers read."""
    key = new_api_key()
    async with sessions() as session:
        org = await find_organisation(session, organisation)
        if org is None:
            org = Organisation(name=normalise_org_name(organisation)[:200])
            session.add(org)
            await session.flush()
        if display_name is not None:
            org.display_name = normalise_org_name(display_name)
            session.add(org)
        assert org.id is not None
        row = ApiKey(name=name.strip()[:100], organisation_id=org.id, key_hash=_hash(key))
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row, key


async def verify(
    sessions: Sessions, presented: str, *, now: dt.datetime | None = None
) -> ApiKey | None:
    """The live key matching ``presented``, or None. Its last use is written at most once a
    minute (a conditional update, so several instances agree)."""
    if not presented.startswith("sn_") or len(presented) > 100:
        return None
    now = now or utcnow()
    async with sessions() as session:
        row = (
            await session.exec(select(ApiKey).where(col(ApiKey.key_hash) == _hash(presented)))
        ).one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        stale = now - LAST_USED_EVERY
        if row.last_used_at is None or row.last_used_at < stale:
            await session.exec(
                update(ApiKey)
                .where(
                    col(ApiKey.id) == row.id,
                    or_(col(ApiKey.last_used_at).is_(None), col(ApiKey.last_used_at) < stale),
                )
                .values(last_used_at=now)
            )
            await session.commit()
        return row


@dataclass(frozen=True)
class KeyInfo:
    key: ApiKey
    organisation: Organisation


async def list_keys(sessions: Sessions) -> list[KeyInfo]:
    async with sessions() as session:
        rows = await session.exec(
            select(ApiKey, Organisation)
            .join(Organisation, col(ApiKey.organisation_id) == col(Organisation.id))
            .order_by(col(ApiKey.id))
        )
        return [KeyInfo(key, org) for key, org in rows]


async def revoke(sessions: Sessions, key_id: int) -> bool:
    async with sessions() as session:
        row = await session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        session.add(row)
        await session.commit()
        return True


async def organisation(sessions: Sessions, organisation_id: int) -> Organisation | None:
    async with sessions() as session:
        return await session.get(Organisation, organisation_id)


async def visible_organisations(sessions: Sessions, organisation_id: int) -> list[int]:
    """The clinics whose dispatches a clinic's look-ups see: itself, and its region's."""
    async with sessions() as session:
        own = await session.get(Organisation, organisation_id)
        if own is None or own.region is None:
            return [organisation_id]
        peers = await session.exec(
            select(Organisation.id).where(col(Organisation.region) == own.region)
        )
        return sorted({organisation_id, *(i for i in peers if i is not None)})


async def set_region(sessions: Sessions, organisation: str, region: str | None) -> Organisation:
    """Put a clinic in a region (its look-ups and the region's see each other's dispatches), or
    take it out with None. Raises LookupError if there is no such organisation."""
    async with sessions() as session:
        org = await find_organisation(session, organisation)
        if org is None:
            raise LookupError(organisation)
        org.region = normalise_org_name(region)[:100] if region and region.strip() else None
        session.add(org)
        await session.commit()
        await session.refresh(org)
        return org


async def organisations(sessions: Sessions) -> list[tuple[Organisation, int]]:
    """Every organisation with how many live API keys it has."""
    async with sessions() as session:
        orgs = list(await session.exec(select(Organisation).order_by(col(Organisation.name))))
        keys = list(await session.exec(select(ApiKey).where(col(ApiKey.revoked_at).is_(None))))
    counts: dict[int, int] = {}
    for key in keys:
        counts[key.organisation_id] = counts.get(key.organisation_id, 0) + 1
    return [(org, counts.get(org.id or 0, 0)) for org in orgs]


# --- the name callers read -------------------------------------------------------------------


def display_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a clinic's display name (it goes in every SMS), or None."""
    from bot.sms import is_gsm7

    cleaned = normalise_org_name(name)
    if not cleaned:
        return "it must not be empty"
    if len(cleaned) > DISPLAY_NAME_MAX:
        return (
            f"it is {len(cleaned)} characters; at most {DISPLAY_NAME_MAX} fit the SMS "
            "(e.g. 'Bergen legevakt')"
        )
    if not is_gsm7(cleaned):
        odd = "".join(sorted({c for c in cleaned if not is_gsm7(c)}))
        return f"it has characters an ordinary SMS cannot carry ({odd})"
    return None


def shown_name(org: Organisation | None) -> str | None:
    """The clinic's name as callers read it: its display name, else its own name if that fits
    an SMS; None (the SMS then says "the legevakt") otherwise."""
    if org is None:
        return None
    if org.display_name:
        return org.display_name
    return org.name if display_name_problem(org.name) is None else None


async def set_display_name(
    sessions: Sessions, organisation: str, display_name: str | None
) -> Organisation:
    """Set (or with None, clear) the name callers read for a clinic. Raises LookupError if there
    is no such organisation and ValueError (the reason) if the name does not fit an SMS."""
    if display_name is not None:
        problem = display_name_problem(display_name)
        if problem is not None:
            raise ValueError(problem)
    async with sessions() as session:
        org = await find_organisation(session, organisation)
        if org is None:
            raise LookupError(organisation)
        org.display_name = normalise_org_name(display_name) if display_name else None
        session.add(org)
        await session.commit()
        await session.refresh(org)
        return org
