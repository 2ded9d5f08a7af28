"""LocalUser against a tiny PTB Application: conversation tests read as a dialogue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from devkit.localapi import Button, LocalBotApi, LocalUser


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The person is greeted by name and asked to choose a language."""
    assert update.message is not None and update.effective_user is not None
    languages = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Bokmål", callback_data="lang:nb"),
                InlineKeyboardButton("Nynorsk", callback_data="lang:nn"),
            ],
            [InlineKeyboardButton("Om tenesta", url="https://example.org/om")],
        ]
    )
    await update.message.reply_html(
        f"Hei <b>{update.effective_user.first_name}</b>! Vel språk.", reply_markup=languages
    )


async def language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The chosen language is confirmed in place of the question."""
    query = update.callback_query
    assert query is not None
    await query.answer("Lagra")
    chosen = "nynorsk" if query.data == "lang:nn" else "bokmål"
    await query.edit_message_text(f"Du har valt {chosen}.")


async def two_parts(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The person gets an answer in two messages."""
    assert update.message is not None
    await update.message.reply_text("Første del")
    await update.message.reply_text("Andre del")


async def quiet(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Nothing visible happens."""


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Whatever the person writes comes back."""
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(update.message.text)


@pytest.fixture
async def echo_bot(local_api: LocalBotApi) -> AsyncIterator[Application]:
    app = Application.builder().token(local_api.token).base_url(local_api.base_url).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("to", two_parts))
    app.add_handler(CommandHandler("stille", quiet))
    app.add_handler(CallbackQueryHandler(language, pattern="^lang:"))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    yield app
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


async def test_choosing_a_language(echo_bot: Application, local_api: LocalBotApi) -> None:
    async with LocalUser(local_api.url, user_id=1001, first_name="Kari") as kari:
        [welcome] = await kari.says("/start")
        assert welcome.text == "Hei Kari! Vel språk."
        assert welcome.html == "Hei <b>Kari</b>! Vel språk."
        assert welcome.button_texts == ["Bokmål", "Nynorsk", "Om tenesta"]
        assert welcome.buttons[1] == [Button("Om tenesta", url="https://example.org/om")]

        [confirmation] = await kari.presses("Nynorsk")
        assert confirmation.message_id == welcome.message_id
        assert confirmation.edited
        assert confirmation.text == "Du har valt nynorsk."
        assert confirmation.buttons == []
        assert kari.last_callback_answer == "Lagra"

        assert [m.text for m in await kari.inbox()] == ["Du har valt nynorsk."]


async def test_replies_come_back_in_order_and_silence_is_checked(
    echo_bot: Application,
    local_api: LocalBotApi,
) -> None:
    async with LocalUser(local_api.url, user_id=1002, first_name="Ola") as ola:
        assert [m.text for m in await ola.says("/to")] == ["Første del", "Andre del"]
        assert [m.text for m in await ola.says("Hallo")] == ["Hallo"]
        assert await ola.says("/stille", expect_silence=True) == []

        with pytest.raises(AssertionError, match=r"the bot did not answer '/stille' within 0.3 s"):
            await ola.says("/stille", timeout=0.3)
        with pytest.raises(AssertionError, match=r"expected no answer"):
            await ola.says("Ekko", expect_silence=True)
        with pytest.raises(AssertionError, match=r"no button 'Finst ikkje'"):
            await ola.presses("Finst ikkje")
        await ola.silence(0.05)
        with pytest.raises(AssertionError, match=r"the bot sent nothing within 0.1 s"):
            await ola.replies(timeout=0.1)
