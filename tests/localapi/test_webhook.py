"""Webhook mode: updates are POSTed to the bot's URL in order, retried, with the secret header."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import telegram
from aiohttp import web
from telegram.error import Conflict

from devkit.localapi import LocalBotApi, LocalUser

KARI = 1001


@dataclass
class Receiver:
    """A tiny webhook endpoint that records what arrives and can be told to fail."""

    url: str = ""
    received: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    failures_left: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        if self.failures_left:
            self.failures_left -= 1
            return web.Response(status=500)
        self.received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        self.arrived.set()
        return web.Response(text="ok")

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(3):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    yield receiver
    await runner.cleanup()


async def test_updates_are_posted_with_the_secret_and_get_updates_conflicts(
    local_api: LocalBotApi, ptb_bot: telegram.Bot, receiver: Receiver
) -> None:
    assert await ptb_bot.set_webhook(receiver.url, secret_token="s3cret-token")

    async with LocalUser(local_api.url, KARI) as kari:
        await kari.writes("/start")
        await kari.writes("hei")
    await receiver.wait_for(2)

    assert [update["message"]["text"] for update, _ in receiver.received] == ["/start", "hei"]
    assert {secret for _, secret in receiver.received} == {"s3cret-token"}
    with pytest.raises(Conflict, match=r"(?i)can't use getUpdates method while webhook is active"):
        await ptb_bot.get_updates()
    info = await ptb_bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == (receiver.url, 0)


async def test_a_failing_webhook_is_retried_in_order(
    local_api: LocalBotApi, ptb_bot: telegram.Bot, receiver: Receiver
) -> None:
    receiver.failures_left = 2
    local_api.user_message(KARI, "først")
    local_api.user_message(KARI, "så")

    await ptb_bot.set_webhook(receiver.url)
    await receiver.wait_for(2)

    assert [update["message"]["text"] for update, _ in receiver.received] == ["først", "så"]
    assert receiver.received[0][1] is None  # no secret set, no header
    info = await ptb_bot.get_webhook_info()
    assert info.last_error_message is not None and "500" in info.last_error_message


async def test_delete_webhook_returns_to_polling_and_can_drop_pending(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    await ptb_bot.set_webhook("http://127.0.0.1:9/unreachable")
    local_api.user_message(KARI, "venter")
    await asyncio.sleep(0.05)
    assert (await ptb_bot.get_webhook_info()).pending_update_count == 1

    await ptb_bot.delete_webhook()
    (update,) = await ptb_bot.get_updates()
    assert update.message is not None and update.message.text == "venter"

    local_api.user_message(KARI, "forkastes")
    await ptb_bot.delete_webhook(drop_pending_updates=True)
    assert await ptb_bot.get_updates(offset=update.update_id + 1) == ()
