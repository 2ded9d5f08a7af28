"""The user side over HTTP: writing, editing, odd raw updates, waiting, control and the CLI."""

from __future__ import annotations

import asyncio
import re
import sys

import aiohttp
import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup

from devkit.localapi import LocalBotApi, LocalUser

KARI = 1001


async def test_an_edited_message_reaches_the_bot_as_edited_message(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    async with LocalUser(local_api.url, KARI, "Kari") as kari:
        message_id = await kari.writes("feber 39")
        await kari.edits(message_id, "feber 40", expect_silence=True, quiet=0.01)
        reply_id = await kari.writes("svar", reply_to=message_id)

    first, edited, reply = (update.effective_message for update in await ptb_bot.get_updates())
    assert first is not None and edited is not None and reply is not None
    assert first.text == "feber 39"
    assert edited.message_id == message_id
    assert edited.text == "feber 40"
    assert edited.edit_date is not None
    assert reply.message_id == reply_id
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.text == "feber 40"


async def test_raw_updates_open_group_chats_the_bot_can_answer(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    group = {"id": -100123, "type": "supergroup", "title": "Vakt"}
    async with LocalUser(local_api.url, KARI) as kari:
        update_id = await kari.send_update(
            {
                "update_id": 0,
                "message": {
                    "message_id": 7,
                    "date": 1,
                    "chat": group,
                    "from": {"id": KARI, "is_bot": False, "first_name": "Kari"},
                    "sticker": {
                        "file_id": "x",
                        "file_unique_id": "y",
                        "width": 1,
                        "height": 1,
                        "is_animated": False,
                        "is_video": False,
                        "type": "regular",
                    },
                },
            }
        )
    (update,) = await ptb_bot.get_updates()
    assert update.update_id == update_id
    assert update.message is not None and update.message.sticker is not None
    assert update.message.chat.type == "supergroup"

    sent = await ptb_bot.send_message(-100123, "Hei gruppa")
    assert sent.chat.title == "Vakt"
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)chat not found"):
        await ptb_bot.send_message(-100999, "ukjend")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{local_api.url}/user/-100123/messages") as response,
    ):
        assert [m["text"] for m in (await response.json())["messages"]] == ["Hei gruppa"]


async def test_wait_long_polls_and_after_seq_only_shows_newer_changes(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    local_api.user_message(KARI, "/start")
    await ptb_bot.send_message(KARI, "én")
    url = f"{local_api.url}/user/{KARI}"

    async with aiohttp.ClientSession() as http:
        waiting = asyncio.create_task(
            http.get(f"{url}/wait", params={"after_seq": 1, "timeout": 5})
        )
        await asyncio.sleep(0.1)
        second = await ptb_bot.send_message(KARI, "to")
        response = await waiting
        body = await response.json()
        assert [(m["seq"], m["text"]) for m in body["messages"]] == [(2, "to")]
        assert body["last_seq"] == 2

        await ptb_bot.edit_message_text("to (retta)", chat_id=KARI, message_id=second.message_id)
        async with http.get(f"{url}/messages", params={"after_seq": 1}) as response:
            body = await response.json()
        assert [(m["seq"], m["text"], m["edited"]) for m in body["messages"]] == [
            (3, "to (retta)", True)
        ]
        async with http.get(f"{url}/wait", params={"after_seq": 3, "timeout": 0.05}) as response:
            assert (await response.json())["messages"] == []


async def test_press_by_callback_data_and_by_reply_keyboard(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    async with LocalUser(local_api.url, KARI, quiet=0.05) as kari:
        await kari.writes("/start")
        await ptb_bot.send_message(
            KARI,
            "Dag?",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Måndag", callback_data="day:1")]]
            ),
        )
        await ptb_bot.send_message(
            KARI, "Eller skriv", reply_markup=ReplyKeyboardMarkup([[KeyboardButton("Tysdag")]])
        )
        assert [m.text for m in await kari.replies()] == ["Dag?", "Eller skriv"]
        assert await kari.presses(callback_data="day:1", expect_silence=True) == []
        assert await kari.presses("Tysdag", expect_silence=True) == []
        assert kari.last_callback_answer is None  # the bot never answered the press

    *_, pressed, written = await ptb_bot.get_updates()
    assert pressed.callback_query is not None and pressed.callback_query.data == "day:1"
    assert written.message is not None and written.message.text == "Tysdag"


async def test_bad_user_requests_are_refused_with_a_reason(local_api: LocalBotApi) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{local_api.url}/user/{KARI}/messages", json={"text": ""}) as r:
            assert r.status == 400
        async with http.post(
            f"{local_api.url}/user/{KARI}/callbacks", json={"message_id": 5, "data": "x"}
        ) as r:
            assert r.status == 400
            assert "no message 5" in (await r.json())["error"]
        async with http.post(f"{local_api.url}/user/updates", json={"update_id": 1}) as r:
            assert r.status == 400
        async with http.get(f"{local_api.url}/user/{KARI}/files/1") as r:
            assert r.status == 404
        async with http.get(f"{local_api.url}/healthz") as r:
            assert r.status == 200
        async with http.get(f"{local_api.url}/") as r:  # the demo chat page
            assert r.content_type == "text/html"
            assert "/user/" in await r.text()


async def test_control_routes_inject_faults_for_a_separate_process(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    local_api.user_message(KARI, "/start")
    async with aiohttp.ClientSession() as http:
        body = {"method": "sendMessage", "status": 502, "times": 2}
        async with http.post(f"{local_api.url}/control/inject", json=body) as r:
            assert r.status == 200
        for _ in range(2):
            with pytest.raises(telegram.error.NetworkError):
                await ptb_bot.send_message(KARI, "x")
        await ptb_bot.send_message(KARI, "x")
        async with http.get(f"{local_api.url}/stats") as r:
            stats = await r.json()
    assert stats["delivered"] == 1
    assert stats["too_many_requests"] == 0


async def test_python_m_bot_localapi_serves_until_terminated() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devkit.localapi",
        "--port",
        "0",
        "--flood-limits",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), 10)).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url is not None, line
        async with telegram.Bot(
            "123456789:LOCAL-sikkerhetsnett-not-a-real-tkn", base_url=f"{url.group()}/bot"
        ) as bot:
            assert (await bot.get_me()).username == "sikkerhetsnett_local_bot"
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 5) == 0


# --- only from this machine ----------------------------------------------------------------


async def test_the_user_side_refuses_a_foreign_host_and_cross_site_writes(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    """A web page elsewhere must not act as a person: not by DNS rebinding (its own name in
    Host), not by a cross-site form post (a foreign Origin)."""
    says = f"{local_api.url}/user/{KARI}/messages"
    body = '{"text": "/start"}'  # a simple form-like POST a foreign page can send
    async with aiohttp.ClientSession() as http:
        for headers in (
            {"Host": "evil.example"},
            {"Host": f"rebind.example:{local_api.port}"},
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
        ):
            async with http.post(says, data=body, headers=headers) as response:
                assert response.status == 403, headers
        async with http.get(says, headers={"Host": "evil.example"}) as response:
            assert response.status == 403  # reading the chat is refused too
        async with http.post(
            f"{local_api.url}/control/outage", json={"seconds": 5}, headers={"Host": "x.example"}
        ) as response:
            assert response.status == 403
        assert await ptb_bot.get_updates() == ()  # nothing reached the bot

        # This machine, by name or number, with or without its own Origin: answered.
        for headers in ({}, {"Host": f"localhost:{local_api.port}"}, {"Origin": local_api.url}):
            async with http.post(says, data=body, headers=headers) as response:
                assert response.status == 200, headers
    assert len(await ptb_bot.get_updates()) == 3
