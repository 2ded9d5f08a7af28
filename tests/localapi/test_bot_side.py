"""The bot side of the local Bot API, driven by python-telegram-bot's real client over HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import aiohttp
import pytest
import telegram
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

from devkit.localapi import LocalBotApi, LocalUser

KARI = 1001
OLA = 1002

# The smallest PNG header the photo check accepts: signature, IHDR with 2×3 pixels.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + (2).to_bytes(4) + (3).to_bytes(4) + b"\x08"


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data)] for text, data in buttons]
    )


async def test_get_me_describes_the_local_bot(ptb_bot: telegram.Bot) -> None:
    me = await ptb_bot.get_me()

    assert me.id == 123456789
    assert me.is_bot
    assert me.username == "sikkerhetsnett_local_bot"
    assert me.can_join_groups is True
    assert me.can_read_all_group_messages is False
    assert me.supports_inline_queries is False


async def test_wrong_token_unknown_method_and_any_letter_case(local_api: LocalBotApi) -> None:
    with pytest.raises(InvalidToken):
        async with telegram.Bot("123456789:WRONG", base_url=local_api.base_url):
            pass

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{local_api.base_url}{local_api.token}/sendSticker") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        async with http.get(f"{local_api.base_url}{local_api.token}/GETME") as response:
            assert (await response.json())["result"]["id"] == 123456789

    assert [call.status for call in local_api.calls] == [401, 404, 200]


async def test_long_poll_wakes_when_a_person_writes_and_offset_confirms(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    poll = asyncio.create_task(ptb_bot.get_updates(timeout=10))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    async with LocalUser(local_api.url, KARI, "Kari", "nn") as kari:
        await kari.writes("/start invite-abc")
    (update,) = await poll

    assert time.monotonic() - started < 1
    message = update.message
    assert message is not None and message.from_user is not None
    assert message.text == "/start invite-abc"
    assert message.chat.id == KARI
    assert message.from_user.language_code == "nn"
    assert message.entities[0].type == "bot_command"
    assert message.entities[0].length == len("/start")

    assert await ptb_bot.get_updates(offset=update.update_id, timeout=0) == (update,)
    assert await ptb_bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert local_api.pending_update_count == 0


async def test_html_is_stored_both_as_sent_and_as_plain_text(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    local_api.user_message(KARI, "/start")

    sent = await ptb_bot.send_message(KARI, "Ring <b>116 117</b> &lt;straks&gt;", parse_mode="HTML")

    assert sent.text == "Ring 116 117 <straks>"
    assert sent.entities[0].type == "bold"
    (stored,) = local_api.deliveries(KARI)
    assert stored.html == "Ring <b>116 117</b> &lt;straks&gt;"
    assert stored.text == "Ring 116 117 <straks>"
    assert local_api.delivered_count == 1


@pytest.mark.parametrize("text", ["<b>Ring 113", "Feber > 40 <° C", "<br>linje", "<b><i>x</b></i>"])
async def test_malformed_html_is_a_bad_request_and_nothing_is_sent(
    local_api: LocalBotApi, ptb_bot: telegram.Bot, text: str
) -> None:
    local_api.user_message(KARI, "/start")

    with pytest.raises(BadRequest, match=r"(?i)an't parse entities"):
        await ptb_bot.send_message(KARI, text, parse_mode="HTML")

    assert local_api.delivered_count == 0


async def test_text_length_is_counted_after_entity_parsing(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    local_api.user_message(KARI, "/start")

    await ptb_bot.send_message(KARI, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await ptb_bot.send_message(KARI, "a" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await ptb_bot.send_message(KARI, "🚑" * 2049)  # 4098 UTF-16 code units
    with pytest.raises(BadRequest, match=r"(?i)text is empty"):
        await ptb_bot.send_message(KARI, "<b> </b>", parse_mode="HTML")

    assert local_api.delivered_count == 1


async def test_a_press_reaches_get_updates_as_a_callback_query(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    local_api.user_message(KARI, "/start")
    await ptb_bot.get_updates(offset=-1)
    menu = await ptb_bot.send_message(
        KARI, "Vel språk", reply_markup=keyboard(("Bokmål", "lang:nb"), ("Nynorsk", "lang:nn"))
    )

    async with aiohttp.ClientSession() as http:
        url = f"{local_api.url}/user/{KARI}/callbacks"
        async with http.post(url, json={"message_id": menu.message_id, "data": "lang:nn"}) as r:
            pressed = await r.json()
        async with http.post(url, json={"message_id": menu.message_id, "data": "nope"}) as r:
            assert r.status == 400

    updates = await ptb_bot.get_updates(offset=pressed["update_id"], timeout=1)
    query = updates[0].callback_query
    assert query is not None and query.message is not None
    assert query.id == pressed["callback_query_id"]
    assert query.data == "lang:nn"
    assert query.message.message_id == menu.message_id
    assert query.from_user.id == KARI

    assert await query.answer("Lagra")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer("igjen")
    assert [a["text"] for a in local_api.callback_answers(KARI)] == ["Lagra"]


async def test_callback_data_must_be_1_to_64_bytes(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    local_api.user_message(KARI, "/start")

    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await ptb_bot.send_message(KARI, "x", reply_markup=keyboard(("lang", "æ" * 33)))


async def test_an_edit_shows_on_the_user_side_with_a_new_seq(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    async with LocalUser(local_api.url, KARI) as kari:
        await kari.writes("/start")
        sent = await ptb_bot.send_message(KARI, "Vel", reply_markup=keyboard(("Ja", "yes")))
        (before,) = await kari.inbox()

        edited = await ptb_bot.edit_message_text(
            "<i>Valt</i>", chat_id=KARI, message_id=sent.message_id, parse_mode="HTML"
        )
        (after,) = await kari.inbox()

    assert isinstance(edited, telegram.Message)
    assert edited.edit_date is not None
    assert after.edited and not before.edited
    assert after.seq > before.seq
    assert (after.text, after.html, after.buttons) == ("Valt", "<i>Valt</i>", [])

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await ptb_bot.edit_message_text(
            "<i>Valt</i>", chat_id=KARI, message_id=sent.message_id, parse_mode="HTML"
        )
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await ptb_bot.edit_message_text("x", chat_id=KARI, message_id=999)

    await ptb_bot.edit_message_reply_markup(
        KARI, sent.message_id, reply_markup=keyboard(("Angre", "undo"))
    )
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await ptb_bot.edit_message_reply_markup(
            KARI, sent.message_id, reply_markup=keyboard(("Angre", "undo"))
        )
    assert local_api.deliveries(KARI)[0].buttons == [[{"text": "Angre", "callback_data": "undo"}]]
    assert local_api.delivered_count == 1


async def test_delete_is_seen_by_the_user(local_api: LocalBotApi, ptb_bot: telegram.Bot) -> None:
    local_api.user_message(KARI, "/start")
    sent = await ptb_bot.send_message(KARI, "Snart borte")

    assert await ptb_bot.delete_message(KARI, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await ptb_bot.delete_message(KARI, sent.message_id)
    async with LocalUser(local_api.url, KARI) as kari:
        assert await kari.inbox() == []
        assert [m.deleted for m in await kari.inbox(include_deleted=True)] == [True]


async def test_forbidden_before_start_and_after_a_block(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    with pytest.raises(Forbidden, match=r"(?i)bot can't initiate conversation with a user"):
        await ptb_bot.send_message(OLA, "Hei")

    async with LocalUser(local_api.url, OLA, "Ola") as ola:
        await ola.writes("/start")
        await ptb_bot.send_message(OLA, "Hei")
        await ola.block()
        with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
            await ptb_bot.send_message(OLA, "Hei igjen")
        await ola.unblock()
        await ptb_bot.send_message(OLA, "Velkommen tilbake")

    updates = await ptb_bot.get_updates()
    changes = [u.my_chat_member.new_chat_member.status for u in updates if u.my_chat_member]
    assert changes == ["kicked", "member"]
    assert local_api.delivered_to(OLA) == 2


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_limits_answer_429_that_ptb_raises_as_retry_after(
    ptb_bot: telegram.Bot, local_api: LocalBotApi
) -> None:
    local_api.set_flood_limits(True, overall_per_second=3, per_chat_per_second=1)
    for user_id in (KARI, OLA, 1003, 1004):
        local_api.user_message(user_id, "/start")

    await ptb_bot.send_message(KARI, "1")
    with pytest.raises(RetryAfter) as per_chat:
        await ptb_bot.send_message(KARI, "2")
    await ptb_bot.send_message(OLA, "1")
    await ptb_bot.send_message(1003, "1")
    with pytest.raises(RetryAfter):
        await ptb_bot.send_message(1004, "1")  # 3 per second overall

    assert per_chat.value.retry_after in (1, timedelta(seconds=1))
    assert local_api.too_many_requests == 2
    assert local_api.delivered_count == 3
    assert local_api.calls[-1].status == 429


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_injected_errors_and_outages_deliver_nothing(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    local_api.user_message(KARI, "/start")

    local_api.inject("sendMessage", 500)
    with pytest.raises(NetworkError):
        await ptb_bot.send_message(KARI, "1")
    local_api.inject(None, 429, retry_after=7)
    with pytest.raises(RetryAfter, match=r"(?i)7"):
        await ptb_bot.send_message(KARI, "2")
    local_api.inject("sendmessage", 403, description="Forbidden: user is deactivated")
    with pytest.raises(Forbidden, match=r"(?i)deactivated"):
        await ptb_bot.send_message(KARI, "3")
    local_api.outage(0.3)
    with pytest.raises(NetworkError, match=r"(?i)Bad Gateway"):
        await ptb_bot.send_message(KARI, "4")
    assert local_api.delivered_count == 0

    await asyncio.sleep(0.3)
    await ptb_bot.send_message(KARI, "5")
    assert [m.text for m in local_api.deliveries(KARI)] == ["5"]
    assert [c.status for c in local_api.calls_to("sendMessage")] == [500, 429, 403, 502, 200]


async def test_a_held_answer_times_out_the_client_before_or_after_delivery(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    local_api.user_message(KARI, "/start")

    local_api.inject_delay("sendMessage", 0.4, act="after")
    with pytest.raises(TimedOut):
        await ptb_bot.send_message(KARI, "lost in transit", read_timeout=0.1)
    await asyncio.sleep(0.5)
    assert local_api.delivered_count == 0

    local_api.inject_delay("sendMessage", 0.4, act="before")
    with pytest.raises(TimedOut):
        await ptb_bot.send_message(KARI, "delivered, unconfirmed", read_timeout=0.1)
    assert [m.text for m in local_api.deliveries(KARI)] == ["delivered, unconfirmed"]


async def test_documents_and_photos_keep_their_bytes(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    local_api.user_message(KARI, "/start")
    payload = b"Dine svar\n" * 100

    sent = await ptb_bot.send_document(
        KARI, payload, filename="svar.txt", caption="<b>Svar</b>", parse_mode="HTML"
    )
    photo = await ptb_bot.send_photo(KARI, PNG, caption="Kart")
    assert sent.document is not None
    again = await ptb_bot.send_document(KARI, sent.document.file_id)

    assert sent.document.file_name == "svar.txt"
    assert sent.document.mime_type == "text/plain"
    assert sent.document.file_size == len(payload)
    assert sent.caption == "Svar"
    assert (photo.photo[-1].width, photo.photo[-1].height) == (2, 3)
    assert again.document is not None
    assert again.document.file_id == sent.document.file_id
    with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await ptb_bot.send_photo(KARI, b"not an image")

    async with LocalUser(local_api.url, KARI) as kari:
        assert await kari.file(sent.message_id) == payload
        assert await kari.file(photo.message_id) == PNG
        document, picture, _ = await kari.inbox()
    assert document.document is not None and document.document["file_name"] == "svar.txt"
    assert document.caption == "Svar"
    assert picture.photo is not None and picture.photo["width"] == 2


async def test_commands_resolve_by_scope_and_language_like_telegram(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    await ptb_bot.set_my_commands([BotCommand("start", "Start")])
    await ptb_bot.set_my_commands(
        [BotCommand("start", "Start"), BotCommand("pause", "Set på pause")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="nn",
    )
    await ptb_bot.set_my_commands(
        [BotCommand("admin", "Administrer")], scope=BotCommandScopeChat(OLA)
    )
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await ptb_bot.set_my_commands([BotCommand("Pause", "x")])

    async with LocalUser(local_api.url, KARI, language_code="nn") as kari:
        assert await kari.commands() == [("start", "Start"), ("pause", "Set på pause")]
        assert await kari.commands(language_code="nb") == [("start", "Start")]
    async with LocalUser(local_api.url, OLA, language_code="nn") as ola:
        assert await ola.commands() == [("admin", "Administrer")]

    nn = await ptb_bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="nn")
    assert [c.command for c in nn] == ["start", "pause"]
    assert await ptb_bot.delete_my_commands(scope=BotCommandScopeChat(OLA))
    assert local_api.visible_commands(OLA, "nb") == [{"command": "start", "description": "Start"}]


async def test_form_json_and_query_string_parameters_are_all_accepted(
    local_api: LocalBotApi,
) -> None:
    local_api.user_message(KARI, "/start")
    base = f"{local_api.base_url}{local_api.token}"
    markup = '{"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}'

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/sendMessage", json={"chat_id": KARI, "text": "json"}) as r:
            assert (await r.json())["ok"]
        form = {"chat_id": str(KARI), "text": "form", "reply_markup": markup}
        async with http.post(f"{base}/sendMessage", data=form) as r:
            assert (await r.json())["result"]["reply_markup"]["inline_keyboard"][0][0][
                "text"
            ] == "OK"
        async with http.get(f"{base}/sendMessage", params={"chat_id": KARI, "text": "q"}) as r:
            assert (await r.json())["ok"]
        async with http.post(f"{base}/sendMessage", data={"chat_id": "abc", "text": "x"}) as r:
            assert r.status == 400

    assert [m.text for m in local_api.deliveries(KARI)] == ["json", "form", "q"]
    assert local_api.calls[1].params == {
        "chat_id": KARI,
        "text": "form",
        "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]},
    }


async def test_a_second_poller_terminates_the_first_with_409(
    local_api: LocalBotApi, ptb_bot: telegram.Bot
) -> None:
    first = asyncio.create_task(ptb_bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    async with telegram.Bot(local_api.token, base_url=local_api.base_url) as other:
        second = asyncio.create_task(other.get_updates(timeout=0))
        with pytest.raises(telegram.error.Conflict, match=r"(?i)terminated by other getUpdates"):
            await first
        assert await second == ()
