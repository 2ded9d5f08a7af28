"""Button data is one typed codec per family, on the wire formats buttons already in chats use;
and the one Telegram budget serves a reply before the queued sends waiting for a slot."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot import callbacks
from bot.budget import TelegramBudget, TokenBucket
from bot.services.enrolment import TRANSITIONS, Choice, State

DISPATCH = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (callbacks.Worse(DISPATCH), f"a:worse:{DISPATCH}"),
        (callbacks.AdviceLanguage(DISPATCH, "nn"), f"a:lang:{DISPATCH}:nn"),
        (callbacks.Checkin(DISPATCH, "same"), f"a:ci:{DISPATCH}:same"),
        (callbacks.PromptButton("later", 42), "r:later:42"),
        (callbacks.Skipped(42, "not_relevant"), "r:why:42:not_relevant"),
        (callbacks.LeaderLanguage("nb"), "r:lang:nb"),
        (callbacks.Weekday(6), "r:day:6"),
        (callbacks.TimeOfDay(540), "r:time:540"),
        (callbacks.ChangeSetting("time"), "r:set:time"),
        (callbacks.Pause(0), "r:pause:0"),
        (callbacks.Stop("keep"), "r:stop:keep"),
        (callbacks.AnswersPage(5), "r:page:5"),
        (callbacks.ChooseLanguage("nn"), "lang:nn"),
        (callbacks.DeleteData(), "privacy:delete"),
        (callbacks.ConfirmDelete("yes"), "privacy:delete:yes"),
    ],
)
def test_each_family_packs_to_its_old_wire_format_and_back(
    value: callbacks.CallbackData, wire: str
) -> None:
    assert value.pack() == wire
    assert type(value).unpack(wire) == value


@pytest.mark.parametrize(
    ("family", "wire"),
    [
        (callbacks.Weekday, "r:day:7"),  # no such day
        (callbacks.TimeOfDay, "r:time:1440"),
        (callbacks.Pause, "r:pause:9"),
        (callbacks.Checkin, f"a:ci:{DISPATCH}:great"),  # not an answer we offer
        (callbacks.Worse, "a:worse:not-a-dispatch"),
        (callbacks.PromptButton, "r:why:1:busy"),  # another family's
        (callbacks.PromptButton, "r:ans:x"),
        (callbacks.DeleteData, "privacy:delete:yes"),
        (callbacks.ConfirmDelete, "privacy:delete"),
        (callbacks.LeaderLanguage, None),  # a press with no data
    ],
)
def test_data_a_family_did_not_write_is_not_decoded(
    family: type[callbacks.CallbackData], wire: str | None
) -> None:
    assert family.unpack(wire) is None
    assert not family.matches(wire)


def test_a_value_that_cannot_be_sent_back_is_refused_when_packed() -> None:
    with pytest.raises(ValueError, match="cannot be packed"):
        callbacks.Worse("has:colon").pack()
    with pytest.raises(ValueError, match="64 bytes"):
        callbacks.Worse("x" * 60).pack()


def test_every_enrolment_state_answers_every_choice_it_can_meet() -> None:
    enrolling = (State.LANGUAGE, State.WEEKDAY, State.TIME)
    for state in enrolling:
        for choice in (Choice.LANGUAGE, Choice.WEEKDAY, Choice.TIME):
            assert (state, choice) in TRANSITIONS, (state, choice)
    assert TRANSITIONS[(State.TIME, Choice.TIME)].to is State.ENROLLED
    assert all(t.to is State.ENROLLED for (s, _c), t in TRANSITIONS.items() if s is State.ENROLLED)


async def test_a_reply_takes_the_next_slot_ahead_of_queued_sends_waiting() -> None:
    budget = TelegramBudget(rate=21, chat_rate=1000)  # a slot every 50 ms
    order: list[str] = []

    async def queued(n: int) -> None:
        await budget.queued(10_000 + n)
        order.append(f"queued {n}")

    waiting = [asyncio.create_task(queued(n)) for n in range(6)]
    while not order:  # the first queued send has its slot; five wait for theirs
        await asyncio.sleep(0.005)
    await budget.reply(1)
    order.append("reply")
    await asyncio.gather(*waiting)

    assert order.index("reply") <= 2, order  # at most the one slot already being handed out
    assert budget.stats.replies == 1 and budget.stats.queued == 6


async def test_queued_sends_to_one_chat_keep_a_second_apart_replies_do_not_wait() -> None:
    budget = TelegramBudget(rate=1000, chat_rate=20)  # 50 ms between queued sends in a chat
    loop = asyncio.get_running_loop()
    await budget.queued(7)
    began = loop.time()
    await budget.reply(7)  # a person waits for this: it never waits for the chat
    replied = loop.time() - began
    await budget.queued(7)  # … but the next queued send keeps its distance after the reply
    spaced = loop.time() - began
    assert replied < 0.04 and spaced >= 0.045


async def test_a_429_pauses_replies_and_queued_sends_alike() -> None:
    budget = TelegramBudget(rate=1000)
    loop = asyncio.get_running_loop()
    budget.pause(0.2)
    began = loop.time()
    await asyncio.gather(budget.reply(1), budget.queued(2))
    assert loop.time() - began >= 0.19


def _run(bucket: TokenBucket, start: float, seconds: float, step: float = 0.0005) -> list[float]:
    """Send whenever the bucket allows, on a clock that ticks in ``step`` s (no sleeping)."""
    sent: list[float] = []
    now = start
    while now < start + seconds:
        if bucket.delay(now) <= 0:
            bucket.take(now)
            sent.append(now)
        now += step
    return sent


def _most_in_one_second(times: list[float]) -> int:
    best = first = 0
    for last, moment in enumerate(times):
        while moment - times[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def test_the_bucket_sends_29_5_a_second_and_never_31_in_one_second() -> None:
    bucket = TelegramBudget(30).bucket
    sent = _run(bucket, 100.0, 20.0)
    assert 590 <= len(sent) <= 591  # the ceiling, not 95 % of the limit
    assert _most_in_one_second(sent) <= 30
    # Even when every timer fires late (here 0–9 ms), the rate holds: slots are kept from
    # the schedule, not from when the send happened.
    late = TelegramBudget(30).bucket
    moments: list[float] = []
    now = 0.0
    for n in range(590):
        now = max(now, now + late.delay(now)) + (n % 10) * 0.001
        late.take(now)
        moments.append(now)
    assert moments[-1] < 20.0 and _most_in_one_second(moments) <= 30


def test_after_a_quiet_spell_no_burst_follows() -> None:
    bucket = TokenBucket(29)
    _run(bucket, 0.0, 1.0)
    sent = _run(bucket, 60.0, 1.0)  # a minute of nothing: still one at a time, evenly
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 0.7 / 29 and len(sent) <= 30


def test_a_429_pauses_backs_off_and_recovers() -> None:
    bucket = TokenBucket(29, backoff=0.8, recover_seconds=30)
    _run(bucket, 0.0, 5.0)
    assert bucket.throttled(5.0, retry_after=2.0)
    assert not bucket.throttled(5.01, retry_after=1.0)  # a request in flight: the same 429
    assert bucket.delay(5.5) == pytest.approx(1.5)
    assert _run(bucket, 5.0, 2.0) == []  # nothing during the pause
    assert bucket.rate(7.0) == pytest.approx(29 * 0.8)
    assert bucket.rate(22.0) == pytest.approx(29 * 0.9)  # half way back after 15 s
    assert bucket.rate(37.0) == 29
    sent = _run(bucket, 7.0, 1.0)
    assert len(sent) in (23, 24)  # backed off: 23.2 a second
    # Again and again: never under half the ceiling.
    for n in range(10):
        assert bucket.throttled(40.0 + n, retry_after=1.0)  # each as the last pause ends
    assert bucket.rate(50.0) == pytest.approx(14.5)


def test_one_more_goes_only_a_second_after_the_oldest_of_the_last_30_was_answered() -> None:
    """However the requests bunch on the way, Telegram counts each between its start and its
    answer: a second after the answer of the send 30 back, the 31st cannot share its second."""
    clock = [0.0]
    budget = TelegramBudget(30, clock=lambda: clock[0])
    slots = []
    for _n in range(30):
        clock[0] += budget.delay(clock[0]) if budget.delay(clock[0]) > 0 else 0
        slots.append(budget._take(clock[0], None))
    first_answer = slots[0].start + 0.5  # a slow answer: half a second
    assert budget.delay(clock[0]) > 0
    clock[0] = 1.2  # the bucket would allow one now, but the oldest is still in flight
    assert budget.delay(1.2) == pytest.approx(0.002)
    clock[0] = first_answer
    budget.done(slots[0])
    assert budget.delay(1.2) == pytest.approx(first_answer + 1.0 - 1.2)
    assert budget.delay(first_answer + 1.0) <= 0
    # A slot never handed back counts as answered two seconds after it began.
    stuck = TelegramBudget(30, clock=lambda: clock[0])
    for n in range(30):
        stuck._take(n / 29.5, None)
    assert stuck.delay(1.5) == pytest.approx(0.002) and stuck.delay(3.0) == pytest.approx(0.0)
