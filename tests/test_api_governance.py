"""The API under abuse: rate limits per key, SMS only to mobile numbers, clinics that see only
their own (and their region's) dispatches, an audit log of every look-up, and keys whose last use
is written at most once a minute.

Over real HTTP to the running bot, as call systems (honest or not) use it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, func, update
from sqlmodel import select

from bot.app import RunningBot
from bot.cli import main
from bot.models import ApiKey, Channel, Dispatch, OutboxMessage, utcnow
from bot.privacy import phone_hash
from tests.conftest import Api, People, table_rows

FEVER = {"topic": "fever-child", "locale": "nb"}


def cli(env: dict[str, str], *args: str) -> Result:
    """``python -m bot <args>`` as an admin runs it on the server."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


async def stored(bot: RunningBot) -> tuple[int, int]:
    async with bot.rt.sessions() as session:
        dispatches = (await session.exec(select(func.count()).select_from(Dispatch))).one()
        sms = (
            await session.exec(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.channel == Channel.SMS)  # type: ignore[arg-type]
            )
        ).one()
    return int(dispatches), int(sms)


# --- SMS pumping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "why"),
    [
        ("+4722123456", "landline"),  # Oslo, fixed line
        ("80012345", "toll-free"),  # 800: grønt nummer
        ("+4781012345", "toll-free"),  # 810: shared cost
        ("+4702123", "toll-free"),  # 02xxx: short service number
        ("+46701234567", "another country"),  # a Swedish mobile
        ("+447911123456", "another country"),  # a British mobile
    ],
)
async def test_an_sms_goes_only_to_a_norwegian_mobile_number(
    api: Api, bot: RunningBot, phone: str, why: str
) -> None:
    status, data = await api.post("/api/v1/dispatches", {**FEVER, "phone": phone, "send_sms": True})
    assert status == 422 and data["error"] == "invalid", data
    message = data["fields"]["phone"]
    assert message.startswith("an SMS is sent only to mobile numbers")
    if why == "another country":
        assert "this number is from another country (SMS_COUNTRIES)" in message
    else:
        assert "this is a landline, toll-free or service number" in message
    assert await stored(bot) == (0, 0)

    created = await api.dispatch(**FEVER, phone=phone)  # without an SMS: a re-contact key only
    assert created["sms"] == "none"


async def test_norwegian_mobile_numbers_get_their_sms(api: Api, bot: RunningBot) -> None:
    for phone in ("+4791234567", "412 34 567", "0047 98765432"):
        created = await api.dispatch(**FEVER, phone=phone, send_sms=True)
        assert created["sms"] == "queued"
    assert await stored(bot) == (3, 3)


@pytest.fixture
def settings(settings, request):  # type: ignore[no-untyped-def]
    return settings.model_copy(update=getattr(request, "param", {}))


@pytest.mark.parametrize("settings", [{"sms_countries": ["NO", "SE"]}], indirect=True)
async def test_more_countries_can_be_allowed(api: Api, bot: RunningBot) -> None:
    created = await api.dispatch(**FEVER, phone="+46701234567", send_sms=True)
    assert created["sms"] == "queued"
    status, data = await api.post(
        "/api/v1/dispatches", {**FEVER, "phone": "+4722123456", "send_sms": True}
    )
    assert status == 422 and "landline" in data["fields"]["phone"]


# --- rate limits -------------------------------------------------------------------------------


async def test_a_flood_of_sms_from_one_key_is_stopped_at_the_default_budget(
    api: Api, bot: RunningBot
) -> None:
    """The attack: one key, SMS to many numbers as fast as it can."""
    answers = []
    for n in range(40):
        answers.append(
            await api.post(
                "/api/v1/dispatches", {**FEVER, "phone": f"+47912{n:05d}", "send_sms": True}
            )
        )
    accepted = [data for status, data in answers if status == 201]
    refused = [data for status, data in answers if status == 429]
    assert len(accepted) + len(refused) == 40
    assert 20 <= len(accepted) <= 22  # the burst, and what refilled while the test ran
    assert {data["error"] for data in refused} == {"sms_rate_limited"}
    assert await stored(bot) == (len(accepted), len(accepted))  # a refusal stores nothing

    created = await api.dispatch(**FEVER)  # without an SMS the key still works
    assert created["sms"] == "none"


@pytest.mark.parametrize(
    "settings",
    [{"api_burst": 3, "api_rate_per_minute": 30, "api_sms_burst": 1, "api_sms_rate_per_minute": 2}],
    indirect=True,
)
async def test_each_key_has_its_own_budget_and_429_says_when_to_come_back(
    api: Api, bot: RunningBot
) -> None:
    from bot.services import apikeys

    _row, other_key = await apikeys.create(bot.rt.sessions, "Telefonsystem", "Annen legevakt")
    other = Api(api.session, api.base_url, other_key)

    async with api.session.post(
        api.base_url + "/api/v1/dispatches",
        json={**FEVER, "phone": "+4791234567", "send_sms": True},
        headers={"Authorization": f"Bearer {api.key}"},
    ) as response:
        assert response.status == 201  # the one SMS of the burst
    async with api.session.post(
        api.base_url + "/api/v1/dispatches",
        json={**FEVER, "phone": "+4791234568", "send_sms": True},
        headers={"Authorization": f"Bearer {api.key}", "Accept-Language": "nn"},
    ) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "30"  # two SMS a minute: one every 30 s
        data = await response.json()
    assert data["error"] == "sms_rate_limited"
    assert data["message"].startswith("for mange SMS frå denne nøkkelen")

    status, _ = await api.get("/api/v1/topics")  # the third request of the burst
    assert status == 200
    async with api.session.get(
        api.base_url + "/api/v1/topics", headers={"Authorization": f"Bearer {api.key}"}
    ) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"  # 30 a minute: one every 2 s
        assert (await response.json())["error"] == "rate_limited"

    assert (await other.get("/api/v1/topics"))[0] == 200  # another clinic's key is not affected
    assert await stored(bot) == (1, 1)


# --- clinics and regions -------------------------------------------------------------------------


async def test_a_key_sees_its_own_clinics_dispatches_and_its_regions_only(
    api: Api, bot: RunningBot
) -> None:
    from bot.services import apikeys

    phone = "+4791234567"
    _row, bergen_key = await apikeys.create(bot.rt.sessions, "Telefoni", "Legevakten i Bergen")
    bergen = Api(api.session, api.base_url, bergen_key)
    ours = await api.dispatch(**FEVER, phone=phone, checkin_hours=6)

    status, found = await bergen.post("/api/v1/recontacts", {"phone": phone})
    assert status == 200 and found == {"recontact": False, "hours": 72, "dispatches": []}
    theirs = await bergen.dispatch(**FEVER, phone=phone)
    assert theirs["recontact"] is False and theirs["earlier_dispatches"] == 0
    status, _seen = await bergen.get(f"/api/v1/dispatches/{ours['id']}")
    assert status == 404

    status, found = await api.post("/api/v1/recontacts", {"phone": phone})
    assert [d["id"] for d in found["dispatches"]] == [ours["id"]]

    # The two clinics share callers: an admin puts them in one region.
    await apikeys.set_region(bot.rt.sessions, "Testlegevakt", "Vestland")
    await apikeys.set_region(bot.rt.sessions, "legevakten i bergen", "Vestland")
    status, found = await bergen.post("/api/v1/recontacts", {"phone": phone})
    assert [d["id"] for d in found["dispatches"]] == [theirs["id"], ours["id"]]
    again = await bergen.dispatch(**FEVER, phone=phone)
    assert again["earlier_dispatches"] == 2

    await apikeys.set_region(bot.rt.sessions, "Legevakten i Bergen", None)
    status, found = await bergen.post("/api/v1/recontacts", {"phone": phone})
    assert [d["id"] for d in found["dispatches"]] == [again["id"], theirs["id"]]


# --- the audit log -------------------------------------------------------------------------------


async def test_every_lookup_is_audited_with_the_number_only_as_its_keyed_hash(
    api: Api, bot: RunningBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = "+4791234567"
    await api.dispatch(**FEVER, phone=phone)
    await api.post("/api/v1/recontacts", {"phone": "912 34 567", "hours": 24})
    await api.post("/api/v1/recontacts", {"phone": "+4741234567"})
    await api.post("/api/v1/recontacts", {"phone": "not a number"})  # refused: no look-up

    rows = table_rows(bot.rt.settings.database_url or "", "lookup_audit", "id")
    assert [(r["actor"], r["hours"], r["results"]) for r in rows] == [
        ("API key 1 (Telefonsystemet)", 24, 1),
        ("API key 1 (Telefonsystemet)", 72, 0),
    ]
    secret = bot.rt.settings.secret()
    assert rows[0]["phone_hash"] == phone_hash(secret, phone)
    assert rows[1]["phone_hash"] == phone_hash(secret, "+4741234567")
    assert all(r["api_key_id"] == 1 and r["organisation_id"] is not None for r in rows)
    for row in rows:
        assert not any("91234567" in str(v) or "41234567" in str(v) for v in row.values())

    # An admin reads it.
    monkeypatch.chdir(tmp_path)
    env = {
        "DATABASE_URL": bot.rt.settings.database_url or "",
        "VAR_DIR": str(bot.rt.settings.var_dir),
        "SECRET_KEY": secret.decode(),
        "TELEGRAM_BOT_TOKEN": "",
    }
    listed = await asyncio.to_thread(cli, env, "audit", "list", "--since", "1h")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 2 and "API key 1 (Telefonsystemet)" in lines[0]
    assert "last 72 h: 0 dispatch(es)" in lines[0] and "last 24 h: 1 dispatch(es)" in lines[1]
    assert "91234567" not in listed.stdout
    only = await asyncio.to_thread(
        cli, env, "audit", "list", "--phone", "91234567", "--format", "json"
    )
    [entry] = json.loads(only.stdout)
    assert entry["results"] == 1 and entry["phone_hash"] == phone_hash(secret, phone)

    # The command line's own look-up is audited too, with who ran it.
    await asyncio.to_thread(cli, env, "dispatch", "recontacts", "--phone", phone)
    rows = table_rows(bot.rt.settings.database_url or "", "lookup_audit", "id")
    assert rows[-1]["actor"].startswith("command line (") and rows[-1]["results"] == 1


async def test_a_lookup_that_cannot_be_audited_is_not_answered(api: Api, bot: RunningBot) -> None:
    from tests.test_log_privacy import statements_fail

    await api.dispatch(**FEVER, phone="+4791234567")
    async with (
        statements_fail(bot, "lookup_audit", "INSERT"),
        api.session.post(
            api.base_url + "/api/v1/recontacts",
            json={"phone": "+4791234567"},
            headers={"Authorization": f"Bearer {api.key}"},
        ) as response,
    ):
        assert response.status == 500
        data = await response.json()
    assert data["error"] == "internal_error" and "dispatches" not in data


@pytest.mark.parametrize("settings", [{"admin_user_ids": [5001]}], indirect=True)
async def test_status_tells_an_admin_how_many_lookups_there_were(
    api: Api, bot: RunningBot, people: People
) -> None:
    admin = await people("Ada")
    for phone in ("+4791234567", "+4741234567", "+4791234567"):
        await api.post("/api/v1/recontacts", {"phone": phone})
    [status] = await admin.says("/status")
    assert (
        "Rekontaktoppslag siste 24 timer: <b>3</b> av 1 (hvem, når og hva: "
        "<code>python -m bot audit list</code>)" in (status.html or "")
    )


# --- last use of a key -------------------------------------------------------------------------


async def test_a_keys_last_use_is_written_at_most_once_a_minute(api: Api, bot: RunningBot) -> None:
    writes: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEY"):
            writes.append(statement)

    event.listen(bot.rt.engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(10):
            assert (await api.get("/api/v1/topics"))[0] == 200
        assert len(writes) == 1  # the first use; the next nine were within the minute
        [first] = table_rows(bot.rt.settings.database_url or "", "api_key")
        assert first["last_used_at"] is not None

        async with bot.rt.sessions() as session:
            await session.exec(
                update(ApiKey).values(last_used_at=utcnow() - dt.timedelta(minutes=2))
            )
            await session.commit()
        writes.clear()
        assert (await api.get("/api/v1/topics"))[0] == 200
        assert len(writes) == 1  # a minute had passed: written again
    finally:
        event.remove(bot.rt.engine.sync_engine, "before_cursor_execute", count)
