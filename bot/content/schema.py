"""Strict schemas for ``content/advice/*.yaml`` and ``content/reflection/*.yaml``.

Every user-visible field is typed ``Text`` so one walker (``translatable_strings``) finds it for
the Babel extractor, the content check and localisation alike. No I/O here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator


class _Translatable:
    """Marker in ``Annotated`` metadata: this string is shown to people and gets translated."""

    def __repr__(self) -> str:  # pragma: no cover - shows in schema dumps only
        return "Translatable"


TRANSLATABLE = _Translatable()

# A user-visible string: stripped, never empty, and found by ``translatable_strings``.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), TRANSLATABLE]
# An id used in links, catalogs and the database: short, lowercase, stable.
Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]

Status = Literal["draft", "approved"]
# What a caller must do when a worsening sign appears.
Action = Literal["call_116117", "call_113"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Reviewed(Strict):
    """Fields every content file carries: identity, version and clinical/editorial review."""

    id: Id
    version: Annotated[int, Field(ge=1)]
    status: Status
    reviewed_by: str | None = None
    reviewed_at: dt.date | None = None

    @model_validator(mode="after")
    def _approved_needs_review(self) -> Reviewed:
        if self.status == "approved" and not (self.reviewed_by and self.reviewed_at):
            raise ValueError("approved content needs both reviewed_by and reviewed_at")
        return self


# --- advice -------------------------------------------------------------------------------


class WorseningSign(Strict):
    """One concrete, observable sign (numbers, times, what you see) and what to do about it."""

    id: Id
    sign: Text
    action: Action


class RiskGroup(Strict):
    """Extra advice a nurse may add for a group at higher risk, e.g. pregnancy."""

    id: Id
    label: Text  # what the nurse picks and the caller sees as a heading
    advice: Text


class Tailoring(Strict):
    """The slots a nurse may fill for one caller."""

    note: bool = True  # a free-text note of at most 500 characters
    risk_groups: list[RiskGroup] = []
    checkin_hours: list[Annotated[int, Field(ge=1, le=168)]] = []  # suggested check-in times


class AdviceTopic(Reviewed):
    """One common reason for contacting the legevakt, with standardised advice."""

    example: bool = False  # shipped example text, awaiting clinical approval
    title: Text
    summary: Text
    self_care: Annotated[list[Text], Field(min_length=1)]
    normal: Annotated[list[Text], Field(min_length=1)]  # what is normal, and for how long
    worsening_signs: Annotated[list[WorseningSign], Field(min_length=1)]
    tailoring: Tailoring = Tailoring()

    @model_validator(mode="after")
    def _unique_ids(self) -> AdviceTopic:
        _require_unique("worsening_signs", [s.id for s in self.worsening_signs])
        _require_unique("tailoring.risk_groups", [r.id for r in self.tailoring.risk_groups])
        return self


# --- reflection ---------------------------------------------------------------------------


class Role(Strict):
    """A leader role the questions are written for (the deck's "Til deg som …")."""

    id: Id
    title: Text  # short, for buttons and reports
    description: Text  # who this is, in the deck's words


class FollowUp(Strict):
    """A sub-question that belongs to a main question (the deck's "•" under "❑")."""

    id: Id
    text: Text


class Question(Strict):
    """One reflection question, word for word from the learning deck, for one role."""

    id: Id
    role: Id
    text: Text
    follow_ups: list[FollowUp] = []


class Theme(Strict):
    id: Id
    title: Text
    intro: Text | None = None  # shown before the theme's first question
    prompt: Text | None = None  # the deck's general instruction for the theme's questions
    questions: Annotated[list[Question], Field(min_length=1)]


class Programme(Reviewed):
    """A reflection programme from one learning deck: roles, and themes with questions."""

    title: Text
    source: str = Field(min_length=1)  # the deck it is taken from (not translated)
    intro: Text | None = None
    roles: Annotated[list[Role], Field(min_length=1)]
    themes: Annotated[list[Theme], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> Programme:
        role_ids = [r.id for r in self.roles]
        _require_unique("roles", role_ids)
        _require_unique("themes", [t.id for t in self.themes])
        question_ids = [q.id for t in self.themes for q in t.questions]
        _require_unique("questions", question_ids)
        for theme in self.themes:
            for question in theme.questions:
                if question.role not in role_ids:
                    raise ValueError(
                        f"question '{question.id}' names the role '{question.role}', which this "
                        f"programme does not define (roles: {', '.join(role_ids)})"
                    )
        return self

    def questions_for(self, role_id: str) -> list[tuple[Theme, Question]]:
        """The role's questions in programme order."""
        return [(t, q) for t in self.themes for q in t.questions if q.role == role_id]


def _require_unique(field: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"the id '{item}' appears twice in {field}")
        seen.add(item)


# --- walking the user-visible strings ------------------------------------------------------

# A path into a content file, as YAML keys and list positions: ("worsening_signs", 2, "sign").
Path = tuple[str | int, ...]


class StringRef(NamedTuple):
    """One user-visible string of a content file.

    ``path`` finds it in the YAML (for line numbers); ``key`` names it stably for translators,
    with item ids rather than positions where items have them: ``worsening_signs[fast].sign``.
    """

    path: Path
    key: str
    text: str


def translatable_strings(model: BaseModel) -> Iterator[StringRef]:
    """Yield every ``Text`` field of a content model, in file order."""
    yield from _walk_model(model, (), "")


def _walk_model(model: BaseModel, path: Path, key: str) -> Iterator[StringRef]:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        text = TRANSLATABLE in field.metadata or _is_text(field.annotation)
        yield from _walk(value, (*path, name), f"{key}.{name}" if key else name, text)


def _walk(value: Any, path: Path, key: str, text: bool) -> Iterator[StringRef]:
    if isinstance(value, BaseModel):
        yield from _walk_model(value, path, key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            label = getattr(item, "id", None) if isinstance(item, BaseModel) else None
            yield from _walk(item, (*path, index), f"{key}[{label or index}]", text)
    elif isinstance(value, str) and text:
        yield StringRef(path, key, value)


def _is_text(annotation: Any) -> bool:
    """Whether a type is ``Text`` or a container/optional of it."""
    if TRANSLATABLE in getattr(annotation, "__metadata__", ()):
        return True
    return any(_is_text(arg) for arg in get_args(annotation))
