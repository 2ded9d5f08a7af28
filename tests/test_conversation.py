"""Conversations with the real bot over real HTTP, through the local Bot API.

Each test reads as a dialogue: what a person sends, and what the bot answers.
"""

from __future__ import annotations

import logging

import pytest
from sqlmodel import select

from bot.app import RunningBot
from bot.models import Person
from devkit.localapi import LocalBotApi
from tests.conftest import People

# How every caller-facing message ends (bot/urgency.py: no dead end).
NUMBERS_NB = "Haster det: ring legevakten på 116 117. Ved fare for liv: ring 113."
NUMBERS_NN = "Hastar det: ring legevakta på 116 117. Ved fare for liv: ring 113."


async def test_start_explains_the_bot_in_two_short_paragraphs(people: People) -> None:
    kari = await people("Kari", language_code="nb")

    [answer] = await kari.says("/start")

    assert answer.text.startswith("Sikkerhetsnett gir deg skriftlige råd etter at du har ringt")
    assert "Ledere i helsetjenesten bruker Sikkerhetsnett" in answer.text
    assert "116 117" in answer.text and "113" in answer.text
    assert "<b>Sikkerhetsnett</b>" in answer.html


async def test_telegram_language_nn_is_the_first_guess(people: People) -> None:
    ola = await people("Ola", language_code="nn")

    [answer] = await ola.says("/start")

    assert answer.text.startswith(
        "Sikkerhetsnett gir deg skriftlege råd etter at du har ringt legevakta"
    )


async def test_other_telegram_languages_get_bokmal(people: People) -> None:
    sam = await people("Sam", language_code="en")

    [answer] = await sam.says("/help")

    assert "Dette kan du gjøre her" in answer.text


async def test_language_choice_is_remembered_over_telegrams_language(
    people: People, bot: RunningBot
) -> None:
    kari = await people("Kari", language_code="nb")

    [menu] = await kari.says("/language")
    assert menu.text == "Hvilket språk vil du ha? Nå: bokmål.\n\n" + NUMBERS_NB
    assert menu.button_texts == ["Bokmål", "Nynorsk"]

    [confirmation] = await kari.presses("Nynorsk")
    assert confirmation.text == "Frå no av skriv eg nynorsk.\n\n" + NUMBERS_NN
    assert confirmation.edited and confirmation.buttons == []

    [help_text] = await kari.says("/help")
    assert "Dette kan du gjere her" in help_text.text

    async with bot.rt.sessions() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_user_id == kari.user_id))
        ).one()
    assert (person.locale, person.locale_chosen) == ("nn", True)

    [menu] = await kari.says("/language")
    [confirmation] = await kari.presses("Bokmål")
    assert confirmation.text == "Fra nå av skriver jeg bokmål.\n\n" + NUMBERS_NB


async def test_command_menu_follows_the_language(people: People, local_api: LocalBotApi) -> None:
    ola = await people("Ola", language_code="nn")
    menu = dict(await ola.commands(language_code="nn"))
    assert menu["language"] == "Vel bokmål eller nynorsk"
    assert dict(await ola.commands(language_code="nb"))["language"] == "Velg bokmål eller nynorsk"

    kari = await people("Kari", language_code="nb")
    await kari.says("/language")
    await kari.presses("Nynorsk")
    # Telegram still reports nb for Kari, but her own menu is now Nynorsk.
    assert dict(await kari.commands(language_code="nb"))["privacy"] == (
        "Kva vi lagrar om deg, og korleis du slettar det"
    )


@pytest.mark.parametrize(
    ("language", "heading", "retention"),
    [
        ("nb", "Dette lagrer Sikkerhetsnett om deg", "slettes etter 30 dager"),
        ("nn", "Dette lagrar Sikkerhetsnett om deg", "blir sletta etter 30 dagar"),
    ],
)
async def test_privacy_says_what_why_how_long_and_how_to_delete(
    people: People, language: str, heading: str, retention: str
) -> None:
    kari = await people("Kari", language_code=language)

    [answer] = await kari.says("/privacy")

    assert answer.text.startswith(heading)
    assert retention in answer.text
    assert len(answer.button_texts) == 1
    assert answer.button_texts[0] in ("Slett dataene mine", "Slett dataa mine")


async def test_deleting_my_data_asks_once_more_then_forgets_me(
    people: People, bot: RunningBot
) -> None:
    kari = await people("Kari", language_code="nb")
    await kari.says("/language")
    await kari.presses("Nynorsk")
    await kari.says("/privacy")

    [question] = await kari.presses("Slett dataa mine")
    assert question.text.startswith("Vil du slette alt Sikkerhetsnett har lagra om deg?")
    assert question.button_texts == ["Ja, slett", "Nei, behald"]

    [done] = await kari.presses("Ja, slett")
    assert done.text.startswith("Ferdig. Alt vi hadde lagra om deg, er sletta.")

    async with bot.rt.sessions() as session:
        found = (
            await session.exec(select(Person).where(Person.telegram_user_id == kari.user_id))
        ).one_or_none()
    assert found is None

    # Writing again starts afresh: the language choice is gone, Telegram's guess is back.
    [answer] = await kari.says("/help")
    assert "Dette kan du gjøre her" in answer.text


async def test_keeping_my_data(people: People) -> None:
    kari = await people("Kari")
    await kari.says("/privacy")
    await kari.presses("Slett dataene mine")

    [answer] = await kari.presses("Nei, behold")

    assert answer.text == "Ingenting ble slettet.\n\n" + NUMBERS_NB


@pytest.mark.parametrize("payload", ["a_" + "x" * 22, "i_abc", "zzz", "a_<script>", "a" * 80])
async def test_an_unknown_or_malformed_link_is_refused_plainly(
    people: People, payload: str
) -> None:
    kari = await people("Kari")

    [answer] = await kari.says(f"/start {payload}")

    assert answer.text.startswith("Denne lenken er ikke gyldig.")
    assert "116 117" in answer.text and "113" in answer.text


async def test_free_text_gets_a_helpful_answer_with_the_numbers(people: People) -> None:
    ola = await people("Ola", language_code="nn")

    [answer] = await ola.says("Eg har vondt i magen og det blir verre")

    assert answer.text.startswith("Eg kan ikkje lese meldingar her")
    assert "116 117" in answer.text and "113" in answer.text


async def test_unknown_command_gets_the_same_helpful_answer(people: People) -> None:
    kari = await people("Kari")
    [answer] = await kari.says("/frobnicate")
    assert answer.text.startswith("Jeg kan ikke lese meldinger her")


async def test_a_button_from_an_unknown_old_message_answers_instead_of_spinning(
    people: People, local_api: LocalBotApi
) -> None:
    kari = await people("Kari")
    [menu] = await kari.says("/language")
    # An update as an old version of the bot could have left it: unknown callback data.
    update_id = 990_001
    await kari.send_update(
        {
            "update_id": update_id,
            "callback_query": {
                "id": "old-1",
                "from": {"id": kari.user_id, "is_bot": False, "first_name": "Kari"},
                "chat_instance": "1",
                "data": "poll:v1:yes",
                "message": {
                    "message_id": menu.message_id,
                    "date": 0,
                    "chat": {"id": kari.user_id, "type": "private"},
                    "text": menu.text,
                },
            },
        }
    )
    # The spinner stops, and a message that stays (a toast vanishes) says so, with the numbers.
    [told] = await kari.replies()
    assert told.text == (
        "Denne knappen virker ikke lenger. Skriv /help for å begynne på nytt.\n\n" + NUMBERS_NB
    )
    assert any(a.callback_query_id == "old-1" for a in await kari.callback_answers())


async def test_group_chatter_and_edited_messages_are_ignored(
    people: People, local_api: LocalBotApi
) -> None:
    kari = await people("Kari")
    await kari.send_update(  # in a group the bot answers its own commands only
        {
            "update_id": 990_100,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": -100123, "type": "supergroup", "title": "Vaktrom"},
                "from": {"id": kari.user_id, "is_bot": False, "first_name": "Kari"},
                "text": "start på vakta nå",
            },
        }
    )
    await kari.says("hei")
    await kari.edits(kari.last_message_id, "hei igjen", expect_silence=True)
    await kari.silence(0.5)  # nothing for the group message or the edit
    [answer] = await kari.says("/help")
    assert "Dette kan du gjøre her" in answer.text
    assert local_api.deliveries(-100123) == []


async def test_an_error_is_told_to_the_person_and_logged_without_personal_data(
    people: People, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import handlers.common

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database said no for user 5001 named Kari")

    monkeypatch.setattr(handlers.common, "choose_locale", broken)
    kari = await people("Kari Nordmann", language_code="nb")
    await kari.says("/language")

    with caplog.at_level(logging.INFO):
        replies = await kari.presses("Nynorsk")

    assert replies[-1].text.startswith("Beklager, noe gikk galt hos oss.")
    assert "116 117" in replies[-1].text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "error while handling update" in logged
    assert "Kari" not in logged and str(kari.user_id) not in logged


async def test_logs_of_a_whole_dialogue_hold_no_personal_data(
    people: People,
    local_api: LocalBotApi,
    caplog: pytest.LogCaptureFixture,
    production_logging_at_debug: None,
) -> None:
    # caplog sees every record before the redacting filter: this checks what the code logs.
    with caplog.at_level(logging.DEBUG, logger="handlers"):
        kari = await people("Kari Nordmann", language_code="nb")
        await kari.says("/start")
        await kari.says("Ring meg på +47 912 34 567, jeg heter Kari Nordmann")
        await kari.says("/language")
        await kari.presses("Nynorsk")
        await kari.says("/privacy")
        await kari.presses("Slett dataa mine")
        await kari.presses("Ja, slett")
    text = "\n".join(
        r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "") for r in caplog.records
    )
    assert "a person deleted their data" in text  # the capture really saw the bot's logs
    for secret in (
        "Kari",
        "Nordmann",
        "912 34 567",
        "91234567",
        str(kari.user_id),
        local_api.token,
    ):
        assert secret not in text, f"{secret!r} reached the logs"
