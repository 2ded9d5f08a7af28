"""SMS to callers, through the one sender and the SMS adapter: the gateway gets the body in the
clinic's shape, a 5xx or a dead gateway is retried until the SMS expires without losing it, a
429 pauses the channel, a 400 is given up, a stale SMS is never sent, and the number and text
are encrypted while waiting, erased afterwards and never logged."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import select

from bot.app import build_sender
from bot.config import Settings
from bot.db import Sessions
from bot.models import Channel, Dispatch, OutboxMessage, OutboxStatus, SmsStatus, utcnow
from bot.privacy import Cipher
from bot.runtime import Runtime
from bot.sender import Sender
from bot.sms import (
    ConsoleSmsProvider,
    HttpSmsProvider,
    NoSmsProvider,
    SmsAdapter,
    SmsProvider,
    gsm7_septets,
    is_gsm7,
    make_provider,
    queue_sms,
    sms_cipher,
)
from tests.conftest import Gateway, drain_until_idle

NUMBER = "+4791234567"
TEXT = 'Hei Åse! Råd fra legevakten: «hvile» og "drikke".\nLes mer: https://t.me/x?start=a_Zx9'
TEMPLATE = '{"message": {"recipient": "{to}", "body": "{text}"}, "sender": "Legevakt"}'
AUTH = "X-Api-Key: hemmelig-nokkel"


@pytest.fixture
def cipher(settings: Settings) -> Cipher:
    return sms_cipher(settings)


@pytest.fixture
async def provider(gateway: Gateway) -> AsyncIterator[HttpSmsProvider]:
    p = HttpSmsProvider(gateway.url, auth_header=AUTH, body_template=TEMPLATE, timeout=2)
    yield p
    await p.close()


def sms_sender(rt: Runtime, provider: SmsProvider, **options: Any) -> Sender:
    """The one sender, with only the SMS channel (as running_bot builds it, faster timing)."""
    options.setdefault("max_backoff_seconds", 0.05)
    options.setdefault("tick_seconds", 0.05)
    return build_sender(rt, [SmsAdapter(provider)], **options)


@pytest.fixture
def sessions(rt: Runtime) -> Sessions:
    return rt.sessions


@pytest.fixture
def sender(rt: Runtime, provider: HttpSmsProvider) -> Sender:
    return sms_sender(rt, provider)


async def dispatch(sessions: Sessions) -> str:
    """A dispatch for the SMS to belong to."""
    async with sessions() as session:
        d = Dispatch(
            id=secrets.token_hex(16),
            topic_id="feber-barn",
            topic_version=1,
            locale="nb",
            token_hash=secrets.token_hex(32),
            expires_at=utcnow() + dt.timedelta(hours=72),
            sms_status=SmsStatus.QUEUED,
        )
        session.add(d)
        await session.commit()
        return d.id


async def queue(sessions: Sessions, cipher: Cipher, dispatch_id: str | None, **kwargs: Any) -> int:
    async with sessions() as session:
        sms_id = await queue_sms(
            session, cipher, dispatch_id=dispatch_id, to=NUMBER, text=TEXT, **kwargs
        )
        await session.commit()
        assert sms_id is not None
        return sms_id


async def sms(sessions: Sessions, sms_id: int) -> OutboxMessage:
    async with sessions() as session:
        found = await session.get(OutboxMessage, sms_id)
        assert found is not None
        return found


async def sms_status_of(sessions: Sessions, dispatch_id: str) -> str:
    async with sessions() as session:
        found = await session.get(Dispatch, dispatch_id)
        assert found is not None
        return found.sms_status


# --- the gateway ---------------------------------------------------------------------------


async def test_the_gateway_gets_the_configured_body_and_auth_header(
    sessions: Sessions, cipher: Cipher, sender: Sender, gateway: Gateway
) -> None:
    dispatch_id = await dispatch(sessions)
    sms_id = await queue(sessions, cipher, dispatch_id)

    await drain_until_idle(sender)

    assert len(gateway.requests) == 1
    request = gateway.requests[0]
    assert request["json"] == {
        "message": {"recipient": NUMBER, "body": TEXT},
        "sender": "Legevakt",
    }
    assert request["headers"]["X-Api-Key"] == "hemmelig-nokkel"
    assert request["headers"]["Content-Type"].startswith("application/json")
    sent = await sms(sessions, sms_id)
    assert (sent.status, sent.secret, sent.last_error) == (OutboxStatus.SENT, None, None)
    assert sent.sent_at is not None
    assert await sms_status_of(sessions, dispatch_id) == SmsStatus.SENT
    assert sender.stats(Channel.SMS).sent == 1


async def test_a_500_is_retried_and_the_sms_delivered_once(
    sessions: Sessions, cipher: Cipher, sender: Sender, gateway: Gateway
) -> None:
    dispatch_id = await dispatch(sessions)
    sms_id = await queue(sessions, cipher, dispatch_id)
    gateway.script = [500]

    await drain_until_idle(sender)

    assert [r["json"]["message"]["body"] for r in gateway.requests] == [TEXT, TEXT]
    sent = await sms(sessions, sms_id)
    assert (sent.status, sent.attempts, sent.secret) == (OutboxStatus.SENT, 2, None)
    assert await sms_status_of(sessions, dispatch_id) == "sent"
    assert (sender.stats(Channel.SMS).retried, sender.stats(Channel.SMS).sent) == (1, 1)


async def test_a_400_is_given_up_without_retrying(
    sessions: Sessions, cipher: Cipher, sender: Sender, gateway: Gateway
) -> None:
    dispatch_id = await dispatch(sessions)
    sms_id = await queue(sessions, cipher, dispatch_id)
    gateway.script = [400]

    await drain_until_idle(sender)
    await sender.drain_once()

    assert len(gateway.requests) == 1
    failed = await sms(sessions, sms_id)
    assert (failed.status, failed.last_error, failed.secret) == (
        OutboxStatus.FAILED,
        "HTTP 400",
        None,
    )
    assert await sms_status_of(sessions, dispatch_id) == "failed"


async def test_a_gateway_that_is_down_is_retried_and_the_sms_not_lost(
    sessions: Sessions, cipher: Cipher, sender: Sender, gateway: Gateway
) -> None:
    dispatch_id = await dispatch(sessions)
    sms_id = await queue(sessions, cipher, dispatch_id)
    await gateway.stop()
    before = utcnow()

    await sender.drain_once()

    waiting = await sms(sessions, sms_id)
    assert (waiting.status, waiting.attempts) == (OutboxStatus.PENDING, 1)
    assert waiting.due_at > before and waiting.secret is not None
    assert waiting.last_error is not None and "Client" in waiting.last_error
    assert await sms_status_of(sessions, dispatch_id) == SmsStatus.QUEUED

    await gateway.start()  # back on the same port
    await drain_until_idle(sender)

    assert len(gateway.requests) == 1
    assert (await sms(sessions, sms_id)).status == OutboxStatus.SENT
    assert await sms_status_of(sessions, dispatch_id) == SmsStatus.SENT


async def test_a_failing_gateway_is_retried_until_the_sms_expires_then_given_up(
    sessions: Sessions, cipher: Cipher, sender: Sender, gateway: Gateway
) -> None:
    """No fixed number of attempts: the SMS is tried again (backing off) for as long as it
    lives, and recorded as expired, not sent stale, when its life is over."""
    dispatch_id = await dispatch(sessions)
    sms_id = await queue(
        sessions, cipher, dispatch_id, expires_at=utcnow() + dt.timedelta(seconds=1.5)
    )
    gateway.script = [503] * 1000

    await drain_until_idle(sender, seconds=5)

    expired = await sms(sessions, sms_id)
    assert (expired.status, expired.last_error) == (OutboxStatus.EXPIRED, "Expired")
    assert expired.secret is None
    assert expired.attempts == len(gateway.requests) > 5  # tried all along, not 3 times
    assert await sms_status_of(sessions, dispatch_id) == SmsStatus.FAILED


async def test_a_429_pauses_the_sms_channel_for_retry_after_then_delivers(
    sessions: Sessions, cipher: Cipher, sender: Sender, gateway: Gateway
) -> None:
    dispatch_id = await dispatch(sessions)
    sms_id = await queue(sessions, cipher, dispatch_id)
    gateway.script = [429]
    began = time.monotonic()

    await drain_until_idle(sender)

    assert time.monotonic() - began >= 0.9  # the gateway's Retry-After: 1
    sent = await sms(sessions, sms_id)
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 1)  # a 429 is no failed attempt
    assert sender.stats(Channel.SMS).throttled == 1


async def test_an_expired_sms_never_reaches_the_gateway(
    sessions: Sessions, cipher: Cipher, sender: Sender, gateway: Gateway
) -> None:
    dispatch_id = await dispatch(sessions)
    now = utcnow()
    stale = await queue(
        sessions,
        cipher,
        dispatch_id,
        due_at=now - dt.timedelta(hours=2),
        expires_at=now - dt.timedelta(hours=1),
    )
    later = await queue(sessions, cipher, None, due_at=now + dt.timedelta(hours=1))

    await sender.drain_once()

    assert gateway.requests == []
    expired = await sms(sessions, stale)
    assert (expired.status, expired.secret) == (OutboxStatus.EXPIRED, None)
    assert await sms_status_of(sessions, dispatch_id) == SmsStatus.FAILED
    assert (await sms(sessions, later)).status == OutboxStatus.PENDING  # not due yet
    assert sender.stats(Channel.SMS).expired == 1


async def test_a_changed_secret_key_fails_the_sms_instead_of_sending_garbage(
    sessions: Sessions, sender: Sender, gateway: Gateway
) -> None:
    dispatch_id = await dispatch(sessions)
    sms_id = await queue(sessions, Cipher(b"an-old-key-" + b"y" * 32, "sms"), dispatch_id)

    await sender.drain_once()

    assert gateway.requests == []
    failed = await sms(sessions, sms_id)
    assert (failed.status, failed.last_error, failed.secret) == (
        OutboxStatus.FAILED,
        "KeyChanged",
        None,
    )
    assert await sms_status_of(sessions, dispatch_id) == SmsStatus.FAILED


async def test_nothing_is_queued_when_the_dispatch_rolls_back(
    sessions: Sessions, cipher: Cipher
) -> None:
    async with sessions() as session:
        await queue_sms(session, cipher, dispatch_id=None, to=NUMBER, text=TEXT)
        await session.rollback()
    async with sessions() as session:
        assert (await session.exec(select(OutboxMessage))).all() == []


# --- privacy -------------------------------------------------------------------------------


async def test_the_database_holds_neither_number_nor_text_in_clear(
    sessions: Sessions, cipher: Cipher
) -> None:
    sms_id = await queue(sessions, cipher, await dispatch(sessions))

    stored = (await sms(sessions, sms_id)).secret
    assert stored is not None
    for secret in (NUMBER, NUMBER[1:], "91234567", "Åse", "legevakten", "a_Zx9"):
        assert secret not in stored
    assert cipher.decrypt(stored) is not None  # but it can still be sent


async def test_no_number_or_text_in_the_logs_over_a_whole_run(
    sessions: Sessions,
    cipher: Cipher,
    sender: Sender,
    gateway: Gateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ok = await queue(sessions, cipher, await dispatch(sessions))
    refused = await queue(sessions, cipher, await dispatch(sessions))
    gateway.script = [500, 400]  # ok: 500, refused: 400, then ok: 200

    await drain_until_idle(sender)

    assert (await sms(sessions, ok)).status == OutboxStatus.SENT
    assert (await sms(sessions, refused)).status == OutboxStatus.FAILED
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "sms: message" in logged  # the run was logged …
    for secret in (NUMBER, "91234567", "Åse", "legevakten", "a_Zx9", "hemmelig"):
        assert secret not in logged  # … without the number, the text or the key


async def test_the_console_provider_prints_the_text_and_not_the_number() -> None:
    out = io.StringIO()
    console = ConsoleSmsProvider(out)
    link = "https://t.me/SikkerhetsnettBot?start=a_AbCdEfGhIjKlMnOpQrStUvW"

    await console.send(NUMBER, f"Råd fra legevakten: {link} Ring 113 ved fare.")

    assert out.getvalue() == (
        "SMS NOT SENT (SMS_PROVIDER=console), to the caller's number:\n"
        "Råd fra legevakten: https://t.me/SikkerhetsnettBot?start=a_AbC… Ring 113 ved fare.\n"
    )
    assert NUMBER not in out.getvalue() and "91234567" not in out.getvalue()
    assert "AbCdEfGhIj" not in out.getvalue()  # the link is a credential: never in full
    assert not console.delivers


async def test_the_console_provider_writes_to_stdout_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await ConsoleSmsProvider().send(NUMBER, "Hei")

    assert (
        capsys.readouterr().out
        == "SMS NOT SENT (SMS_PROVIDER=console), to the caller's number:\nHei\n"
    )


async def test_the_console_provider_marks_the_dispatch_not_sent(
    rt: Runtime, sessions: Sessions, cipher: Cipher
) -> None:
    dispatch_id = await dispatch(sessions)
    await queue(sessions, cipher, dispatch_id)
    sender = sms_sender(rt, ConsoleSmsProvider(io.StringIO()))

    await sender.drain_once()

    assert await sms_status_of(sessions, dispatch_id) == SmsStatus.NOT_SENT == "not_sent"


async def test_the_none_provider_fails_a_stray_row_and_never_says_sent(
    rt: Runtime, sessions: Sessions, cipher: Cipher
) -> None:
    dispatch_id = await dispatch(sessions)
    await queue(sessions, cipher, dispatch_id)
    sender = sms_sender(rt, NoSmsProvider())

    await sender.drain_once()

    assert await sms_status_of(sessions, dispatch_id) == SmsStatus.FAILED


# --- the running loop ----------------------------------------------------------------------


class FlakyProvider:
    """A provider with a bug on its first call, then a slow send that the test releases."""

    name = "flaky"
    delivers = True

    def __init__(self) -> None:
        self.calls = 0
        self.sent: list[str] = []
        self.in_flight = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, to: str, text: str) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError(f"bug while sending to {to}: {text}")
        self.in_flight.set()
        await self.release.wait()
        self.sent.append(text)

    async def close(self) -> None:
        return None


async def test_the_loop_survives_a_provider_bug_and_stop_releases_unsent_claims(
    rt: Runtime, sessions: Sessions, cipher: Cipher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = FlakyProvider()
    # One SMS at a time here, so that the second is still unsent when the sender stops.
    sender = build_sender(
        rt, [SmsAdapter(provider, concurrency=1)], max_backoff_seconds=0.01, tick_seconds=0.02
    )
    first = await queue(sessions, cipher, None)
    second = await queue(sessions, cipher, None, due_at=utcnow() + dt.timedelta(milliseconds=1))
    await asyncio.sleep(0.01)

    sender.start()
    await asyncio.wait_for(provider.in_flight.wait(), 2)  # the bug was retried; now in flight
    stopping = asyncio.create_task(sender.stop(deadline=2))
    await asyncio.sleep(0.05)
    provider.release.set()
    await stopping

    assert provider.sent == [TEXT]  # the in-flight SMS finished; nothing more was claimed
    states = {(await sms(sessions, i)).status for i in (first, second)}
    assert states == {OutboxStatus.SENT, OutboxStatus.PENDING}
    async with sessions() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    assert all(r.claimed_by is None for r in rows)
    assert "RuntimeError" in caplog.text and NUMBER not in caplog.text


# --- GSM-7 and settings --------------------------------------------------------------------


def test_gsm7() -> None:
    assert is_gsm7("Hei Åse, ring 116 117")
    assert is_gsm7("æøå ÆØÅ é ü @£$")
    assert gsm7_septets("Hei Åse, ring 116 117") == len("Hei Åse, ring 116 117")
    assert is_gsm7("€") and gsm7_septets("€") == 2
    assert gsm7_septets("[a]{b}") == 10
    assert not is_gsm7("😀")
    assert not is_gsm7("ő")
    assert not is_gsm7("«hvile»")  # typographic quotes are not in GSM-7


def _settings(tmp_path: Any, **kwargs: Any) -> Settings:
    return Settings(
        _env_file=None,
        telegram_bot_token=None,
        var_dir=tmp_path / "var",
        secret_key="test-secret-" + "x" * 32,
        **kwargs,
    )


def test_make_provider_follows_the_settings(tmp_path: Any) -> None:
    assert isinstance(make_provider(_settings(tmp_path)), ConsoleSmsProvider)

    http = make_provider(
        _settings(
            tmp_path,
            sms_provider="http",
            sms_http_url="https://sms.example.no/send",
            sms_http_auth_header="Authorization: Bearer abc123",
            sms_http_body=TEMPLATE,
            sms_http_timeout_seconds=3,
        )
    )
    assert isinstance(http, HttpSmsProvider) and http.name == "http"
    assert http.url == "https://sms.example.no/send"
    assert http.body(NUMBER, 'a "b"\nc') == {
        "message": {"recipient": NUMBER, "body": 'a "b"\nc'},
        "sender": "Legevakt",
    }
