"""The user side as a Python client: a person writing to the bot and pressing its buttons.

Talks to the local Bot API only over HTTP, so it works against another process (demo, benchmark);
it must not import the server or reach into its state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

#: ``settle(update_id)`` returns once the bot has handled that update (None: nothing in
#: particular) and has nothing more due to send: then everything it will say now is said.
Settle = Callable[[int | None], Awaitable[None]]

_LATEST = 2**62  # an after_seq beyond any chat's sequence: "only tell me last_seq"


@dataclass(frozen=True, slots=True)
class Button:
    """An inline keyboard button as the person sees it."""

    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class BotMessage:
    """A message the bot sent to the person's chat, in its state when it was read."""

    seq: int
    message_id: int
    text: str  #: plain text, entities stripped (``""`` for a document or photo)
    html: str  #: the text as the bot sent it in HTML
    buttons: list[list[Button]] = field(default_factory=list)
    edited: bool = False
    deleted: bool = False
    document: dict[str, Any] | None = None
    photo: dict[str, Any] | None = None
    caption: str | None = None
    keyboard: list[list[str]] | None = None  #: reply keyboard texts; ``[]`` removed one
    reply_to_message_id: int | None = None

    @property
    def button_texts(self) -> list[str]:
        """Every inline button's visible text, row by row."""
        return [button.text for row in self.buttons for button in row]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BotMessage:
        return cls(
            seq=int(data["seq"]),
            message_id=int(data["message_id"]),
            text=data.get("text") or "",
            html=data.get("html") or "",
            buttons=[
                [Button(str(b.get("text", "")), b.get("callback_data"), b.get("url")) for b in row]
                for row in data.get("buttons") or []
            ],
            edited=bool(data.get("edited")),
            deleted=bool(data.get("deleted")),
            document=data.get("document"),
            photo=data.get("photo"),
            caption=data.get("caption"),
            keyboard=data.get("keyboard"),
            reply_to_message_id=data.get("reply_to_message_id"),
        )


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """How the bot answered a button press (the toast or alert the person sees)."""

    callback_query_id: str
    message_id: int
    data: str
    text: str | None
    show_alert: bool
    url: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallbackAnswer:
        return cls(
            callback_query_id=str(data["callback_query_id"]),
            message_id=int(data["message_id"]),
            data=str(data["data"]),
            text=data.get("text"),
            show_alert=bool(data.get("show_alert")),
            url=data.get("url"),
        )


class UserActionError(AssertionError):
    """The local Bot API refused a user action (no such message, no such button…)."""


def _describe(messages: list[BotMessage]) -> str:
    return "; ".join(repr(m.text or m.caption or "<file>") for m in messages)


class LocalUser:
    """A person in a private chat with the bot, over the local Bot API's user side.

    ``api_url`` is the server's root (``LocalBotApi.url``); a trailing ``/bot`` is ignored.

    How the person knows the bot is done answering: with ``settle`` (a bot in the same process,
    as in the tests) the bot says so, deterministically: the update is handled and nothing is
    due in its queue. Without it (a bot in another process: the demo, ``chat``), ``quiet``
    seconds of silence after the first message end the answer.
    """

    def __init__(
        self,
        api_url: str,
        user_id: int,
        first_name: str = "Kari",
        language_code: str | None = "nb",
        *,
        last_name: str | None = None,
        username: str | None = None,
        timeout: float = 5.0,
        quiet: float = 0.25,
        session: aiohttp.ClientSession | None = None,
        settle: Settle | None = None,
    ) -> None:
        url = api_url.rstrip("/")
        self.api_url = url.removesuffix("/bot")
        self.user_id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.last_name = last_name
        self.username = username
        self.timeout = timeout
        self.quiet = quiet
        self.settle = settle
        self.last_update_id: int | None = None  #: the update of the person's last action
        self.last_callback_answer: str | None = None  #: text of the last press's answer
        self.last_message_id: int | None = None  #: id of the person's last message
        self._session = session
        self._own_session = session is None
        self._seq = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> LocalUser:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect and skip what the bot sent this chat before (it is in `inbox()`)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        data = await self._get(f"/user/{self.user_id}/messages", after_seq=_LATEST)
        self._seq = int(data["last_seq"])

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # -- acting as the person -----------------------------------------------------------------

    async def says(
        self,
        text: str,
        *,
        reply_to: int | None = None,
        expect_silence: bool = False,
        timeout: float | None = None,
        quiet: float | None = None,
    ) -> list[BotMessage]:
        """Write ``text`` to the bot; return what it sent or edited in answer, in seq order."""
        await self.writes(text, reply_to=reply_to)
        return await self._answer_to(
            repr(text), expect_silence, timeout, quiet, update_id=self.last_update_id
        )

    async def writes(self, text: str, *, reply_to: int | None = None) -> int:
        """Write ``text`` without waiting for an answer; returns the person's message_id."""
        body: dict[str, Any] = {"text": text, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                body[key] = getattr(self, key)
        if reply_to is not None:
            body["reply_to_message_id"] = reply_to
        data = await self._post(f"/user/{self.user_id}/messages", body)
        self.last_message_id = int(data["message_id"])
        self.last_update_id = int(data["update_id"])
        return self.last_message_id

    async def presses(
        self,
        text: str | None = None,
        *,
        callback_data: str | None = None,
        message_id: int | None = None,
        expect_silence: bool = False,
        timeout: float | None = None,
        quiet: float | None = None,
    ) -> list[BotMessage]:
        """Press a button by its visible text (or ``callback_data``) on the newest message that
        has it (or on ``message_id``); return what the bot sent or edited in answer.

        A reply-keyboard button is pressed by writing its text, as Telegram does.
        """
        if (text is None) == (callback_data is None):
            raise ValueError("press a button either by its text or by its callback_data")
        messages = sorted(await self.inbox(), key=lambda m: m.message_id, reverse=True)
        if message_id is not None:
            messages = [m for m in messages if m.message_id == message_id]
        for message in messages:
            for row in message.buttons:
                for button in row:
                    if (text is not None and button.text == text) or (
                        callback_data is not None and button.callback_data == callback_data
                    ):
                        return await self._press(message, button, expect_silence, timeout, quiet)
        if text is not None:
            keyboard = next((m.keyboard for m in messages if m.keyboard is not None), None)
            if keyboard and any(text in row for row in keyboard):
                return await self.says(
                    text, expect_silence=expect_silence, timeout=timeout, quiet=quiet
                )
        visible = [b for m in messages for b in m.button_texts]
        wanted = repr(text) if text is not None else f"with callback_data {callback_data!r}"
        raise AssertionError(f"no button {wanted} in the chat; buttons there: {visible}")

    async def _press(
        self,
        message: BotMessage,
        button: Button,
        expect_silence: bool,
        timeout: float | None,
        quiet: float | None,
    ) -> list[BotMessage]:
        if button.callback_data is None:
            raise AssertionError(f"button {button.text!r} opens {button.url}; it sends nothing")
        self.last_callback_answer = None
        data = await self._post(
            f"/user/{self.user_id}/callbacks",
            {"message_id": message.message_id, "data": button.callback_data},
        )
        query_id = str(data["callback_query_id"])
        self.last_update_id = int(data["update_id"])
        replies = await self._answer_to(
            f"the press on {button.text!r}",
            expect_silence,
            timeout,
            quiet,
            query_id,
            update_id=self.last_update_id,
        )
        if self.last_callback_answer is None:
            for answer in await self.callback_answers():
                if answer.callback_query_id == query_id:
                    self.last_callback_answer = answer.text
        return replies

    async def edits(
        self,
        message_id: int,
        text: str,
        *,
        expect_silence: bool = False,
        timeout: float | None = None,
        quiet: float | None = None,
    ) -> list[BotMessage]:
        """Edit one of the person's own messages; return the bot's answer."""
        data = await self._post(
            f"/user/{self.user_id}/edits", {"message_id": message_id, "text": text}
        )
        self.last_update_id = int(data["update_id"])
        return await self._answer_to(
            f"the edit to {text!r}", expect_silence, timeout, quiet, update_id=self.last_update_id
        )

    async def replies(
        self, *, timeout: float | None = None, quiet: float | None = None
    ) -> list[BotMessage]:
        """Wait for the bot to write on its own (a check-in, a weekly question)."""
        return await self._answer_to(None, False, timeout, quiet)

    async def silence(self, seconds: float | None = None) -> None:
        """Assert that the bot sends nothing: with ``settle``, nothing by the time it has
        nothing due; without, nothing for ``seconds`` (default: the quiet window)."""
        await self._answer_to(None, True, None, seconds)

    async def block(self) -> None:
        """Block the bot: its sends fail with 403 until the person writes again or unblocks."""
        await self._post(f"/user/{self.user_id}/block", {})

    async def unblock(self) -> None:
        await self._post(f"/user/{self.user_id}/unblock", {})

    async def send_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update for the bot (odd or malformed ones); returns its update_id."""
        data = await self._post("/user/updates", update)
        return int(data["update_id"])

    # -- reading ------------------------------------------------------------------------------

    async def inbox(self, *, include_deleted: bool = False) -> list[BotMessage]:
        """Everything the bot sent this chat, in its current state, oldest first."""
        data = await self._get(f"/user/{self.user_id}/messages", after_seq=0)
        messages = [BotMessage.from_json(m) for m in data["messages"]]
        messages = [m for m in messages if include_deleted or not m.deleted]
        return sorted(messages, key=lambda m: m.message_id)

    async def callback_answers(self) -> list[CallbackAnswer]:
        data = await self._get(f"/user/{self.user_id}/callback_answers")
        return [CallbackAnswer.from_json(a) for a in data["callback_answers"]]

    async def commands(self, language_code: str | None = None) -> list[tuple[str, str]]:
        """The command menu this person sees, as ``(command, description)`` pairs."""
        language = language_code or self.language_code
        query = {"language_code": language} if language else {}
        data = await self._get(f"/user/{self.user_id}/commands", **query)
        return [(c["command"], c["description"]) for c in data["commands"]]

    async def file(self, message_id: int) -> bytes:
        """The raw bytes of the document or photo in the bot's message ``message_id``."""
        session = self._require_session()
        url = f"{self.api_url}/user/{self.user_id}/files/{message_id}"
        async with session.get(url) as response:
            if response.status != 200:
                raise UserActionError(f"no file in message {message_id}: {await response.text()}")
            return await response.read()

    # -- plumbing -----------------------------------------------------------------------------

    async def _answer_to(
        self,
        what: str | None,
        expect_silence: bool,
        timeout: float | None,
        quiet: float | None,
        callback_query_id: str | None = None,
        *,
        update_id: int | None = None,
    ) -> list[BotMessage]:
        timeout = self.timeout if timeout is None else timeout
        quiet = self.quiet if quiet is None else quiet
        collected: dict[int, BotMessage] = {}
        if self.settle is not None:
            return await self._settled_answer(
                what, expect_silence, timeout, callback_query_id, update_id
            )
        if expect_silence:
            first = await self._wait(quiet, callback_query_id)
            self._take(first, collected)
            if collected:
                sent = _describe(list(collected.values()))
                if what is None:
                    raise AssertionError(f"expected silence, but the bot sent: {sent}")
                raise AssertionError(f"expected no answer to {what}, but the bot sent: {sent}")
            return []
        first = await self._wait(timeout, callback_query_id)
        self._take(first, collected)
        if not collected and first.get("callback_answer") is None:
            if what is None:
                raise AssertionError(f"the bot sent nothing within {timeout:g} s")
            raise AssertionError(f"the bot did not answer {what} within {timeout:g} s")
        while True:
            more = await self._wait(quiet)
            if not self._take(more, collected):
                break
        return sorted(collected.values(), key=lambda m: m.seq)

    async def _settled_answer(
        self,
        what: str | None,
        expect_silence: bool,
        timeout: float,
        callback_query_id: str | None,
        update_id: int | None,
    ) -> list[BotMessage]:
        """The answer, once the bot says it is done (``settle``): no window of silence."""
        assert self.settle is not None
        collected: dict[int, BotMessage] = {}
        if update_id is None and not expect_silence:
            # Something the bot sends on its own: wait for the first of it, then for the rest.
            self._take(await self._wait(timeout), collected)
            if not collected:
                raise AssertionError(f"the bot sent nothing within {timeout:g} s")
        try:
            await asyncio.wait_for(self.settle(update_id), timeout)
        except TimeoutError:
            raise AssertionError(f"the bot was not done with {what} within {timeout:g} s") from None
        final = await self._wait(0, callback_query_id)
        self._take(final, collected)
        if expect_silence:
            if collected:
                sent = _describe(list(collected.values()))
                if what is None:
                    raise AssertionError(f"expected silence, but the bot sent: {sent}")
                raise AssertionError(f"expected no answer to {what}, but the bot sent: {sent}")
            return []
        if not collected and final.get("callback_answer") is None:
            raise AssertionError(f"the bot did not answer {what}")
        return sorted(collected.values(), key=lambda m: m.seq)

    def _take(self, data: dict[str, Any], collected: dict[int, BotMessage]) -> bool:
        answer = data.get("callback_answer")
        if answer is not None:
            self.last_callback_answer = answer.get("text")
        messages = [BotMessage.from_json(m) for m in data.get("messages", [])]
        for message in messages:
            collected[message.message_id] = message
            self._seq = max(self._seq, message.seq)
        return bool(messages)

    async def _wait(self, timeout: float, callback_query_id: str | None = None) -> dict[str, Any]:
        query: dict[str, Any] = {"after_seq": self._seq, "timeout": f"{timeout:.3f}"}
        if callback_query_id is not None:
            query["callback_query_id"] = callback_query_id
        return await self._get(f"/user/{self.user_id}/wait", **query)

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use 'async with LocalUser(...)' or call open() first")
        return self._session

    async def _get(self, path: str, **query: Any) -> dict[str, Any]:
        session = self._require_session()
        params = {key: str(value) for key, value in query.items()}
        async with session.get(f"{self.api_url}{path}", params=params) as response:
            return await self._json(response)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        session = self._require_session()
        async with session.post(f"{self.api_url}{path}", json=body) as response:
            return await self._json(response)

    @staticmethod
    async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
        data = await response.json(content_type=None)
        if response.status >= 400:
            error = data.get("error") if isinstance(data, dict) else data
            raise UserActionError(f"the local Bot API refused: {error}")
        if not isinstance(data, dict):
            raise UserActionError(f"unexpected answer from the local Bot API: {data!r}")
        return data


class LocalGroup(LocalUser):
    """A group chat with the bot in it, as its members act in it: adding the bot (with a
    ``startgroup`` link's payload), writing, replying to the bot, removing it, and the group
    becoming a supergroup. Reading (``replies``, ``inbox``, ``silence``) is the group's chat.

    ``member`` is the person who acts unless another ``by`` is given.
    """

    def __init__(
        self,
        api_url: str,
        chat_id: int,
        title: str,
        member: int,
        *,
        member_name: str = "Kari",
        timeout: float = 5.0,
        quiet: float = 0.25,
        session: aiohttp.ClientSession | None = None,
        settle: Settle | None = None,
    ) -> None:
        if chat_id >= 0:
            raise ValueError("a group's chat id is negative")
        super().__init__(
            api_url,
            chat_id,
            member_name,
            None,
            timeout=timeout,
            quiet=quiet,
            session=session,
            settle=settle,
        )
        self.title = title
        self.member = member

    @property
    def chat_id(self) -> int:
        return self.user_id

    async def adds_bot(
        self, start: str | None = None, *, by: int | None = None, expect_silence: bool = False
    ) -> list[BotMessage]:
        """A member adds the bot to the group, with a ``startgroup`` payload if given; what the
        bot said in the group in answer."""
        body: dict[str, Any] = {
            "chat_id": self.chat_id,
            "title": self.title,
            "first_name": self.first_name,
        }
        if start is not None:
            body["start"] = start
        data = await self._post(f"/user/{by or self.member}/groups", body)
        update_id = data.get("start_update_id") or data["update_id"]
        if self.settle is not None:  # the member update first, then the /start
            await asyncio.wait_for(self.settle(int(data["update_id"])), self.timeout)
        self.last_update_id = int(update_id)
        return await self._answer_to(
            "the bot being added", expect_silence, None, None, update_id=self.last_update_id
        )

    async def says(
        self,
        text: str,
        *,
        by: int | None = None,
        reply_to: int | None = None,
        expect_silence: bool = False,
        timeout: float | None = None,
        quiet: float | None = None,
    ) -> list[BotMessage]:
        """A member writes in the group (``by``, else ``member``); the bot's answer, if any."""
        body: dict[str, Any] = {"text": text, "first_name": self.first_name}
        if reply_to is not None:
            body["reply_to_message_id"] = reply_to
        data = await self._post(f"/user/{by or self.member}/groups/{self.chat_id}/messages", body)
        self.last_message_id = int(data["message_id"])
        delivered = data.get("update_id")
        self.last_update_id = int(delivered) if delivered is not None else None
        return await self._answer_to(
            repr(text), expect_silence, timeout, quiet, update_id=self.last_update_id
        )

    async def removes_bot(self, *, by: int | None = None, kicked: bool = False) -> None:
        """A member removes the bot from the group (and bans it, with ``kicked``); returns once
        the bot has handled it."""
        data = await self._post(
            f"/user/{by or self.member}/groups/{self.chat_id}/remove", {"kicked": kicked}
        )
        self.last_update_id = int(data["update_id"])
        if self.settle is not None:
            await asyncio.wait_for(self.settle(self.last_update_id), self.timeout)

    async def becomes_supergroup(self, *, by: int | None = None) -> int:
        """The group is upgraded to a supergroup; this object follows it to its new chat id."""
        data = await self._post(f"/user/{by or self.member}/groups/{self.chat_id}/migrate", {})
        self.user_id = int(data["chat_id"])
        await self.open()
        if self.settle is not None:
            await asyncio.wait_for(self.settle(None), self.timeout)
        return self.user_id
