"""SMS to callers: GSM-7, a small provider interface for the clinic's gateway, and the SMS channel
adapter.

``queue_sms`` queues an SMS in the caller's transaction (with the dispatch it belongs to); the
number and the text (which holds the advice link) wait only encrypted, in the queued row's
``secret``, with a ``Cipher`` keyed from ``SECRET_KEY``, and are erased when the row is final.
The one sender (``bot.sender``) delivers it through ``SmsAdapter``, which sends and classifies:
2xx → sent; 429 → throttled (the gateway's ``Retry-After``); 408, 5xx, timeouts and connection
errors → transient (retried until the SMS expires); any other 4xx → permanent. Nothing here
logs the number, the text or the ciphertext.

Providers: ``ConsoleSmsProvider`` prints the text for the demo (never the number, and the link
only masked) and sends nothing, so the dispatch says ``not_sent``; ``HttpSmsProvider`` posts a
configurable JSON body to the clinic's gateway; ``NoSmsProvider`` (``SMS_PROVIDER=none``, the call
system sends the SMS itself) refuses any row that reaches it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any, Protocol, TextIO

import aiohttp
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import outbox
from bot.config import ConfigError, Settings
from bot.messages import Message, Outcome, Permanent, Sent, Throttled, Transient
from bot.models import Channel, MessageKind, OutboxMessage
from bot.privacy import Cipher

log = logging.getLogger(__name__)

CIPHERTEXT_MAX = 2000  # OutboxMessage.secret's column length
THROTTLED_DEFAULT = 30.0  # seconds to wait after a 429 that names no Retry-After

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


class SmsThrottled(SmsTemporaryError):
    """The gateway said 429: wait ``retry_after`` seconds before sending anything more."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("HTTP 429")
        self.retry_after = retry_after


class SmsProvider(Protocol):
    """What a clinic's SMS gateway must offer."""

    name: str
    #: False for a provider that only pretends (the console): its dispatches say ``not_sent``.
    delivers: bool

    async def send(self, to: str, text: str) -> None:
        """Send one SMS; raise ``SmsTemporaryError`` or ``SmsPermanentError`` on failure."""
        ...

    async def close(self) -> None: ...


# The token in a deep link or an advice page's URL: a credential, so the console shows only its
# first letters.
_LINK_TOKEN = re.compile(
    r"(\?start=[A-Za-z0-9]_[A-Za-z0-9_-]{3}|/r/[A-Za-z0-9_-]{3})[A-Za-z0-9_-]+"
)


def mask_links(text: str) -> str:
    """The text with every deep link's and page link's token cut to its first three characters."""
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
                retry_after = response.headers.get("Retry-After", "")
                await response.read()  # let the connection be reused; the body is not kept
        except TimeoutError:
            raise SmsTemporaryError("Timeout") from None
        except aiohttp.ClientError as exc:
            raise SmsTemporaryError(type(exc).__name__) from None
        if 200 <= status < 300:
            return
        if status == 429:
            wait = float(retry_after) if retry_after.strip().isdigit() else THROTTLED_DEFAULT
            raise SmsThrottled(wait)
        if status == 408 or status >= 500:
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


# --- the queue and the channel ------------------------------------------------------------


async def queue_sms(
    session: AsyncSession,
    cipher: Cipher,
    *,
    dispatch_id: str | None,
    to: str,
    text: str,
    due_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> int | None:
    """Queue an encrypted SMS inside the caller's transaction (the caller commits); its id.

    The SMS exists exactly when the dispatch that caused it does.
    """
    secret = cipher.encrypt(json.dumps({"to": to, "text": text}))
    if len(secret) > CIPHERTEXT_MAX:
        raise ValueError("the SMS is too long to be stored")
    return await outbox.enqueue(
        session,
        MessageKind.SMS_LINK,
        dispatch_id=dispatch_id,
        secret=secret,
        due_at=due_at,
        expires_at=expires_at,
    )


def open_secret(cipher: Cipher, secret: str | None) -> tuple[str, str] | None:
    """The number and the text of a queued SMS; None if it cannot be read (key changed)."""
    if secret is None:
        return None
    plaintext = cipher.decrypt(secret)
    if plaintext is None:
        return None
    try:
        data = json.loads(plaintext)
        return str(data["to"]), str(data["text"])
    except (ValueError, KeyError, TypeError):
        return None


class SmsAdapter:
    """Sends queued SMS through the provider and classifies the outcome (see the docstring).

    It does not close the provider: whoever made it closes it.
    """

    channel = Channel.SMS

    def __init__(self, provider: SmsProvider, *, concurrency: int = 4) -> None:
        self.provider = provider
        self.concurrency = concurrency

    async def ready(self, row: OutboxMessage) -> None:
        return None  # the gateway's own limits come back as 429 (Throttled)

    async def send(self, row: OutboxMessage, message: Message) -> Outcome:
        if message.recipient is None:
            return Permanent("NoNumber")
        try:
            await self.provider.send(message.recipient, message.text)
        except SmsThrottled as exc:
            return Throttled(exc.retry_after)
        except SmsPermanentError as exc:
            reason = str(exc)[:200] or type(exc).__name__
            log.warning("sms: message %s refused by the gateway: %s", row.id, reason)
            return Permanent(reason)
        except SmsTemporaryError as exc:
            return Transient(str(exc)[:200] or type(exc).__name__)
        except Exception as exc:  # a provider bug must not kill the loop; content stays out
            log.warning(
                "sms: provider %s raised %s for message %s",
                self.provider.name,
                type(exc).__name__,
                row.id,
            )
            return Transient(type(exc).__name__)
        log.info("sms: message %s (dispatch %s) sent", row.id, row.dispatch_id)
        return Sent(delivered=self.provider.delivers)
