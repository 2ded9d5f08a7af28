"""The clinic's HTTP API, as a call system uses it: keys, bad input, dispatches, SMS, re-contacts.

Everything goes over real HTTP to the running bot's own server. Refused requests are checked
to leave the database as it was; accepted ones to keep the phone number and the link token
only as hashes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import func, update
from sqlmodel import select

from bot.app import RunningBot
from bot.config import Settings
from bot.models import Channel, Dispatch, OutboxMessage, utcnow
from bot.privacy import phone_hash
from bot.services import apikeys, dispatches
from bot.sms import gsm7_septets, is_gsm7
from devkit.localapi import DEFAULT_USERNAME
from tests.conftest import Api

PHONE = "+4791234567"
FNR = "01019000083"  # passes the fødselsnummer check digits (a made-up test number)
NOT_FNR = "01019000084"  # the same with a wrong check digit: just a number
TOPICS = [
    "abdominal-pain",
    "allergic-reaction",
    "ankle-sprain",
    "back-pain",
    "breathing-cough-adult",
    "burns",
    "chest-pain",
    "earache-child",
    "fever-child",
    "head-injury",
    "sore-throat",
    "urinary-tract-infection",
    "vomiting-diarrhoea-child",
    "wounds-cuts",
]
GATEWAY = "gateway"  # in a test's settings: the address of the fake SMS gateway


# --- fixtures and helpers ------------------------------------------------------------------


class Gateway:
    """A fake SMS gateway: records what it gets and answers with the statuses it is told to."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []  # statuses to answer next, then 200
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append({"headers": dict(request.headers), "json": await request.json()})
        status = self.script.pop(0) if self.script else 200
        return web.json_response({"ok": status == 200}, status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/send", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/send"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway()
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
async def settings(
    settings: Settings, gateway: Gateway, request: pytest.FixtureRequest
) -> Settings:
    """The shared settings, changed for one test with ``with_settings(...)``."""
    update = dict(getattr(request, "param", {}))
    if update.get("sms_http_url") == GATEWAY:
        update["sms_http_url"] = gateway.url
    return settings.model_copy(update=update)


def with_settings(**update: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [update], indirect=True, ids=["settings"])


async def stored(bot: RunningBot) -> tuple[int, int]:
    """How many dispatches and SMS rows the database holds."""
    async with bot.rt.sessions() as session:
        dispatches = (await session.exec(select(func.count()).select_from(Dispatch))).one()
        sms = (
            await session.exec(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.channel == Channel.SMS)  # type: ignore[arg-type]
            )
        ).one()
    return dispatches, sms


async def request(
    api: Api,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    data: Any = None,
    json: Any = None,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A raw request, for what ``Api`` does not send: odd headers, bodies that are not JSON."""
    async with api.session.request(
        method, api.base_url + path, headers=headers or {}, data=data, json=json
    ) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def dispatch_row(bot: RunningBot, dispatch_id: str) -> Dispatch:
    async with bot.rt.sessions() as session:
        row = await session.get(Dispatch, dispatch_id)
        assert row is not None
        return row


async def sms_row(bot: RunningBot, dispatch_id: str) -> OutboxMessage:
    async with bot.rt.sessions() as session:
        return (
            await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.dispatch_id == dispatch_id,
                    OutboxMessage.channel == Channel.SMS,  # type: ignore[arg-type]
                )
            )
        ).one()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("it did not happen in time")


async def sms_sent(bot: RunningBot, dispatch_id: str, status: str = "sent") -> None:
    """Wait until the SMS is done; ``status`` is what the dispatch must say then (the demo's
    console provider sends nothing: ``not_sent``)."""

    async def done() -> bool:
        return (await dispatch_row(bot, dispatch_id)).sms_status != "queued"

    await eventually(done)
    assert (await dispatch_row(bot, dispatch_id)).sms_status == status


def link_token(deep_link: str) -> str:
    match = re.fullmatch(r"https://t\.me/(\w+)\?start=([A-Za-z0-9_-]{1,64})", deep_link)
    assert match, deep_link
    assert match.group(1) == DEFAULT_USERNAME
    payload = match.group(2)
    assert payload.startswith("a_")
    return payload.removeprefix("a_")


async def refused(
    api: Api, bot: RunningBot, body: Any, path: str = "/api/v1/dispatches"
) -> dict[str, str]:
    """POST a bad body: 422, nothing stored; returns the messages per field."""
    before = await stored(bot)
    status, data = await api.post(path, body)
    assert status == 422, (body, data)
    assert data["error"] == "invalid" and data["message"]
    assert await stored(bot) == before, body
    fields: dict[str, str] = data["fields"]
    assert all(isinstance(m, str) and m for m in fields.values()), fields
    return fields


FEVER = {"topic": "fever-child", "locale": "nb"}


# --- API keys ------------------------------------------------------------------------------


async def test_without_a_valid_key_nothing_is_answered_and_nothing_stored(
    api: Api, bot: RunningBot
) -> None:
    body = {**FEVER, "phone": PHONE, "send_sms": True}
    revoked_row, revoked = await apikeys.create(bot.rt.sessions, "Gammelt", "Gammel legevakt")
    assert revoked_row.id is not None
    status, _ = await api.post("/api/v1/dispatches", FEVER, key=revoked)
    assert status == 201  # the key worked a moment ago …
    assert await apikeys.revoke(bot.rt.sessions, revoked_row.id)  # … and stops at once
    before = await stored(bot)
    valid = api.key
    assert valid is not None
    attempts: dict[str, dict[str, str]] = {
        "no header": {},
        "wrong scheme": {"Authorization": f"Basic {valid}"},
        "no scheme": {"Authorization": valid},
        "empty bearer": {"Authorization": "Bearer "},
        "made-up key": {"Authorization": "Bearer sn_" + "A" * 43},
        "revoked key": {"Authorization": f"Bearer {revoked}"},
    }
    for what, headers in attempts.items():
        for method, path, json in [
            ("POST", "/api/v1/dispatches", body),
            ("POST", "/api/v1/recontacts", {"phone": PHONE}),
            ("GET", "/api/v1/topics", None),
        ]:
            status, got_headers, answer = await request(
                api, method, path, headers=headers, json=json
            )
            assert status == 401, (what, path)
            assert got_headers["WWW-Authenticate"].startswith("Bearer"), what
            assert answer["error"] == "unauthorized", what
            assert "Authorization: Bearer" in answer["message"], what
    assert await stored(bot) == before

    # The key is checked before the body is read: a bad body without a key is still a 401.
    status, _headers, _answer = await request(
        api, "POST", "/api/v1/dispatches", data="{not json", headers={"Content-Type": "text/plain"}
    )
    assert status == 401


async def test_the_bearer_scheme_is_case_insensitive(api: Api) -> None:
    status, _headers, answer = await request(
        api, "GET", "/api/v1/topics", headers={"Authorization": f"bearer {api.key}"}
    )
    assert status == 200 and len(answer["topics"]) == len(TOPICS)


# --- bad input -----------------------------------------------------------------------------


async def test_each_bad_field_gets_its_own_plain_message_and_nothing_is_stored(
    api: Api, bot: RunningBot
) -> None:
    fields = await refused(api, bot, {"topic": "cough", "locale": "nb"})
    assert list(fields) == ["topic"]
    assert "unknown topic 'cough'" in fields["topic"]
    assert all(topic in fields["topic"] for topic in TOPICS)

    fields = await refused(api, bot, {"topic": "fever-child", "locale": "en"})
    assert list(fields) == ["locale"]
    assert "'nb'" in fields["locale"] and "'nn'" in fields["locale"]

    assert await refused(api, bot, {"locale": "nb"}) == {"topic": "is required"}

    fields = await refused(api, bot, {**FEVER, "note": "x" * 501})
    assert fields == {"note": "must be at most 500 characters"}

    fields = await refused(api, bot, {**FEVER, "phone": PHONE, "extra": "?"})
    assert fields == {"extra": "is not a field of a dispatch"}

    for body in ([FEVER], "fever-child", 42, False):
        assert await refused(api, bot, body) == {"body": "must be a JSON object"}

    # Types are not guessed at: a string is not a number, "yes" is not true.
    fields = await refused(api, bot, {**FEVER, "checkin_hours": "6", "send_sms": "yes"})
    assert set(fields) == {"checkin_hours", "send_sms"}


async def test_a_note_holding_a_national_identity_number_is_refused(
    api: Api, bot: RunningBot
) -> None:
    for note in [
        f"Barnet har fnr {FNR}, gi paracetamol.",
        "Barnet (010190 00083) skal ha paracetamol.",
        "fnr: 010190-00083",
        FNR,
    ]:
        fields = await refused(api, bot, {**FEVER, "note": note})
        assert list(fields) == ["note"], note
        assert "fødselsnummer" in fields["note"]
        assert "identifying details do not belong in a chat" in fields["note"]

    # Control characters are no text a caller can read (and NUL cannot be stored everywhere).
    fields = await refused(api, bot, {**FEVER, "note": "Gi paracetamol.\x00"})
    assert fields == {"note": "must be plain text, without control characters"}

    # Eleven digits that fail the check digits are just a number, e.g. a batch number.
    created = await api.dispatch(**FEVER, note=f"Pakning med lotnummer {NOT_FNR}.")
    row = await dispatch_row(bot, created["id"])
    assert dispatches.tailoring_of(bot.rt, row).note == f"Pakning med lotnummer {NOT_FNR}."


async def test_a_bad_phone_number_is_refused(api: Api, bot: RunningBot) -> None:
    for phone in ["123", "+47 12", "ring meg", "+47 912 34 567 8"]:
        fields = await refused(api, bot, {**FEVER, "phone": phone})
        assert list(fields) == ["phone"], phone
        assert "phone number" in fields["phone"]

    fields = await refused(api, bot, {**FEVER, "send_sms": True})
    assert fields == {"send_sms": "sending an SMS needs the caller's phone number"}
    fields = await refused(api, bot, {**FEVER, "send_sms": True, "phone": "  "})
    assert list(fields) == ["send_sms"]


async def test_risk_groups_and_checkin_hours_must_be_the_topics_own(
    api: Api, bot: RunningBot
) -> None:
    fields = await refused(api, bot, {**FEVER, "risk_groups": ["pregnancy"]})
    assert list(fields) == ["risk_groups"]
    assert "'pregnancy'" in fields["risk_groups"]
    assert "infant-under-3-months, weak-immune-system" in fields["risk_groups"]

    fields = await refused(api, bot, {**FEVER, "checkin_hours": 5})
    assert list(fields) == ["checkin_hours"]
    assert "6, 12, 24 hours" in fields["checkin_hours"] and "not 5" in fields["checkin_hours"]

    fields = await refused(
        api, bot, {"topic": "urinary-tract-infection", "locale": "nb", "checkin_hours": 6}
    )
    assert "24, 48 hours" in fields["checkin_hours"]

    # What the topic does offer is taken.
    created = await api.dispatch(
        topic="urinary-tract-infection", locale="nb", risk_groups=["male"], checkin_hours=48
    )
    assert created["risk_groups"] == ["male"] and created["checkin_hours"] == 48


async def test_several_bad_fields_get_several_messages(api: Api, bot: RunningBot) -> None:
    fields = await refused(api, bot, {"locale": "en", "note": "x" * 501, "colour": "blue"})
    assert set(fields) == {"topic", "locale", "note", "colour"}

    fields = await refused(
        api,
        bot,
        {
            **FEVER,
            "note": f"fnr {FNR}",
            "phone": "123",
            "risk_groups": ["pregnancy"],
            "checkin_hours": 5,
        },
    )
    assert set(fields) == {"note", "phone", "risk_groups", "checkin_hours"}


async def test_a_body_that_is_not_json_is_refused_and_nothing_stored(
    api: Api, bot: RunningBot
) -> None:
    auth = {"Authorization": f"Bearer {api.key}"}
    before = await stored(bot)

    status, _h, answer = await request(
        api,
        "POST",
        "/api/v1/dispatches",
        headers={**auth, "Content-Type": "application/json"},
        data='{"topic": "fever-child", "locale": "nb",',
    )
    assert status == 400 and answer["error"] == "bad_json" and answer["message"]

    status, _h, answer = await request(
        api,
        "POST",
        "/api/v1/dispatches",
        headers={**auth, "Content-Type": "text/plain"},
        data='{"topic": "fever-child", "locale": "nb"}',
    )
    assert status == 415 and answer["error"] == "unsupported_media_type" and answer["message"]

    status, _h, answer = await request(
        api,
        "POST",
        "/api/v1/recontacts",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
        data="phone=91234567",
    )
    assert status == 415

    status, _h, answer = await request(
        api,
        "POST",
        "/api/v1/dispatches",
        headers={**auth, "Content-Type": "application/json; charset=no-such-charset"},
        data='{"topic": "fever-child", "locale": "nb"}',
    )
    assert status == 415 and answer["message"] == "send JSON in UTF-8"

    status, _h, answer = await request(
        api,
        "POST",
        "/api/v1/dispatches",
        headers={**auth, "Content-Type": "application/json"},
        data='{"topic": "fever-child", "locale": "nb", "note": "' + "x" * 70_000 + '"}',
    )
    assert status == 413 and answer["error"] == "too_large"

    assert await stored(bot) == before


# --- a dispatch ----------------------------------------------------------------------------


async def test_a_dispatch_gives_the_page_link_and_an_sms_that_names_the_clinic_and_113(
    api: Api, bot: RunningBot
) -> None:
    before = utcnow()
    status, created = await api.post(
        "/api/v1/dispatches",
        {
            "topic": "fever-child",
            "locale": "nb",
            "note": "Gi paracetamol etter vekt.",
            "risk_groups": ["infant-under-3-months"],
            "checkin_hours": 6,
            "phone": "912 34 567",
        },
    )

    assert status == 201, created
    assert re.fullmatch(r"[0-9a-f]{32}", created["id"])
    token = link_token(created["deep_link"])
    assert len("a_" + token) <= 64
    assert len(token) >= 22  # at least 128 bits in URL-safe base64
    expires = dt.datetime.fromisoformat(created["expires_at"])
    assert created["expires_at"].endswith("Z")
    assert abs(expires - (before + dt.timedelta(hours=72))) < dt.timedelta(minutes=1)
    page = re.fullmatch(r"(http://127\.0\.0\.1:\d+)/r/([A-Za-z0-9_-]{23})", created["advice_url"])
    assert page, created["advice_url"]
    assert page.group(1) == bot.rt.public_url  # in the demo: the bot's own server
    assert page.group(2) != token
    text = created["sms_text"]
    # The clinic (the key's), the page's link, how long it is open, and the 113 line.
    assert text == (
        f"Råd fra Testlegevakt etter samtalen: {created['advice_url']} Siden er åpen i 72 timer. "
        "Ved fare for liv: ring 113."
    )
    assert is_gsm7(text) and gsm7_septets(text) <= 306
    assert created["topic"] == "fever-child" and created["topic_version"] == 2
    assert created["locale"] == "nb" and created["sms"] == "none"
    assert created["checkin_hours"] == 6
    assert created["risk_groups"] == ["infant-under-3-months"]


async def test_the_phone_number_and_the_link_token_are_stored_only_as_hashes(
    api: Api, bot: RunningBot, settings: Settings
) -> None:
    created = await api.dispatch(**FEVER, phone="+47 912 34 567", send_sms=True, checkin_hours=6)
    token = link_token(created["deep_link"])
    page_token = created["advice_url"].rsplit("/", 1)[1]

    row = await dispatch_row(bot, created["id"])
    assert row.phone_hash == phone_hash(settings.secret(), PHONE)
    assert row.phone_hash != PHONE
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.page_token_hash == hashlib.sha256(page_token.encode()).hexdigest()
    sms = await sms_row(bot, created["id"])
    for stored_row in (row, sms):
        for column, value in stored_row.model_dump().items():
            text = str(value)
            for secret in ("91234567", "912 34 567", token, page_token):
                assert secret not in text, f"{type(stored_row).__name__}.{column} holds {secret}"


async def test_two_dispatches_never_share_a_link(api: Api) -> None:
    created = await asyncio.gather(*(api.dispatch(**FEVER) for _ in range(12)))
    assert len({c["deep_link"] for c in created}) == 12
    assert len({c["id"] for c in created}) == 12


async def test_nynorsk_gets_a_nynorsk_sms(api: Api) -> None:
    created = await api.dispatch(topic="head-injury", locale="nn")
    assert created["sms_text"].startswith("Råd frå Testlegevakt etter samtalen: http")
    assert created["sms_text"].endswith(" Sida er open i 72 timar. Ved fare for liv: ring 113.")
    assert is_gsm7(created["sms_text"]) and len(created["sms_text"]) <= 160


# --- topics and draft content ----------------------------------------------------------------


async def test_the_topics_list_what_a_nurse_can_offer(api: Api) -> None:
    status, answer = await api.get("/api/v1/topics")

    assert status == 200
    topics = {t["id"]: t for t in answer["topics"]}
    assert list(topics) == TOPICS
    fever = topics["fever-child"]
    assert fever["title"] == "Feber hos barn" and fever["version"] == 2  # issue 16 rewrote it
    assert [g["id"] for g in fever["risk_groups"]] == [
        "infant-under-3-months",
        "weak-immune-system",
    ]
    assert fever["risk_groups"][0]["label"] == "Barn under 3 måneder"
    assert fever["checkin_hours"] == [6, 12, 24]
    assert topics["urinary-tract-infection"]["checkin_hours"] == [24, 48]
    assert all(t["risk_groups"] and t["checkin_hours"] for t in topics.values())
    # Who each topic is for and what it is taken from, so the nurse picks the right one.
    assert fever["scope"]["audience"] == "children"
    assert fever["scope"]["max_age"] == "12 years"
    assert fever["scope"]["who"] == "Rådene gjelder barn opp til 12 år."
    assert any("under 3 måneder" in reason for reason in fever["scope"]["not_for"])
    assert topics["head-injury"]["scope"]["audience"] == "adults"
    assert topics["head-injury"]["scope"]["min_age"] == "16 years"
    helsenorge = next(s for s in fever["sources"] if s["id"] == "helsenorge-feber")
    assert helsenorge["publisher"] == "Helsenorge"
    assert helsenorge["url"] == "https://www.helsenorge.no/sykdom/barn/feber-hos-barn/"
    assert "self_care" in helsenorge["covers"]
    for topic in topics.values():
        assert topic["scope"]["who"] and "{" not in topic["scope"]["who"], topic["id"]
        assert topic["sources"], topic["id"]
        for source in topic["sources"]:
            assert source["url"].startswith("https://") and source["title"] and source["covers"]
    # The demo may send the draft example content.
    assert all(t["status"] == "draft" and t["can_be_sent"] for t in topics.values())


@with_settings(allow_draft_advice=False)
async def test_draft_advice_is_not_sent_when_drafts_are_not_allowed(
    api: Api, bot: RunningBot
) -> None:
    fields = await refused(api, bot, {**FEVER, "phone": PHONE, "send_sms": True})
    assert list(fields) == ["topic"]
    assert "awaiting clinical approval" in fields["topic"]

    _status, answer = await api.get("/api/v1/topics")
    assert len(answer["topics"]) == len(TOPICS)
    assert not any(t["can_be_sent"] for t in answer["topics"])


# --- SMS -----------------------------------------------------------------------------------


async def test_the_demo_prints_the_sms_masked_says_not_sent_and_erases_it(
    api: Api, bot: RunningBot, capsys: pytest.CaptureFixture[str]
) -> None:
    created = await api.dispatch(**FEVER, phone="912 34 567", send_sms=True)
    assert created["sms"] == "queued"

    await sms_sent(bot, created["id"], "not_sent")  # printed is not sent: never "sent"

    status, seen = await api.get(f"/api/v1/dispatches/{created['id']}")
    assert status == 200 and seen["sms"] == "not_sent"
    out = capsys.readouterr().out
    token = created["advice_url"].rsplit("/", 1)[1]
    assert token not in out  # the link is a credential: never printed in full
    assert created["sms_text"].replace(token, token[:3] + "…") in out
    for number in ("91234567", "912 34 567", "+47"):
        assert number not in out
    sms = await sms_row(bot, created["id"])
    assert sms.secret is None and sms.sent_at is not None


@with_settings(sms_provider="none")
async def test_with_sms_provider_none_send_sms_is_refused(api: Api, bot: RunningBot) -> None:
    fields = await refused(api, bot, {**FEVER, "phone": PHONE, "send_sms": True})
    assert "SMS_PROVIDER=none" in fields["send_sms"]
    created = await api.dispatch(**FEVER, phone=PHONE)  # the call system sends the link itself
    assert created["sms"] == "none" and created["deep_link"].startswith("https://t.me/")


@with_settings(
    sms_provider="http",
    sms_http_url=GATEWAY,
    sms_http_auth_header=SecretStr("Authorization: Bearer gw-secret"),
    sms_http_body='{"msisdn": "{to}", "message": "{text}"}',
)
async def test_the_sms_goes_to_the_clinics_gateway_and_a_500_is_retried(
    api: Api, bot: RunningBot, gateway: Gateway
) -> None:
    gateway.script = [500]

    created = await api.dispatch(**FEVER, phone="912 34 567", send_sms=True)
    await sms_sent(bot, created["id"])

    expected = {"msisdn": PHONE, "message": created["sms_text"]}
    assert [r["json"] for r in gateway.requests] == [expected, expected]
    assert all(r["headers"]["Authorization"] == "Bearer gw-secret" for r in gateway.requests)
    sms = await sms_row(bot, created["id"])
    assert sms.status == "sent" and sms.attempts == 2 and sms.secret is None
    # The row is final, with the outcome in the same transaction: it is never claimed again.
    assert len(gateway.requests) == 2  # delivered once, not again


# --- re-contacts ---------------------------------------------------------------------------


async def test_a_recontact_lookup_needs_a_valid_phone_and_hours(api: Api, bot: RunningBot) -> None:
    path = "/api/v1/recontacts"
    assert await refused(api, bot, {}, path) == {"phone": "is required"}
    assert await refused(api, bot, {"hours": 24}, path) == {"phone": "is required"}
    assert "phone number" in (await refused(api, bot, {"phone": "123"}, path))["phone"]
    for hours in (0, 721, -5, "24", 2.5, True, None):
        fields = await refused(api, bot, {"phone": PHONE, "hours": hours}, path)
        assert fields == {"hours": "must be a whole number of hours from 1 to 720"}, hours
    fields = await refused(api, bot, {"phone": "123", "hours": 0, "name": "Kari"}, path)
    assert set(fields) == {"phone", "hours", "name"}
    assert await refused(api, bot, [PHONE], path) == {"body": "must be a JSON object"}

    status, answer = await api.post(path, {"phone": PHONE}, key=None)
    assert status == 401 and answer["error"] == "unauthorized"


async def test_a_recontact_is_found_however_the_number_is_written(api: Api) -> None:
    first = await api.dispatch(topic="fever-child", locale="nb", phone="912 34 567")
    second = await api.dispatch(topic="head-injury", locale="nn", phone="+4791234567")
    other = await api.dispatch(topic="head-injury", locale="nb", phone="+47 987 65 432")
    await api.dispatch(topic="head-injury", locale="nb")
    # The nurse making the second dispatch is told at once that this caller called before.
    assert first["recontact"] is False and first["earlier_dispatches"] == 0
    assert second["recontact"] is True and second["earlier_dispatches"] == 1
    assert other["recontact"] is False

    for written in ("+4791234567", "912 34 567", "0047 91 23 45 67", "91234567"):
        status, found = await api.post("/api/v1/recontacts", {"phone": written})
        assert status == 200 and found["recontact"] is True, written
        assert [d["id"] for d in found["dispatches"]] == [second["id"], first["id"]], written
    status, found = await api.post("/api/v1/recontacts", {"phone": "+47 412 34 567"})
    assert status == 200 and found == {"recontact": False, "hours": 72, "dispatches": []}

    _status, found = await api.post("/api/v1/recontacts", {"phone": PHONE})
    seen = found["dispatches"][1]
    assert seen["topic"] == "fever-child" and seen["topic_title"] == "Feber hos barn"
    assert seen["link_opened"] is False and seen["worse_pressed"] is False
    assert seen["checkin"]["status"] == "none" and seen["sms"] == "none"
    assert "phone" not in seen and "deep_link" not in seen


async def test_hours_limit_how_far_back_a_recontact_is_looked_for(
    api: Api, bot: RunningBot
) -> None:
    old = await api.dispatch(**FEVER, phone=PHONE)
    new = await api.dispatch(**FEVER, phone=PHONE)
    async with bot.rt.sessions() as session:
        await session.exec(
            update(Dispatch)
            .where(Dispatch.id == old["id"])  # type: ignore[arg-type]
            .values(created_at=utcnow() - dt.timedelta(hours=10))
        )
        await session.commit()

    async def ids(hours: int) -> list[str]:
        status, found = await api.post("/api/v1/recontacts", {"phone": PHONE, "hours": hours})
        assert status == 200 and found["hours"] == hours
        return [d["id"] for d in found["dispatches"]]

    assert await ids(9) == [new["id"]]
    assert await ids(11) == [new["id"], old["id"]]
    assert await ids(720) == [new["id"], old["id"]]


async def test_a_call_system_can_follow_its_own_dispatch_and_no_one_elses(
    api: Api, bot: RunningBot
) -> None:
    from bot.services import apikeys

    created = await api.dispatch(**FEVER, phone=PHONE, send_sms=True)
    for _ in range(50):
        status, seen = await api.get(f"/api/v1/dispatches/{created['id']}")
        if seen.get("sms") != "queued":
            break
        await asyncio.sleep(0.1)
    assert status == 200
    assert seen["sms"] == "not_sent"  # the demo's console provider: printed, not sent
    assert seen["link_opened"] is False and seen["worse_pressed"] is False

    _row, other_key = await apikeys.create(bot.rt.sessions, "Calls", "Another legevakt")
    other = Api(api.session, api.base_url, other_key)
    status, body = await other.get(f"/api/v1/dispatches/{created['id']}")
    assert status == 404 and body["error"] == "not_found"
    status, body = await api.get("/api/v1/dispatches/" + "0" * 32)
    assert status == 404


# --- retries with an Idempotency-Key --------------------------------------------------------


async def post_with_key(
    api: Api, body: dict[str, Any], idempotency_key: str, key: str | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key or api.key}", "Idempotency-Key": idempotency_key}
    return await request(api, "POST", "/api/v1/dispatches", headers=headers, json=body)


async def test_a_retried_dispatch_with_the_same_key_gets_the_first_answer_and_one_sms(
    api: Api, bot: RunningBot
) -> None:
    # A call system whose POST timed out sends it again: the caller must get one SMS, one link.
    body = {**FEVER, "phone": PHONE, "send_sms": True, "note": "Ring igjen i morgen."}
    status, headers, first = await post_with_key(api, body, "call-2026-11-23-0042")
    assert status == 201 and "Idempotent-Replayed" not in headers
    await sms_sent(bot, first["id"], "not_sent")

    status, headers, again = await post_with_key(
        api, dict(reversed(body.items())), "call-2026-11-23-0042"
    )

    assert status == 200 and headers["Idempotent-Replayed"] == "true"
    assert again == first  # the same id and the same link, not a new one
    assert await stored(bot) == (1, 1)
    # Without the header a second POST is a second dispatch, as before.
    assert (await api.dispatch(**FEVER))["id"] != first["id"]


async def test_the_same_key_with_another_body_is_refused_and_nothing_is_stored(
    api: Api, bot: RunningBot
) -> None:
    status, _headers, _first = await post_with_key(api, FEVER, "k-1")
    assert status == 201

    status, _headers, body = await post_with_key(api, {**FEVER, "locale": "nn"}, "k-1")

    assert status == 422 and body["error"] == "idempotency_key_reused"
    assert "different request" in body["fields"]["Idempotency-Key"]
    assert await stored(bot) == (1, 0)


async def test_keys_belong_to_one_api_key_and_must_be_visible_ascii(
    api: Api, bot: RunningBot
) -> None:
    _row, other_key = await apikeys.create(bot.rt.sessions, "Calls", "Another legevakt")
    _s, _h, mine = await post_with_key(api, FEVER, "same")
    status, _h, theirs = await post_with_key(api, FEVER, "same", key=other_key)
    assert status == 201 and theirs["id"] != mine["id"]

    for bad in ["", "x" * 256, "med mellomrom", "blåbær"]:
        status, _h, body = (
            await request(
                api,
                "POST",
                "/api/v1/dispatches",
                headers={"Authorization": f"Bearer {api.key}", "Idempotency-Key": bad},
                json=FEVER,
            )
            if bad.isascii()
            else await raw_header_post(api, bad)
        )
        assert status == 422, bad
        assert "Idempotency-Key" in body["fields"], bad
    assert await stored(bot) == (2, 0)


async def raw_header_post(api: Api, value: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A header with non-ASCII characters, sent as UTF-8 bytes (aiohttp refuses to encode it)."""
    import json as jsonlib

    reader, writer = await asyncio.open_connection(*api.base_url.removeprefix("http://").split(":"))
    body = jsonlib.dumps(FEVER).encode()
    head = (
        f"POST /api/v1/dispatches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.key}\r\n"
        f"Idempotency-Key: {value}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    writer.write(head + body)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head_text, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head_text.split()[1])
    return status, {}, jsonlib.loads(payload)


async def test_two_retries_at_the_same_moment_make_one_dispatch(api: Api, bot: RunningBot) -> None:
    body = {**FEVER, "phone": PHONE, "send_sms": True}
    answers = await asyncio.gather(*(post_with_key(api, body, "burst") for _ in range(5)))

    statuses = sorted(status for status, _h, _b in answers)
    assert statuses == [200, 200, 200, 200, 201]
    assert len({b["id"] for _s, _h, b in answers}) == 1
    assert len({b["deep_link"] for _s, _h, b in answers}) == 1
    assert await stored(bot) == (1, 1)


async def test_the_kept_answer_is_encrypted_and_purged_after_a_day(
    api: Api, bot: RunningBot
) -> None:
    from bot.models import IdempotentRequest
    from bot.services import dispatches

    _s, _h, first = await post_with_key(api, FEVER, "kept")
    async with bot.rt.sessions() as session:
        [kept] = (await session.exec(select(IdempotentRequest))).all()
    assert link_token(first["deep_link"]) not in kept.response and "kept" not in kept.key_hash

    await dispatches.purge_old(bot.rt, now=utcnow() + dt.timedelta(hours=25))

    async with bot.rt.sessions() as session:
        assert (await session.exec(select(IdempotentRequest))).all() == []
    status, _h, again = await post_with_key(api, FEVER, "kept")
    assert status == 201 and again["id"] != first["id"]  # a day on, the key is new again
