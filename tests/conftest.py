"""Shared fixtures: a migrated SQLite database, the local Bot API on a free port, and the real
bot running against it, exactly as ``python -m bot run`` starts it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import migrate
from bot.app import RunningBot, build_runtime, running_bot
from bot.config import Settings
from bot.localapi import LocalBotApi, LocalUser, serve_local_api


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=None,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        var_dir=tmp_path / "var",
        secret_key="test-secret-" + "x" * 32,
        outbox_tick_seconds=0.2,
    )


@pytest.fixture
async def local_api() -> AsyncIterator[LocalBotApi]:
    async with serve_local_api() as api:
        yield api


@pytest.fixture
async def bot(settings: Settings, local_api: LocalBotApi) -> AsyncIterator[RunningBot]:
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    rt = build_runtime(settings)
    try:
        async with running_bot(
            rt,
            local_api.token,
            local_api.base_url,
            web_host="127.0.0.1",
            web_port=0,
            shutdown_deadline=2,
        ) as running:
            yield running
    finally:
        await rt.engine.dispose()


People = Callable[..., Awaitable[LocalUser]]


@pytest.fixture
async def people(bot: RunningBot, local_api: LocalBotApi) -> AsyncIterator[People]:
    """Make people who talk to the bot: ``kari = people("Kari", language_code="nn")``."""
    stack = AsyncExitStack()
    next_id = iter(range(5001, 6000))

    async def make(first_name: str = "Kari", language_code: str | None = "nb") -> LocalUser:
        user = LocalUser(
            local_api.url,
            user_id=next(next_id),
            first_name=first_name,
            language_code=language_code,
        )
        return await stack.enter_async_context(user)

    yield make
    await stack.aclose()


@pytest.fixture
def production_logging_at_debug():  # type: ignore[no-untyped-def]
    """The bot's own log set-up, at its most talkative level; restored afterwards."""
    from bot.logs import setup_logging

    names = ["", "telegram", "httpx", "aiosqlite", "sqlalchemy.engine", "apscheduler"]
    saved = {n: logging.getLogger(n).level for n in names}
    handlers = logging.getLogger().handlers[:]
    setup_logging("DEBUG")
    yield
    logging.getLogger().handlers[:] = handlers
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


class Api:
    """The clinic's HTTP API of the running bot, as a call system uses it."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, key: str | None) -> None:
        self.session = session
        self.base_url = base_url
        self.key = key

    async def post(
        self, path: str, body: Any, *, key: str | bool | None = True
    ) -> tuple[int, dict[str, Any]]:
        """POST JSON; ``key=True`` sends this client's key, a string sends that, None none."""
        headers = {}
        sent_key = self.key if key is True else key
        if sent_key:
            headers["Authorization"] = f"Bearer {sent_key}"
        async with self.session.post(self.base_url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        async with self.session.get(self.base_url + path, headers=headers) as resp:
            return resp.status, await resp.json()

    async def dispatch(self, **body: Any) -> dict[str, Any]:
        """Create a dispatch that must succeed."""
        status, data = await self.post("/api/v1/dispatches", body)
        assert status == 201, data
        return data


@pytest.fixture
async def api(bot: RunningBot) -> AsyncIterator[Api]:
    """The bot's HTTP API with a fresh key, as made by `python -m bot apikey create`."""
    from bot.services import apikeys

    _row, key = await apikeys.create(bot.rt.sessions, "Testlegevakt")
    assert bot.web_url is not None
    async with aiohttp.ClientSession() as session:
        yield Api(session, bot.web_url.rstrip("/"), key)
