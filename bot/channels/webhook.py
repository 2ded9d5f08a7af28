"""The webhook channel: POSTs a clinic's event to its key's webhook, signed, and classifies.

The body is the event's JSON (``clinic_events.as_json``) as the renderer wrote it at send time;
the adapter signs exactly those bytes, as Stripe does::

    Sikkerhetsnett-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

with a second ``v1`` during a secret rotation's grace (the previous secret). Outcomes: 2xx →
sent; 410 → permanent ("HTTP 410": the service turns the webhook off, and the rows behind it
are written again, finding it off); anything else (another
4xx, 3xx, 5xx, a timeout, a refused connection) → transient, for this row and its address only
(``pause_channel=False``): one clinic's broken endpoint never holds up another's, nor Telegram
or SMS. An address the policy refuses (``bot.netguard``, checked again here as the name is
resolved: the connection goes to the checked address) → permanent ("AddressRefused").

No redirect is followed; the whole request has ``WEBHOOK_TIMEOUT_SECONDS``; the response's body
is never read. Log lines carry the row id, the key id and a status, never a URL, a body or a
secret.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from bot.config import Settings
from bot.messages import Message, Outcome, Permanent, Sent, Transient
from bot.models import Channel, OutboxMessage
from bot.netguard import Network, Refused, address_allowed, allowed_networks, check_url
from bot.services.webhooks import GONE

log = logging.getLogger(__name__)

HEADER = "Sikkerhetsnett-Signature"
USER_AGENT = "Sikkerhetsnett-Webhooks/1"

# Records a request's outcome on the key (None: success; else its code), for /status.
Recorder = Callable[[int, str | None], Awaitable[None]]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The v1 signature: hex HMAC-SHA256, keyed with the whole secret, of ``"<t>.<body>"``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """``t=<t>,v1=<sig>[,v1=<sig of the previous secret>]``."""
    return ",".join([f"t={timestamp}"] + [f"v1={sign(s, timestamp, body)}" for s in secrets])


class AddressRefused(OSError):
    """The name resolved only to addresses the policy refuses."""


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` (the system's resolver by default) and keeps only the addresses
    the policy allows, so aiohttp connects to nothing else; none left raises
    ``AddressRefused``."""

    def __init__(self, networks: Sequence[Network], inner: AbstractResolver | None = None) -> None:
        self.networks = list(networks)
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = ThreadedResolver()
        found = await self._inner.resolve(host, port, family)
        kept = [
            r
            for r in found
            if address_allowed(ipaddress.ip_address(r["host"].split("%")[0]), self.networks)
        ]
        if not kept:
            raise AddressRefused(f"{host} resolves to no allowed address")
        return kept

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


class WebhookAdapter:
    """Sends queued clinic events to their key's webhook (see the module docstring).

    ``resolver`` replaces the system's name resolution (tests); ``record`` notes each request's
    outcome on the key. Close it with ``close()``.
    """

    channel = Channel.WEBHOOK

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int = 8,
        record: Recorder | None = None,
        resolver: AbstractResolver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.record = record
        self._networks = allowed_networks(settings)
        self._inner_resolver = resolver
        self._timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._clock = clock

    async def ready(self, row: OutboxMessage) -> None:
        return None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self._networks, self._inner_resolver),
                use_dns_cache=False,  # each connection checks the name as it resolves now
                limit_per_host=4,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, trust_env=False
            )
        return self._session

    async def send(self, row: OutboxMessage, message: Message) -> Outcome:
        key_id = row.api_key_id
        if key_id is None or message.recipient is None:
            return Permanent("NoWebhook")
        if not message.signing:
            return Permanent("KeyChanged")
        try:
            check_url(message.recipient, self.settings)  # the rules of now, IP literals too
        except Refused:
            log.warning("webhook: message %s to key %s refused: AddressRefused", row.id, key_id)
            return await self._noted(key_id, Permanent("AddressRefused"))
        body = message.text.encode()
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            HEADER: signature_header(message.signing, timestamp, body),
        }
        try:
            async with self._client().post(
                message.recipient, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status  # the body is never read
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                log.warning("webhook: message %s to key %s: AddressRefused", row.id, key_id)
                return await self._noted(key_id, Permanent("AddressRefused"))
            return await self._failed(row, key_id, type(exc).__name__)
        except TimeoutError:
            return await self._failed(row, key_id, "Timeout")
        except aiohttp.ClientError as exc:
            return await self._failed(row, key_id, type(exc).__name__)
        except Exception as exc:  # never kill the loop; nothing of the request in the log
            log.error("webhook: message %s failed with %s", row.id, type(exc).__name__)
            return await self._failed(row, key_id, type(exc).__name__)
        if 200 <= status < 300:
            log.info("webhook: message %s to key %s: %s", row.id, key_id, status)
            return await self._noted(key_id, Sent())
        log.info("webhook: message %s to key %s: %s", row.id, key_id, status)
        if status == 410:
            return await self._noted(key_id, Permanent(GONE, address_gone=True))
        return await self._noted(key_id, Transient(f"HTTP {status}", pause_channel=False))

    async def _failed(self, row: OutboxMessage, key_id: int, reason: str) -> Outcome:
        log.info("webhook: message %s to key %s: %s", row.id, key_id, reason)
        return await self._noted(key_id, Transient(reason, pause_channel=False))

    async def _noted(self, key_id: int, outcome: Any) -> Outcome:
        if self.record is not None:
            failure = None if isinstance(outcome, Sent) else getattr(outcome, "reason", None)
            try:
                await self.record(key_id, failure)
            except Exception as exc:  # /status's figures must not stop a delivery
                log.warning("webhook: could not note the outcome: %s", type(exc).__name__)
        result: Outcome = outcome
        return result

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
