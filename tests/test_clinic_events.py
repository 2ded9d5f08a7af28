"""The clinic's events at the service level: what an event may carry, and the feed's order.

The events that callers' actions produce, the feed over HTTP and the webhooks are tested
through the real API in their own test files; this file holds the rules every event obeys.
"""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from bot.db import Sessions
from bot.models import Dispatch, Organisation, utcnow
from bot.services import clinic_events
from bot.services.clinic_events import EventType


async def a_dispatch(sessions: Sessions, org_name: str) -> Dispatch:
    async with sessions() as session:
        org = Organisation(name=org_name)
        session.add(org)
        await session.flush()
        dispatch = Dispatch(
            id=secrets.token_hex(16),
            organisation_id=org.id,
            topic_id="fever-child",
            topic_version=1,
            locale="nb",
            token_hash=secrets.token_hex(32),
            expires_at=utcnow() + dt.timedelta(hours=72),
        )
        session.add(dispatch)
        await session.commit()
        await session.refresh(dispatch)
        return dispatch


async def test_an_event_carries_only_its_whitelisted_data(sessions: Sessions) -> None:
    dispatch = await a_dispatch(sessions, "Legevakten i Bergen")
    async with sessions() as session:
        with pytest.raises(ValueError, match="may not carry \\['note'\\]"):
            await clinic_events.emit(
                session, dispatch, EventType.DISPATCH_WORSE, {"via": "web", "note": "x"}
            )
        with pytest.raises(ValueError, match="count must be"):
            await clinic_events.emit(
                session, dispatch, EventType.DISPATCH_WORSE, {"via": "web", "count": "2"}
            )


async def test_the_feed_is_one_clinics_events_in_order_after_a_given_one(
    sessions: Sessions,
) -> None:
    bergen = await a_dispatch(sessions, "Legevakten i Bergen")
    oslo = await a_dispatch(sessions, "Oslo legevakt")
    async with sessions() as session:
        first = await clinic_events.emit(
            session, bergen, EventType.DISPATCH_OPENED, {"via": "web", "first": True}
        )
        await clinic_events.emit(
            session, oslo, EventType.DISPATCH_OPENED, {"via": "telegram", "first": True}
        )
        second = await clinic_events.emit(
            session, bergen, EventType.DISPATCH_WORSE, {"via": "web", "count": 1}
        )
        await session.commit()
    assert (first.seq, second.seq) == (1, 2)
    assert bergen.organisation_id is not None
    async with sessions() as session:
        everything = await clinic_events.feed(session, bergen.organisation_id, after=None, limit=10)
        later = await clinic_events.feed(
            session, bergen.organisation_id, after=first.public_id, limit=10
        )
        foreign = await clinic_events.feed(
            session, bergen.organisation_id, after="evt_" + "0" * 24, limit=10
        )
    assert everything is not None and later is not None
    assert [clinic_events.as_json(e)["type"] for e in everything] == [
        "dispatch.opened",
        "dispatch.worse",
    ]
    assert {e.dispatch_id for e in everything} == {bergen.id}
    assert [e.public_id for e in later] == [second.public_id]
    assert foreign is None
    body = clinic_events.as_json(second)
    assert set(body) == {"id", "type", "created_at", "dispatch_id", "data"}
    assert body["data"] == {"via": "web", "count": 1} and body["created_at"].endswith("Z")
