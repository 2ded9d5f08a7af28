"""Property-based tests: random updates through the real bot, over the local Bot API.

Whatever arrives, no exception reaches the error handler, and every update gets the answer its
kind calls for or none at all: a private text or unknown command gets "I can't read messages
here", a link that is not valid is refused plainly, a stale button is answered with a toast, an
edit is ignored, and nothing is ever sent to a channel, nor to a group but the answer to the
bot's own commands there (/start, /help, /privacy).

One bot runs per test; each example talks to it as a new person, so examples do not depend on
each other. After an update, ``Fuzz.settle`` waits until the bot has fetched and handled it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import itertools
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from telegram import Update

from bot.app import ALLOWED_UPDATES, RunningBot
from bot.i18n import Locale, guess_locale
from bot.models import Prompt, PromptStatus, utcnow
from bot.services import dispatches, enrolment, invites, leaders, weekly
from bot.services.enrolment import Choice
from bot.services.people import ensure_person
from devkit.localapi import LocalBotApi, LocalUser
from devkit.localapi.records import SentMessage

#: Examples per property; FUZZ_EXAMPLES=500 for a deeper run by hand.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- what the bot says (source strings; compared in the person's language) -----------------

UNKNOWN = "I can't read messages here, so nobody at the legevakt will see this."
INVALID_LINK = (
    "This link is not valid. It may be incomplete: open it straight from the SMS or "
    "invitation, without changing it."
)
INTRO = (
    "<b>Sikkerhetsnett</b> gives you written advice after you have called the legevakt: "
    "what you can do yourself, what is normal, and exactly when to call again. The "
    "legevakt sends you a personal link by SMS; open it to read your advice here."
)
STALE = "This button no longer works. Write /help to start again."
NO_ADVICE = "This advice is no longer stored here, so this button no longer works."
NO_ADVICE_WORSE = "This advice is no longer stored here, so it cannot be shown again."
NOT_A_LEADER = (
    "This is for leaders in the weekly reflection. You join with an invitation link "
    "from your organisation."
)
ERROR_TOLD = "Sorry, something went wrong on our side. Please try again in a moment."

# --- strategies ----------------------------------------------------------------------------

ODD = (
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"  # bidi marks
    "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # zero-width, BOM, soft hyphen
    "\u0301\u0308\u0338\u20e3\ufe0f\ufe0e"  # combining marks, variation selectors
    "🤒🤮👩‍⚕️👨‍👩‍👧🇳🇴🏳️‍🌈"  # emoji, ZWJ sequences, flags
    "مرحبا שלום नमस्ते ก๊ Ω Ⅻ ١٢٣ ½ ²"  # RTL scripts, Devanagari, Thai, odd digits
    "<>&\"'`\\/_*[]()~#+-=|{}.!@:"  # HTML and Markdown specials
    " \t\n\r\u00a0\u2028\u2029\u3000"  # whitespace of every sort
) + "".join(chr(c) for c in (*range(1, 32), 127, *range(0x80, 0xA0)))  # controls, no NUL

odd_chars = st.one_of(
    st.sampled_from(ODD),
    st.characters(codec="utf-8", exclude_characters="\x00"),  # no lone surrogates, no NUL
)
odd_text = st.text(odd_chars, min_size=1, max_size=120)
long_text = st.builds(
    lambda piece, tail, size: (piece * size)[: size - len(tail)] + tail,
    st.text(odd_chars, min_size=1, max_size=40),
    st.text(odd_chars, max_size=20),
    st.integers(4096, 4200),
)
texts = st.one_of(odd_text, odd_text, long_text)
languages = st.sampled_from(["nb", "nn", "no", "en", "nn-NO", "NB", "", "zz-ÆØÅ", None])
names = st.one_of(st.just("Kari"), st.text(odd_chars, min_size=1, max_size=64))
token_chars = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
tokens = st.text(token_chars, max_size=90)
hexes = st.one_of(
    st.text(st.sampled_from("0123456789abcdef"), min_size=32, max_size=32),
    st.text(st.sampled_from("0123456789abcdefABCDEF"), max_size=40),
)
big_ints = st.one_of(st.integers(0, 10), st.integers(0, 2**80), st.integers(-(2**70), -1))
words = st.one_of(st.sampled_from(["zzz", "busy", "no", "yes", "nb", "x"]), odd_text)
payloads = st.one_of(
    st.builds("a_{}".format, tokens),
    st.builds("i_{}".format, tokens),
    st.builds("{}_{}".format, st.text(token_chars, max_size=3), tokens),
    st.text(token_chars, min_size=64, max_size=100),
    odd_text,
    long_text,
)


def short(text: str, limit: int = 64) -> bool:
    return len(text.encode()) <= limit


callback_data = st.one_of(
    st.text(odd_chars, min_size=1, max_size=64).filter(short),
    st.builds("a:worse:{}".format, hexes),
    st.builds("a:lang:{}:{}".format, hexes, st.sampled_from(["nb", "nn", "en"])),
    st.builds("a:ci:{}:{}".format, hexes, st.sampled_from(["better", "same", "worse", "x"])),
    st.builds(
        "r:{}:{}".format,
        st.sampled_from(["ans", "skip", "later", "share", "unshare", "page", "day", "time"]),
        big_ints,
    ),
    st.builds("r:pause:{}".format, big_ints),
    st.builds("r:why:{}:{}".format, big_ints, words),
    st.just("r:why:1:zzz"),
    st.builds("r:{}:{}".format, st.sampled_from(["set", "stop", "lang"]), words),
    st.builds("lang:{}".format, st.sampled_from(["nb", "nn", "en", ""])),
    st.sampled_from(["privacy:delete", "privacy:delete:no", "privacy:delete:yes", "privacy:"]),
).filter(short)

# --- expectations --------------------------------------------------------------------------

#: The bot's callback patterns (see the handlers' ``register``) and what a person who is not
#: a leader and has no advice gets for them.
ADVICE_BUTTON = re.compile(
    r"^a:worse:[0-9a-f]{32}$|^a:lang:[0-9a-f]{32}:(nb|nn)$|^a:ci:[0-9a-f]{32}:(better|same|worse)$"
)
LEADER_BUTTON = re.compile(
    r"^r:lang:(nb|nn)$|^r:day:[0-6]$|^r:time:\d{1,4}$|^r:set:(day|time|lang)$"
    r"|^r:(ans|skip|later|share|unshare):[0-9]{1,18}$|^r:why:[0-9]{1,18}:\w+$|^r:pause:[0-4]$"
    r"|^r:stop:(delete|keep|no)$"
)
ANSWERS_PAGE = re.compile(r"^r:page:[0-9]{1,9}$")
OWN_BUTTON = re.compile(r"^lang:(nb|nn)$|^privacy:delete(:yes|:no)?$")

LEADER_COMMANDS = {"settings", "pause", "resume", "answers", "export", "stop"}
ADMIN_COMMANDS = {"status", "stats", "reload"}
COMMON_COMMANDS = {"start", "help", "language", "privacy"}


def plain(text: str) -> str:
    """A source string as the person reads it: tags gone, entities unescaped."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


class Fuzz:
    """The running bot, the local Bot API and a supply of new people."""

    PROBE_CHAT = -987_654_321  # a group chat for the settle probe; nothing handles it

    def __init__(
        self,
        bot: RunningBot,
        local_api: LocalBotApi,
        session: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        self.bot = bot
        self.api = local_api
        self.session = session
        self.caplog = caplog
        self.ids = itertools.count(700_001)
        self.query_ids = itertools.count(1)

    async def person(self, language_code: str | None = "nb", first_name: str = "Kari") -> User:
        """A new person; each example starts with one, so this also clears the captured log."""
        self.caplog.clear()
        user = User(self, next(self.ids), first_name, language_code)
        await user.open()
        return user

    def say(self, language_code: str | None, source: str) -> str:
        """A source string in the language the bot guesses from Telegram's language_code."""
        rt = self.bot.rt
        locale: Locale = guess_locale(language_code, rt.settings.default_locale)
        return plain(rt.catalogs.gettext(locale)(source))

    def new_query_id(self) -> str:
        return f"fuzz-{next(self.query_ids)}"

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the bot has fetched every update sent so far and finished handling it.

        A probe update (an edit in a group chat, which no handler takes) goes last, so updates
        the bot does not ask for (channel posts) are dropped from the queue too.
        """
        self.api.push_update(
            {
                "edited_message": {
                    "message_id": 1,
                    "date": 0,
                    "edit_date": 0,
                    "chat": {"id": self.PROBE_CHAT, "type": "group", "title": "probe"},
                    "text": "probe",
                }
            }
        )
        app = self.bot.app
        deadline = time.monotonic() + timeout
        idle_checks = 0
        while idle_checks < 2:  # the loop runs ready tasks before a timer: two looks suffice
            idle = (
                self.api.pending_update_count == 0
                and app.update_queue.empty()
                and app.update_processor.current_concurrent_updates == 0
            )
            idle_checks = idle_checks + 1 if idle else 0
            assert time.monotonic() < deadline, "the bot did not handle its updates in time"
            await asyncio.sleep(0.003)

    def sent(self, chat_id: int, after_seq: int) -> list[SentMessage]:
        """What the bot sent or edited in ``chat_id`` after ``after_seq``."""
        return self.api.messages_after(chat_id, after_seq)

    def toast(self, query_id: str) -> dict[str, Any] | None:
        """How the bot answered the press ``query_id`` (in any chat, or none: inline)."""
        for answer in self.api.callback_answers():
            if answer["callback_query_id"] == query_id:
                return answer
        return None

    def assert_no_errors(self) -> None:
        errors = [r for r in self.caplog.records if r.levelno >= logging.ERROR]
        self.caplog.clear()
        assert not errors, "\n".join(
            f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
            for r in errors
        )


class User(LocalUser):
    """A person, with the raw updates the fuzzing sends in their private chat."""

    def __init__(
        self, fuzz: Fuzz, user_id: int, first_name: str, language_code: str | None
    ) -> None:
        super().__init__(
            fuzz.api.url,
            user_id,
            first_name,
            language_code,
            session=fuzz.session,
        )
        self.fuzz = fuzz

    @property
    def sender(self) -> dict[str, Any]:
        sender: dict[str, Any] = {
            "id": self.user_id,
            "is_bot": False,
            "first_name": self.first_name,
        }
        if self.language_code is not None:
            sender["language_code"] = self.language_code
        return sender

    @property
    def chat(self) -> dict[str, Any]:
        return {"id": self.user_id, "type": "private", "first_name": self.first_name}

    @property
    def seq(self) -> int:
        return self.fuzz.api.last_seq(self.user_id)

    def sent_since(self, seq: int) -> list[SentMessage]:
        return self.fuzz.sent(self.user_id, seq)

    async def edit(self, message_id: int, text: str) -> None:
        """Edit one of the person's own messages, without waiting for an answer."""
        await self._post(f"/user/{self.user_id}/edits", {"message_id": message_id, "text": text})

    async def press(self, data: str | None, message: dict[str, Any] | None) -> str:
        """A callback query on ``message`` (None: an inline message); returns its id."""
        query: dict[str, Any] = {
            "id": self.fuzz.new_query_id(),
            "from": self.sender,
            "chat_instance": str(self.user_id),
        }
        if data is not None:
            query["data"] = data
        if message is None:
            query["inline_message_id"] = "AAAA-fuzz"
        else:
            query["message"] = message
        await self.send_update({"callback_query": query})
        return str(query["id"])


@pytest.fixture
async def fuzz(
    bot: RunningBot, local_api: LocalBotApi, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Fuzz]:
    caplog.set_level(logging.ERROR)
    async with aiohttp.ClientSession() as session:
        yield Fuzz(bot, local_api, session, caplog)


def texts_of(messages: list[SentMessage]) -> list[str]:
    return [m.text or m.caption or "<file>" for m in messages]


def one_answer_starting(messages: list[SentMessage], start: str) -> None:
    assert len(messages) == 1, texts_of(messages)
    assert (messages[0].text or "").startswith(start), texts_of(messages)


def one_answer_with_the_numbers(messages: list[SentMessage], start: str) -> None:
    """One message that stays (not a toast, which vanishes), naming 116 117 and 113."""
    one_answer_starting(messages, start)
    text = messages[0].text or ""
    assert "116 117" in text and "113" in text, text


# --- private text --------------------------------------------------------------------------


@FUZZ
@given(text=texts, language=languages, name=names)
async def test_any_private_text_gets_the_one_helpful_answer(
    fuzz: Fuzz, text: str, language: str | None, name: str
) -> None:
    if text.startswith("/"):
        text = "." + text  # commands have their own property
    kari = await fuzz.person(language, name)
    seq = kari.seq

    await kari.writes(text)
    await fuzz.settle()

    one_answer_starting(kari.sent_since(seq), fuzz.say(language, UNKNOWN))
    fuzz.assert_no_errors()


@FUZZ
@given(
    command=st.one_of(
        st.sampled_from(sorted(LEADER_COMMANDS | ADMIN_COMMANDS | {"help", "privacy"})),
        st.from_regex(r"[A-Za-z0-9_]{1,40}", fullmatch=True),
    ),
    addressed=st.one_of(st.just(""), st.just("@me"), st.just("@other_bot")),
    rest=st.one_of(st.just(""), st.builds(" {}".format, odd_text)),
    language=languages,
)
async def test_any_command_gets_exactly_one_answer(
    fuzz: Fuzz, command: str, addressed: str, rest: str, language: str | None
) -> None:
    username = fuzz.bot.rt.bot_username
    to = f"@{username}" if addressed == "@me" else addressed
    kari = await fuzz.person(language)
    seq = kari.seq

    await kari.writes(f"/{command}{to}{rest}")
    await fuzz.settle()

    sent = kari.sent_since(seq)
    name = command.lower()  # commands are case-insensitive
    if to == "@other_bot" or name not in LEADER_COMMANDS | COMMON_COMMANDS:
        one_answer_starting(sent, fuzz.say(language, UNKNOWN))  # admin commands too
    elif name in LEADER_COMMANDS:
        one_answer_starting(sent, fuzz.say(language, NOT_A_LEADER))
    else:
        assert len(sent) == 1, texts_of(sent)
        assert not (sent[0].text or "").startswith(fuzz.say(language, UNKNOWN))
    fuzz.assert_no_errors()


# --- deep links ----------------------------------------------------------------------------


@FUZZ
@given(payload=payloads, language=languages)
async def test_start_with_any_payload_refuses_the_link_plainly(
    fuzz: Fuzz, payload: str, language: str | None
) -> None:
    kari = await fuzz.person(language)
    seq = kari.seq

    await kari.writes(f"/start {payload}")
    await fuzz.settle()

    sent = kari.sent_since(seq)
    if payload.split():  # the words after the command are the link's payload
        one_answer_starting(sent, fuzz.say(language, INVALID_LINK))
        assert "116 117" in (sent[0].text or "")
    else:
        one_answer_starting(sent, fuzz.say(language, INTRO))
    fuzz.assert_no_errors()


# --- buttons -------------------------------------------------------------------------------


@FUZZ
@given(
    data=st.one_of(callback_data, st.none()),
    target=st.sampled_from(["existing", "missing", "inaccessible", "inline"]),
    message_id=st.integers(1, 2**31 - 1),
    language=languages,
)
@example(data="r:page:0", target="inline", message_id=1, language="nb")  # it used to spin
async def test_any_button_press_is_answered_and_never_fails(
    fuzz: Fuzz, data: str | None, target: str, message_id: int, language: str | None
) -> None:
    kari = await fuzz.person(language)
    message: dict[str, Any] | None = None
    if target == "existing":
        await kari.writes("/language")
        await fuzz.settle()
        [menu] = kari.sent_since(0)
        message = menu.telegram(fuzz.api.bot_user)
    elif target == "missing":
        message = {"message_id": message_id, "date": 1, "chat": kari.chat, "text": "gone"}
    elif target == "inaccessible":
        message = {"message_id": message_id, "date": 0, "chat": kari.chat}
    seq = kari.seq

    query_id = await kari.press(data, message)
    await fuzz.settle()

    sent = kari.sent_since(seq)
    toast = fuzz.toast(query_id)
    assert toast is not None, f"the press on {data!r} was not answered"
    value = data or ""
    if target == "inline":  # no chat to answer in: the spinner just stops
        assert sent == []
    elif ADVICE_BUTTON.match(value):
        worse = value.startswith("a:worse:") or value.endswith(":worse")  # or the check-in's
        gone = NO_ADVICE_WORSE if worse else NO_ADVICE
        one_answer_with_the_numbers(sent, fuzz.say(language, gone))
    elif LEADER_BUTTON.match(value):
        one_answer_with_the_numbers(sent, fuzz.say(language, STALE))
    elif ANSWERS_PAGE.match(value):
        one_answer_starting(sent, fuzz.say(language, NOT_A_LEADER))
    elif OWN_BUTTON.match(value):
        assert len(sent) == 1, texts_of(sent)  # the menu edited, or a new message
        assert not (sent[0].text or "").startswith(fuzz.say(language, ERROR_TOLD))
    else:
        one_answer_with_the_numbers(sent, fuzz.say(language, STALE))
    fuzz.assert_no_errors()


# --- edits, media, odd senders in private chats --------------------------------------------


def media(kind: str, caption: str | None, latitude: float, longitude: float) -> dict[str, Any]:
    file = {"file_id": "AgAD-fuzz", "file_unique_id": "fuzz"}
    kinds: dict[str, dict[str, Any]] = {
        "sticker": {
            "sticker": {
                **file,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "🤒",
            }
        },
        "photo": {"photo": [{**file, "width": 90, "height": 90}]},
        "location": {"location": {"latitude": latitude, "longitude": longitude}},
        "live_location": {
            "location": {"latitude": latitude, "longitude": longitude, "live_period": 900}
        },
        "contact": {"contact": {"phone_number": "+4791234567", "first_name": "Kari"}},
        "voice": {"voice": {**file, "duration": 3}},
        "document": {"document": {**file, "file_name": "journal.pdf"}},
        "dice": {"dice": {"emoji": "🎲", "value": 3}},
        "text": {"text": caption or "hei"},
    }
    content = dict(kinds[kind])
    if caption is not None and kind in ("photo", "voice", "document"):
        content["caption"] = caption
    return content


MEDIA = ["sticker", "photo", "location", "live_location", "contact", "voice", "document", "dice"]
coordinates = st.tuples(st.floats(-90, 90, allow_nan=False), st.floats(-180, 180, allow_nan=False))


@FUZZ
@given(
    kind=st.sampled_from([*MEDIA, "text"]),
    caption=st.one_of(st.none(), texts),
    where=coordinates,
    sender=st.sampled_from(["person", "none", "bot"]),
    edited=st.booleans(),
    message_id=st.integers(1, 2**31 - 1),
    language=languages,
)
async def test_private_media_edits_and_odd_senders(
    fuzz: Fuzz,
    kind: str,
    caption: str | None,
    where: tuple[float, float],
    sender: str,
    edited: bool,
    message_id: int,
    language: str | None,
) -> None:
    kari = await fuzz.person(language)
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": kari.chat,
        **media(kind, caption, *where),
    }
    if sender == "person":
        message["from"] = kari.sender
    elif sender == "bot":
        message["from"] = {"id": kari.user_id, "is_bot": True, "first_name": "Robot"}
    if edited:
        message["edit_date"] = message["date"]
    seq = kari.seq

    await kari.send_update({"edited_message" if edited else "message": message})
    await fuzz.settle()

    sent = kari.sent_since(seq)
    if edited or sender != "person":
        assert sent == [], texts_of(sent)
    else:  # no bot_command entity: even "/start" here is plain text
        one_answer_starting(sent, fuzz.say(language, UNKNOWN))
    fuzz.assert_no_errors()


@FUZZ
@given(first=texts, second=texts, language=languages)
async def test_editing_a_message_is_ignored(
    fuzz: Fuzz, first: str, second: str, language: str | None
) -> None:
    kari = await fuzz.person(language)
    message_id = await kari.writes(first)
    await fuzz.settle()
    seq = kari.seq

    await kari.edit(message_id, second)
    await fuzz.settle()

    assert kari.sent_since(seq) == []
    fuzz.assert_no_errors()


# --- group chats and channels --------------------------------------------------------------


def group_update(
    kind: str,
    chat: dict[str, Any],
    body: dict[str, Any],
    sender: dict[str, Any] | None,
    query_id: str,
) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": 7, "date": int(time.time()), "chat": chat, **body}
    if sender is not None:
        message["from"] = sender
    if kind in ("channel_post", "edited_channel_post"):
        message.pop("from", None)
        message["sender_chat"] = chat
    if kind.startswith("edited"):
        message["edit_date"] = message["date"]
    if kind == "callback_query":
        return {
            "callback_query": {
                "id": query_id,
                "from": sender or {"id": 1, "is_bot": False, "first_name": "Ola"},
                "chat_instance": "group",
                "data": body.get("text", "lang:nb").encode()[:64].decode(errors="ignore"),
                "message": message,
            }
        }
    return {kind: message}


group_bodies = st.one_of(
    st.builds(lambda t: {"text": t}, texts),
    st.builds(lambda p: {"text": f"/start {p}"}, payloads),
    st.builds(
        lambda c: {"text": c, "entities": [{"type": "bot_command", "offset": 0, "length": len(c)}]},
        st.sampled_from(["/start", "/help", "/language", "/privacy", "/settings", "/stop"]),
    ),
    st.builds(lambda k, w: media(k, None, *w), st.sampled_from(MEDIA), coordinates),
    st.builds(lambda d: {"text": d}, callback_data),
)


@FUZZ
@given(
    kind=st.sampled_from(
        ["message", "edited_message", "channel_post", "edited_channel_post", "callback_query"]
    ),
    chat_type=st.sampled_from(["group", "supergroup", "channel"]),
    chat_id=st.integers(-(10**13), -1),
    body=group_bodies,
    with_sender=st.booleans(),
)
# Found by this test: /start from an anonymous admin (no sender) went unanswered.
@example(
    kind="message",
    chat_type="group",
    chat_id=-100,
    body={"text": "/start", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]},
    with_sender=False,
)
async def test_in_a_group_only_the_bots_own_commands_are_answered_and_in_a_channel_nothing(
    fuzz: Fuzz,
    kind: str,
    chat_type: str,
    chat_id: int,
    body: dict[str, Any],
    with_sender: bool,
) -> None:
    if chat_id == Fuzz.PROBE_CHAT:
        chat_id -= 1
    kari = await fuzz.person()
    chat = {"id": chat_id, "type": chat_type, "title": "Vaktrom"}
    query_id = fuzz.new_query_id()
    update = group_update(kind, chat, body, kari.sender if with_sender else None, query_id)
    seq = kari.seq
    group_seq = fuzz.api.last_seq(chat_id)  # a chat id may come up again in another example

    await kari.send_update(update)
    if kind not in ALLOWED_UPDATES:
        # The bot does not ask for these, so the Bot API keeps them back; were they delivered
        # anyway, the handlers must still leave them alone.
        await fuzz.bot.app.update_queue.put(
            Update.de_json({"update_id": 10**9, **update}, fuzz.bot.app.bot)
        )
    await fuzz.settle()

    answered = fuzz.sent(chat_id, group_seq)
    text = str(body.get("text", ""))
    own_command = (
        kind == "message"
        and chat_type in ("group", "supergroup")
        and bool(body.get("entities"))
        and re.fullmatch(r"/(start|help|privacy)", text) is not None
    )
    if own_command:  # the bot's own commands in a group: one answer, no buttons
        assert len(answered) == 1 and answered[0].reply_markup is None, answered
    else:  # members' text, other commands, edits, channels, presses: nothing at all
        assert answered == []
    if kind == "callback_query":  # the spinner stops, and nothing is said
        toast = fuzz.toast(query_id)
        assert toast is not None and toast["text"] is None, toast
    assert kari.sent_since(seq) == []  # nor to the person's private chat
    fuzz.assert_no_errors()


# --- a caller's buttons under real advice --------------------------------------------------


async def make_caller(fuzz: Fuzz, locale: str) -> tuple[User, str]:
    """A person who opened a real advice link; returns them and the dispatch id."""
    rt = fuzz.bot.rt
    topic = sorted(rt.content.advice)[0]  # drafts are allowed in tests
    valid = dispatches.validate({"topic": topic, "locale": locale}, rt)
    created = await dispatches.create(rt, valid)
    kari = await fuzz.person(locale)
    await kari.writes("/start " + created.deep_link.rsplit("start=", 1)[1])
    await fuzz.settle()
    assert kari.sent_since(0), "the advice did not come"
    return kari, str(created.dispatch.id)


caller_presses = st.one_of(
    st.builds(
        "{}{}".format,
        st.sampled_from(
            [
                "a:worse:{id}",
                "a:lang:{id}:nb",
                "a:lang:{id}:nn",
                "a:lang:{id}:en",
                "a:ci:{id}:better",
                "a:ci:{id}:same",
                "a:ci:{id}:worse",
                "a:ci:{id}:maybe",
                "a:ci:{id}",
                "privacy:delete",
                "privacy:delete:no",
                "privacy:delete:yes",
            ]
        ),
        st.sampled_from(["", "", "", "\n", " ", ":x", "0"]),  # "$" also matches before "\n"
    ),
    callback_data,
)


@settings(FUZZ, max_examples=max(1, EXAMPLES * 2 // 3))  # each example opens an advice link
@example(["a:ci:{id}:better\n", "a:lang:{id}:nn\n", "a:worse:{id}\n"], "nb", "last")
@given(
    presses=st.lists(caller_presses, min_size=1, max_size=3),
    locale=st.sampled_from(["nb", "nn"]),
    where=st.sampled_from(["last", "last", "inaccessible", "missing"]),
)
async def test_a_caller_can_press_anything_under_the_advice(
    fuzz: Fuzz, presses: list[str], locale: str, where: str
) -> None:
    kari, dispatch_id = await make_caller(fuzz, locale)
    for template in presses:
        data = template.replace("{id}", dispatch_id)
        [*_, advice] = [m for m in kari.sent_since(0) if m.text]
        message = advice.telegram(fuzz.api.bot_user)
        if where == "inaccessible":
            message = {"message_id": advice.message_id, "date": 0, "chat": kari.chat}
        elif where == "missing":
            message = {"message_id": 10**6, "date": 1, "chat": kari.chat, "text": "gone"}
        seq = kari.seq

        query_id = await kari.press(data, message)
        await fuzz.settle()

        fuzz.assert_no_errors()
        sent = kari.sent_since(seq)
        assert not any((m.text or "").startswith(fuzz.say(locale, ERROR_TOLD)) for m in sent)
        assert fuzz.toast(query_id) is not None, f"the press on {data!r} was not answered"
        assert len(sent) <= 3, texts_of(sent)  # at most the advice again, in two parts


# --- a leader's buttons and typed text -----------------------------------------------------


class LeaderChat:
    """A person who joined the weekly reflection, with an open question and an answered one."""

    def __init__(self, user: User, open_id: int, answered_id: int, answer_message_id: int):
        self.user = user
        self.open_id = open_id
        self.answered_id = answered_id
        self.answer_message_id = answer_message_id

    def fill(self, template: str) -> str:
        return template.replace("{open}", str(self.open_id)).replace(
            "{answered}", str(self.answered_id)
        )


async def make_leader(fuzz: Fuzz, step: str) -> LeaderChat:
    """A leader made through the services (fast): enrolling at ``step``, or ``active``."""
    rt = fuzz.bot.rt
    created = await invites.create(rt, "Helse Fuzz HF", "unit-leader")
    lise = await fuzz.person("nb", "Lise")
    await lise.writes("/help")  # the chat is open, and there is a message to press on
    person = await ensure_person(rt.sessions, lise.user_id, "nb")
    joined = await leaders.join(rt, created.deep_link.rsplit("start=i_", 1)[1], person)
    leader = joined.leader
    assert leader is not None
    if step != "language":
        leader = await enrolment.choose(rt, leader, Choice.LANGUAGE)
    if step in ("time", "active"):
        leader = await enrolment.choose(rt, leader, Choice.WEEKDAY, 1)
    if step == "active":
        leader = await enrolment.choose(rt, leader, Choice.TIME, 540)
    _programme, theme, question, _first = weekly.question_at(rt, leader)
    now = utcnow()
    rows = [
        Prompt(
            leader_id=leader.id,  # type: ignore[arg-type]
            programme_id=leader.programme_id,
            theme_id=theme.id,
            question_id=question.id,
            role_id=leader.role_id,
            position=0,
            week=week,
            due_at=now - dt.timedelta(days=days),
            status=status,
            sent_at=now - dt.timedelta(days=days),
            answer_ciphertext="sealed" if status == PromptStatus.ANSWERED else None,
            answer_message_id=4242 if status == PromptStatus.ANSWERED else None,
        )
        for week, days, status in (
            ("2020-W01", 7, PromptStatus.ANSWERED),
            ("2020-W02", 0, PromptStatus.SENT),
        )
    ]
    async with rt.sessions() as session:
        session.add_all(rows)
        await session.commit()
        for row in rows:
            await session.refresh(row)
    await fuzz.settle()
    return LeaderChat(lise, rows[1].id, rows[0].id, 4242)  # type: ignore[arg-type]


prompt_ids = st.one_of(st.sampled_from(["{open}", "{answered}"]), big_ints.map(str))
leader_presses = st.one_of(
    st.builds(
        "r:{}:{}".format,
        st.sampled_from(["ans", "skip", "later", "share", "unshare", "page"]),
        prompt_ids,
    ),
    st.builds(
        "r:why:{}:{}".format,
        prompt_ids,
        st.one_of(st.sampled_from(["not_relevant", "busy", "leave", "zzz"]), words),
    ),
    st.builds("r:time:{}".format, st.one_of(st.integers(0, 9999), big_ints)),
    st.builds("r:day:{}".format, st.integers(-1, 9)),
    st.builds("r:pause:{}".format, st.integers(-1, 9)),
    st.builds(
        "r:{}".format,
        st.sampled_from(
            ["set:day", "set:time", "set:lang", "lang:nb", "lang:nn", "stop:no", "stop:keep"]
        ),
    ),
    callback_data,
).filter(short)
typed = st.one_of(
    texts,
    st.sampled_from(["08:30", "kl. 7.05", "24:00", "23:59", "٠٨:٣٠", " 9:5 ", "01019000083"]),
    st.from_regex(r"\A\s*(kl\.?\s*)?\d{1,3}[:.]\d{1,3}\s*\Z"),
)
pressed = st.tuples(st.just("press"), leader_presses, st.sampled_from(["last", "inaccessible"]))
leader_actions = st.lists(
    st.one_of(
        pressed,
        pressed,
        st.tuples(st.just("write"), typed, st.just("")),
        st.tuples(st.just("edit"), typed, st.sampled_from(["answer", "last"])),
        st.tuples(
            st.just("write"),
            st.sampled_from(["/settings", "/pause", "/resume", "/answers", "/export", "/stop"]),
            st.just(""),
        ),
    ),
    min_size=1,
    max_size=3,
)


@settings(FUZZ, max_examples=max(1, EXAMPLES * 2 // 3))  # each example makes a leader
@example(  # bugs found here: an impossible time, ids beyond int64 (and PostgreSQL's int4), a
    # second tap on a page
    [
        ("press", "r:time:9999", "last"),
        ("press", f"r:ans:{2**80}", "last"),
        ("press", f"r:ans:{2**31}", "last"),
        ("press", f"r:page:{2**80}", "last"),
        ("press", "r:page:{open}", "last"),
        ("press", "r:page:{open}", "last"),
    ],
    "active",
)
@example([("press", "r:stop:no", "last"), ("press", "r:stop:no", "last")], "active")
@given(actions=leader_actions, step=st.sampled_from(["language", "weekday", "time", "active"]))
async def test_a_leader_can_press_and_write_anything(
    fuzz: Fuzz, actions: list[tuple[str, str, str]], step: str
) -> None:
    lise = await make_leader(fuzz, step)
    kari = lise.user
    for action, value, where in actions:
        seq = kari.seq
        if action == "press":
            value = lise.fill(value)
            # Buttons only ever sit under the bot's text messages (not under the export file).
            [*_, last] = [m for m in kari.sent_since(0) if m.text]
            message = last.telegram(fuzz.api.bot_user)
            if where == "inaccessible":
                message = {"message_id": last.message_id, "date": 0, "chat": kari.chat}
            query_id = await kari.press(value, message)
        elif action == "write":
            await kari.writes(value)
        else:
            target = lise.answer_message_id if where == "answer" else kari.last_message_id
            await kari.send_update(
                {
                    "edited_message": {
                        "message_id": target,
                        "date": int(time.time()),
                        "edit_date": int(time.time()),
                        "chat": kari.chat,
                        "from": kari.sender,
                        "text": value,
                    }
                }
            )
        await fuzz.settle()

        fuzz.assert_no_errors()
        sent = kari.sent_since(seq)
        assert not any((m.text or "").startswith(fuzz.say("nb", ERROR_TOLD)) for m in sent)
        if action == "press":
            assert fuzz.toast(query_id) is not None, f"the press on {value!r} was not answered"
        elif action == "write":
            assert sent, f"no answer to {value!r}"
        else:
            assert len(sent) <= 1, texts_of(sent)
