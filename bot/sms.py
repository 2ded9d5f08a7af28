"""SMS to callers: a small provider interface for the clinic's gateway, and a durable sender.

``queue_sms`` writes an ``SmsMessage`` in the caller's transaction (with the dispatch it belongs
to). The number and the text (which holds the advice link) are stored only encrypted, with a
``Cipher`` keyed from ``SECRET_KEY``. ``SmsSender`` claims due rows the way ``bot.outbox`` does
(a conditional ``UPDATE … RETURNING`` with a lease, ``SKIP LOCKED`` on PostgreSQL), sends them
through an ``SmsProvider``, retries temporary errors with backoff and gives up on permanent ones.
On every final state (sent, failed, expired) the ciphertext is erased and the dispatch's
``sms_status`` is updated in the same transaction. It logs row ids, statuses and error classes,
never the number, the text or the ciphertext.

Providers: ``ConsoleSmsProvider`` prints the text for the demo (never the number, and the link
only masked) and sends nothing, so the dispatch says ``not_sent``; ``HttpSmsProvider`` posts a
configurable JSON body to the clinic's gateway; ``NoSmsProvider`` (``SMS_PROVIDER=none``, the call
system sends the SMS itself) refuses any row that reaches it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import aiohttp
from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import ConfigError, Settings
from bot.db import Sessions
from bot.models import OutboxStatus, SmsMessage, SmsStatus, metadata, utcnow
from bot.outbox import claim_due
from bot.privacy import Cipher
from bot.worker import QueueWorker

log = logging.getLogger(__name__)

FINAL = (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.EXPIRED)
CIPHERTEXT_MAX = 2000  # SmsMessage.ciphertext's column length
_SMS_TABLE: Any = metadata.tables["sms_message"]
_DISPATCH_TABLE: Any = metadata.tables["dispatch"]

# --- GSM 03.38 -----------------------------------------------------------------------------

# The basic character set (0x1B, the escape to the extension table, is left out: not a character).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


def is_gsm7(text: str) -> bool:
    """True if every character is in the GSM 03.38 basic set or its extension table."""
    return all(c in _GSM7_BASIC or c in _GSM7_EXTENSION for c in text)


def gsm7_septets(text: str) -> int:
    """The length in GSM-7 septets: extension-table characters count 2 (assumes ``is_gsm7``)."""
    return sum(2 if c in _GSM7_EXTENSION else 1 for c in text)


# --- providers -----------------------------------------------------------------------------


class SmsError(Exception):
    """Sending failed. The message carries an HTTP status or an error class, never content."""


class SmsTemporaryError(SmsError):
    """Worth trying again later: timeouts, connection errors, 408, 429, 5xx."""


class SmsPermanentError(SmsError):
    """Trying again will not help: the gateway refused this SMS (e.g. 400)."""


class SmsProvider(Protocol):
    """What a clinic's SMS gateway must offer."""

    name: str
    #: False for a provider that only pretends (the console): its dispatches say ``not_sent``.
    delivers: bool

    async def send(self, to: str, text: str) -> None:
        """Send one SMS; raise ``SmsTemporaryError`` or ``SmsPermanentError`` on failure."""
        ...

    async def close(self) -> None: ...


# The one-time token in a deep link: a credential, so the console shows only its first letters.
_LINK_TOKEN = re.compile(r"(\?start=[A-Za-z0-9]_[A-Za-z0-9_-]{3})[A-Za-z0-9_-]+")


def mask_links(text: str) -> str:
    """The text with every deep link's token cut to its first three characters."""
    return _LINK_TOKEN.sub(r"\1…", text)


class ConsoleSmsProvider:
    """The demo (and staging): prints the SMS text, link masked and never the number, and sends
    nothing; the dispatch's SMS status becomes ``not_sent``."""

    name = "console"
    delivers = False

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.texts: list[str] = []

    async def send(self, to: str, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        shown = mask_links(text)
        stream.write(f"SMS NOT SENT (SMS_PROVIDER=console), to the caller's number:\n{shown}\n")
        stream.flush()
        self.texts.append(shown)

    async def close(self) -> None:
        return None


class HttpSmsProvider:
    """Posts each SMS as JSON to the clinic's gateway.

    ``body_template`` is JSON in the gateway's shape; any string value that is exactly ``"{to}"``
    or ``"{text}"`` is replaced by the number or the text (so JSON does the escaping).
    ``auth_header`` is one header line, e.g. ``"Authorization: Bearer abc123"``.
    """

    name = "http"
    delivers = True

    def __init__(
        self,
        url: str,
        *,
        auth_header: str | None = None,
        body_template: str = '{"to": "{to}", "text": "{text}"}',
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._template = json.loads(body_template)
        self._headers = {"Content-Type": "application/json; charset=utf-8"}
        if auth_header:
            name, sep, value = auth_header.partition(":")
            if not sep or not name.strip() or not value.strip():
                raise ValueError("the auth header must be one line, e.g. 'Authorization: Bearer x'")
            self._headers[name.strip()] = value.strip()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def body(self, to: str, text: str) -> Any:
        """The request body for one SMS, as a JSON-ready value."""
        return _fill(self._template, {"{to}": to, "{text}": text})

    async def send(self, to: str, text: str) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        data = json.dumps(self.body(to, text), ensure_ascii=False).encode()
        try:
            async with self._session.post(
                self.url, data=data, headers=self._headers, allow_redirects=False
            ) as response:
                status = response.status
                await response.read()  # let the connection be reused; the body is not kept
        except TimeoutError:
            raise SmsTemporaryError("Timeout") from None
        except aiohttp.ClientError as exc:
            raise SmsTemporaryError(type(exc).__name__) from None
        if 200 <= status < 300:
            return
        if status in (408, 429) or status >= 500:
            raise SmsTemporaryError(f"HTTP {status}")
        raise SmsPermanentError(f"HTTP {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _fill(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, str):
        return replacements.get(value, value)
    if isinstance(value, dict):
        return {k: _fill(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, replacements) for v in value]
    return value


class NoSmsProvider:
    """``SMS_PROVIDER=none``: the call system sends the SMS. The API refuses ``send_sms``, so a
    row reaches this only if it was queued under another setting; it fails, never pretends."""

    name = "none"
    delivers = False

    async def send(self, to: str, text: str) -> None:
        raise SmsPermanentError("SmsProviderNone")

    async def close(self) -> None:
        return None


def make_provider(settings: Settings) -> SmsProvider:
    """The provider the settings ask for: ``http`` (the clinic's gateway), ``none`` or
    ``console`` (demo and staging)."""
    if settings.sms_mode == "none":
        return NoSmsProvider()
    if settings.sms_mode == "http":
        if not settings.sms_http_url:
            raise ConfigError(
                "The environment variable SMS_HTTP_URL is missing: with SMS_PROVIDER=http, give "
                "the address of the SMS gateway (e.g. https://sms.example.no/send)."
            )
        auth = settings.sms_http_auth_header
        return HttpSmsProvider(
            settings.sms_http_url,
            auth_header=auth.get_secret_value() if auth is not None else None,
            body_template=settings.sms_http_body,
            timeout=settings.sms_http_timeout_seconds,
        )
    return ConsoleSmsProvider()


def sms_cipher(settings: Settings) -> Cipher:
    """The cipher for SMS rows, keyed from ``SECRET_KEY`` (fallbacks read)."""
    return Cipher(settings.secrets(), "sms")


# --- the queue -----------------------------------------------------------------------------


async def queue_sms(
    session: AsyncSession,
    cipher: Cipher,
    *,
    dispatch_id: str | None,
    to: str,
    text: str,
    due_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> SmsMessage:
    """Add an encrypted SMS inside the caller's transaction; the caller commits.

    The SMS exists exactly when the dispatch that caused it does.
    """
    ciphertext = cipher.encrypt(json.dumps({"to": to, "text": text}))
    if len(ciphertext) > CIPHERTEXT_MAX:
        raise ValueError("the SMS is too long to be stored")
    now = utcnow()
    message = SmsMessage(
        dispatch_id=dispatch_id,
        ciphertext=ciphertext,
        status=OutboxStatus.PENDING,
        due_at=due_at or now,
        expires_at=expires_at,
        attempts=0,
        created_at=now,
    )
    session.add(message)
    return message


@dataclass
class SmsStats:
    """Counters for /status and /metrics."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    last_tick: dt.datetime | None = None


class SmsSender(QueueWorker):
    """Claims due SMS rows and sends them through the provider, one at a time.

    ``stop`` does not close the provider: whoever made it closes it.
    """

    name = "sms-sender"

    def __init__(
        self,
        sessions: Sessions,
        provider: SmsProvider,
        cipher: Cipher,
        *,
        max_attempts: int = 6,
        tick_seconds: float = 1.0,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        max_backoff_seconds: float = 300.0,
    ) -> None:
        super().__init__(tick_seconds=tick_seconds)
        self.sessions = sessions
        self.provider = provider
        self.cipher = cipher
        self.worker = f"sms-{uuid.uuid4().hex[:8]}"
        self.max_attempts = max_attempts
        self.lease = lease
        self.max_backoff = max_backoff_seconds
        self.stats = SmsStats()

    # --- one round -------------------------------------------------------------------------

    async def drain_once(self, limit: int | None = None) -> int:
        """Claim a batch of due rows and send them in turn; returns how many were handled."""
        self.stats.last_tick = utcnow()
        rows = await self._claim(limit or 16)
        for index, row in enumerate(rows):
            if self._stopping:
                await self._release(rows[index:])
                break
            await self._deliver(row)
        return len(rows)

    async def _claim(self, limit: int) -> list[SmsMessage]:
        return await claim_due(
            self.sessions, SmsMessage, worker=self.worker, limit=limit, lease=self.lease
        )

    async def _deliver(self, row: SmsMessage) -> None:
        """Send one row and record the outcome."""
        if row.expires_at is not None and utcnow() > row.expires_at:
            if await self._finish(row, OutboxStatus.EXPIRED, error="Expired"):
                self.stats.expired += 1
            log.info("sms: message %s (dispatch %s) expired unsent", row.id, row.dispatch_id)
            return
        content = self._open(row)
        if content is None:
            if await self._finish(row, OutboxStatus.FAILED, error="KeyChanged"):
                self.stats.failed += 1
            log.warning(
                "sms: message %s (dispatch %s) cannot be decrypted (SECRET_KEY changed?)",
                row.id,
                row.dispatch_id,
            )
            return
        to, text = content
        try:
            await self.provider.send(to, text)
        except SmsPermanentError as exc:
            error = str(exc)[:200] or type(exc).__name__
            if await self._finish(row, OutboxStatus.FAILED, error=error):
                self.stats.failed += 1
            log.warning(
                "sms: message %s (dispatch %s) refused by the gateway: %s",
                row.id,
                row.dispatch_id,
                error,
            )
            return
        except SmsTemporaryError as exc:
            await self._temporary(row, str(exc)[:200] or type(exc).__name__)
            return
        except Exception as exc:  # a provider bug must not kill the loop; content stays out
            log.warning(
                "sms: provider %s raised %s for message %s; will retry",
                self.provider.name,
                type(exc).__name__,
                row.id,
            )
            await self._temporary(row, type(exc).__name__)
            return
        if await self._finish(row, OutboxStatus.SENT):
            self.stats.sent += 1
        log.info("sms: message %s (dispatch %s) sent", row.id, row.dispatch_id)

    def _open(self, row: SmsMessage) -> tuple[str, str] | None:
        if row.ciphertext is None:
            return None
        plaintext = self.cipher.decrypt(row.ciphertext)
        if plaintext is None:
            return None
        try:
            data = json.loads(plaintext)
            return str(data["to"]), str(data["text"])
        except (ValueError, KeyError, TypeError):
            return None

    async def _temporary(self, row: SmsMessage, error: str) -> None:
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            if await self._finish(row, OutboxStatus.FAILED, error="GaveUp", attempts=attempts):
                self.stats.failed += 1
            log.warning(
                "sms: message %s (dispatch %s) given up after %d attempts (last: %s)",
                row.id,
                row.dispatch_id,
                attempts,
                error,
            )
            return
        backoff = min(self.max_backoff, 2 ** (attempts - 1) * random.uniform(0.75, 1.25))
        retry_at = utcnow() + dt.timedelta(seconds=backoff)
        await self._update_claimed(
            row,
            {
                "status": OutboxStatus.PENDING,
                "due_at": retry_at,
                "claimed_by": None,
                "claimed_until": None,
                "last_error": error,
                "attempts": attempts,
            },
        )
        self.stats.retried += 1
        log.info(
            "sms: message %s (dispatch %s) will be retried in %.1f s (%s)",
            row.id,
            row.dispatch_id,
            backoff,
            error,
        )

    # --- bookkeeping -----------------------------------------------------------------------

    async def _finish(
        self,
        row: SmsMessage,
        status: str,
        *,
        error: str | None = None,
        attempts: int | None = None,
    ) -> bool:
        """Record a final state, erase the content and update the dispatch, in one transaction.

        False if this sender's claim no longer stands (another sender took the row over).
        """
        values: dict[str, Any] = {
            "status": status,
            "ciphertext": None,
            "claimed_by": None,
            "claimed_until": None,
            "last_error": error,
            "attempts": attempts if attempts is not None else row.attempts + 1,
        }
        if status == OutboxStatus.SENT:
            values["sent_at"] = utcnow()
        sms_status = SmsStatus.FAILED
        if status == OutboxStatus.SENT:
            sms_status = SmsStatus.SENT if self.provider.delivers else SmsStatus.NOT_SENT
        table: Any = _SMS_TABLE
        async with self.sessions() as session:
            result: Any = await session.exec(
                update(table)
                .where(table.c.id == row.id, table.c.claimed_by == row.claimed_by)
                .values(**values)
            )
            if not result.rowcount:
                await session.rollback()
                return False
            if row.dispatch_id is not None:
                dispatch: Any = _DISPATCH_TABLE
                await session.exec(
                    update(dispatch)
                    .where(dispatch.c.id == row.dispatch_id)
                    .values(sms_status=sms_status)
                )
            await session.commit()
        return True

    async def _release(self, rows: list[SmsMessage]) -> None:
        for row in rows:
            await self._update_claimed(
                row, {"status": OutboxStatus.PENDING, "claimed_by": None, "claimed_until": None}
            )

    async def _release_own_claims(self) -> None:
        table: Any = _SMS_TABLE
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

    async def _update_claimed(self, row: SmsMessage, values: dict[str, Any]) -> bool:
        # Only touch the row while this sender's claim on it stands.
        table: Any = _SMS_TABLE
        async with self.sessions() as session:
            result: Any = await session.exec(
                update(table)
                .where(table.c.id == row.id, table.c.claimed_by == row.claimed_by)
                .values(**values)
            )
            await session.commit()
            return bool(result.rowcount)
