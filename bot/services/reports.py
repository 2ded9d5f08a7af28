"""Participation in the weekly reflection, for an organisation's admin: counts only.

Per ISO week, role and theme: how many leaders got a prompt, how many were sent the question,
answered it, skipped it (a choice, with its reason: not a missed week) or missed it (the bot was
down). Two privacy rules hold here:

- a group with fewer than ``REPORT_MIN_GROUP`` leaders (default 5) shows no counts, not even
  its head count, so no one's silence can be read off the report; the report says how many
  groups were hidden;
- answer text appears only where the leader shared it, never with a name or id. Unshared
  answers are not even read from the database. A role with at least ``REPORT_MIN_GROUP``
  leaders in the organisation shows its answers with week, role, theme and question. The
  answers of smaller roles are pooled: shown together, sorted by their text, without week,
  role, theme or question (questions are per role), and only while the pool itself holds at
  least ``REPORT_MIN_GROUP`` leaders; until then they are held back. (The one top leader of an
  organisation is one person: their role and week would name them.) The leader is told which
  of these applies before they share (``share_scope``).
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy import select as core_select
from sqlmodel import col, select

from bot.content.schema import Theme
from bot.models import Leader, LeaderStatus, Organisation, Prompt, PromptStatus, utcnow
from bot.runtime import Runtime
from bot.services.invites import find_organisation
from bot.services.leaders import ANSWER

WEEKS_MAX = 520
HIDDEN = "–"  # what a hidden count prints as in text


def iso_week(moment: dt.datetime, zone: ZoneInfo) -> str:
    """The ISO week of ``moment`` in ``zone``, as stored in ``Prompt.week``: ``2026-W49``."""
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def last_weeks(count: int, now: dt.datetime, zone: ZoneInfo) -> list[str]:
    """The ``count`` ISO weeks up to and including the one holding ``now``, oldest first."""
    return [iso_week(now - dt.timedelta(weeks=back), zone) for back in range(count - 1, -1, -1)]


class Scope(enum.Enum):
    """How a shared answer from a role is shown in the report."""

    FULL = "full"  # with week, role, theme and question: the role has enough leaders
    POOLED = "pooled"  # the text only, among the other small roles' answers
    HELD = "held"  # not shown until the small roles together have enough leaders


@dataclass(frozen=True)
class ShareScope:
    scope: Scope
    min_group: int


async def role_sizes(session: Any, organisation_id: int) -> dict[str, int]:
    """How many leaders (enrolled: active, paused or stopped) each role has in an organisation."""
    rows = await session.exec(
        select(col(Leader.role_id), func.count())
        .where(
            col(Leader.organisation_id) == organisation_id,
            col(Leader.status) != LeaderStatus.ENROLLING,
        )
        .group_by(col(Leader.role_id))
    )
    return {role_id: int(count) for role_id, count in rows}


def scope_of(sizes: dict[str, int], role_id: str, min_group: int) -> Scope:
    """How a shared answer of ``role_id`` is shown, given the organisation's role sizes."""
    if sizes.get(role_id, 0) >= min_group:
        return Scope.FULL
    pool = sum(size for size in sizes.values() if size < min_group)
    return Scope.POOLED if pool >= min_group else Scope.HELD


async def share_scope(rt: Runtime, leader: Leader) -> ShareScope:
    """What sharing would show of this leader's answers now (they are told before sharing)."""
    min_group = rt.settings.report_min_group
    async with rt.sessions() as session:
        sizes = await role_sizes(session, leader.organisation_id)
    return ShareScope(scope_of(sizes, leader.role_id, min_group), min_group)


@dataclass
class ParticipationRow:
    week: str
    role_id: str
    role_title: str
    theme_id: str
    theme_title: str
    leaders: int | None  # None for a hidden group: its head count is not shown either
    sent: int | None  # the question reached them: sent, answered or skipped
    answered: int | None
    skipped: int | None
    missed: int | None  # not sent: the bot was down
    response_rate: float | None  # answered / sent

    @property
    def hidden(self) -> bool:
        return self.sent is None


@dataclass
class SharedAnswer:
    week: str | None  # None (and the next three) for a pooled answer of a small role
    role_title: str | None
    theme_title: str | None
    question_text: str | None
    text: str


@dataclass
class Participation:
    organisation: str
    weeks: list[str]
    rows: list[ParticipationRow]
    shared_answers: list[SharedAnswer]  # with week, role, theme and question
    min_group: int
    hidden_rows: int = field(default=0)
    pooled_answers: list[SharedAnswer] = field(default_factory=list)  # text only, small roles


class _Counts:
    def __init__(self) -> None:
        self.leaders: set[int] = set()
        self.by_status: dict[str, int] = defaultdict(int)


async def participation(
    rt: Runtime, org_name: str, weeks: int = 8, *, now: dt.datetime | None = None
) -> Participation:
    """The organisation's participation over the last ``weeks`` ISO weeks (this one included).

    Raises LookupError with a plain sentence (naming the known organisations) if there is no
    organisation called ``org_name``, and ValueError if ``weeks`` is out of range.
    """
    if not 1 <= weeks <= WEEKS_MAX:
        raise ValueError(f"weeks must be from 1 to {WEEKS_MAX}, not {weeks}")
    now = now or utcnow()
    period = last_weeks(weeks, now, rt.settings.zone)
    min_group = rt.settings.report_min_group
    async with rt.sessions() as session:
        org = await find_organisation(session, org_name)
        if org is None:
            known = list(await session.exec(select(Organisation.name).order_by(Organisation.name)))
            raise LookupError(_unknown_org(org_name, known))
        in_org = (
            col(Leader.organisation_id) == org.id,
            col(Prompt.week).in_(period),
        )
        # Six columns: more than sqlmodel's select() is typed for, so Core on the connection.
        connection = await session.connection()
        counted = await connection.execute(
            core_select(
                col(Prompt.week),
                col(Prompt.role_id),
                col(Prompt.programme_id),
                col(Prompt.theme_id),
                col(Prompt.leader_id),
                col(Prompt.status),
            )
            .join(Leader, col(Prompt.leader_id) == col(Leader.id))
            .where(*in_org)
        )
        groups: dict[tuple[str, str, str, str], _Counts] = defaultdict(_Counts)
        for week, role_id, programme_id, theme_id, leader_id, status in counted:
            counts = groups[(week, role_id, programme_id, theme_id)]
            counts.leaders.add(leader_id)
            counts.by_status[status] += 1
        assert org.id is not None
        sizes = await role_sizes(session, org.id)
        # Only shared, answered text is read at all.
        shared = await connection.execute(
            core_select(
                col(Prompt.week),
                col(Prompt.role_id),
                col(Prompt.programme_id),
                col(Prompt.theme_id),
                col(Prompt.question_id),
                col(Prompt.answer_ciphertext),
            )
            .join(Leader, col(Prompt.leader_id) == col(Leader.id))
            .where(
                *in_org,
                col(Prompt.shared).is_(True),
                col(Prompt.status) == PromptStatus.ANSWERED,
                col(Prompt.answer_ciphertext).is_not(None),
            )
            .order_by(col(Prompt.week), col(Prompt.answered_at), col(Prompt.id))
        )
        shared_rows = list(shared)
        org_name = org.name

    names = _Names(rt)
    rows = []
    for (week, role_id, programme_id, theme_id), counts in groups.items():
        leaders = len(counts.leaders)
        row = ParticipationRow(
            week=week,
            role_id=role_id,
            role_title=names.role(role_id),
            theme_id=theme_id,
            theme_title=names.theme(programme_id, theme_id),
            leaders=None,
            sent=None,
            answered=None,
            skipped=None,
            missed=None,
            response_rate=None,
        )
        if leaders >= min_group:
            row.leaders = leaders
            s = counts.by_status
            row.answered = s[PromptStatus.ANSWERED]
            row.skipped = s[PromptStatus.SKIPPED]
            row.missed = s[PromptStatus.MISSED]
            row.sent = s[PromptStatus.SENT] + row.answered + row.skipped
            row.response_rate = row.answered / row.sent if row.sent else None
        rows.append(row)
    rows.sort(key=lambda r: (r.week, names.role_order(r.role_id), names.theme_order(r)))
    answers, pooled = [], []
    cipher = rt.cipher(ANSWER)
    for week, role_id, programme_id, theme_id, question_id, sealed in shared_rows:
        scope = scope_of(sizes, role_id, min_group)
        text = cipher.decrypt(sealed) if sealed is not None else None
        if text is None:  # made with a SECRET_KEY no longer given: nothing to show
            continue
        if scope is Scope.FULL:
            answers.append(
                SharedAnswer(
                    week=week,
                    role_title=names.role(role_id),
                    theme_title=names.theme(programme_id, theme_id),
                    question_text=names.question(programme_id, theme_id, question_id),
                    text=text,
                )
            )
        elif scope is Scope.POOLED:
            pooled.append(SharedAnswer(None, None, None, None, text))
    pooled.sort(key=lambda a: a.text)  # not by time: the order would tell the week
    return Participation(
        organisation=org_name,
        weeks=period,
        rows=rows,
        shared_answers=answers,
        min_group=min_group,
        hidden_rows=sum(1 for r in rows if r.hidden),
        pooled_answers=pooled,
    )


def _unknown_org(name: str, known: list[str]) -> str:
    if not known:
        return (
            f"There is no organisation '{name.strip()}', nor any other yet; "
            "`python -m bot invite create --org …` makes one."
        )
    return f"There is no organisation '{name.strip()}'; known organisations: {', '.join(known)}."


class _Names:
    """Titles and order from the live content (Bokmål source); ids where content has changed."""

    def __init__(self, rt: Runtime) -> None:
        self.content = rt.content
        self.roles = list(rt.content.roles)

    def role(self, role_id: str) -> str:
        found = self.content.roles.get(role_id)
        return found[1].title if found else role_id

    def role_order(self, role_id: str) -> tuple[int, str]:
        return (self.roles.index(role_id) if role_id in self.roles else len(self.roles), role_id)

    def _theme(self, programme_id: str, theme_id: str) -> tuple[int, Theme | None]:
        programme = self.content.programmes.get(programme_id)
        for index, theme in enumerate(programme.themes if programme else []):
            if theme.id == theme_id:
                return index, theme
        return 1_000_000, None

    def theme(self, programme_id: str, theme_id: str) -> str:
        theme = self._theme(programme_id, theme_id)[1]
        return theme.title if theme is not None else theme_id

    def theme_order(self, row: ParticipationRow) -> tuple[int, str]:
        # Rows do not carry the programme; a role belongs to one programme.
        found = self.content.roles.get(row.role_id)
        index = self._theme(found[0].id, row.theme_id)[0] if found else 1_000_000
        return (index, row.theme_id)

    def question(self, programme_id: str, theme_id: str, question_id: str) -> str:
        theme = self._theme(programme_id, theme_id)[1]
        for question in theme.questions if theme is not None else []:
            if question.id == question_id:
                return question.text
        return ""


# --- output --------------------------------------------------------------------------------


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def as_json(p: Participation) -> dict[str, Any]:
    return {
        "organisation": p.organisation,
        "weeks": p.weeks,
        "min_group": p.min_group,
        "hidden_rows": p.hidden_rows,
        "rows": [
            {**asdict(row), "response_rate": _rate(row.response_rate), "hidden": row.hidden}
            for row in p.rows
        ],
        "shared_answers": [asdict(answer) for answer in p.shared_answers],
        # Smaller roles' shared answers: the text only (no week, role, theme or question).
        "pooled_answers": [answer.text for answer in p.pooled_answers],
    }


CSV_COLUMNS = [
    "week",
    "role_id",
    "role",
    "theme_id",
    "theme",
    "leaders",
    "sent",
    "answered",
    "skipped",
    "missed",
    "response_rate",
    "hidden",
]


def as_csv(p: Participation) -> str:
    """One row per week, role and theme; hidden counts are empty with hidden = yes.

    Counts only: shared answers are in the text and JSON forms.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in p.rows:
        counts = [r.sent, r.answered, r.skipped, r.missed, _rate(r.response_rate)]
        writer.writerow(
            [r.week, r.role_id, r.role_title, r.theme_id, r.theme_title]
            + ["" if value is None else value for value in [r.leaders, *counts]]
            + ["yes" if r.hidden else "no"]
        )
    return out.getvalue()


def hidden_note(p: Participation) -> str:
    """``3 groups with fewer than 5 leaders are not shown.``"""
    if p.hidden_rows == 1:
        return f"1 group with fewer than {p.min_group} leaders is not shown."
    return f"{p.hidden_rows} groups with fewer than {p.min_group} leaders are not shown."


def as_text(p: Participation) -> str:
    first, last = p.weeks[0], p.weeks[-1]
    span = first if first == last else f"{first} – {last}"
    lines = [f"Participation: {p.organisation}, {span}", ""]
    if not p.rows:
        lines.append("No questions were due in this period.")
    else:
        header = ["week", "role", "theme", "leaders", "sent", "answered", "skipped", "missed"]
        table = [[*header, "rate"]]
        for r in p.rows:
            counts = [r.sent, r.answered, r.skipped, r.missed]
            rate = HIDDEN if r.response_rate is None else f"{r.response_rate:.0%}"
            table.append(
                [r.week, r.role_title, r.theme_title]
                + [HIDDEN if value is None else str(value) for value in [r.leaders, *counts]]
                + [rate]
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header) + 1)]
        numeric = range(3, len(header) + 1)
        for row in table:
            cells = [
                cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                for i, cell in enumerate(row)
            ]
            lines.append("  ".join(cells).rstrip())
        lines.append("")
        lines.append(
            "sent: the question reached them; skipped: they chose to skip (not a missed week); "
            "missed: not sent, the bot was down."
        )
        if p.hidden_rows:
            lines.append(
                hidden_note(p)[:-1] + f" ({HIDDEN}), so no one's participation can be singled out."
            )
    lines.append("")
    if not p.shared_answers and not p.pooled_answers:
        lines.append("No answers were shared in this period.")
    if p.shared_answers:
        lines.append(f"Shared answers ({len(p.shared_answers)}), shared by the leaders themselves:")
        for a in p.shared_answers:
            lines.append("")
            lines.append(f"{a.week} · {a.role_title} · {a.theme_title}")
            if a.question_text:
                lines.append(f"  Q: {a.question_text}")
            lines.extend(_answer_lines(a.text))
    if p.pooled_answers:
        if p.shared_answers:
            lines.append("")
        lines.append(
            f"Shared answers from roles with fewer than {p.min_group} leaders "
            f"({len(p.pooled_answers)}), without week, role, theme or question, so no one can "
            "be singled out:"
        )
        for a in p.pooled_answers:
            lines.append("")
            lines.extend(_answer_lines(a.text))
    return "\n".join(lines) + "\n"


def _answer_lines(text: str) -> list[str]:
    return [
        ("  A: " if i == 0 else "     ") + line for i, line in enumerate(text.splitlines() or [""])
    ]
