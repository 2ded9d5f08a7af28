"""Security checks in one place: the webhook's secret, API keys, /metrics' token, guessing deep
links, the admins' allowlist, and logs of whole caller and leader dialogues without personal data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import update
from sqlmodel import select

from bot import migrate
from bot.app import RunningBot, build_runtime
from bot.config import Settings
from bot.models import Dispatch, Leader, OutboxMessage, Person, utcnow
from bot.services import apikeys, invites, weekly
from bot.web import build_web_app
from bot.webhook import SECRET_HEADER, WebhookReceiver
from devkit.localapi import LocalBotApi
from handlers.common import LINK_THROTTLE_KEY, LinkThrottle
from tests.conftest import Api, People

ADMIN = 5001  # the first person ``people`` makes
PHONE = "+4791234567"
SECRET = "s" * 40
NOT_VALID = "Denne lenken er ikke gyldig."
TOO_MANY = "Du har prøvd for mange lenker som ikke virker."


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_user_ids": [ADMIN]})


def payload_of(deep_link: str) -> str:
    match = re.fullmatch(r"https://t\.me/\w+\?start=([A-Za-z0-9_-]{1,64})", deep_link)
    assert match, deep_link
    return match.group(1)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        r.getMessage() + (r.exc_text or "") + (str(r.exc_info[1]) if r.exc_info else "")
        for r in caplog.records
    )


# --- the webhook's secret ------------------------------------------------------------------


@pytest.fixture
async def webhook_client(settings: Settings) -> AsyncIterator[tuple[TestClient, Any]]:
    """Only the web server with a webhook, in front of a stand-in for PTB's update queue."""
    rt = build_runtime(settings)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    receiver = WebhookReceiver(SimpleNamespace(update_queue=queue, bot=None), SECRET, "/hook")  # type: ignore[arg-type]
    client = TestClient(TestServer(build_web_app(rt, webhook=receiver)))
    await client.start_server()
    try:
        yield client, queue
    finally:
        await client.close()
        await rt.engine.dispose()


@pytest.mark.parametrize("header", [None, "", "wrong", SECRET[:-1], SECRET + "s", SECRET.upper()])
async def test_the_webhook_refuses_a_missing_or_wrong_secret(
    webhook_client: tuple[TestClient, Any], header: str | None
) -> None:
    client, queue = webhook_client
    update = {
        "update_id": 1,
        "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}},
    }
    headers = {SECRET_HEADER: header} if header is not None else {}
    response = await client.post("/hook", json=update, headers=headers)
    assert response.status == 403
    assert queue.empty()

    response = await client.post("/hook", json=update, headers={SECRET_HEADER: SECRET})
    assert response.status == 200
    assert queue.qsize() == 1


async def test_the_webhook_refuses_an_oversized_body(
    webhook_client: tuple[TestClient, Any],
) -> None:
    client, queue = webhook_client
    body = b'{"update_id": 1, "x": "' + b"a" * (1024 * 1024) + b'"}'
    response = await client.post("/hook", data=body, headers={SECRET_HEADER: SECRET})
    assert response.status == 413
    assert queue.empty()


# --- API keys and /metrics -----------------------------------------------------------------


async def test_the_api_refuses_a_missing_wrong_or_revoked_key(api: Api, bot: RunningBot) -> None:
    body = {"topic": "fever-child", "locale": "nb"}
    for key in (None, "wrong", api.key + "x", "Bearer"):  # type: ignore[operator]
        status, data = await api.post("/api/v1/dispatches", body, key=key)
        assert status == 401 and data["error"] == "unauthorized"
    row, other = await apikeys.create(bot.rt.sessions, "Telefonsystem", "Annen legevakt")
    assert (await api.post("/api/v1/dispatches", body, key=other))[0] == 201
    await apikeys.revoke(bot.rt.sessions, row.id)  # type: ignore[arg-type]
    assert (await api.post("/api/v1/dispatches", body, key=other))[0] == 401
    async with bot.rt.sessions() as session:
        assert len((await session.exec(select(Dispatch))).all()) == 1  # nothing else was stored


async def test_metrics_need_the_token_when_one_is_set(settings: Settings) -> None:
    token = "m" * 40
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    rt = build_runtime(settings.model_copy(update={"metrics_token": SecretStr(token)}))
    client = TestClient(TestServer(build_web_app(rt, updates={})))
    await client.start_server()
    try:
        for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            response = await client.get("/metrics", headers=header)
            assert response.status == 401
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200
        assert "sikkerhetsnett_outbox_depth 0" in await response.text()
    finally:
        await client.close()
        await rt.engine.dispose()


async def test_metrics_are_off_in_production_without_a_token(settings: Settings) -> None:
    production = settings.model_copy(
        update={"telegram_bot_token": SecretStr("123456789:" + "A" * 35)}
    )
    rt = build_runtime(production)
    client = TestClient(TestServer(build_web_app(rt, updates={})))
    await client.start_server()
    try:
        assert (await client.get("/metrics")).status == 404
        response = await client.get("/metrics", headers={"Authorization": "Bearer anything"})
        assert response.status == 404
    finally:
        await client.close()
        await rt.engine.dispose()


# --- guessing deep links -------------------------------------------------------------------


async def test_guessing_deep_links_is_throttled_per_person(
    bot: RunningBot, api: Api, people: People, caplog: pytest.LogCaptureFixture
) -> None:
    mine = payload_of((await api.dispatch(topic="fever-child", locale="nb"))["deep_link"])
    theirs = payload_of((await api.dispatch(topic="fever-child", locale="nb"))["deep_link"])
    kari, ola = await people("Kari"), await people("Ola")
    guesses = [
        "a_" + "A" * 23,  # an unknown advice token
        "i_" + "B" * 23,  # an unknown invite token
        "x_abc",  # an unknown prefix
        "nonsense",  # no prefix at all
        "a_" + mine[2:-1],  # almost right
    ]
    with caplog.at_level(logging.INFO):
        for guess in guesses:
            [answer] = await kari.says(f"/start {guess}")
            assert answer.text.startswith(NOT_VALID), guess
        [paused] = await kari.says(f"/start {mine}")  # the sixth: not even a real link is read
    assert paused.text.startswith(TOO_MANY)
    assert "116 117" in paused.text and "113" in paused.text
    async with bot.rt.sessions() as session:
        dispatch = (await session.exec(select(Dispatch).where(Dispatch.opened_at != None))).all()  # noqa: E711
    assert dispatch == []  # the link was not looked up
    [answer] = await kari.says("/start")  # plain /start still works
    assert answer.text.startswith("Sikkerhetsnett gir deg")

    [other] = await ola.says("/start a_" + "C" * 23)  # someone else is not affected
    assert other.text.startswith(NOT_VALID)
    advice = await ola.says(f"/start {theirs}")
    assert advice[0].text.startswith("Feber hos barn")

    text = logged(caplog)
    assert "paused after 5 links that did not work" in text
    assert not re.search(rf"\b{kari.user_id}\b", text) and "Kari" not in text
    for guess in guesses:
        assert guess not in text

    throttle = bot.app.bot_data[LINK_THROTTLE_KEY]
    assert isinstance(throttle, LinkThrottle)
    real_clock = throttle.clock
    throttle.clock = lambda: real_clock() + 10 * 60 + 1  # the window passes
    advice = await kari.says(f"/start {mine}")
    assert advice[0].text.startswith("Feber hos barn")


def test_the_throttle_forgets_the_least_recently_seen_people_first() -> None:
    now = [0.0]
    throttle = LinkThrottle(2, 60, max_people=3, clock=lambda: now[0])
    assert not throttle.failed(1)
    assert throttle.failed(1) and throttle.paused(1)
    for person in (2, 3, 4):
        throttle.failed(person)
    assert not throttle.paused(1)  # forgotten: at most three people are kept
    assert throttle.failed(4) and throttle.paused(4)
    now[0] = 61
    assert not throttle.paused(4)


# --- the admins' allowlist -----------------------------------------------------------------


async def test_admin_commands_are_refused_to_everyone_else(bot: RunningBot, people: People) -> None:
    admin, kari = await people("Ada"), await people("Kari")
    assert admin.user_id == ADMIN
    [unknown] = await kari.says("/nonsense")
    for command in ("/status", "/stats", "/reload"):
        [answer] = await kari.says(command)
        assert (answer.text, answer.photo) == (unknown.text, None), command
    [status] = await admin.says("/status")
    assert status.text.startswith("Sikkerhetsnett")


# --- logs of whole dialogues ---------------------------------------------------------------


async def test_caller_and_leader_dialogues_leave_no_personal_data_in_the_logs(
    api: Api,
    bot: RunningBot,
    people: People,
    local_api: LocalBotApi,
    caplog: pytest.LogCaptureFixture,
    production_logging_at_debug: None,
) -> None:
    note = "Ring fastlegen tirsdag om utslettet sprer seg."
    answer_text = "Mitt hemmelige svar"
    assert bot.rt.sender is not None
    # caplog sees every record before the redacting filter: this checks what the code logs.
    with caplog.at_level(logging.DEBUG):
        created = await api.dispatch(
            topic="fever-child",
            locale="nb",
            note=note,
            checkin_hours=6,
            phone=PHONE,
            send_sms=True,
        )
        advice_link = payload_of(created["deep_link"])
        caller = await people("Torbjørg", language_code="nb")
        await caller.says(f"/start {advice_link}")
        await caller.presses("Barnet blir verre")  # fever-child is about a child
        async with bot.rt.sessions() as session:
            due = utcnow() - dt.timedelta(seconds=1)
            await session.exec(
                update(OutboxMessage)
                .where(OutboxMessage.dedupe_key == f"checkin:{created['id']}")  # type: ignore[arg-type]
                .values(due_at=due, expires_at=due + dt.timedelta(hours=2))
            )
            await session.commit()
        bot.rt.sender.wake()
        await caller.replies(timeout=5)
        await caller.presses("Som før")
        await api.post("/api/v1/recontacts", {"phone": PHONE})

        invite = await invites.create(bot.rt, "Helse Vest HF", "unit-leader")
        invite_link = payload_of(invite.deep_link)
        leader = await people("Gudbjørg", language_code="nb")
        await leader.says(f"/start {invite_link}")
        await leader.presses("Bokmål")
        await leader.presses("Tirsdag")
        await leader.presses("09:00")
        async with bot.rt.sessions() as session:
            await session.exec(
                update(Leader).values(next_due_at=utcnow() - dt.timedelta(minutes=1))
            )
            await session.commit()
        await weekly.send_due_prompts(bot.rt)
        bot.rt.sender.wake()
        await leader.replies(timeout=5)
        await leader.presses("Svar")
        [saved] = await leader.says(answer_text)
        [answers] = await leader.says("/answers")

    assert saved.text.startswith("Takk, svaret ditt er lagret.")
    assert answer_text in answers.text  # the dialogue really went through
    text = logged(caplog)
    assert "dispatch " + created["id"] in text  # the capture saw the bot's own logs
    async with bot.rt.sessions() as session:
        people_rows = (await session.exec(select(Person))).all()
    assert len(people_rows) == 2
    for secret in (
        PHONE,
        "91234567",
        "912 34 567",
        advice_link,
        advice_link.removeprefix("a_"),
        invite_link,
        invite_link.removeprefix("i_"),
        local_api.token,
        local_api.token.split(":", 1)[1],
        api.key,
        note,
        answer_text,
        "Torbjørg",
        "Gudbjørg",
    ):
        assert str(secret) not in text, f"{secret!r} reached the logs"
    for chat_id in (caller.user_id, leader.user_id):
        assert not re.search(rf"\b{chat_id}\b", text), f"chat id {chat_id} reached the logs"


async def test_webhook_secret_and_metrics_token_never_reach_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    token = "t" * 40
    rt = build_runtime(settings.model_copy(update={"metrics_token": SecretStr(token)}))
    receiver = WebhookReceiver(
        SimpleNamespace(update_queue=asyncio.Queue(), bot=None), SECRET, "/h"
    )  # type: ignore[arg-type]
    client = TestClient(TestServer(build_web_app(rt, webhook=receiver)))
    await client.start_server()
    try:
        with caplog.at_level(logging.DEBUG):
            await client.post("/h", json={"update_id": 1}, headers={SECRET_HEADER: SECRET + "x"})
            await client.post("/h", data=b"{", headers={SECRET_HEADER: SECRET})
            await client.get("/metrics", headers={"Authorization": "Bearer " + token + "x"})
    finally:
        await client.close()
        await rt.engine.dispose()
    text = logged(caplog)
    assert "refused" in text
    assert SECRET not in text and token not in text
