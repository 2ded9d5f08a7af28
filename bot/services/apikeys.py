"""API keys for the clinic's call system: made by an admin, shown once, stored as SHA-256.

A key is 256 random bits, so an unkeyed hash is enough and lookup by hash takes the same time
whatever the key.
"""

from __future__ import annotations

import hashlib

from sqlmodel import col, select

from bot.db import Sessions
from bot.models import ApiKey, utcnow
from bot.privacy import new_api_key


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create(sessions: Sessions, name: str) -> tuple[ApiKey, str]:
    """A new key for ``name``; the plaintext is returned once and never stored."""
    key = new_api_key()
    row = ApiKey(name=name.strip()[:100], key_hash=_hash(key))
    async with sessions() as session:
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row, key


async def verify(sessions: Sessions, presented: str) -> ApiKey | None:
    """The live key matching ``presented``, or None; remembers when it was last used."""
    if not presented.startswith("sn_") or len(presented) > 100:
        return None
    async with sessions() as session:
        row = (
            await session.exec(select(ApiKey).where(ApiKey.key_hash == _hash(presented)))
        ).one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        row.last_used_at = utcnow()
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row


async def list_keys(sessions: Sessions) -> list[ApiKey]:
    async with sessions() as session:
        return list(await session.exec(select(ApiKey).order_by(col(ApiKey.id))))


async def revoke(sessions: Sessions, key_id: int) -> bool:
    async with sessions() as session:
        row = await session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        session.add(row)
        await session.commit()
        return True
