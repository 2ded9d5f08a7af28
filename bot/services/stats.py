"""Figures for the admin's /status and /stats: plain queries returning plain data, and the chart.

Two series feed the chart:

- the weekly response rate of leaders per role (answered / sent, as in the participation
  report) over the last ISO weeks, across all organisations. A role-week with fewer than
  ``REPORT_MIN_GROUP`` leaders is left out (``None``), so no one's silence can be read off it;
- dispatches per day (in the bot's time zone) over the last days, and how many of them had
  "I am getting worse" pressed at least once.

``draw_chart`` turns that into a PNG with matplotlib's Agg canvas (no display, no pyplot, so it
is safe to run in a worker thread). It is slow-ish (a few hundred ms): call it with
``asyncio.to_thread``.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import col, select

from bot.models import Dispatch, Leader, LeaderStatus, Person, Prompt, PromptStatus, utcnow
from bot.runtime import Runtime
from bot.services.reports import last_weeks

WEEKS = 12
DAYS = 30
SENT = (PromptStatus.SENT, PromptStatus.ANSWERED, PromptStatus.SKIPPED)  # reached the leader


def _identity(message: str) -> str:
    return message


# --- response rate per role and ISO week ---------------------------------------------------


@dataclass
class RoleSeries:
    """One role's response rate per week, oldest first; ``None`` where nothing can be shown."""

    role_id: str
    title: str
    rates: list[float | None]

    @property
    def visible(self) -> bool:
        return any(rate is not None for rate in self.rates)


@dataclass
class ResponseRates:
    weeks: list[str]  # ISO weeks, oldest first: "2026-W49"
    roles: list[RoleSeries]  # roles that had a prompt in the period, in content order
    min_group: int
    hidden: int = 0  # role-weeks left out because fewer than ``min_group`` leaders had a prompt

    def rate(self, role_id: str, week: str) -> float | None:
        for series in self.roles:
            if series.role_id == role_id:
                return series.rates[self.weeks.index(week)]
        return None


async def response_rates(
    rt: Runtime, weeks: int = WEEKS, *, now: dt.datetime | None = None
) -> ResponseRates:
    """Answered / sent per role and ISO week, over all organisations, small groups left out."""
    period = last_weeks(weeks, now or utcnow(), rt.settings.zone)
    min_group = rt.settings.report_min_group
    async with rt.sessions() as session:
        rows = await session.exec(
            select(Prompt.week, Prompt.role_id, Prompt.leader_id, Prompt.status).where(
                col(Prompt.week).in_(period)
            )
        )
        leaders: dict[tuple[str, str], set[int]] = defaultdict(set)
        sent: dict[tuple[str, str], int] = defaultdict(int)
        answered: dict[tuple[str, str], int] = defaultdict(int)
        for week, role_id, leader_id, status in rows:
            key = (role_id, week)
            leaders[key].add(leader_id)
            if status in SENT:
                sent[key] += 1
            if status == PromptStatus.ANSWERED:
                answered[key] += 1
    known = list(rt.content.roles)
    role_ids = sorted(
        {role_id for role_id, _week in leaders},
        key=lambda r: (known.index(r) if r in known else len(known), r),
    )
    hidden = 0
    series = []
    for role_id in role_ids:
        rates: list[float | None] = []
        for week in period:
            key = (role_id, week)
            if key not in leaders:
                rates.append(None)
            elif len(leaders[key]) < min_group:
                hidden += 1
                rates.append(None)
            else:
                rates.append(answered[key] / sent[key] if sent[key] else None)
        found = rt.content.roles.get(role_id)
        series.append(RoleSeries(role_id, found[1].title if found else role_id, rates))
    return ResponseRates(weeks=period, roles=series, min_group=min_group, hidden=hidden)


# --- dispatches per day --------------------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    day: dt.date  # in the bot's time zone
    dispatches: int
    worse: int  # dispatches where "I am getting worse" was pressed at least once

    @property
    def worse_share(self) -> float | None:
        return self.worse / self.dispatches if self.dispatches else None


async def dispatches_per_day(
    rt: Runtime, days: int = DAYS, *, now: dt.datetime | None = None
) -> list[DayCount]:
    """Dispatches made on each of the last ``days`` days (today included), oldest first.

    Days are calendar days in the bot's zone. Dispatches older than ``RETENTION_DAYS`` are
    already deleted, so a retention shorter than ``days`` leaves the first days empty.
    """
    zone: ZoneInfo = rt.settings.zone
    now = now or utcnow()
    today = now.astimezone(zone).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), zone)
    made: dict[dt.date, int] = defaultdict(int)
    worse: dict[dt.date, int] = defaultdict(int)
    async with rt.sessions() as session:
        rows = await session.exec(
            select(Dispatch.created_at, Dispatch.worse_count).where(
                col(Dispatch.created_at) >= start, col(Dispatch.created_at) < end
            )
        )
        for created_at, worse_count in rows:
            day = created_at.astimezone(zone).date()
            made[day] += 1
            if worse_count > 0:
                worse[day] += 1
    return [
        DayCount(day, made[day], worse[day])
        for day in (first + dt.timedelta(days=n) for n in range(days))
    ]


# --- /status figures -----------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    dispatches_24h: int
    active_leaders: int


async def counts(rt: Runtime, *, now: dt.datetime | None = None) -> Counts:
    since = (now or utcnow()) - dt.timedelta(hours=24)
    async with rt.sessions() as session:
        dispatches = (
            await session.exec(
                select(func.count()).select_from(Dispatch).where(col(Dispatch.created_at) >= since)
            )
        ).one()
        active = (
            await session.exec(
                select(func.count()).select_from(Leader).where(Leader.status == LeaderStatus.ACTIVE)
            )
        ).one()
    return Counts(dispatches_24h=int(dispatches), active_leaders=int(active))


async def admins_known(rt: Runtime) -> dict[int, tuple[str, bool]]:
    """For each admin who has written to the bot: their stored locale, and whether they lead.

    For the admins' command menus at start-up; an admin who never wrote is left out.
    """
    ids = rt.settings.admin_user_ids
    if not ids:
        return {}
    async with rt.sessions() as session:
        rows = await session.exec(
            select(Person.telegram_user_id, Person.locale, Leader.status)
            .join(Leader, col(Leader.person_id) == col(Person.id), isouter=True)
            .where(col(Person.telegram_user_id).in_(ids))
        )
        return {
            user_id: (locale, status is not None and status != LeaderStatus.STOPPED)
            for user_id, locale, status in rows
        }


# --- the chart -----------------------------------------------------------------------------


@dataclass
class ChartData:
    rates: ResponseRates
    days: list[DayCount]
    zone: str = "Europe/Oslo"
    generated_at: dt.datetime = field(default_factory=utcnow)

    @property
    def has_rates(self) -> bool:
        return any(series.visible for series in self.rates.roles)

    @property
    def has_dispatches(self) -> bool:
        return any(day.dispatches for day in self.days)

    @property
    def empty(self) -> bool:
        """Nothing at all to draw: no prompts (shown or hidden) and no dispatches."""
        return not self.rates.roles and not self.has_dispatches


async def chart_data(
    rt: Runtime,
    *,
    weeks: int = WEEKS,
    days: int = DAYS,
    now: dt.datetime | None = None,
) -> ChartData:
    now = now or utcnow()
    return ChartData(
        rates=await response_rates(rt, weeks, now=now),
        days=await dispatches_per_day(rt, days, now=now),
        zone=rt.settings.timezone,
        generated_at=now,
    )


WIDTH, HEIGHT, DPI = 10.0, 8.0, 100  # inches and dots per inch: 1000 × 800 px
WORSE_COLOUR = "#c0392b"
PLAIN_COLOUR = "#95a5a6"


def draw_chart(
    data: ChartData,
    _: Callable[[str], str] = _identity,
    role_titles: Mapping[str, str] | None = None,
) -> bytes:
    """The two-panel PNG: response rate by role per week, and dispatches per day.

    ``_`` translates the chart's words; ``role_titles`` gives the roles' titles in the reader's
    language (the content's Bokmål titles otherwise). Runs without a display; thread-safe as
    long as each call draws its own figure, which it does.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    titles = role_titles or {}
    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1)

    # (a) response rate by role and week
    weeks = data.rates.weeks
    x = list(range(len(weeks)))
    top.set_title(_("Leaders' response rate by role (answered / sent)"), loc="left")
    top.set_ylim(0, 1.05)
    top.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    top.set_xlim(-0.5, max(len(weeks) - 0.5, 0.5))
    top.set_xticks(x, [week.split("-", 1)[-1] for week in weeks])
    top.set_xlabel(_("ISO week"))
    top.grid(axis="y", alpha=0.3)
    plotted = 0
    for series in data.rates.roles:
        if not series.visible:
            continue
        values = [float("nan") if rate is None else rate for rate in series.rates]
        top.plot(x, values, marker="o", linewidth=2, label=titles.get(series.role_id, series.title))
        plotted += 1
    if plotted:
        top.legend(loc="lower left", fontsize="small", framealpha=0.8)
    else:
        message = _("No data yet") if not data.rates.roles else _("No group large enough to show")
        _centre_note(top, message)

    # (b) dispatches per day, with those where "worse" was pressed stacked on top
    days = data.days
    xs = list(range(len(days)))
    plain = [day.dispatches - day.worse for day in days]
    worse = [day.worse for day in days]
    total = sum(day.dispatches for day in days)
    total_worse = sum(worse)
    heading = _("Dispatches per day, last {days} days").format(days=len(days))
    if total:
        heading += " · " + _("“worse” pressed: {share:.0%}").format(share=total_worse / total)
    bottom.set_title(heading, loc="left")
    bottom.bar(xs, plain, color=PLAIN_COLOUR, label=_("“worse” not pressed"))
    bottom.bar(xs, worse, bottom=plain, color=WORSE_COLOUR, label=_("“worse” pressed"))
    bottom.set_xlim(-0.75, max(len(days) - 0.25, 0.75))
    step = max(1, len(days) // 10)
    ticks = xs[::-1][::step][::-1]  # always label today
    bottom.set_xticks(ticks, [days[i].day.strftime("%d.%m") for i in ticks])
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylim(0, max([*(day.dispatches for day in days), 1]) * 1.15)
    bottom.set_xlabel(data.zone)
    bottom.grid(axis="y", alpha=0.3)
    if total:
        bottom.legend(loc="upper left", fontsize="small", framealpha=0.8)
    else:
        _centre_note(bottom, _("No data yet"))

    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def _centre_note(axes: Any, text: str) -> None:
    axes.text(
        0.5,
        0.5,
        text,
        transform=axes.transAxes,
        ha="center",
        va="center",
        fontsize=16,
        color="#555555",
    )
