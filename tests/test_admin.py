"""The admins' commands over the local Bot API: /status, /stats (a PNG chart) and /reload, the
allowlist (anyone else gets the unknown-command answer), the SIGHUP reload's message to admins,
and the chart's data functions on seeded rows.

The admin is the first person a test makes (user id 5001, see ``people`` in conftest). Content
and translations are copies in ``tmp_path``, so a reload can edit and break them freely.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import io
import itertools
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from sqlalchemy import delete
from sqlmodel import col

from bot import outbox
from bot.app import RunningBot
from bot.config import Settings
from bot.models import (
    Dispatch,
    Leader,
    MessageKind,
    Organisation,
    Prompt,
    PromptStatus,
    utcnow,
)
from bot.reload import reload_and_tell_admins
from bot.runtime import Runtime
from bot.services import dispatches, reports, stats
from devkit.localapi import LocalUser
from tests.conftest import People, active_leaders

ADMIN = 5001  # the first person ``people`` makes
PROJECT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"
OSLO_NOW = dt.datetime(2026, 4, 10, 10, 0, tzinfo=dt.UTC)  # the last 30 days cross DST (29 March)
TITLE = "Feber hos barn"
NEW_TITLE = "Feber hos barn – ny tittel"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shared settings with one admin, and content and translations copied to edit."""
    content = shutil.copytree(PROJECT / "content", tmp_path / "content")
    locales = shutil.copytree(PROJECT / "locales", tmp_path / "locales")
    return settings.model_copy(
        update={"admin_user_ids": [ADMIN], "content_dir": content, "locales_dir": locales}
    )


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "") for r in caplog.records
    )


# --- who may use the commands --------------------------------------------------------------


async def test_anyone_else_gets_the_unknown_command_answer_and_is_logged_without_their_id(
    bot: RunningBot, people: People, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await people("Ada")
    kari = await people("Kari Nordmann")
    assert admin.user_id == ADMIN and kari.user_id != ADMIN
    [unknown] = await kari.says("/nonsense")
    content_before = bot.rt.content

    with caplog.at_level(logging.INFO):
        for command in ("/status", "/stats", "/reload"):
            [answer] = await kari.says(command)
            assert (answer.text, answer.html) == (unknown.text, unknown.html)
            assert answer.photo is None and answer.buttons == []

    assert bot.rt.content is content_before  # /reload did nothing
    text = logged(caplog)
    for command in ("/status", "/stats", "/reload"):
        assert f"admin command {command} refused for a non-admin" in text
    assert str(kari.user_id) not in text and "Kari" not in text and "Nordmann" not in text
    menu = [name for name, _description in await kari.commands()]
    assert not {"status", "stats", "reload"} & set(menu)


async def test_admins_get_the_commands_in_their_menu(bot: RunningBot, people: People) -> None:
    admin = await people("Ada")
    for _ in range(50):  # set by a job at start-up
        menu = [name for name, _description in await admin.commands()]
        if "status" in menu:
            break
        await asyncio.sleep(0.05)
    assert menu[:3] == ["status", "stats", "reload"]
    assert {"start", "help", "language", "privacy"} <= set(menu)

    await admin.says("/status")
    menu = [name for name, _description in await admin.commands("nb")]
    assert menu[:3] == ["status", "stats", "reload"] and "privacy" in menu


# --- /status -------------------------------------------------------------------------------


async def test_status_shows_the_version_content_versions_and_outbox_depth(
    bot: RunningBot, people: People
) -> None:
    admin = await people("Ada")
    later = utcnow() + dt.timedelta(hours=1)  # not due: the sender leaves them be
    async with bot.rt.sessions() as session:
        for n in range(17):
            await outbox.enqueue(
                session,
                MessageKind.ADMIN_NOTICE,
                chat_id=999,
                payload={"text": f"test {n}"},
                due_at=later,
            )
        await session.commit()

    [status] = await admin.says("/status")

    text = status.text
    assert importlib.metadata.version("sikkerhetsnett") in text
    for topic in bot.rt.content.advice.values():
        assert f"{topic.id} v{topic.version} ({topic.status})" in text
    for programme in bot.rt.content.programmes.values():
        assert f"{programme.id} v{programme.version}" in text
    assert (await outbox.depth(bot.rt.sessions)).waiting == 17
    assert "<b>17</b>" in status.html  # the outbox depth, in bold
    assert re.search(r"\b17\b", text)


# --- /stats --------------------------------------------------------------------------------


def read_png(data: bytes) -> Any:
    assert data.startswith(PNG)
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    height, width = image.shape[:2]
    assert 600 <= width <= 2000 and 400 <= height <= 2000
    return image


async def test_stats_sends_a_png_chart_even_with_no_data(bot: RunningBot, people: People) -> None:
    admin = await people("Ada")
    [photo] = await admin.says("/stats", timeout=30)
    assert photo.photo is not None, photo
    image = read_png(await admin.file(photo.message_id))
    assert (photo.photo["width"], photo.photo["height"]) == (image.shape[1], image.shape[0])
    assert photo.caption and str(bot.rt.settings.report_min_group) in photo.caption


async def test_stats_draws_seeded_leaders_and_dispatches(bot: RunningBot, people: People) -> None:
    admin = await people("Ada")
    now = utcnow()
    await seed(bot.rt, now)
    [photo] = await admin.says("/stats", timeout=30)
    assert photo.photo is not None
    data = await admin.file(photo.message_id)
    read_png(data)
    assert photo.caption is not None
    # Four unit leaders in one week: that role-week is not plotted, and the caption says so.
    assert re.search(r"\b1\b", photo.caption) and "5" in photo.caption


# --- the data behind the chart -------------------------------------------------------------


_user_ids = itertools.count(7001)


async def seed(rt: Runtime, now: dt.datetime) -> None:
    """Leaders and prompts in two roles and two weeks; dispatches over several days."""
    zone = rt.settings.zone
    A, S, K, M = (
        PromptStatus.ANSWERED,
        PromptStatus.SENT,
        PromptStatus.SKIPPED,
        PromptStatus.MISSED,
    )
    async with rt.sessions() as session:
        org = Organisation(name="Legevakten i Bergen")
        session.add(org)
        await session.flush()

        async def leaders(role_id: str, count: int) -> list[Leader]:
            return await active_leaders(session, rt, org, role_id, count, _user_ids)

        def prompt(leader: Leader, back: int, status: str) -> None:
            assert leader.id is not None
            due = now - dt.timedelta(weeks=back)
            session.add(
                Prompt(
                    leader_id=leader.id,
                    programme_id=leader.programme_id,
                    theme_id="t",
                    question_id="q",
                    role_id=leader.role_id,
                    position=0,
                    week=reports.iso_week(due, zone),
                    due_at=due,
                    status=status,
                    sent_at=None if status == M else due,
                )
            )

        lv = await leaders("legevakt-leader", 6)
        # Last week: 3 answered, 1 skipped, 1 sent, 1 missed → 3 / 5 sent.
        for leader, status in zip(lv, [A, A, A, K, S, M], strict=True):
            prompt(leader, 1, status)
        # This week: 5 answered, 1 still open → 5 / 6.
        for leader, status in zip(lv, [A, A, A, A, A, S], strict=True):
            prompt(leader, 0, status)
        # Long ago: outside the 12 weeks.
        for leader in lv:
            prompt(leader, 20, A)
        unit = await leaders("unit-leader", 4)  # too few: never shown
        for leader in unit:
            prompt(leader, 1, A)

        def dispatch(created_at: dt.datetime, worse: int = 0) -> None:
            session.add(
                Dispatch(
                    id=f"{next(_user_ids):032x}",
                    topic_id="fever-child",
                    topic_version=1,
                    locale="nb",
                    token_hash=f"{next(_user_ids):064x}",
                    created_at=created_at,
                    expires_at=created_at + dt.timedelta(hours=72),
                    worse_count=worse,
                )
            )

        for n in range(4):  # today: 4, one with "worse" pressed twice
            dispatch(now - dt.timedelta(minutes=n + 1), worse=2 if n == 0 else 0)
        for _n in range(2):  # three days ago: 2, both worse
            dispatch(now - dt.timedelta(days=3), worse=1)
        dispatch(now - dt.timedelta(days=40), worse=1)  # outside the 30 days
        await session.commit()


async def test_response_rate_per_role_and_week_leaves_small_groups_out(rt: Runtime) -> None:
    await seed(rt, OSLO_NOW)
    rates = await stats.response_rates(rt, now=OSLO_NOW)

    zone = rt.settings.zone
    this = reports.iso_week(OSLO_NOW, zone)
    last = reports.iso_week(OSLO_NOW - dt.timedelta(weeks=1), zone)
    assert len(rates.weeks) == 12 and rates.weeks[-2:] == [last, this]
    assert rates.rate("legevakt-leader", last) == pytest.approx(3 / 5)
    assert rates.rate("legevakt-leader", this) == pytest.approx(5 / 6)
    [legevakt] = [r for r in rates.roles if r.role_id == "legevakt-leader"]
    assert legevakt.rates[:-2] == [None] * 10  # the old week is outside the period
    assert legevakt.title == rt.content.roles["legevakt-leader"][1].title
    [unit] = [r for r in rates.roles if r.role_id == "unit-leader"]
    assert unit.rates == [None] * 12 and not unit.visible
    assert rates.hidden == 1 and rates.min_group == 5

    # With a smaller minimum the four unit leaders are shown.
    small = rt.settings.model_copy(update={"report_min_group": 4})
    rt.settings, saved = small, rt.settings
    try:
        rates = await stats.response_rates(rt, now=OSLO_NOW)
    finally:
        rt.settings = saved
    assert rates.rate("unit-leader", last) == 1.0 and rates.hidden == 0


async def test_dispatches_per_day_and_the_worse_share(rt: Runtime) -> None:
    await seed(rt, OSLO_NOW)
    # Just after midnight on 1 April in Oslo (summer time, UTC+2), still 31 March in UTC.
    async with rt.sessions() as session:
        session.add(
            Dispatch(
                id="d" * 32,
                topic_id="fever-child",
                topic_version=1,
                locale="nb",
                token_hash="e" * 64,
                created_at=dt.datetime(2026, 3, 31, 22, 30, tzinfo=dt.UTC),
                expires_at=dt.datetime(2026, 4, 3, tzinfo=dt.UTC),
            )
        )
        await session.commit()

    days = await stats.dispatches_per_day(rt, now=OSLO_NOW)

    assert len(days) == 30
    assert days[-1].day == dt.date(2026, 4, 10) and days[0].day == dt.date(2026, 3, 12)
    by_day = {d.day: d for d in days}
    assert (by_day[dt.date(2026, 4, 10)].dispatches, by_day[dt.date(2026, 4, 10)].worse) == (4, 1)
    assert by_day[dt.date(2026, 4, 10)].worse_share == pytest.approx(0.25)
    assert (by_day[dt.date(2026, 4, 7)].dispatches, by_day[dt.date(2026, 4, 7)].worse) == (2, 2)
    assert by_day[dt.date(2026, 4, 1)].dispatches == 1
    assert by_day[dt.date(2026, 3, 31)].dispatches == 0
    assert sum(d.dispatches for d in days) == 7  # the one 40 days ago is left out
    assert by_day[dt.date(2026, 4, 9)].worse_share is None

    counts = await stats.counts(rt, now=OSLO_NOW)
    assert counts.dispatches_24h == 4 and counts.active_leaders == 10


async def test_the_chart_is_a_png_with_and_without_data(rt: Runtime) -> None:
    empty = await stats.chart_data(rt, now=OSLO_NOW)
    assert empty.empty and not empty.has_rates and not empty.has_dispatches
    blank = stats.draw_chart(empty)
    read_png(blank)

    await seed(rt, OSLO_NOW)
    data = await stats.chart_data(rt, now=OSLO_NOW)
    assert not data.empty and data.has_rates and data.has_dispatches
    drawn = stats.draw_chart(data, role_titles={"legevakt-leader": "Leiar på legevakt"})
    assert read_png(drawn).shape == read_png(blank).shape
    assert drawn != blank

    # Only small groups and no dispatches: still a chart, saying nothing can be shown.
    async with rt.sessions() as session:
        await session.exec(delete(Dispatch))
        await session.exec(delete(Prompt).where(col(Prompt.role_id) == "legevakt-leader"))
        await session.commit()
    hidden_only = await stats.chart_data(rt, now=OSLO_NOW)
    assert not hidden_only.empty and not hidden_only.has_rates
    read_png(stats.draw_chart(hidden_only))


# --- /reload -------------------------------------------------------------------------------


async def advice_link(bot: RunningBot) -> str:
    valid = dispatches.validate({"topic": "fever-child", "locale": "nb"}, bot.rt)
    created = await dispatches.create(bot.rt, valid)
    return created.deep_link.split("?start=", 1)[1]


async def opened(people: People, payload: str, name: str) -> str:
    caller = await people(name)
    [advice, *_rest] = await caller.says(f"/start {payload}")
    return advice.text


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


async def test_reload_swaps_good_content_keeps_made_dispatches_and_refuses_bad_edits(
    bot: RunningBot, people: People, settings: Settings
) -> None:
    admin = await people("Ada")
    topic_file = settings.content_dir / "advice" / "fever-child.yaml"
    before = await advice_link(bot)

    edit(topic_file, f'title: "{TITLE}"', f'title: "{NEW_TITLE}"')
    [answer] = await admin.says("/reload", timeout=30)
    assert "fever-child v2" in answer.text  # the summary lists the topics now served
    assert bot.rt.content.advice["fever-child"].title == NEW_TITLE
    after = await advice_link(bot)

    old_text = await opened(people, before, "Ola")
    assert TITLE in old_text and NEW_TITLE not in old_text  # made before: kept its advice
    new_text = await opened(people, after, "Per")
    assert NEW_TITLE in new_text

    # A bad tier: refused with file and line, the last good content still served.
    good = topic_file.read_text(encoding="utf-8")
    edit(topic_file, "tier: emergency", "tier: call_112")
    [refused] = await admin.says("/reload", timeout=30)
    line = next(
        n
        for n, text in enumerate(topic_file.read_text(encoding="utf-8").splitlines(), 1)
        if "call_112" in text
    )
    assert re.search(rf"fever-child\.yaml:{line}\b", refused.text), refused.text
    assert bot.rt.content.advice["fever-child"].title == NEW_TITLE

    # Invalid YAML: refused the same way.
    topic_file.write_text(good.replace("self_care:", "self_care: [unclosed", 1), encoding="utf-8")
    [broken] = await admin.says("/reload", timeout=30)
    assert re.search(r"fever-child\.yaml:\d+", broken.text), broken.text
    assert "fever-child v2" not in broken.text
    assert NEW_TITLE in await opened(people, await advice_link(bot), "Siri")


async def test_sighup_reload_tells_the_admins_through_the_outbox(
    bot: RunningBot, people: People
) -> None:
    admin: LocalUser = await people("Ada")
    await admin.says("/start")  # a chat the bot can write to

    result = await reload_and_tell_admins(bot.rt)

    assert result.ok
    [told] = await admin.replies(timeout=10)
    assert "fever-child v2" in told.text
