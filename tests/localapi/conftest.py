"""Fixtures for the local Bot API's own tests: the server on a free port and a real PTB bot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import telegram

from devkit.localapi import LocalBotApi, serve_local_api


@pytest.fixture
async def local_api() -> AsyncIterator[LocalBotApi]:
    async with serve_local_api() as api:
        yield api


@pytest.fixture
async def ptb_bot(local_api: LocalBotApi) -> AsyncIterator[telegram.Bot]:
    """python-telegram-bot's own client, pointed at the local API like a self-hosted server."""
    async with telegram.Bot(local_api.token, base_url=local_api.base_url) as bot:
        yield bot
