"""A clinic's webhook: where its events are POSTed, signed (README, "Webhooks").

An API key may have a webhook URL and a signing secret (``whsec_…``, shown once, stored
Fernet-encrypted with the "webhook" key, rotated by ``keys rotate``). ``clinic_events.emit``
calls ``enqueue_event`` in its own transaction: one queued ``clinic_event`` row per event and
key (dedupe key), living 24 h. The sender delivers it through ``bot.channels.webhook``, which
signs at send time; a 410 ends here (``after_delivery``): the webhook is turned off, what was
queued for it is dropped, and the admins are told.

Rotation: ``rotate_secret`` makes a new secret and keeps the previous one for a grace period
(default 24 h), during which every request carries two ``v1`` signatures, so a receiver can
switch to the new secret whenever it is ready. Nothing here logs a secret or a URL.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import outbox
from bot.config import Settings
from bot.db import Sessions
from bot.events import Delivery, WebhookFinished
from bot.models import (
    ApiKey,
    ClinicEvent,
    MessageKind,
    Organisation,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)
from bot.netguard import check_destination
from bot.privacy import Cipher

log = logging.getLogger(__name__)

LIFE = dt.timedelta(hours=24)  # an event not delivered by then is dropped (expired)
GRACE = dt.timedelta(hours=24)  # the previous secret signs too, after a rotation
GONE = "HTTP 410"  # the receiver says the webhook is gone for good: turn it off
PURPOSE = "webhook"


def cipher(settings: Settings) -> Cipher:
    """The cipher of signing secrets, keyed from SECRET_KEY (fallbacks read)."""
    return Cipher(settings.secrets(), PURPOSE)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def live(key: ApiKey) -> bool:
    """Whether events should go to the key's webhook now."""
    return (
        key.webhook_url is not None
        and key.webhook_secret is not None
        and key.webhook_disabled_at is None
        and key.revoked_at is None
    )


# --- setting it ------------------------------------------------------------------------------


async def set_webhook(
    sessions: Sessions, settings: Settings, key_id: int, url: str
) -> tuple[ApiKey, str | None]:
    """Point the key's webhook at ``url`` (checked, DNS included) and turn it on again; the
    new signing secret if the key had none (shown once), else None (the secret is kept).
    Raises ``netguard.Refused`` for a URL not allowed and LookupError for no live key."""
    checked = await check_destination(url, settings)
    async with sessions() as session:
        key = await session.get(ApiKey, key_id)
        if key is None or key.revoked_at is not None:
            raise LookupError(key_id)
        fresh = None
        if key.webhook_secret is None:
            fresh = new_secret()
            key.webhook_secret = cipher(settings).encrypt(fresh)
        key.webhook_url = checked
        key.webhook_disabled_at = None
        session.add(key)
        await session.commit()
        await session.refresh(key)
    log.info("webhooks: key %s has a webhook now", key_id)
    return key, fresh


async def remove_webhook(sessions: Sessions, key_id: int) -> bool:
    """Take the key's webhook and secrets away; what is queued for it fails when its turn
    comes ("NoWebhook"). False if there was none."""
    async with sessions() as session:
        key = await session.get(ApiKey, key_id)
        if key is None or key.webhook_url is None:
            return False
        key.webhook_url = None
        key.webhook_secret = None
        key.webhook_previous_secret = None
        key.webhook_previous_until = None
        key.webhook_disabled_at = None
        session.add(key)
        await session.commit()
    log.info("webhooks: key %s has no webhook now", key_id)
    return True


async def rotate_secret(
    sessions: Sessions, settings: Settings, key_id: int, *, grace: dt.timedelta = GRACE
) -> tuple[str, dt.datetime | None]:
    """A new signing secret (shown once) and until when the previous one signs too (None: not
    at all). Raises LookupError if the key has no webhook."""
    fresh = new_secret()
    async with sessions() as session:
        key = await session.get(ApiKey, key_id)
        if key is None or key.webhook_secret is None:
            raise LookupError(key_id)
        until = utcnow() + grace if grace > dt.timedelta(0) else None
        key.webhook_previous_secret = key.webhook_secret if until is not None else None
        key.webhook_previous_until = until
        key.webhook_secret = cipher(settings).encrypt(fresh)
        session.add(key)
        await session.commit()
    log.info("webhooks: key %s has a new signing secret", key_id)
    return fresh, until


def signing_secrets(key: ApiKey, box: Cipher, now: dt.datetime) -> tuple[str, ...]:
    """The secrets a request is signed with now: the current one, and the previous one during
    its grace. Empty if the current one cannot be read (SECRET_KEY changed without fallback)."""
    current = box.decrypt(key.webhook_secret) if key.webhook_secret else None
    if current is None:
        return ()
    found = [current]
    if (
        key.webhook_previous_secret is not None
        and key.webhook_previous_until is not None
        and now < key.webhook_previous_until
    ):
        previous = box.decrypt(key.webhook_previous_secret)
        if previous is not None:
            found.append(previous)
    return tuple(found)


# --- queueing ------------------------------------------------------------------------------


async def enqueue_event(session: AsyncSession, event: ClinicEvent) -> int | None:
    """Queue the event for its key's webhook, if it has a live one (in the caller's
    transaction); the row's id, or None. Once per event and key."""
    if event.api_key_id is None or event.id is None:
        return None
    key = await session.get(ApiKey, event.api_key_id)
    if key is None or not live(key):
        return None
    return await outbox.enqueue(
        session,
        MessageKind.CLINIC_EVENT,
        dedupe_key=f"webhook:{event.id}:{key.id}",
        clinic_event_id=event.id,
        api_key_id=key.id,
        expires_at=event.created_at + LIFE,
    )


# --- outcomes ------------------------------------------------------------------------------


async def record_attempt(
    sessions: Sessions, key_id: int, failure: str | None, *, now: dt.datetime | None = None
) -> None:
    """Note a request's outcome on the key, for /status: None a success, else its code."""
    now = now or utcnow()
    values: dict[str, Any] = (
        {"webhook_last_success_at": now}
        if failure is None
        else {"webhook_last_failure_at": now, "webhook_last_failure": failure[:40]}
    )
    async with sessions() as session:
        await session.exec(update(ApiKey).where(col(ApiKey.id) == key_id).values(**values))
        await session.commit()


Notice = Callable[[ApiKey], str]


async def after_delivery(
    session: AsyncSession,
    finished: WebhookFinished,
    *,
    admins: Sequence[int] = (),
    notice: Notice | None = None,
) -> None:
    """A webhook row is final. After a 410: the webhook is turned off (when is recorded), the
    rows still queued for it are dropped, and each admin gets ``notice(key)``; all in the
    transaction that records the row's end."""
    if finished.delivery is not Delivery.FAILED or finished.reason != GONE:
        return
    key = await session.get(ApiKey, finished.api_key_id)
    if key is None or key.webhook_disabled_at is not None:
        return
    now = utcnow()
    key.webhook_disabled_at = now
    session.add(key)
    await session.exec(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.api_key_id) == key.id,
            col(OutboxMessage.status) == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.FAILED, last_error="WebhookDisabled")
    )
    log.warning("webhooks: key %s answered 410; its webhook is turned off", key.id)
    if notice is None:
        return
    text = notice(key)
    for admin in admins:
        await outbox.enqueue(
            session,
            MessageKind.ADMIN_NOTICE,
            dedupe_key=f"webhook-gone:{key.id}:{now.isoformat()}:{admin}",
            chat_id=admin,
            payload={"text": text},
        )


# --- health, for /status -----------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    key: ApiKey
    organisation: str
    queued: int  # pending or being sent


async def health(sessions: Sessions) -> list[Health]:
    """Every key with a webhook (on or turned off), with how many events wait for it."""
    async with sessions() as session:
        keys = list(
            await session.exec(
                select(ApiKey, Organisation)
                .join(Organisation, col(ApiKey.organisation_id) == col(Organisation.id))
                .where(col(ApiKey.webhook_url).is_not(None))
                .order_by(col(ApiKey.id))
            )
        )
        counts = dict(
            (
                await session.exec(
                    select(OutboxMessage.api_key_id, func.count())
                    .where(
                        col(OutboxMessage.api_key_id).is_not(None),
                        col(OutboxMessage.status).in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
                    )
                    .group_by(col(OutboxMessage.api_key_id))
                )
            ).all()
        )
    return [Health(key, org.name, int(counts.get(key.id, 0))) for key, org in keys]
