"""Strict schemas for ``content/advice/*.yaml`` and ``content/reflection/*.yaml``.

Every user-visible field is typed ``Text`` so one walker (``translatable_strings``) finds it for
the Babel extractor, the content check and localisation alike. No I/O here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)


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
# How soon a caller must act on a worsening sign, most urgent first. They follow the three
# levels of Norsk indeks for medisinsk nødhjelp (red "akutt", yellow "haster", green "vanlig"):
#   emergency  life-threatening: call 113 now
#   urgent     urgent but not life-threatening: call the legevakt on 116 117 now
#   soon       contact a doctor today, or the GP on the next working day
Tier = Literal["emergency", "urgent", "soon"]
TIERS: tuple[Tier, ...] = get_args(Tier)
# Every topic needs at least one sign in each of these tiers.
REQUIRED_TIERS: tuple[Tier, ...] = ("emergency", "urgent")
# Who a topic is written for; decides how it speaks of the person ("du", "barnet").
Audience = Literal["adults", "children", "everyone"]
# An age as an admin writes it: "3 months", "16 years".
Age = Annotated[str, StringConstraints(pattern=r"^\d{1,3} (months|years)$")]
# Where a claim group's text comes from: a page or chapter anyone can open.
Url = Annotated[str, StringConstraints(pattern=r"^https://\S+$")]
# The validation context under which a dispatch's stored copy of a topic is read back: it was
# valid when it was made, and is shown as it was even if the rules for new content grew since.
SNAPSHOT = "snapshot"


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
    """One concrete, observable sign (numbers, times, what you see) and how soon to act on it."""

    id: Id
    sign: Text
    tier: Tier


class RiskGroup(Strict):
    """Extra advice a nurse may add for a group at higher risk, e.g. pregnancy.

    ``signs`` join the topic's own signs under their tier; ``advice`` is shown under the label.
    """

    id: Id
    label: Text  # what the nurse picks and the caller sees as a heading
    advice: Text | None = None
    signs: list[WorseningSign] = []

    @model_validator(mode="after")
    def _says_something(self) -> RiskGroup:
        if self.advice is None and not self.signs:
            raise ValueError(f"the risk group '{self.id}' needs advice, signs or both")
        _require_unique(f"the signs of risk group '{self.id}'", [s.id for s in self.signs])
        return self


class Tailoring(Strict):
    """The slots a nurse may fill for one caller."""

    note: bool = True  # a free-text note of at most 500 characters
    risk_groups: list[RiskGroup] = []
    checkin_hours: list[Annotated[int, Field(ge=1, le=168)]] = []  # suggested check-in times


def age_in_months(age: str) -> int:
    """ "3 months" → 3, "16 years" → 192."""
    number, unit = age.split()
    return int(number) * (12 if unit == "years" else 1)


class Scope(Strict):
    """Who a topic is for. ``who`` is shown to the caller under the title; the rest is for the
    nurse who chooses the topic and the clinician who approves it."""

    audience: Audience
    min_age: Age | None = None  # inclusive
    max_age: Age | None = None  # inclusive: "12 years" means until the 13th birthday
    who: Text  # e.g. "Rådene gjelder barn fra 3 måneder til 12 år."
    not_for: list[str] = []  # who must not follow this advice, and why (for the nurse)

    @model_validator(mode="after")
    def _ages_in_order(self) -> Scope:
        if (
            self.min_age is not None
            and self.max_age is not None
            and age_in_months(self.min_age) > age_in_months(self.max_age)
        ):
            raise ValueError(f"min_age {self.min_age} is above max_age {self.max_age}")
        return self


# What a source can back: a section of the topic, or one sign or risk group by its id.
SECTIONS = ("summary", "self_care", "normal", "worsening_signs", "scope", "risk_groups")
# Sections every topic must back with at least one source.
SOURCED_SECTIONS = ("self_care", "normal", "worsening_signs")


class Source(Strict):
    """A published page or chapter a topic's claims are taken from (in our own words)."""

    id: Id
    publisher: str = Field(min_length=1)  # Helsenorge, Norsk legevakthåndbok, FHI, NHI …
    title: str = Field(min_length=1)  # as the publisher titles it
    url: Url
    covers: Annotated[list[str], Field(min_length=1)]  # sections, sign ids or risk-group ids


class AdviceTopic(Reviewed):
    """One common reason for contacting the legevakt, with standardised advice.

    New content must say who it is for (``scope``), where it comes from (``sources``) and have
    at least one sign in each of ``REQUIRED_TIERS``. A dispatch's stored copy is read with the
    ``SNAPSHOT`` context, which skips those rules: it was made before they existed.
    """

    example: bool = False  # shipped example text, awaiting clinical approval
    title: Text
    scope: Scope | None = Field(default=None, validate_default=True)
    summary: Text
    self_care: Annotated[list[Text], Field(min_length=1)]
    normal: Annotated[list[Text], Field(min_length=1)]  # what is normal, and for how long
    worsening_signs: Annotated[list[WorseningSign], Field(min_length=1)]
    tailoring: Tailoring = Tailoring()
    sources: list[Source] = Field(default=[], validate_default=True)

    @model_validator(mode="after")
    def _unique_ids(self) -> AdviceTopic:
        _require_unique("worsening_signs", [s.id for s in self.worsening_signs])
        _require_unique("tailoring.risk_groups", [r.id for r in self.tailoring.risk_groups])
        _require_unique("sources", [s.id for s in self.sources])
        return self

    @field_validator("scope", mode="after")
    @classmethod
    def _has_scope(cls, scope: Scope | None, info: ValidationInfo) -> Scope | None:
        if scope is None and not _snapshot(info):
            raise ValueError(
                "every topic needs a scope: who it is for (audience, ages, who, not_for)"
            )
        return scope

    @field_validator("sources", mode="after")
    @classmethod
    def _has_sources(cls, sources: list[Source], info: ValidationInfo) -> list[Source]:
        if not sources and not _snapshot(info):
            raise ValueError(
                "every topic needs its sources: publisher, title, url and what each covers"
            )
        return sources

    @field_validator("worsening_signs", mode="after")
    @classmethod
    def _tiers_covered(
        cls, signs: list[WorseningSign], info: ValidationInfo
    ) -> list[WorseningSign]:
        if _snapshot(info):
            return signs
        missing = [tier for tier in REQUIRED_TIERS if not any(s.tier == tier for s in signs)]
        if missing:
            raise ValueError(
                "needs at least one sign in each of the tiers "
                + " and ".join(f"'{t}'" for t in REQUIRED_TIERS)
                + f"; none is '{missing[0]}'"
            )
        return signs

    @model_validator(mode="after")
    def _sources_cover_what_they_say(self, info: ValidationInfo) -> AdviceTopic:
        if _snapshot(info):
            return self
        known = set(SECTIONS)
        known |= {s.id for s in self.worsening_signs}
        known |= {r.id for r in self.tailoring.risk_groups}
        for source in self.sources:
            for item in source.covers:
                if item not in known:
                    raise ValueError(
                        f"the source '{source.id}' covers '{item}', which is neither a section "
                        f"({', '.join(SECTIONS)}) nor a sign or risk group of this topic"
                    )
        covered = {item for source in self.sources for item in source.covers}
        sign_ids = {s.id for s in self.worsening_signs}
        for section in SOURCED_SECTIONS:
            if section in covered or (section == "worsening_signs" and sign_ids <= covered):
                continue
            raise ValueError(
                f"no source covers {section}: add it to the covers of the source it comes from"
            )
        if self.status == "approved" and (self.scope is None or not self.sources):
            raise ValueError("approved advice needs a scope and sources")
        return self

    @property
    def audience(self) -> Audience:
        """Who the advice speaks to; a stored copy made before scopes existed spoke to "you"."""
        return self.scope.audience if self.scope is not None else "adults"

    def provenance_json(self) -> dict[str, Any]:
        """Who the topic is for and what it is taken from, as ``content list --format json`` and
        ``GET /api/v1/topics`` show them (one shape for both)."""
        return {
            "scope": self.scope.model_dump(mode="json") if self.scope is not None else None,
            "sources": [source.model_dump(mode="json") for source in self.sources],
        }


def _snapshot(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(SNAPSHOT))


# Old stored copies said what to do as ``action``; these are the tiers those lists meant.
_LEGACY_ACTIONS: dict[str, Tier] = {"call_113": "emergency", "call_116117": "urgent"}


def topic_from_snapshot(data: dict[str, Any], live: AdviceTopic | None = None) -> AdviceTopic:
    """A dispatch's stored copy of a topic, in the shape of any version we have stored.

    Copies made before urgency tiers said ``action: call_113 | call_116117``: those become the
    ``emergency`` and ``urgent`` tiers. A copy made before scopes and sources borrows them from
    ``live`` (the same topic in the live content), if it still exists, since neither is advice.
    """
    data = dict(data)
    data["worsening_signs"] = [_upgrade_sign(s) for s in data.get("worsening_signs") or []]
    tailoring = dict(data.get("tailoring") or {})
    tailoring["risk_groups"] = [
        {**group, "signs": [_upgrade_sign(s) for s in group.get("signs") or []]}
        for group in tailoring.get("risk_groups") or []
    ]
    data["tailoring"] = tailoring
    if live is not None:
        if data.get("scope") is None and live.scope is not None:
            data["scope"] = live.scope.model_dump(mode="json")
        if not data.get("sources"):
            data["sources"] = [s.model_dump(mode="json") for s in live.sources]
    return AdviceTopic.model_validate(data, context={SNAPSHOT: True})


def _upgrade_sign(sign: dict[str, Any]) -> dict[str, Any]:
    if "action" in sign and "tier" not in sign:
        tier = _LEGACY_ACTIONS.get(str(sign["action"]), "urgent")
        sign = {k: v for k, v in sign.items() if k != "action"} | {"tier": tier}
    return sign


# --- shared thresholds --------------------------------------------------------------------

# The kinds of number that recur across topics; the content check finds literals of each kind.
ThresholdKind = Literal["temperature", "breathing_rate", "hours_without_urine"]


class ThresholdSource(Strict):
    publisher: str = Field(min_length=1)
    title: str = Field(min_length=1)
    url: Url


class Threshold(Strict):
    """One number that several topics use, e.g. fever is 38 °C. Topics write ``{id}`` where the
    number goes, so every topic and both languages say the same."""

    id: Id
    kind: ThresholdKind
    value: Annotated[float, Field(gt=0)]
    audience: Audience  # whom it applies to: the content check compares like with like
    meaning: str = Field(min_length=1)  # for admins: what the number means and when it applies
    source: ThresholdSource

    @property
    def text(self) -> str:
        """The value as Norwegian writes it: 38, 38,5."""
        if self.value == int(self.value):
            return str(int(self.value))
        return f"{self.value:g}".replace(".", ",")


class Thresholds(Strict):
    """``content/thresholds.yaml``: every shared threshold, once."""

    thresholds: Annotated[list[Threshold], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Thresholds:
        _require_unique("thresholds", [t.id for t in self.thresholds])
        return self


# --- reflection ---------------------------------------------------------------------------


class Role(Strict):
    """A leader role the questions are written for (the deck's "Til deg som …")."""

    id: Id
    title: Text  # short, for buttons and reports
    description: Text  # who this is
    # Whose words ``description`` is: the deck's ("Til deg som …", quoted word for word), or
    # ours, where the deck has no such heading for the role.
    description_source: Literal["deck", "ours"] = "deck"


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


# --- #Råbra -------------------------------------------------------------------------------


class RaabraTheme(Strict):
    """A theme a #Råbra story may be given (optional): short, for a button and the digest."""

    id: Id
    title: Text


class Raabra(Reviewed):
    """``content/raabra.yaml``: what the #Råbra dialogue says, and its short list of themes."""

    title: Text  # "#Råbra"
    intro: Text  # what it is, said when someone starts a story
    # Questions that help someone write (in the spirit of RiH's three questions: what went
    # well, and why); shown, never asked one by one.
    guide: Annotated[list[Text], Field(min_length=1, max_length=5)]
    source: str = Field(min_length=1)  # where the idea comes from (not translated)
    themes: Annotated[list[RaabraTheme], Field(min_length=1, max_length=12)]

    @model_validator(mode="after")
    def _unique_themes(self) -> Raabra:
        _require_unique("themes", [t.id for t in self.themes])
        if "none" in {t.id for t in self.themes}:
            raise ValueError("'none' cannot be a theme id: it is the button for no theme")
        return self

    def theme(self, theme_id: str | None) -> RaabraTheme | None:
        return next((t for t in self.themes if t.id == theme_id), None)


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
