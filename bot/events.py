"""Typed events of the way out: what became of a queued message, for services to act on.

The sender publishes one ``MessageFinished`` for every row that reaches a final state (sent,
failed, expired), and the kind's own event where there is one (``CheckinFinished``,
``SmsFinished``, ``WebhookFinished``). Subscribers run in the same database transaction that
records the final state, so what they write (a dispatch's status, a webhook turned off) exists
exactly when the outcome does.

This is the extension point for new consumers: subscribe a function to an event type in
``bot.app``; nothing here parses keys or knows a channel.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Channel, MessageKind, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)


class Delivery(StrEnum):
    """The final state of a queued message."""

    SENT = OutboxStatus.SENT.value
    FAILED = OutboxStatus.FAILED.value
    EXPIRED = OutboxStatus.EXPIRED.value


@dataclass(frozen=True)
class MessageFinished:
    """Any queued message reached its final state."""

    message_id: int
    channel: Channel
    kind: MessageKind
    delivery: Delivery
    reason: str | None
    person_id: int | None


@dataclass(frozen=True)
class CheckinFinished:
    """A caller's check-in question was sent, expired unsent, or failed."""

    dispatch_id: str
    delivery: Delivery
    reason: str | None


@dataclass(frozen=True)
class SmsFinished:
    """The SMS with a dispatch's link was sent, expired unsent, or failed. ``delivered`` is
    False when it was "sent" to a provider that only pretends (SMS_PROVIDER=console)."""

    dispatch_id: str
    delivery: Delivery
    reason: str | None
    delivered: bool = True


@dataclass(frozen=True)
class WebhookFinished:
    """A clinic event queued for a key's webhook was delivered, expired, or failed (a 410:
    ``reason`` "HTTP 410")."""

    api_key_id: int
    clinic_event_id: int | None
    delivery: Delivery
    reason: str | None


Event = MessageFinished | CheckinFinished | SmsFinished | WebhookFinished
E = TypeVar("E", MessageFinished, CheckinFinished, SmsFinished, WebhookFinished)
Subscriber = Callable[[AsyncSession, Any], Awaitable[None]]


def events_for(
    row: OutboxMessage, delivery: Delivery, reason: str | None, *, delivered: bool = True
) -> list[Event]:
    """The events one final row gives rise to: always ``MessageFinished``, and its kind's own."""
    assert row.id is not None
    kind = MessageKind(row.kind)
    events: list[Event] = [
        MessageFinished(row.id, Channel(row.channel), kind, delivery, reason, row.person_id)
    ]
    if kind is MessageKind.CHECKIN and row.dispatch_id is not None:
        events.append(CheckinFinished(row.dispatch_id, delivery, reason))
    elif kind is MessageKind.SMS_LINK and row.dispatch_id is not None:
        events.append(SmsFinished(row.dispatch_id, delivery, reason, delivered))
    elif kind is MessageKind.CLINIC_EVENT and row.api_key_id is not None:
        events.append(WebhookFinished(row.api_key_id, row.clinic_event_id, delivery, reason))
    return events


class Events:
    """Subscribers by event type; ``publish`` runs them in the caller's session, in order."""

    def __init__(self) -> None:
        self._subscribers: dict[type, list[Subscriber]] = defaultdict(list)

    def subscribe(
        self, event_type: type[E], subscriber: Callable[[AsyncSession, E], Awaitable[None]]
    ) -> None:
        self._subscribers[event_type].append(subscriber)

    async def publish(self, session: AsyncSession, event: Event) -> None:
        """Run every subscriber of the event's type; an exception propagates (the sender
        then records the outcome without the subscribers, and logs it)."""
        for subscriber in self._subscribers.get(type(event), ()):
            await subscriber(session, event)
