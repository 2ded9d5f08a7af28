"""Every answer under /api/ is JSON with a stable ``error`` code, and every problem with a request
is named at once, in English or (by ``Accept-Language``) in Bokmål or Nynorsk.

Over real HTTP to the running bot, as a call system (or the nurse's page) sends its requests.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.app import RunningBot
from bot.models import Dispatch
from bot.services import dispatches
from tests.conftest import Api

FNR_EN_DASH = "010190–00083"


async def send(
    api: Api,
    method: str,
    path: str,
    *,
    body: Any = None,
    data: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    key: bool = True,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A raw request; the answer must be JSON whatever happened."""
    sent = {"Authorization": f"Bearer {api.key}"} if key else {}
    sent.update(headers or {})
    async with api.session.request(
        method, api.base_url + path, json=body, data=data, headers=sent
    ) as response:
        assert response.content_type == "application/json", (path, await response.text())
        return response.status, dict(response.headers), await response.json()


async def dispatch_count(bot: RunningBot) -> int:
    async with bot.rt.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(Dispatch))).one())


# --- always JSON, always a code -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v2/dispatches", "/api/", "/api"])
async def test_an_unknown_address_under_api_is_a_json_404(api: Api, path: str) -> None:
    status, _headers, data = await send(api, "GET", path)
    assert status == 404 and data["error"] == "not_found"
    assert "/api/v1/" in data["message"]


async def test_a_wrong_method_is_a_json_405_naming_the_allowed_one(api: Api) -> None:
    status, headers, data = await send(api, "PUT", "/api/v1/dispatches", body={})
    assert status == 405 and data["error"] == "method_not_allowed"
    assert headers["Allow"] == "POST"
    assert data["message"] == "this address does not take PUT; it takes POST"


async def test_a_body_too_large_is_a_json_413(api: Api) -> None:
    big = json.dumps({"topic": "fever-child", "locale": "nb", "note": "x" * 70_000})
    headers = {"Content-Type": "application/json"}
    status, _headers, data = await send(
        api, "POST", "/api/v1/dispatches", data=big, headers=headers
    )
    assert status == 413 and data["error"] == "too_large"


async def test_not_json_is_a_json_415(api: Api) -> None:
    status, _headers, data = await send(
        api, "POST", "/api/v1/dispatches", data="topic=fever-child", headers={}
    )
    assert status == 415 and data["error"] == "unsupported_media_type"


async def test_a_bad_key_is_a_json_401(api: Api) -> None:
    status, headers, data = await send(api, "GET", "/api/v1/topics", key=False)
    assert status == 401 and data["error"] == "unauthorized"
    assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_failure_inside_is_a_json_500_and_logged_without_the_body(
    api: Api, bot: RunningBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(dispatches, "create", broken)
    body = {"topic": "fever-child", "locale": "nb", "note": "Hemmelig notat"}
    with caplog.at_level(logging.ERROR):
        status, _headers, data = await send(api, "POST", "/api/v1/dispatches", body=body)
    assert status == 500 and data["error"] == "internal_error"
    assert "disk on fire" not in data["message"] and "Traceback" not in data["message"]
    [record] = [r for r in caplog.records if r.name == "bot.api"]
    assert record.getMessage() == "api: POST /api/v1/dispatches failed"
    assert "Hemmelig notat" not in caplog.text


@pytest.mark.parametrize("depth", [17, 1000, 30_000])
async def test_deeply_nested_json_is_a_400_bad_json_not_a_500(
    api: Api, bot: RunningBot, depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    nested = "[" * depth + "]" * depth  # 30 000 deep is 60 KB, under the size limit
    headers = {"Content-Type": "application/json"}
    with caplog.at_level(logging.WARNING):
        status, _headers, data = await send(
            api, "POST", "/api/v1/dispatches", data=nested, headers=headers
        )
    assert status == 400 and data["error"] == "bad_json"
    assert "RecursionError" not in caplog.text and "Traceback" not in caplog.text
    assert await dispatch_count(bot) == 0


async def test_json_that_is_shallow_enough_still_reads(api: Api) -> None:
    body = {"topic": "fever-child", "locale": "nb", "risk_groups": [[[[["deep"]]]]]}
    status, _headers, data = await send(api, "POST", "/api/v1/dispatches", body=body)
    assert status == 422 and "risk_groups" in data["fields"]


async def test_a_number_too_huge_to_read_is_bad_json(api: Api) -> None:
    huge = '{"topic": "fever-child", "locale": "nb", "checkin_hours": ' + "9" * 5000 + "}"
    headers = {"Content-Type": "application/json"}
    status, _headers, data = await send(
        api, "POST", "/api/v1/dispatches", data=huge, headers=headers
    )
    assert status == 400 and data["error"] == "bad_json"


# --- every problem at once ---------------------------------------------------------------------


async def test_a_note_too_long_does_not_hide_the_other_problems(api: Api, bot: RunningBot) -> None:
    body = {
        "topic": "no-such-topic",
        "locale": "nb",
        "note": "x" * 501,
        "phone": "not a number",
        "checkin_hours": 0,
        "send_sms": "yes",
        "colour": "blue",
    }
    status, _headers, data = await send(api, "POST", "/api/v1/dispatches", body=body)
    assert status == 422 and data["error"] == "invalid"
    assert data["fields"] == {
        "topic": data["fields"]["topic"],
        "note": "must be at most 500 characters",
        "phone": "it must be a phone number, e.g. +4791234567",
        "checkin_hours": "must be at least 1",
        "send_sms": "must be true or false",
        "colour": "is not a field of a dispatch",
    }
    assert data["fields"]["topic"].startswith("unknown topic 'no-such-topic'; known topics:")
    assert await dispatch_count(bot) == 0


async def test_content_checks_run_beside_schema_errors(api: Api) -> None:
    body = {
        "topic": "fever-child",
        "locale": "sv",
        "note": f"Fnr {FNR_EN_DASH}",
        "risk_groups": ["no-such-group"],
        "checkin_hours": 5,
    }
    status, _headers, data = await send(api, "POST", "/api/v1/dispatches", body=body)
    assert status == 422
    assert set(data["fields"]) == {"locale", "note", "risk_groups", "checkin_hours"}
    assert "national identity number" in data["fields"]["note"]


# --- in the reader's language ------------------------------------------------------------------


async def test_messages_follow_accept_language_and_the_codes_stay_english(api: Api) -> None:
    body = {"topic": "fever-child", "locale": "nb", "note": f"Fnr {FNR_EN_DASH}", "phone": "tlf"}

    answers = {}
    for header in (None, "nb-NO,nb;q=0.9,en;q=0.5", "nn", "en-GB,nn;q=0.5", "sv, no;q=0.3"):
        headers = {"Accept-Language": header} if header else {}
        status, response_headers, data = await send(
            api, "POST", "/api/v1/dispatches", body=body, headers=headers
        )
        assert status == 422 and data["error"] == "invalid"
        answers[header] = (response_headers["Content-Language"], data["message"], data["fields"])

    assert answers[None] == answers["en-GB,nn;q=0.5"]
    language, message, fields = answers[None]
    assert language == "en" and message == "the dispatch was not created"
    assert fields["note"].startswith("the note contains a national identity number")

    language, message, fields = answers["nb-NO,nb;q=0.9,en;q=0.5"]
    assert language == "nb" and message == "rådet ble ikke laget"
    assert fields["note"].startswith("notatet inneholder et fødselsnummer;")
    assert fields["phone"] == "det må være et telefonnummer, for eksempel +4791234567"
    assert answers["sv, no;q=0.3"][1] == "rådet ble ikke laget"  # "no" is Bokmål

    language, message, fields = answers["nn"]
    assert language == "nn" and message == "rådet vart ikkje laga"
    assert fields["note"].startswith("notatet inneheld eit fødselsnummer;")
    assert fields["phone"] == "det må vere eit telefonnummer, til dømes +4791234567"

    status, _h, data = await send(api, "GET", "/api/v1/nope", headers={"Accept-Language": "nn"})
    assert (status, data["error"]) == (404, "not_found")
    assert data["message"] == "denne adressa finst ikkje i API-et; adressene ligg under /api/v1/"
