"""The clinic's events, as its call system reads them: ``GET /api/v1/events``.

Everything a caller does goes through the real paths (the API, the chat through the local Bot
API, the advice page over HTTP); the test then reads the feed with the clinic's key, as a call
system polling for "this caller is getting worse" would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import update
from sqlmodel import col

from bot.app import RunningBot
from bot.models import ClinicEvent, Dispatch, utcnow
from bot.services import apikeys, dispatches
from tests.conftest import Api, People
from tests.test_advice import PHONE, make_checkin_due, start_payload
from tests.test_advice_page import fetch, form_of

NOTE = "Gi paracetamol etter vekt, og mål temperaturen igjen i kveld."
FEVER = {
    "topic": "fever-child",
    "locale": "nb",
    "note": NOTE,
    "risk_groups": ["infant-under-3-months"],
    "checkin_hours": 6,
    "phone": "912 34 567",
}


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def feed(api: Api, query: str = "limit=500") -> list[dict[str, Any]]:
    status, body = await api.get(f"/api/v1/events?{query}")
    assert status == 200, body
    assert set(body) == {"data", "has_more"}
    events: list[dict[str, Any]] = body["data"]
    return events


def of(events: list[dict[str, Any]], dispatch_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e["type"], e["data"]) for e in events if e["dispatch_id"] == dispatch_id]


async def until(
    api: Api, dispatch_id: str, done: Callable[[list[tuple[str, dict[str, Any]]]], bool]
) -> list[tuple[str, dict[str, Any]]]:
    """The dispatch's events once ``done`` holds for them (the sender works on its own time)."""
    deadline = time.monotonic() + 10
    while True:
        found = of(await feed(api), dispatch_id)
        if done(found):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)  # polls a condition, bounded above


def personal_data_absent(events: list[dict[str, Any]], *words: str) -> None:
    text = json.dumps(events, ensure_ascii=False)
    for word in (PHONE, "91234567", "912 34 567", NOTE, "paracetamol", *words):
        assert word not in text, word


async def test_created_opened_in_telegram_worse_checkin_and_deleted_are_told_in_order(
    api: Api, people: People, bot: RunningBot
) -> None:
    created = await api.dispatch(**FEVER)
    kari = await people("Kari")
    await kari.says(f"/start {start_payload(created['deep_link'])}")
    await kari.presses("Barnet blir verre")

    events = await feed(api)
    assert [(e["type"], e["data"]) for e in events] == [
        (
            "dispatch.created",
            {
                "topic": "fever-child",
                "locale": "nb",
                "checkin_hours": 6,
                "sms": False,
                "expires_at": created["expires_at"],
            },
        ),
        ("dispatch.opened", {"via": "telegram", "first": True}),
        ("dispatch.worse", {"via": "telegram", "count": 1}),
    ]
    assert {e["dispatch_id"] for e in events} == {created["id"]}
    assert len({e["id"] for e in events}) == 3
    assert all(e["id"].startswith("evt_") and e["created_at"].endswith("Z") for e in events)

    await make_checkin_due(bot, created["id"])
    await kari.replies(timeout=5)
    await kari.presses("Verre")
    await kari.presses("Slett dataene mine")
    await kari.presses("Ja, slett")

    everything = await feed(api)
    assert of(everything, created["id"])[3:] == [
        ("checkin.sent", {}),
        ("checkin.answered", {"answer": "worse"}),
        ("dispatch.deleted", {"via": "telegram"}),
    ]
    # The caller's data is gone; what the clinic was told stays (it names no one).
    async with bot.rt.sessions() as session:
        assert await session.get(Dispatch, created["id"]) is None
    assert [e["id"] for e in everything[:3]] == [e["id"] for e in events]
    personal_data_absent(everything, "Kari", str(kari.user_id))


async def test_the_web_page_tells_opened_and_worse_via_web_once_per_channel(
    api: Api, people: People, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(**FEVER, send_sms=True)
    beacon = created["advice_url"] + "/seen.css"
    _s, _h, page = await fetch(browser, created["advice_url"])  # a link preview's GET
    assert of(await feed(api), created["id"])[0][0] == "dispatch.created"
    assert "dispatch.opened" not in [t for t, _d in of(await feed(api), created["id"])]

    await fetch(browser, beacon, headers={"Sec-Fetch-Dest": "style"})
    await fetch(browser, beacon, headers={"Sec-Fetch-Dest": "style"})  # a reload
    status, _h, _b = await fetch(
        browser, created["advice_url"] + "/worse", "POST", data=form_of(page, "worse")
    )
    assert status == 303
    kari = await people("Kari")
    await kari.says(f"/start {start_payload(created['deep_link'])}")

    found = await until(
        api, created["id"], lambda found: ("sms.sent", {"delivered": False}) in found
    )
    told = [event for event in found if event[0] != "sms.sent"]  # the SMS goes on its own time
    assert told == [
        ("dispatch.created", told[0][1]),
        ("dispatch.opened", {"via": "web", "first": True}),
        ("dispatch.worse", {"via": "web", "count": 1}),
        ("dispatch.opened", {"via": "telegram", "first": False}),
    ]
    assert told[0][1]["sms"] is True

    _s, _h, question = await fetch(browser, created["advice_url"] + "/delete")
    await fetch(
        browser, created["advice_url"] + "/delete", "POST", data=form_of(question, "delete")
    )
    everything = await feed(api)
    assert of(everything, created["id"])[-1] == ("dispatch.deleted", {"via": "web"})
    personal_data_absent(everything, "Kari", str(kari.user_id))


async def test_worse_pressed_on_a_page_whose_stylesheet_never_loaded_counts_as_opened(
    api: Api, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(topic="fever-child", locale="nn")
    _s, _h, page = await fetch(browser, created["advice_url"])
    await fetch(browser, created["advice_url"] + "/worse", "POST", data=form_of(page, "worse"))
    await fetch(browser, created["advice_url"] + "/worse", "POST", data=form_of(page, "worse"))

    assert [t for t, _d in of(await feed(api), created["id"])] == [
        "dispatch.created",
        "dispatch.opened",
        "dispatch.worse",
        "dispatch.worse",
    ]
    assert [d.get("count") for _t, d in of(await feed(api), created["id"])][2:] == [1, 2]


async def test_another_clinics_key_sees_none_of_them(
    api: Api, people: People, bot: RunningBot
) -> None:
    created = await api.dispatch(**FEVER)
    kari = await people("Kari")
    await kari.says(f"/start {start_payload(created['deep_link'])}")
    ours = await feed(api)
    assert len(ours) == 2

    _row, other_key = await apikeys.create(bot.rt.sessions, "Callsys", "Oslo legevakt")
    other = Api(api.session, api.base_url, other_key)
    assert await feed(other) == []
    status, body = await other.get(f"/api/v1/events?after={ours[0]['id']}")
    assert status == 404 and body["error"] == "unknown_event"
    # The same clinic's second key sees the clinic's events.
    _row, second_key = await apikeys.create(bot.rt.sessions, "Journal", "Testlegevakt")
    assert await feed(Api(api.session, api.base_url, second_key)) == ours
    status, body = await Api(api.session, api.base_url, None).get("/api/v1/events")
    assert status == 401 and body["error"] == "unauthorized"


async def test_after_and_limit_page_through_the_feed(api: Api) -> None:
    made = [await api.dispatch(topic="fever-child", locale="nb") for _ in range(3)]

    status, first = await api.get("/api/v1/events?limit=2")
    assert status == 200 and first["has_more"] is True
    assert [e["dispatch_id"] for e in first["data"]] == [d["id"] for d in made[:2]]
    status, rest = await api.get(f"/api/v1/events?limit=2&after={first['data'][-1]['id']}")
    assert status == 200 and rest["has_more"] is False
    assert [e["dispatch_id"] for e in rest["data"]] == [made[2]["id"]]
    status, nothing = await api.get(f"/api/v1/events?after={rest['data'][-1]['id']}")
    assert (status, nothing) == (200, {"data": [], "has_more": False})
    status, default = await api.get("/api/v1/events")
    assert len(default["data"]) == 3 and default["has_more"] is False

    for bad in ("0", "501", "ten", "-1", "2.5", "١"):
        status, body = await api.get(f"/api/v1/events?limit={bad}")
        assert status == 400 and body["error"] == "bad_limit", bad
        assert body["fields"] == {"limit": "limit must be a whole number from 1 to 500"}
    status, body = await api.get("/api/v1/events?after=evt_000000000000000000000000")
    assert status == 404 and body["error"] == "unknown_event"

    headers = {"Authorization": f"Bearer {api.key}", "Accept-Language": "nn"}
    url = api.base_url + "/api/v1/events?limit=0"
    async with api.session.get(url, headers=headers) as response:
        body = await response.json()
    assert response.status == 400 and body["error"] == "bad_limit"
    assert body["message"] == "limit må vere eit heilt tal frå 1 til 500"


async def test_retention_purges_the_events_with_the_dispatches(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    old = await api.dispatch(topic="fever-child", locale="nb")
    _s, _h, question = await fetch(browser, old["advice_url"] + "/delete")
    await fetch(browser, old["advice_url"] + "/delete", "POST", data=form_of(question, "delete"))
    new = await api.dispatch(topic="fever-child", locale="nb")
    assert [t for t, _d in of(await feed(api), old["id"])] == [
        "dispatch.created",
        "dispatch.deleted",
    ]

    days = bot.rt.settings.retention_days
    async with bot.rt.sessions() as session:
        await session.exec(
            update(ClinicEvent)
            .where(col(ClinicEvent.dispatch_id) == old["id"])
            .values(created_at=utcnow() - dt.timedelta(days=days, minutes=1))
        )
        await session.commit()
    await dispatches.purge_old(bot.rt)

    left = await feed(api)
    assert of(left, old["id"]) == [] and [t for t, _d in of(left, new["id"])] == [
        "dispatch.created"
    ]


async def test_a_link_that_ends_unopened_is_told_once(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    unopened = await api.dispatch(topic="fever-child", locale="nb")
    seen = await api.dispatch(topic="fever-child", locale="nb")
    later = await api.dispatch(topic="fever-child", locale="nb")
    await fetch(browser, seen["advice_url"] + "/seen.css", headers={"Sec-Fetch-Dest": "style"})
    async with bot.rt.sessions() as session:
        await session.exec(
            update(Dispatch)
            .where(col(Dispatch.id).in_([unopened["id"], seen["id"]]))
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        await session.commit()

    await dispatches.note_expired_links(bot.rt)
    await dispatches.note_expired_links(bot.rt)  # a second look (or instance) tells nothing new

    events = await feed(api)
    assert of(events, unopened["id"]) == [
        ("dispatch.created", of(events, unopened["id"])[0][1]),
        ("dispatch.expired", {}),
    ]
    assert "dispatch.expired" not in [t for t, _d in of(events, seen["id"])]
    assert [t for t, _d in of(events, later["id"])] == ["dispatch.created"]


async def test_two_worse_presses_at_once_count_one_and_two(
    api: Api, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(topic="fever-child", locale="nb")
    _s, _h, page = await fetch(browser, created["advice_url"])
    form = form_of(page, "worse")
    url = created["advice_url"] + "/worse"

    await asyncio.gather(*(fetch(browser, url, "POST", data=form) for _ in range(2)))

    worse = [d for t, d in of(await feed(api), created["id"]) if t == "dispatch.worse"]
    assert sorted(d["count"] for d in worse) == [1, 2]
