"""Clinics' signed webhooks, through the one sender and a real HTTP receiver on loopback: the
signature verifies with the README's own example over the exact bytes received, a 5xx is
retried with the same event id until delivered, a 410 turns the webhook off, the address rules
hold when a URL is set and again when each connection is made, redirects are not followed, one
clinic's broken endpoint holds up no one else, and the secret is encrypted and never logged."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlmodel import col, select

from bot import outbox
from bot.app import RunningBot, build_sender, webhook_adapter
from bot.channels.webhook import HEADER
from bot.config import Settings
from bot.db import Sessions
from bot.models import (
    ApiKey,
    Channel,
    ClinicEvent,
    Dispatch,
    MessageKind,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)
from bot.netguard import Refused, check_destination
from bot.runtime import Runtime
from bot.sender import Sender
from bot.services import apikeys, clinic_events, webhooks
from bot.services.clinic_events import EventType
from bot.sms import HttpSmsProvider, SmsAdapter, queue_sms, sms_cipher
from tests.conftest import Api, Gateway, People, table_rows
from tests.test_advice import start_payload

ROOT = Path(__file__).resolve().parents[1]
ADMIN = 5001  # the first person the ``people`` fixture makes


def readme_verify() -> Any:
    """The receiver's ``verify`` exactly as the README shows it."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"```python\n(import hashlib, hmac, time\n.*?)```", text, re.S)
    assert found, "the README's verification example is missing"
    scope: dict[str, Any] = {}
    exec(found.group(1), scope)  # the documented code, run as a clinic would run it
    return scope["verify"]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        telegram_bot_token=None,
        database_url=database_url,
        var_dir=tmp_path / "var",
        secret_key="test-secret-" + "x" * 32,
        admin_user_ids=[ADMIN],
        outbox_tick_seconds=0.2,
    )


@dataclass
class Endpoint:
    """One clinic's receiver: what it got, and how it answers."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # statuses to answer next, then 200
    hold: asyncio.Event | None = None  # set: answer only once this is set (a slow clinic)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    location: str | None = None  # with a 3xx


class Receiver:
    """A real aiohttp server on loopback with a path per clinic."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None

    def endpoint(self, name: str) -> tuple[str, Endpoint]:
        self.endpoints[name] = Endpoint()
        return f"http://127.0.0.1:{self.port}/{name}", self.endpoints[name]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        end = self.endpoints[request.match_info["name"]]
        end.requests.append((dict(request.headers), await request.read()))
        end.arrived.set()
        if end.hold is not None:
            await end.hold.wait()
        status = end.script.pop(0) if end.script else 200
        headers = {"Location": end.location} if end.location and 300 <= status < 400 else {}
        return web.Response(status=status, text="the clinic's own words", headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for end in self.endpoints.values():
            if end.hold is not None:
                end.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
def sessions(rt: Runtime) -> Sessions:
    return rt.sessions


async def clinic(rt: Runtime, name: str, url: str) -> tuple[ApiKey, str]:
    """A clinic's key with a webhook at ``url``, as `apikey create --webhook-url` makes it."""
    key, _plain = await apikeys.create(rt.sessions, "Telefonsystemet", name)
    assert key.id is not None
    key, secret = await webhooks.set_webhook(rt.sessions, rt.settings, key.id, url)
    assert secret is not None and secret.startswith("whsec_")
    return key, secret


async def dispatch_of(rt: Runtime, key: ApiKey) -> Dispatch:
    async with rt.sessions() as session:
        dispatch = Dispatch(
            id=secrets.token_hex(16),
            api_key_id=key.id,
            organisation_id=key.organisation_id,
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


async def emit(rt: Runtime, dispatch: Dispatch, count: int = 1) -> list[ClinicEvent]:
    """``count`` "worse" events, committed as the services commit them."""
    made = []
    async with rt.sessions() as session:
        for n in range(count):
            made.append(
                await clinic_events.emit(
                    session, dispatch, EventType.DISPATCH_WORSE, {"via": "web", "count": n + 1}
                )
            )
        await session.commit()
    return made


_made: list[Sender] = []


@pytest.fixture(autouse=True)
async def _close_senders() -> AsyncIterator[None]:
    """Each test's senders' webhook connections are closed, whether it passed or not."""
    yield
    while _made:
        await close(_made.pop())


def sender_for(rt: Runtime, *adapters: Any, **options: Any) -> Sender:
    options.setdefault("max_backoff_seconds", 0.05)
    options.setdefault("tick_seconds", 0.05)
    sender = build_sender(rt, [*adapters] or [webhook_adapter(rt)], **options)
    _made.append(sender)
    return sender


async def drain_until_idle(sender: Sender, seconds: float = 10.0) -> None:
    """Run the sender's rounds until no webhook row waits (admin notices, on Telegram, may)."""
    async with asyncio.timeout(seconds):
        while True:
            await sender.drain_once()
            if (await outbox.depth(sender.sessions, Channel.WEBHOOK)).waiting == 0:
                return
            await asyncio.sleep(0.02)  # the next round, as the sender's loop would


async def rows(sessions: Sessions) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(
            await session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.kind) == MessageKind.CLINIC_EVENT)
                .order_by(col(OutboxMessage.id))
            )
        )


async def close(sender: Sender) -> None:
    for channel in sender.channels:
        adapter = sender.adapter(channel)
        if hasattr(adapter, "close"):
            await adapter.close()


# --- the signature -------------------------------------------------------------------------


async def test_the_signature_verifies_with_the_readme_example_over_the_exact_bytes(
    rt: Runtime, receiver: Receiver
) -> None:
    url, end = receiver.endpoint("bergen")
    key, secret = await clinic(rt, "Legevakten i Bergen", url)
    (event,) = await emit(rt, await dispatch_of(rt, key))
    sender = sender_for(rt)
    await drain_until_idle(sender)

    (headers, body), verify = end.requests[0], readme_verify()
    assert len(end.requests) == 1
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("Sikkerhetsnett-Webhooks/")
    assert verify(headers[HEADER], body, secret)
    # Byte-exact: the body is the event's documented JSON, and any other bytes fail.
    assert json.loads(body) == clinic_events.as_json(event)
    assert (
        body
        == json.dumps(
            clinic_events.as_json(event), ensure_ascii=False, separators=(",", ":")
        ).encode()
    )
    assert not verify(headers[HEADER], body.replace(b'"count":1', b'"count":2'), secret)
    assert not verify(headers[HEADER], body, "whsec_" + "x" * 43)
    # Too old: the README's tolerance of five minutes.
    t = re.search(r"t=(\d+)", headers[HEADER])
    assert t is not None
    stale = headers[HEADER].replace(f"t={t.group(1)}", f"t={int(t.group(1)) - 301}")
    assert not verify(stale, body, secret)
    (row,) = await rows(rt.sessions)
    assert row.status == OutboxStatus.SENT
    async with rt.sessions() as session:
        fresh = await session.get(ApiKey, key.id)
    assert fresh is not None and fresh.webhook_last_success_at is not None


async def test_after_a_rotation_both_secrets_sign_until_the_grace_ends(
    rt: Runtime, receiver: Receiver
) -> None:
    url, end = receiver.endpoint("bergen")
    key, old = await clinic(rt, "Legevakten i Bergen", url)
    assert key.id is not None
    new, until = await webhooks.rotate_secret(rt.sessions, rt.settings, key.id)
    assert until is not None and new != old
    dispatch = await dispatch_of(rt, key)
    await emit(rt, dispatch)
    sender = sender_for(rt)
    await drain_until_idle(sender)
    verify = readme_verify()
    headers, body = end.requests[0]
    assert headers[HEADER].count("v1=") == 2
    assert verify(headers[HEADER], body, new) and verify(headers[HEADER], body, old)

    await webhooks.rotate_secret(rt.sessions, rt.settings, key.id, grace=dt.timedelta(0))
    newest_secret = await current_secret(rt, key.id)
    await emit(rt, dispatch)
    await drain_until_idle(sender)
    headers, body = end.requests[1]
    assert headers[HEADER].count("v1=") == 1
    assert verify(headers[HEADER], body, newest_secret) and not verify(headers[HEADER], body, new)


async def current_secret(rt: Runtime, key_id: int) -> str:
    async with rt.sessions() as session:
        key = await session.get(ApiKey, key_id)
    assert key is not None and key.webhook_secret is not None
    plain = webhooks.cipher(rt.settings).decrypt(key.webhook_secret)
    assert plain is not None
    return plain


# --- retries, 410 --------------------------------------------------------------------------


async def test_a_5xx_is_retried_with_the_same_event_until_it_is_delivered(
    rt: Runtime, receiver: Receiver
) -> None:
    url, end = receiver.endpoint("bergen")
    end.script = [500, 500]
    key, _secret = await clinic(rt, "Legevakten i Bergen", url)
    await emit(rt, await dispatch_of(rt, key))
    sender = sender_for(rt)
    await drain_until_idle(sender)

    ids = [json.loads(body)["id"] for _headers, body in end.requests]
    assert len(ids) == 3 and len(set(ids)) == 1  # the same event, three times
    (row,) = await rows(rt.sessions)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 3)
    assert sender.stats(Channel.WEBHOOK).retried == 2
    async with rt.sessions() as session:
        fresh = await session.get(ApiKey, key.id)
    assert fresh is not None and fresh.webhook_last_failure == "HTTP 500"


async def test_a_410_turns_the_webhook_off_and_nothing_more_goes_to_it(
    rt: Runtime, receiver: Receiver
) -> None:
    url, end = receiver.endpoint("bergen")
    end.script = [410]
    key, _secret = await clinic(rt, "Legevakten i Bergen", url)
    assert key.id is not None
    dispatch = await dispatch_of(rt, key)
    await emit(rt, dispatch, count=3)  # one batch: the two behind the first are not sent
    sender = sender_for(rt)
    await drain_until_idle(sender)

    assert len(end.requests) == 1
    async with rt.sessions() as session:
        fresh = await session.get(ApiKey, key.id)
        notices = list(
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.kind) == MessageKind.ADMIN_NOTICE)
            )
        )
    assert fresh is not None and fresh.webhook_disabled_at is not None
    assert [(r.status, r.last_error) for r in await rows(rt.sessions)] == [
        (OutboxStatus.FAILED, "HTTP 410"),
        (OutboxStatus.FAILED, "WebhookDisabled"),
        (OutboxStatus.FAILED, "WebhookDisabled"),
    ]
    assert [n.chat_id for n in notices] == [ADMIN]
    text = (notices[0].payload or {})["text"]
    assert "410" in text and f"set-webhook {key.id} URL" in text

    await emit(rt, dispatch)  # a new event is not even queued
    assert len(await rows(rt.sessions)) == 3
    await sender.drain_once()
    assert len(end.requests) == 1

    # `apikey set-webhook` turns it on again (the secret is kept).
    _key, secret = await webhooks.set_webhook(rt.sessions, rt.settings, key.id, url)
    assert secret is None
    await emit(rt, dispatch)
    await drain_until_idle(sender)
    assert len(end.requests) == 2


# --- where a webhook may go ----------------------------------------------------------------


def production(settings: Settings, **overrides: Any) -> Settings:
    values = settings.model_dump() | {"telegram_bot_token": "123456:" + "A" * 35} | overrides
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",  # private
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://[fe80::1]/hook",
        "https://224.0.0.1/hook",  # multicast
        "https://240.0.0.1/hook",  # reserved
        "https://100.64.0.1/hook",  # shared (carrier NAT)
        "https://[::ffff:192.168.1.1]/hook",  # private, written as IPv6
        "https://0.0.0.0/hook",
        "http://example.com/hook",  # http, not to this machine
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
    ],
)
async def test_a_url_to_an_internal_address_or_without_https_is_refused_when_set(
    rt: Runtime, url: str
) -> None:
    key, _plain = await apikeys.create(rt.sessions, "Telefonsystemet", "Legevakten i Bergen")
    assert key.id is not None
    with pytest.raises(Refused):
        await webhooks.set_webhook(rt.sessions, rt.settings, key.id, url)
    async with rt.sessions() as session:
        fresh = await session.get(ApiKey, key.id)
    assert fresh is not None and fresh.webhook_url is None and fresh.webhook_secret is None


async def test_production_refuses_http_and_this_machine_unless_a_network_is_allowed(
    settings: Settings,
) -> None:
    live = production(settings)
    for url in ("http://127.0.0.1:8080/hook", "https://127.0.0.1/hook", "https://localhost/hook"):
        with pytest.raises(Refused):
            await check_destination(url, live)
    # The demo may use http to this machine.
    assert await check_destination("http://127.0.0.1:8080/hook", settings)
    # An on-premise call system: its network allowed, https still required.
    onprem = production(settings, webhook_allowed_networks="10.20.0.0/16")
    assert await check_destination("https://10.20.1.2/hook", onprem)
    with pytest.raises(Refused):
        await check_destination("https://10.21.1.2/hook", onprem)
    with pytest.raises(Refused):
        await check_destination("http://10.20.1.2/hook", onprem)


class Resolves:
    """A name server that answers ``address`` for every name (DNS rebinding, at will)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=self.address,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


AbstractResolver.register(Resolves)


async def test_a_name_that_resolves_inside_when_connecting_gets_no_request(
    rt: Runtime, receiver: Receiver
) -> None:
    url, end = receiver.endpoint("bergen")
    url = url.replace("127.0.0.1", "localhost")  # a name, checked when set
    key, _secret = await clinic(rt, "Legevakten i Bergen", url)
    dispatch = await dispatch_of(rt, key)

    # Now the name points at a private address: the connection is refused, no request made.
    rebound = Resolves("10.0.0.7")
    await emit(rt, dispatch)
    sender = sender_for(rt, webhook_adapter(rt, resolver=rebound))
    await sender.drain_once()
    assert rebound.asked == ["localhost"]
    assert end.requests == []
    assert [(r.status, r.last_error) for r in await rows(rt.sessions)] == [
        (OutboxStatus.FAILED, "AddressRefused")
    ]
    async with rt.sessions() as session:
        fresh = await session.get(ApiKey, key.id)
    assert fresh is not None and fresh.webhook_last_failure == "AddressRefused"

    # The same path with the name resolving to this machine (allowed in the demo) delivers:
    # the connection goes where the checked resolver says.
    await emit(rt, dispatch)
    sender = sender_for(rt, webhook_adapter(rt, resolver=Resolves("127.0.0.1")))
    await drain_until_idle(sender)
    assert len(end.requests) == 1


async def test_redirects_are_not_followed(rt: Runtime, receiver: Receiver) -> None:
    url, end = receiver.endpoint("bergen")
    target_url, target = receiver.endpoint("elsewhere")
    end.script, end.location = [307], target_url
    key, _secret = await clinic(rt, "Legevakten i Bergen", url)
    await emit(rt, await dispatch_of(rt, key))
    sender = sender_for(rt, max_backoff_seconds=60)
    await sender.drain_once()
    assert len(end.requests) == 1 and target.requests == []
    (row,) = await rows(rt.sessions)
    assert (row.status, row.last_error) == (OutboxStatus.PENDING, "HTTP 307")  # tried again later


# --- one clinic's failure is its own --------------------------------------------------------


async def test_a_hanging_clinic_delays_neither_another_clinic_nor_the_sms(
    rt: Runtime, receiver: Receiver, gateway: Gateway
) -> None:
    slow_url, slow = receiver.endpoint("slow")
    slow.hold = asyncio.Event()
    fast_url, fast = receiver.endpoint("fast")
    slow_key, _ = await clinic(rt, "Treg legevakt", slow_url)
    fast_key, _ = await clinic(rt, "Rask legevakt", fast_url)
    await emit(rt, await dispatch_of(rt, slow_key), count=3)  # queued first: due first
    await emit(rt, await dispatch_of(rt, fast_key))
    async with rt.sessions() as session:
        await queue_sms(
            session, sms_cipher(rt.settings), dispatch_id=None, to="+4791234567", text="Hei"
        )
        await session.commit()
    provider = HttpSmsProvider(gateway.url, timeout=2)
    sender = sender_for(rt, webhook_adapter(rt), SmsAdapter(provider))
    round_ = asyncio.create_task(sender.drain_once())
    try:
        await asyncio.wait_for(fast.arrived.wait(), 5)
        await asyncio.wait_for(_until(lambda: len(gateway.requests) == 1), 5)
        # The slow clinic's request is still hanging, and only one went to it: its other
        # events wait behind it instead of taking more of the channel.
        assert not round_.done() and len(slow.requests) == 1
    finally:
        slow.hold.set()
        await round_
    await provider.close()


async def test_a_failing_clinic_backs_off_alone_and_does_not_pause_the_channel(
    rt: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_url, bad = receiver.endpoint("bad")
    bad.script = [503] * 100
    good_url, good = receiver.endpoint("good")
    bad_key, _ = await clinic(rt, "Nede legevakt", bad_url)
    good_key, _ = await clinic(rt, "Oppe legevakt", good_url)
    await emit(rt, await dispatch_of(rt, bad_key), count=3)
    good_dispatch = await dispatch_of(rt, good_key)
    await emit(rt, good_dispatch)
    sender = sender_for(rt, max_backoff_seconds=60)
    monkeypatch.setattr(sender, "backoff", lambda attempts: 30.0)  # a machine's pace aside
    await sender.drain_once()

    assert len(bad.requests) == 1  # one probe; its other events wait behind it
    assert len(good.requests) == 1
    assert sender.paused_for(Channel.WEBHOOK) == 0
    # The next event of the good clinic goes at once, while the bad one's wait their backoff.
    await emit(rt, good_dispatch)
    await sender.drain_once()
    assert len(good.requests) == 2 and len(bad.requests) == 1
    bad_rows = [r for r in await rows(rt.sessions) if r.api_key_id == bad_key.id]
    assert [r.status for r in bad_rows] == [OutboxStatus.PENDING] * 3
    assert [r.attempts for r in bad_rows] == [1, 0, 0]


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)  # polls a condition; the caller bounds it with a timeout


# --- the secret ----------------------------------------------------------------------------


@pytest.mark.usefixtures("production_logging_at_debug")
async def test_the_secret_is_encrypted_at_rest_and_never_logged(
    rt: Runtime, receiver: Receiver, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url, end = receiver.endpoint("bergen")
    key, secret = await clinic(rt, "Legevakten i Bergen", url)
    assert key.id is not None
    rotated, _grace = await webhooks.rotate_secret(rt.sessions, rt.settings, key.id)
    await emit(rt, await dispatch_of(rt, key))
    end.script = [500]
    sender = sender_for(rt)
    await drain_until_idle(sender)
    assert len(end.requests) == 2

    (row,) = table_rows(database_url, "api_key")
    stored = json.dumps(row, default=str)
    for plain in (secret, rotated):
        assert plain not in caplog.text
        assert plain not in stored
    box = webhooks.cipher(rt.settings)
    assert box.decrypt(row["webhook_secret"]) == rotated
    assert box.decrypt(row["webhook_previous_secret"]) == secret
    assert "whsec_" not in caplog.text
    assert url not in caplog.text  # log lines carry ids and status codes, not addresses
    assert "the clinic's own words" not in caplog.text


async def test_a_purged_event_fails_its_row_cleanly(rt: Runtime, receiver: Receiver) -> None:
    url, end = receiver.endpoint("bergen")
    key, _secret = await clinic(rt, "Legevakten i Bergen", url)
    await emit(rt, await dispatch_of(rt, key))
    async with rt.sessions() as session:
        await clinic_events.purge_older_than(session, utcnow() + dt.timedelta(seconds=1))
        await session.commit()
    sender = sender_for(rt)
    await drain_until_idle(sender)
    assert end.requests == []
    assert [(r.status, r.last_error) for r in await rows(rt.sessions)] == [
        (OutboxStatus.FAILED, "EventGone")
    ]


# --- the running bot ---------------------------------------------------------------------------


async def test_the_running_bot_delivers_and_status_and_metrics_show_the_webhook(
    bot: RunningBot, people: People, receiver: Receiver
) -> None:
    admin = await people("Ada")
    url, end = receiver.endpoint("bergen")
    key, secret = await clinic(bot.rt, "Legevakten i Bergen", url)
    (event,) = await emit(bot.rt, await dispatch_of(bot.rt, key))

    await asyncio.wait_for(end.arrived.wait(), 10)  # the bot's own sender, on its own tick
    headers, body = end.requests[0]
    assert readme_verify()(headers[HEADER], body, secret)
    assert json.loads(body)["id"] == event.public_id

    async def delivered() -> None:
        while (await outbox.depth(bot.rt.sessions, Channel.WEBHOOK)).waiting:
            await asyncio.sleep(0.02)  # polls a condition, bounded below

    await asyncio.wait_for(delivered(), 10)
    [status] = await admin.says("/status")  # Ada reads Bokmål
    assert "Webhooker" in status.text
    assert (
        f"nøkkel {key.id} (Telefonsystemet — Legevakten i Bergen): på; siste vellykkede for"
        in status.text
    )
    assert "siste feil ingen; i kø 0" in status.text
    assert secret not in status.text and url not in status.text

    assert bot.web_url is not None
    async with aiohttp.ClientSession() as client, client.get(bot.web_url + "metrics") as response:
        metrics = await response.text()
    assert 'sikkerhetsnett_clinic_webhook_deliveries_total{outcome="sent"} 1' in metrics
    assert "sikkerhetsnett_clinic_webhook_depth 0" in metrics


async def test_a_caller_in_telegram_reaches_the_clinics_webhook_signed_and_retried(
    bot: RunningBot, people: People, receiver: Receiver
) -> None:
    """The issue's whole loop: a call system makes a dispatch over the API with its key, the
    caller opens it in Telegram and presses "worse", and the clinic's receiver gets
    ``dispatch.created``, ``dispatch.opened`` and ``dispatch.worse`` within seconds, each
    signed; what the receiver refused (500, twice) comes again with the same id."""
    url, end = receiver.endpoint("bergen")
    end.script = [500, 500]
    key, plain = await apikeys.create(bot.rt.sessions, "Telefonsystemet", "Legevakten i Bergen")
    assert key.id is not None
    _key, secret = await webhooks.set_webhook(bot.rt.sessions, bot.rt.settings, key.id, url)
    assert secret is not None and bot.web_url is not None
    async with aiohttp.ClientSession() as client:
        created = await Api(client, bot.web_url.rstrip("/"), plain).dispatch(
            topic="fever-child", locale="nb"
        )
    kari = await people("Kari")
    await kari.says(f"/start {start_payload(created['deep_link'])}")
    await kari.presses("Barnet blir verre")

    async def three_delivered() -> None:
        while len(end.requests) < 5:  # 2 refused + 3 delivered
            end.arrived.clear()
            await end.arrived.wait()

    await asyncio.wait_for(three_delivered(), 15)
    verify = readme_verify()
    assert all(verify(headers[HEADER], body, secret) for headers, body in end.requests)
    bodies = [json.loads(body) for _headers, body in end.requests]
    refused, delivered = bodies[:2], bodies[2:]  # the receiver's script: 500, 500, then 200s
    assert {b["id"] for b in refused} <= {b["id"] for b in delivered}  # the same events again
    delivered.sort(key=lambda b: b["created_at"])  # order holds as far as retries allow
    assert [(b["type"], b["dispatch_id"]) for b in delivered] == [
        ("dispatch.created", created["id"]),
        ("dispatch.opened", created["id"]),
        ("dispatch.worse", created["id"]),
    ]
    assert len({b["id"] for b in delivered}) == 3
    assert delivered[2]["data"] == {"via": "telegram", "count": 1}


# --- the command line ----------------------------------------------------------------------


def test_the_command_line_shows_the_secret_once_and_refuses_internal_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    from click.testing import CliRunner

    from bot.cli import main

    monkeypatch.chdir(tmp_path)  # no .env read
    env = {
        "DATABASE_URL": database_url,
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "cli-secret-" + "y" * 32,
        "TELEGRAM_BOT_TOKEN": "",
    }

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    refused = run(
        "apikey",
        "create",
        "--name",
        "T",
        "--org",
        "Bergen",
        "--webhook-url",
        "https://169.254.169.254/latest",
    )
    assert refused.exit_code == 2 and "not a public address" in refused.output

    made = run(
        "apikey",
        "create",
        "--name",
        "T",
        "--org",
        "Bergen",
        "--webhook-url",
        "http://127.0.0.1:9/hook",
    )
    assert made.exit_code == 0, made.output
    secret = re.search(r"whsec_[A-Za-z0-9_-]{43}", made.output)
    assert secret is not None and re.search(r"sn_[A-Za-z0-9_-]{43}", made.output)
    (row,) = table_rows(database_url, "api_key")  # one: none was made for the refused URL
    assert secret.group(0) not in json.dumps(row, default=str)

    listed = run("apikey", "list")
    assert "webhook http://127.0.0.1:9/hook" in listed.output and "whsec_" not in listed.output

    again = run("apikey", "set-webhook", str(row["id"]), "http://localhost:9/other")
    assert again.exit_code == 0 and "keeps its signing secret" in again.output
    assert "whsec_" not in again.output
    private = run("apikey", "set-webhook", str(row["id"]), "https://192.168.0.10/hook")
    assert private.exit_code == 2 and "not a public address" in private.output

    rotated = run("apikey", "rotate-secret", str(row["id"]), "--grace-hours", "2")
    fresh = re.search(r"whsec_[A-Za-z0-9_-]{43}", rotated.output)
    assert rotated.exit_code == 0 and fresh is not None and fresh.group(0) != secret.group(0)
    assert "two v1 values" in rotated.output

    removed = run("apikey", "set-webhook", str(row["id"]), "--none")
    assert removed.exit_code == 0
    (row,) = table_rows(database_url, "api_key")
    assert row["webhook_url"] is None and row["webhook_secret"] is None
    assert run("apikey", "rotate-secret", str(row["id"])).exit_code == 1
