"""Start-up fails closed on configuration and survives a Bot API having a bad minute.

``python -m bot run`` as a production operator starts it (a token, the local Bot API standing in
for Telegram): without ``SMS_PROVIDER`` it refuses to start, naming the choices; with
``SMS_PROVIDER=console`` it starts and says loudly that no SMS is sent. A 500 to the start-up
calls (command menus, deleteWebhook before polling, getMe) does not stop the bot from starting
and serving; only a refused token (401 to getMe) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot import migrate
from bot.app import RunningBot, build_runtime, running_bot
from bot.config import Settings
from devkit.localapi import LocalBotApi, LocalUser, serve_local_api
from tests.test_crash import BotProcess, bot_env, cli

QUICK = 0.05  # the first retry's delay in these tests (a real start waits a second, then more)


@pytest.fixture
async def api() -> AsyncIterator[LocalBotApi]:
    async with serve_local_api() as local:
        yield local


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from bot import startup
    except ImportError:  # code from before start-up retries: the tests fail on what they check
        return
    monkeypatch.setattr(startup, "FIRST_DELAY", QUICK)
    monkeypatch.setattr(startup, "MAX_DELAY", QUICK * 4)


# --- configuration, as the operator meets it -------------------------------------------------


async def run_to_the_end(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, err.decode(errors="replace")


async def test_run_with_a_token_and_no_sms_provider_refuses_naming_it_and_the_choices(
    api: LocalBotApi, tmp_path: Path
) -> None:
    env = bot_env(api, tmp_path)
    env.pop("SMS_PROVIDER", None)

    code, err = await run_to_the_end(env, tmp_path)

    assert code != 0
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("The environment variable SMS_PROVIDER is missing")
    for choice in ("http (your SMS gateway", "none (the call system sends", "console (staging"):
        assert choice in line
    assert api.calls_to("getMe") == []  # refused before anything was started


async def test_run_with_a_token_and_no_public_url_refuses_naming_it(
    api: LocalBotApi, tmp_path: Path
) -> None:
    """The SMS links to the advice page: without the address it lives at, nothing starts."""
    env = bot_env(api, tmp_path)
    env.pop("PUBLIC_URL", None)

    code, err = await run_to_the_end(env, tmp_path)

    assert code != 0
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("The environment variable PUBLIC_URL is missing")
    assert "https address callers' phones reach this server on" in line
    assert api.calls_to("getMe") == []


async def test_run_with_console_sms_starts_serves_and_warns_that_nothing_is_sent(
    api: LocalBotApi, tmp_path: Path
) -> None:
    env = bot_env(api, tmp_path, SMS_PROVIDER="console", LOG_LEVEL="INFO")
    await cli(env, tmp_path, "db", "upgrade")
    bot = BotProcess(env, tmp_path, "console")
    await bot.start()
    try:
        await bot.until("the warning", lambda: "NO SMS IS SENT" in bot.log(), 30)
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{env['PORT']}/healthz"
            for _ in range(300):
                try:
                    async with http.get(url) as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"/healthz never answered 200:\n{bot.log()}")
        bot.signal(signal.SIGTERM)
        assert await bot.wait(20) == 0
    finally:
        await bot.kill()
    assert "WARNING bot: SMS_PROVIDER=console: NO SMS IS SENT." in bot.log()
    # The lock installs uvloop where the bot is deployed; the bot serves on it (bot/eventloop.py).
    if sys.platform != "win32":
        assert "event loop: uvloop " in bot.log()


async def test_a_production_start_loads_no_migrations_chart_demo_or_content_checker(
    api: LocalBotApi, tmp_path: Path
) -> None:
    """Alembic (migrations), matplotlib (/stats' chart), wordfreq (the content check) and the
    devkit (local Bot API, demo) serve no request of a production bot whose schema is current;
    each costs every start time. What only some requests use waits for them. The interpreter's
    own import log of the real ``python -m bot run`` (``PYTHONPROFILEIMPORTTIME``) shows what it
    loaded until /healthz answered."""
    env = bot_env(api, tmp_path, PYTHONPROFILEIMPORTTIME="1")
    await cli(env, tmp_path, "db", "upgrade")
    bot = BotProcess(env, tmp_path, "imports")
    await bot.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{env['PORT']}/healthz"
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url) as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"/healthz never answered 200:\n{bot.log()[-3000:]}")
        bot.signal(signal.SIGTERM)
        assert await bot.wait(20) == 0
    finally:
        await bot.kill()
    log = bot.log_path.read_text(errors="replace")
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \| +(\S+)", log, re.M))
    assert {"bot.app", "handlers", "telegram.ext", "sqlalchemy", "aiohttp.web"} <= imported
    packages = {name.split(".")[0] for name in imported}
    assert packages.isdisjoint({"alembic", "mako", "matplotlib", "wordfreq", "devkit"})
    # Imported when first used, not by every start: phone numbers (the first dispatch with one),
    # the ID-number check (the first free text), /reload's content check and .po reader, the
    # admin's figures, and PostgreSQL's dialect (its drivers' modules) on a SQLite database.
    first_use = {
        "phonenumbers",
        "stdnum",
        "bot.reload",
        "bot.content.check",
        "babel.messages",
        "bot.services.stats",
        "sqlalchemy.dialects.postgresql",
    }
    assert imported.isdisjoint(first_use), imported & first_use


async def test_run_with_a_refused_token_stops_and_says_so_without_the_token(
    api: LocalBotApi, tmp_path: Path
) -> None:
    env = bot_env(api, tmp_path)
    await cli(env, tmp_path, "db", "upgrade")
    api.inject("getMe", 401, times=10, description="Unauthorized")

    code, err = await run_to_the_end(env, tmp_path)

    assert code == 1
    assert "The bot cannot start: The Bot API refused TELEGRAM_BOT_TOKEN (401)" in err
    assert api.token not in err and api.token.split(":")[1] not in err
    assert "Traceback" not in err


# --- a Bot API with a bad minute ---------------------------------------------------------------


@pytest.fixture
async def settings_migrated(settings: Settings) -> Settings:
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    return settings


async def test_a_500_to_set_my_commands_does_not_stop_the_bot_starting_and_serving(
    settings_migrated: Settings, api: LocalBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    # The three menus (default, nb, nn) are set together: three tries fail in full.
    api.inject("setMyCommands", 500, times=9, description="Internal Server Error")
    rt = build_runtime(settings_migrated)
    try:
        with caplog.at_level(logging.INFO):
            async with running_bot(
                rt, api.token, api.base_url, web_host="127.0.0.1", web_port=0
            ) as running:
                assert running.startup is not None
                health = await healthz(running)
                assert health["startup"]["command_menus"] in ("retrying", "ok")
                assert health["ok"] is True  # the menus are a convenience: still healthy

                kari = await people_of(api)
                async with kari:
                    [answer] = await kari.says("/start")  # serving
                    assert answer.text.startswith("Sikkerhetsnett gir deg")

                await asyncio.wait_for(running.startup.wait(), 10)
                assert (await healthz(running))["startup"]["command_menus"] == "ok"
                assert api.commands(language_code="nn")  # the menus were set in the end
    finally:
        await rt.engine.dispose()
    failures = [r for r in caplog.records if "command_menus failed" in r.getMessage()]
    assert len(failures) == 1  # logged once, not at every retry
    assert "done after 3 failed attempts" in caplog.text


async def test_the_command_menus_are_set_while_the_bot_already_serves(
    settings_migrated: Settings, api: LocalBotApi
) -> None:
    """Start-up does not wait for the three setMyCommands (default, nb, nn): /healthz says 200
    and people are answered while Telegram holds them; they are all set in the end."""
    api.inject_delay("setMyCommands", 3.0, times=3)  # held, then performed
    rt = build_runtime(settings_migrated)
    try:
        async with running_bot(
            rt, api.token, api.base_url, web_host="127.0.0.1", web_port=0
        ) as running:
            assert running.startup is not None
            status, health = await healthz_status(running)
            assert status == 200 and health["startup"]["command_menus"] == "pending"
            assert api.commands() == [] and api.commands(language_code="nn") == []

            kari = await people_of(api)
            async with kari:
                [answer] = await kari.says("/start")
                assert answer.text.startswith("Sikkerhetsnett gir deg")

            await asyncio.wait_for(running.startup.wait(), 20)
            assert (await healthz(running))["startup"]["command_menus"] == "ok"
            for language in ("", "nb", "nn"):
                menu = [command["command"] for command in api.commands(language_code=language)]
                assert {"start", "help", "language", "privacy"} <= set(menu), language
            nn = {c["command"]: c["description"] for c in api.commands(language_code="nn")}
            assert nn["language"] == "Vel bokmål eller nynorsk"
    finally:
        await rt.engine.dispose()


async def test_polling_that_cannot_start_is_retried_and_shown_in_healthz(
    settings_migrated: Settings, api: LocalBotApi
) -> None:
    api.inject("deleteWebhook", 500, times=2, description="Internal Server Error")
    rt = build_runtime(settings_migrated)
    try:
        async with running_bot(
            rt, api.token, api.base_url, web_host="127.0.0.1", web_port=0
        ) as running:
            assert running.startup is not None
            assert running.startup.states()["polling"] == "retrying"
            status, health = await healthz_status(running)
            assert status == 503 and health["startup"]["polling"] == "retrying"

            kari = await people_of(api)
            async with kari:
                [answer] = await kari.says("/start")  # polling started on a later try
                assert answer.text.startswith("Sikkerhetsnett gir deg")
            status, health = await healthz_status(running)
            assert status == 200 and health["startup"]["polling"] == "ok"
    finally:
        await rt.engine.dispose()


async def test_get_me_is_tried_again_and_only_a_refused_token_stops_the_start(
    settings_migrated: Settings, api: LocalBotApi
) -> None:
    api.inject("getMe", 502, times=2)
    rt = build_runtime(settings_migrated)
    try:
        async with running_bot(rt, api.token, api.base_url) as running:
            assert running.rt.bot_username == api.username

        from bot.startup import BotTokenRefused

        api.inject("getMe", 401, description="Unauthorized")
        with pytest.raises(BotTokenRefused, match="401"):
            async with running_bot(rt, api.token, api.base_url):
                pass
    finally:
        await rt.engine.dispose()


# --- helpers -----------------------------------------------------------------------------------


async def healthz_status(running: RunningBot) -> tuple[int, dict[str, object]]:
    assert running.web_url is not None
    async with aiohttp.ClientSession() as http, http.get(running.web_url + "healthz") as response:
        return response.status, await response.json()


async def healthz(running: RunningBot) -> dict[str, object]:
    return (await healthz_status(running))[1]


async def people_of(api: LocalBotApi) -> LocalUser:
    return LocalUser(api.url, user_id=7001, first_name="Kari", language_code="nb")
