"""The Bot API requests (``bot.telegram_request``): what goes over the wire, and how failures
reach the sender (PTB's exceptions, which ``TelegramAdapter`` classifies).

A small aiohttp server stands in for Telegram here, to see each request's body as Telegram would
get it; the rest of the suite runs the same class against the local Bot API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.app import http_request
from bot.channels.telegram import seconds
from tests.conftest import free_port

TOKEN = "123:abc"
MESSAGE = {
    "message_id": 7,
    "date": 1_700_000_000,
    "chat": {"id": 42, "type": "private"},
    "text": "Råd",
}

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeTelegram:
    """Records each request (method, content type, parsed body); answers with ``answer``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self.answer: Answer = self.ok

    async def ok(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True, "result": MESSAGE})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            body = await request.json()
        else:
            form = await request.post()
            body = {
                k: (v.file.read() if isinstance(v, web.FileField) else v) for k, v in form.items()
            }
        self.seen.append((method, request.content_type, body))
        return await self.answer(request)


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FakeTelegram, str]]:
    fake = FakeTelegram()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield fake, f"http://127.0.0.1:{port}/bot"
    await runner.cleanup()


async def bot_at(base_url: str, **timeouts: float | None) -> Bot:
    bot = Bot(TOKEN, base_url=base_url, request=http_request(4, **timeouts))
    await bot.request.initialize()  # not bot.initialize(): no getMe here
    return bot


async def test_a_message_goes_as_one_json_object_with_its_keyboard_nested(
    telegram: tuple[FakeTelegram, str],
) -> None:
    fake, base_url = telegram
    bot = await bot_at(base_url)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Verre", callback_data="a:worse:x")]])
    sent = await bot.send_message(42, "Råd & <b>tips</b>", reply_markup=markup)
    await bot.request.shutdown()
    assert sent.message_id == 7 and sent.text == "Råd"
    ((method, content_type, body),) = fake.seen
    assert (method, content_type) == ("sendMessage", "application/json")
    assert body["chat_id"] == 42 and body["text"] == "Råd & <b>tips</b>"
    assert body["reply_markup"] == {
        "inline_keyboard": [[{"text": "Verre", "callback_data": "a:worse:x"}]]
    }


async def test_a_file_goes_as_multipart_with_the_other_parameters_as_fields(
    telegram: tuple[FakeTelegram, str],
) -> None:
    fake, base_url = telegram
    bot = await bot_at(base_url)
    await bot.send_document(42, b"id;svar\n1;bedre\n", filename="svar.csv", caption="Eksport")
    await bot.request.shutdown()
    ((method, content_type, body),) = fake.seen
    assert (method, content_type) == ("sendDocument", "multipart/form-data")
    assert body["chat_id"] == "42" and body["caption"] == "Eksport"
    assert body["document"] == b"id;svar\n1;bedre\n"


@pytest.mark.parametrize(
    ("status", "answer", "error"),
    [
        (429, {"description": "Too Many Requests", "parameters": {"retry_after": 3}}, RetryAfter),
        (403, {"description": "Forbidden: bot was blocked by the user"}, Forbidden),
        (400, {"description": "Bad Request: chat not found"}, BadRequest),
        (502, {"description": "Bad Gateway"}, NetworkError),
    ],
)
async def test_telegrams_refusals_become_ptbs_exceptions(
    telegram: tuple[FakeTelegram, str], status: int, answer: dict[str, Any], error: type
) -> None:
    fake, base_url = telegram

    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": False, "error_code": status, **answer}, status=status)

    fake.answer = refuse
    bot = await bot_at(base_url)
    with pytest.raises(error) as raised:
        await bot.send_message(42, "Råd")
    await bot.request.shutdown()
    if isinstance(raised.value, RetryAfter):
        assert seconds(raised.value.retry_after) == 3


async def test_an_answer_that_does_not_come_is_timed_out(
    telegram: tuple[FakeTelegram, str],
) -> None:
    fake, base_url = telegram
    released = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await released.wait()  # only after the client gave up
        return await fake.ok(request)

    fake.answer = hang
    bot = await bot_at(base_url, read_timeout=0.2)
    with pytest.raises(TimedOut):
        await bot.send_message(42, "Råd")
    released.set()
    await bot.request.shutdown()


async def test_no_server_at_all_is_a_network_error_not_a_timeout() -> None:
    bot = await bot_at(f"http://127.0.0.1:{free_port()}/bot")
    with pytest.raises(NetworkError) as raised:
        await bot.send_message(42, "Råd")
    await bot.request.shutdown()
    assert not isinstance(raised.value, TimedOut)
