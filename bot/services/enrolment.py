"""Enrolment and a leader's schedule settings, as one explicit transition table.

A leader who opened an invite answers three questions: language → weekday → time; then they
are active. Later, /settings changes the same three. Every step is one row of ``TRANSITIONS``:
(the state the leader is in, what they chose) → (the state after, the effect on the leader).
Handlers render the question of the new state; nothing else decides what comes next.

The state is kept in ``Leader.enrol_step`` while enrolling; an enrolled leader (active, paused)
is ``ENROLLED``, with ``enrol_step = "time"`` only while /settings waits for a typed time. The
person's language itself is stored by the caller (``people.choose_locale``). No Telegram here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.models import Leader, LeaderStatus, utcnow
from bot.runtime import Runtime
from bot.services.leaders import save, zone_of
from bot.services.weekly import next_due

log = logging.getLogger(__name__)


class State(StrEnum):
    LANGUAGE = "language"  # enrolling: which language?
    WEEKDAY = "weekday"  # enrolling: which day?
    TIME = "time"  # enrolling: what time?
    ENROLLED = "enrolled"  # active or paused: the choices change the schedule


class Choice(StrEnum):
    LANGUAGE = "language"  # a language was chosen (stored on the person by the caller)
    WEEKDAY = "weekday"  # a weekday, 0 = Monday
    TIME = "time"  # a minute of the day, by button or typed
    CHANGE_TIME = "change_time"  # /settings → "change time": read the next text as a time


Effect = Callable[[Leader, int | None, dt.datetime, ZoneInfo], dict[str, Any]]


def _nothing(leader: Leader, value: int | None, now: dt.datetime, zone: ZoneInfo) -> dict[str, Any]:
    return {}


def _weekday(leader: Leader, value: int | None, now: dt.datetime, zone: ZoneInfo) -> dict[str, Any]:
    assert value is not None
    return {"weekday": value}


def _activate(
    leader: Leader, value: int | None, now: dt.datetime, zone: ZoneInfo
) -> dict[str, Any]:
    assert value is not None and leader.weekday is not None
    return {
        "minute_of_day": value,
        "status": LeaderStatus.ACTIVE,
        "enrolled_at": now,
        "next_due_at": next_due(now, leader.weekday, value, zone),
    }


def _reschedule_day(
    leader: Leader, value: int | None, now: dt.datetime, zone: ZoneInfo
) -> dict[str, Any]:
    assert value is not None
    values: dict[str, Any] = {"weekday": value}
    if leader.status == LeaderStatus.ACTIVE and leader.minute_of_day is not None:
        values["next_due_at"] = next_due(now, value, leader.minute_of_day, zone)
    return values


def _reschedule_time(
    leader: Leader, value: int | None, now: dt.datetime, zone: ZoneInfo
) -> dict[str, Any]:
    assert value is not None
    values: dict[str, Any] = {"minute_of_day": value}
    if leader.status == LeaderStatus.ACTIVE and leader.weekday is not None:
        values["next_due_at"] = next_due(now, leader.weekday, value, zone)
    return values


def _ask_time(
    leader: Leader, value: int | None, now: dt.datetime, zone: ZoneInfo
) -> dict[str, Any]:
    return {"enrol_step": State.TIME.value}


@dataclass(frozen=True)
class Transition:
    to: State
    effect: Effect


T = Transition
TRANSITIONS: dict[tuple[State, Choice], Transition] = {
    # Enrolling: language → weekday → time → enrolled; a choice out of order is taken, and
    # the question that is still open is asked (a time before a day: the day first).
    (State.LANGUAGE, Choice.LANGUAGE): T(State.WEEKDAY, _nothing),
    (State.WEEKDAY, Choice.LANGUAGE): T(State.WEEKDAY, _nothing),
    (State.TIME, Choice.LANGUAGE): T(State.WEEKDAY, _nothing),
    (State.LANGUAGE, Choice.WEEKDAY): T(State.TIME, _weekday),
    (State.WEEKDAY, Choice.WEEKDAY): T(State.TIME, _weekday),
    (State.TIME, Choice.WEEKDAY): T(State.TIME, _weekday),
    (State.LANGUAGE, Choice.TIME): T(State.WEEKDAY, _nothing),
    (State.WEEKDAY, Choice.TIME): T(State.WEEKDAY, _nothing),
    (State.TIME, Choice.TIME): T(State.ENROLLED, _activate),
    # Enrolled: /settings changes one thing; an active leader's next question moves with it.
    (State.ENROLLED, Choice.LANGUAGE): T(State.ENROLLED, _nothing),
    (State.ENROLLED, Choice.WEEKDAY): T(State.ENROLLED, _reschedule_day),
    (State.ENROLLED, Choice.TIME): T(State.ENROLLED, _reschedule_time),
    (State.ENROLLED, Choice.CHANGE_TIME): T(State.ENROLLED, _ask_time),
}


def state_of(leader: Leader) -> State:
    if leader.status != LeaderStatus.ENROLLING:
        return State.ENROLLED
    try:
        return State(leader.enrol_step or State.LANGUAGE)
    except ValueError:
        return State.LANGUAGE


def waits_for_typed_time(leader: Leader) -> bool:
    """Whether the leader's next text is a time (enrolling at the time step, or /settings)."""
    return leader.enrol_step == State.TIME.value


async def choose(
    rt: Runtime,
    leader: Leader,
    choice: Choice,
    value: int | None = None,
    *,
    now: dt.datetime | None = None,
) -> Leader:
    """Apply one choice through the table; the leader as saved."""
    now = now or utcnow()
    before = state_of(leader)
    transition = TRANSITIONS[(before, choice)]
    values = transition.effect(leader, value, now, zone_of(leader))
    if transition.to is not State.ENROLLED:
        values["enrol_step"] = transition.to.value
    elif choice is not Choice.CHANGE_TIME:
        values["enrol_step"] = None
    saved = await save(rt, leader, **values)
    if before is not State.ENROLLED and transition.to is State.ENROLLED:
        log.info("leader %s enrolled", leader.id)
    return saved
