"""Fixtures for the demo page: the real bot in demo mode, as ``make run`` starts it, with the demo
routes pointed at the test's local Bot API (``LOCAL_BOT_API_PORT``)."""

from __future__ import annotations

import pytest

from bot.config import Settings
from devkit.localapi import LocalBotApi


@pytest.fixture
def settings(settings: Settings, local_api: LocalBotApi) -> Settings:
    """The shared settings (no token: demo mode), with the local Bot API's real port."""
    return settings.model_copy(update={"local_bot_api_port": local_api.port})
