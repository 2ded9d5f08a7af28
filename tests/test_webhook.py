"""Webhook mode over real HTTP: the bot sets its webhook at the local Bot API, which POSTs every
update to the bot's own web server with the secret header, as Telegram does. Also /healthz
(database and Bot API) and /metrics.

The ``bot`` fixture here replaces conftest's, so ``people`` and ``api`` talk to the webhook bot.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot import migrate, outbox
from bot.app import RunningBot, build_runtime, running_bot
from bot.config import ConfigError, Settings, load_settings
from bot.models import MessageKind
from bot.webhook import SECRET_HEADER
from devkit.localapi import LocalBotApi
from tests.conftest import Api, People, free_port

SECRET = "webhook-secret-" + "w" * 32
PATH = "/telegram/webhook"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"health_cache_seconds": 0.5})


@pytest.fixture
async def bot(settings: Settings, local_api: LocalBotApi) -> AsyncIterator[RunningBot]:
    """The bot in webhook mode, its webhook at its own web server."""
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    rt = build_runtime(settings)
    port = free_port()
    try:
        async with running_bot(
            rt,
            local_api.token,
            local_api.base_url,
            web_host="127.0.0.1",
            web_port=port,
            shutdown_deadline=2,
            webhook_url=f"http://127.0.0.1:{port}{PATH}",
            webhook_secret=SECRET,
        ) as running:
            yield running
    finally:
        await rt.engine.dispose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def webhook_url(bot: RunningBot) -> str:
    assert bot.web_url is not None
    return bot.web_url.rstrip("/") + PATH


def command(user_id: int, update_id: int, text: str) -> dict[str, Any]:
    """An update as Telegram sends it: a person in a private chat writes a command."""
    person = {"id": user_id, "is_bot": False, "first_name": "Kari", "language_code": "nb"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 1_000_000,
            "from": person,
            "chat": {"id": user_id, "type": "private", "first_name": "Kari"},
            "date": int(time.time()),
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


async def post(
    http: aiohttp.ClientSession, bot: RunningBot, body: Any, secret: str | None = SECRET
) -> int:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    data = body if isinstance(body, bytes) else None
    kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
    async with http.post(webhook_url(bot), headers=headers, **kwargs) as response:
        return response.status


async def test_a_dialogue_runs_over_the_webhook_without_polling(
    bot: RunningBot, people: People, local_api: LocalBotApi
) -> None:
    assert local_api.webhook_url == webhook_url(bot)
    [set_call] = local_api.calls_to("setWebhook")
    assert set_call.params["secret_token"] == SECRET
    assert set_call.params.get("drop_pending_updates") in (False, None, "false")
    kari = await people("Kari", language_code="nb")

    [answer] = await kari.says("/start")
    assert answer.text.startswith("Sikkerhetsnett gir deg skriftlige råd")
    [menu] = await kari.says("/language")
    [confirmation] = await kari.presses("Nynorsk")
    assert confirmation.text == (
        "Frå no av skriv eg nynorsk.\n\n"
        "Hastar det: ring legevakta på 116 117. Ved fare for liv: ring 113."
    )
    assert menu.button_texts == ["Bokmål", "Nynorsk"]

    assert local_api.calls_to("getUpdates") == []  # no long polling in webhook mode
    assert bot.webhook is not None and bot.webhook.outcomes["accepted"] >= 3


async def test_missing_or_wrong_secret_is_refused_and_the_update_not_handled(
    bot: RunningBot, people: People, http: aiohttp.ClientSession
) -> None:
    kari = await people("Kari")
    await kari.says("/start")

    assert await post(http, bot, command(kari.user_id, 900_000_001, "/help"), None) == 403
    assert await post(http, bot, command(kari.user_id, 900_000_002, "/help"), "wrong") == 403
    assert await post(http, bot, command(kari.user_id, 900_000_003, "/help"), SECRET[:-1]) == 403
    await kari.silence(0.5)

    assert await post(http, bot, command(kari.user_id, 900_000_004, "/help")) == 200
    [answer] = await kari.replies()
    assert "Dette kan du gjøre her" in answer.text


async def test_a_repeated_update_is_handled_once(
    bot: RunningBot, people: People, http: aiohttp.ClientSession
) -> None:
    kari = await people("Kari")
    await kari.says("/start")
    update = command(kari.user_id, 900_000_010, "/help")

    assert await post(http, bot, update) == 200
    assert await post(http, bot, update) == 200  # Telegram retried: answered, not handled

    [answer] = await kari.replies(quiet=0.5)
    assert "Dette kan du gjøre her" in answer.text
    assert bot.webhook is not None and bot.webhook.outcomes["duplicate"] == 1


async def test_bad_json_and_bodies_that_are_not_updates_get_400(
    bot: RunningBot, http: aiohttp.ClientSession
) -> None:
    assert await post(http, bot, b"{not json") == 400
    assert await post(http, bot, b"\xff\xfe") == 400
    assert await post(http, bot, [1, 2]) == 400
    assert await post(http, bot, {"message": {}}) == 400
    assert await post(http, bot, {"update_id": True}) == 400
    assert await post(http, bot, {"update_id": 5, "message": "hei"}) == 400
    assert await post(http, bot, b"{not json", None) == 403  # the secret is checked first


async def test_healthz_checks_the_database_and_the_bot_api(
    bot: RunningBot, local_api: LocalBotApi, http: aiohttp.ClientSession
) -> None:
    assert bot.web_url is not None
    url = bot.web_url + "healthz"
    async with http.get(url) as response:
        assert response.status == 200
        assert await response.json() == {
            "ok": True,
            "database": "ok",
            "bot_api": "ok",
            "startup": {"command_menus": "ok", "webhook": "ok"},
            "content": bot.rt.content.digest,
        }
    calls = len(local_api.calls_to("getMe"))
    async with http.get(url) as response:
        assert response.status == 200
    assert len(local_api.calls_to("getMe")) == calls  # answered from the cache

    local_api.outage(30)
    await asyncio.sleep(0.6)  # the cached answer expires
    async with http.get(url) as response:
        assert response.status == 503
        body = await response.json()
    assert (body["ok"], body["database"], body["bot_api"]) == (False, "ok", "unreachable")

    local_api.clear_faults()
    await asyncio.sleep(0.6)
    async with http.get(url) as response:
        assert response.status == 200


async def test_healthz_says_when_the_database_is_unreachable(
    bot: RunningBot, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise OSError("database down")

    monkeypatch.setattr(bot.rt, "sessions", broken)
    assert bot.web_url is not None
    async with http.get(bot.web_url + "healthz") as response:
        assert response.status == 503
        body = await response.json()
    assert (body["ok"], body["database"], body["bot_api"]) == (False, "unreachable", "ok")


def metric(page: str, name: str, labels: str = "", default: float | None = None) -> float:
    match = re.search(rf"^sikkerhetsnett_{name}{re.escape(labels)} (\S+)$", page, re.MULTILINE)
    if match is None and default is not None:
        return default
    assert match, f"{name}{labels} not in /metrics"
    return float(match.group(1))


async def test_metrics_count_updates_messages_and_the_queue(
    bot: RunningBot, people: People, http: aiohttp.ClientSession, local_api: LocalBotApi
) -> None:
    assert bot.web_url is not None
    url = bot.web_url + "metrics"

    async def page() -> str:
        async with http.get(url) as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            return await response.text()

    before = await page()
    for name in (
        "updates_handled_total",
        "webhook_requests_total",
        "outbox_messages_total",
        "outbox_flood_waits_total",
        "outbox_depth",
        "outbox_due",
        "outbox_due_lag_seconds",
        "outbox_last_tick_age_seconds",
        "sms_total",
        "sms_depth",
        "sms_due_lag_seconds",
        "sms_last_tick_age_seconds",
    ):
        assert f"# TYPE sikkerhetsnett_{name} " in before
    assert metric(before, "outbox_messages_total", '{outcome="sent"}') == 0
    assert metric(before, "outbox_depth") == 0
    assert 0 <= metric(before, "outbox_last_tick_age_seconds") < 5

    kari = await people("Kari")
    await kari.says("/start")
    # A message on the bot's own initiative, due a minute ago, waiting for the sender.
    async with bot.rt.sessions() as session:
        await outbox.enqueue(
            session,
            MessageKind.ADMIN_NOTICE,
            chat_id=kari.user_id,
            payload={"text": "Hei fra utboksen"},
            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        )
        await session.commit()
    waiting = await page()
    if metric(waiting, "outbox_depth") == 1:  # the sender may already have taken it
        assert metric(waiting, "outbox_due") == 1
        assert metric(waiting, "outbox_due_lag_seconds") >= 59
    assert bot.rt.sender is not None
    bot.rt.sender.wake()
    [sent] = await kari.replies()
    assert sent.text == "Hei fra utboksen"

    after = await page()
    messages_before = metric(before, "updates_handled_total", '{type="message"}', default=0)
    assert metric(after, "updates_handled_total", '{type="message"}') > messages_before
    assert metric(after, "webhook_requests_total", '{outcome="accepted"}') >= 1
    for _ in range(50):  # the row is marked sent just after the send answers
        if metric(after, "outbox_messages_total", '{outcome="sent"}') == 1:
            break
        await asyncio.sleep(0.05)
        after = await page()
    assert metric(after, "outbox_messages_total", '{outcome="sent"}') == 1
    assert metric(after, "outbox_depth") == 0
    assert metric(after, "outbox_due_lag_seconds") == 0
    assert str(kari.user_id) not in after and "Kari" not in after


async def test_shutdown_leaves_the_webhook_for_other_instances(
    settings: Settings, local_api: LocalBotApi
) -> None:
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    rt = build_runtime(settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}{PATH}"
    try:
        async with running_bot(
            rt,
            local_api.token,
            local_api.base_url,
            web_host="127.0.0.1",
            web_port=port,
            shutdown_deadline=1,
            webhook_url=url,
            webhook_secret=SECRET,
        ):
            assert local_api.webhook_url == url
    finally:
        await rt.engine.dispose()
    assert local_api.webhook_url == url
    assert local_api.calls_to("deleteWebhook") == []


async def test_webhook_mode_needs_the_web_server_and_a_secret(
    settings: Settings, local_api: LocalBotApi
) -> None:
    rt = build_runtime(settings)
    try:
        with pytest.raises(ValueError, match="webhook"):
            async with running_bot(
                rt, local_api.token, local_api.base_url, webhook_url="http://x/y", webhook_secret=""
            ):
                pass
    finally:
        await rt.engine.dispose()


# --- settings ------------------------------------------------------------------------------

TOKEN = "123456789:" + "A" * 35
PRODUCTION = {
    "database_url": "postgresql://bot@localhost/bot",
    "sms_provider": "none",
    "public_url": "https://rad.example.no",
}


def test_the_webhook_secret_is_derived_from_secret_key_unless_given(tmp_path: Any) -> None:
    base = {"_env_file": None, "var_dir": tmp_path, "telegram_bot_token": TOKEN, **PRODUCTION}
    one = load_settings(**base, secret_key="a" * 40, webhook_url="https://bot.example.no/tg")
    again = load_settings(**base, secret_key="a" * 40, webhook_url="https://bot.example.no/tg")
    other = load_settings(**base, secret_key="b" * 40, webhook_url="https://bot.example.no/tg")
    assert one.webhook_token() == again.webhook_token() != other.webhook_token()
    assert re.fullmatch(r"[0-9a-f]{64}", one.webhook_token())
    assert "a" * 40 not in one.webhook_token()
    assert one.webhook_path == "/tg"
    given = load_settings(
        **base, secret_key="a" * 40, webhook_url="https://b.no/tg", webhook_secret="s" * 32
    )
    assert given.webhook_token() == "s" * 32


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"webhook_url": "http://bot.example.no/tg"}, "WEBHOOK_URL is not valid: Telegram"),
        ({"webhook_url": "https://bot.example.no/"}, "WEBHOOK_URL is not valid: its path"),
        ({"webhook_url": "https://bot.example.no/api/v1/x"}, "WEBHOOK_URL is not valid: its path"),
        ({"webhook_url": "bot.example.no/tg"}, "WEBHOOK_URL is not valid"),
        ({"webhook_secret": "short"}, "WEBHOOK_SECRET is not valid: it must be 32"),
        ({"webhook_secret": "x" * 31 + "!"}, "WEBHOOK_SECRET is not valid"),
        ({"metrics_token": "short"}, "METRICS_TOKEN is not valid"),
    ],
)
def test_webhook_settings_are_checked(
    tmp_path: Any, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(
            _env_file=None,
            var_dir=tmp_path,
            telegram_bot_token=TOKEN,
            secret_key="a" * 40,
            **overrides,
        )


def test_a_self_hosted_bot_api_may_use_an_http_webhook(tmp_path: Any) -> None:
    settings = load_settings(
        _env_file=None,
        var_dir=tmp_path,
        telegram_bot_token=TOKEN,
        secret_key="a" * 40,
        telegram_api_base_url="http://127.0.0.1:8081/bot",
        webhook_url="http://10.0.0.5:8080/telegram",
        **PRODUCTION,
    )
    assert settings.webhook_path == "/telegram"


async def test_posting_through_the_api_fixture_still_works(api: Api) -> None:
    status, data = await api.get("/api/v1/topics")
    assert status == 200 and data["topics"]
