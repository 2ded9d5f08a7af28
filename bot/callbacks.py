"""Callback data: one small typed class per button family, in the spirit of aiogram's CallbackData.

A class names its prefix and its fields; ``pack()`` writes ``prefix:field:field`` (at most 64
bytes, Telegram's limit) and ``unpack()`` reads it back into the typed fields or returns None for
anything this family did not write. Handlers receive the instance, never a string to split.

The wire formats are the ones earlier versions wrote, so buttons already in people's chats keep
working. Fields may be ``int``, ``str`` or a ``Literal`` of strings; nothing here knows Telegram.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any, ClassVar, Literal, Self, cast, get_args, get_origin

MAX_BYTES = 64  # Telegram's limit for callback_data
_DISPATCH = re.compile(r"[0-9a-f]{32}")
_SAFE = re.compile(r"^[A-Za-z0-9_.-]*$")  # a str field: no separator, nothing odd


class CallbackData:
    """Base of the families. Subclasses are frozen dataclasses with a ``prefix``."""

    prefix: ClassVar[str]

    def pack(self) -> str:
        values = []
        for field in dataclasses.fields(cast(Any, self)):
            value = getattr(self, field.name)
            text = str(value)
            if isinstance(value, bool) or not _SAFE.match(text) or text == "":
                raise ValueError(f"{type(self).__name__}.{field.name}: {text!r} cannot be packed")
            values.append(text)
        data = ":".join([self.prefix, *values])
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data longer than {MAX_BYTES} bytes: {data!r}")
        return data

    @classmethod
    def unpack(cls, data: object) -> Self | None:
        """The typed value behind ``data``, or None if this family did not write it."""
        if not isinstance(data, str):
            return None
        if data == cls.prefix:
            parts: list[str] = []
        elif data.startswith(cls.prefix + ":"):
            parts = data[len(cls.prefix) + 1 :].split(":")
        else:
            return None
        fields = dataclasses.fields(cast(Any, cls))
        if len(parts) != len(fields):
            return None
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for field, part in zip(fields, parts, strict=True):
            value = _convert(hints[field.name], part)
            if value is None:
                return None
            values[field.name] = value
        made = cls(**values)
        return made if made.valid() else None

    def valid(self) -> bool:
        """Whether the decoded values are ones this bot writes (ranges, shapes)."""
        return True

    @classmethod
    def matches(cls, data: object) -> bool:
        """For python-telegram-bot's ``CallbackQueryHandler(pattern=…)``."""
        return cls.unpack(data) is not None


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _convert(hint: Any, part: str) -> Any:
    if hint is int:
        if not re.fullmatch(r"-?[0-9]{1,18}", part):
            return None
        return int(part)
    if get_origin(hint) is Literal:
        return part if part in get_args(hint) else None
    if hint is str:
        return part if part and _SAFE.match(part) else None
    raise TypeError(f"unsupported callback field type {hint!r}")


# --- the families ------------------------------------------------------------------------------

Locale = Literal["nb", "nn"]
CheckinAnswer = Literal["better", "same", "worse"]
PromptAction = Literal["ans", "skip", "later", "share", "shareok", "sharenot", "unshare"]
SkipReason = Literal["not_relevant", "busy", "leave"]
SettingsField = Literal["day", "time", "lang"]
StopChoice = Literal["delete", "keep", "no"]
DeleteStep = Literal["yes", "no"]


@dataclasses.dataclass(frozen=True)
class ChooseLanguage(CallbackData):
    """/language: "lang:nb"."""

    prefix: ClassVar[str] = "lang"

    locale: Locale


@dataclasses.dataclass(frozen=True)
class DeleteData(CallbackData):
    """ "Delete my data": "privacy:delete" (no fields)."""

    prefix: ClassVar[str] = "privacy:delete"


@dataclasses.dataclass(frozen=True)
class ConfirmDelete(CallbackData):
    """The answer to "delete everything?": "privacy:delete:yes" / ":no"."""

    prefix: ClassVar[str] = "privacy:delete"

    answer: DeleteStep


@dataclasses.dataclass(frozen=True)
class Worse(CallbackData):
    """ "I am getting worse" under the advice: "a:worse:<dispatch>"."""

    prefix: ClassVar[str] = "a:worse"

    dispatch: str

    def valid(self) -> bool:
        return _DISPATCH.fullmatch(self.dispatch) is not None


@dataclasses.dataclass(frozen=True)
class AdviceLanguage(CallbackData):
    """The advice in the other language: "a:lang:<dispatch>:nn"."""

    prefix: ClassVar[str] = "a:lang"

    dispatch: str
    locale: Locale

    def valid(self) -> bool:
        return _DISPATCH.fullmatch(self.dispatch) is not None


@dataclasses.dataclass(frozen=True)
class Checkin(CallbackData):
    """An answer to the check-in: "a:ci:<dispatch>:better"."""

    prefix: ClassVar[str] = "a:ci"

    dispatch: str
    answer: CheckinAnswer

    def valid(self) -> bool:
        return _DISPATCH.fullmatch(self.dispatch) is not None


@dataclasses.dataclass(frozen=True)
class PromptButton(CallbackData):
    """Under a weekly question or an answer: "r:ans:<prompt>", "r:share:<prompt>" (then
    "r:shareok:…" / "r:sharenot:…" to confirm), "r:unshare:…"."""

    prefix: ClassVar[str] = "r"

    action: PromptAction
    prompt: int

    def valid(self) -> bool:
        return self.prompt >= 0


@dataclasses.dataclass(frozen=True)
class Skipped(CallbackData):
    """Why a question was skipped: "r:why:<prompt>:busy"."""

    prefix: ClassVar[str] = "r:why"

    prompt: int
    reason: SkipReason

    def valid(self) -> bool:
        return self.prompt >= 0


@dataclasses.dataclass(frozen=True)
class LeaderLanguage(CallbackData):
    """A leader's language, while enrolling or in /settings: "r:lang:nn"."""

    prefix: ClassVar[str] = "r:lang"

    locale: Locale


@dataclasses.dataclass(frozen=True)
class Weekday(CallbackData):
    """A leader's weekday: "r:day:0" (Monday) … "r:day:6"."""

    prefix: ClassVar[str] = "r:day"

    weekday: int

    def valid(self) -> bool:
        return 0 <= self.weekday <= 6


@dataclasses.dataclass(frozen=True)
class TimeOfDay(CallbackData):
    """A leader's time of day in minutes: "r:time:540" (09:00)."""

    prefix: ClassVar[str] = "r:time"

    minute: int

    def valid(self) -> bool:
        return 0 <= self.minute < 24 * 60


@dataclasses.dataclass(frozen=True)
class ChangeSetting(CallbackData):
    """/settings: "r:set:day", "r:set:time", "r:set:lang"."""

    prefix: ClassVar[str] = "r:set"

    what: SettingsField


@dataclasses.dataclass(frozen=True)
class Pause(CallbackData):
    """/pause: weeks, 0 for "until /resume": "r:pause:2"."""

    prefix: ClassVar[str] = "r:pause"

    weeks: int

    def valid(self) -> bool:
        return 0 <= self.weeks <= 4


@dataclasses.dataclass(frozen=True)
class Stop(CallbackData):
    """/stop: "r:stop:delete", "r:stop:keep", "r:stop:no"."""

    prefix: ClassVar[str] = "r:stop"

    choice: StopChoice


@dataclasses.dataclass(frozen=True)
class AnswersPage(CallbackData):
    """/answers: the page starting at ``offset``: "r:page:5"."""

    prefix: ClassVar[str] = "r:page"

    offset: int

    def valid(self) -> bool:
        return 0 <= self.offset < 10**9


@dataclasses.dataclass(frozen=True)
class AnswersQuestions(CallbackData):
    """/answers: the questions one has answered, as buttons to filter by: "r:aqs"."""

    prefix: ClassVar[str] = "r:aqs"


@dataclasses.dataclass(frozen=True)
class AnswersByQuestion(CallbackData):
    """/answers to one question, the page at ``offset``: "r:aq:<question id>:0"."""

    prefix: ClassVar[str] = "r:aq"

    question: str
    offset: int

    def valid(self) -> bool:
        return len(self.question) <= 40 and 0 <= self.offset < 10**9


# --- #Råbra ------------------------------------------------------------------------------------

RaabraChoice = Literal["private", "anonymous", "named"]
RaabraDeleteStep = Literal["ask", "yes", "no"]


@dataclasses.dataclass(frozen=True)
class RaabraNew(CallbackData):
    """ "Something that went well?" under the weekly question: "rb:new" (no fields)."""

    prefix: ClassVar[str] = "rb:new"


@dataclasses.dataclass(frozen=True)
class RaabraCancel(CallbackData):
    """Not now, while the bot waits for a story: "rb:cancel"."""

    prefix: ClassVar[str] = "rb:cancel"


@dataclasses.dataclass(frozen=True)
class RaabraTheme(CallbackData):
    """A story's theme: "rb:th:<story>:<theme id>", "none" for no theme."""

    prefix: ClassVar[str] = "rb:th"

    story: int
    theme: str

    def valid(self) -> bool:
        return self.story > 0 and len(self.theme) <= 40


@dataclasses.dataclass(frozen=True)
class RaabraShare(CallbackData):
    """Who may read a story: "rb:sh:<story>:private" / ":anonymous" / ":named"."""

    prefix: ClassVar[str] = "rb:sh"

    story: int
    choice: RaabraChoice

    def valid(self) -> bool:
        return self.story > 0


@dataclasses.dataclass(frozen=True)
class RaabraMine(CallbackData):
    """/raabra mine: the page of one's own stories starting at ``offset``: "rb:mine:5"."""

    prefix: ClassVar[str] = "rb:mine"

    offset: int

    def valid(self) -> bool:
        return 0 <= self.offset < 10**9


@dataclasses.dataclass(frozen=True)
class RaabraOpen(CallbackData):
    """One of one's own stories, whole, with what can be done with it: "rb:open:<story>"."""

    prefix: ClassVar[str] = "rb:open"

    story: int

    def valid(self) -> bool:
        return self.story > 0


@dataclasses.dataclass(frozen=True)
class RaabraDelete(CallbackData):
    """Delete one's own story: "rb:del:<story>:ask", then ":yes" / ":no"."""

    prefix: ClassVar[str] = "rb:del"

    story: int
    step: RaabraDeleteStep

    def valid(self) -> bool:
        return self.story > 0


# --- leader groups and exports ---------------------------------------------------------------

GroupShareStep = Literal["pick", "to", "post", "cancel"]
ShownName = Literal["full", "first", "none"]


@dataclasses.dataclass(frozen=True)
class GroupShare(CallbackData):
    """Sharing an answer to a leader group: "g:pick:<prompt>:0:full" ("Share in the group"),
    "g:to:<prompt>:<group>:<name>" (the preview, with the name shown so), "g:post:…" (post
    it), "g:cancel:…"."""

    prefix: ClassVar[str] = "g"

    step: GroupShareStep
    prompt: int
    group: int
    name: ShownName

    def valid(self) -> bool:
        return self.prompt >= 0 and self.group >= 0


ExportFormat = Literal["csv", "md"]


@dataclasses.dataclass(frozen=True)
class Export(CallbackData):
    """/export in another format: "r:export:csv"."""

    prefix: ClassVar[str] = "r:export"

    format: ExportFormat
