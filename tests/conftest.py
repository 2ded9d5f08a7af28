"""Shared fixtures: a migrated SQLite database, the local Bot API on a free port, and the real
bot running against it, exactly as ``python -m bot run`` starts it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

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
            rt, local_api.token, local_api.base_url, shutdown_deadline=2
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
