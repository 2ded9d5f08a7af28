"""#Råbra's monthly digest and report as services: the small-group rule (which anonymous stories
and counts may be shown), when digests are queued (once per leader and month, at the leader's
time in the month's first week), what the digest says when it is sent, and `report raabra`.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, update
from sqlmodel import col, select

from bot.cli import main
from bot.config import Settings
from bot.messages import Message, Permanent
from bot.models import (
    Leader,
    LeaderStatus,
    Organisation,
    OutboxMessage,
    Person,
    RaabraDigest,
    RaabraStep,
    RaabraStory,
    RaabraVisibility,
    utcnow,
)
from bot.renderers import Renderers
from bot.runtime import Runtime
from bot.services import raabra
from bot.services.weekly import local_occurrence

APRIL = "2026-04"
MAY_FIRST = dt.date(2026, 5, 1)  # a Friday


class World:
    """An organisation, its people and their stories, written straight to the database."""

    def __init__(self, rt: Runtime, name: str = "Helse Vest HF") -> None:
        self.rt = rt
        self.name = name
        self.ids: Iterator[int] = count(7001)
        self.org: Organisation | None = None

    async def organisation(self) -> Organisation:
        if self.org is None:
            async with self.rt.sessions() as session:
                self.org = Organisation(name=self.name)
                session.add(self.org)
                await session.commit()
                await session.refresh(self.org)
        return self.org

    async def person(self) -> Person:
        async with self.rt.sessions() as session:
            person = Person(telegram_user_id=next(self.ids), locale="nb")
            session.add(person)
            await session.commit()
            await session.refresh(person)
        return person

    async def leader(
        self, weekday: int | None = 1, minute: int | None = 540, **values: Any
    ) -> Leader:
        org = await self.organisation()
        person = await self.person()
        assert person.id is not None and org.id is not None
        async with self.rt.sessions() as session:
            leader = Leader(
                person_id=person.id,
                organisation_id=org.id,
                role_id="unit-leader",
                programme_id="systemperspektiv",
                weekday=weekday,
                minute_of_day=minute,
                **({"status": LeaderStatus.ACTIVE} | values),
            )
            session.add(leader)
            await session.commit()
            await session.refresh(leader)
        return leader

    async def story(
        self,
        author: Person | None,
        visibility: str,
        text: str,
        *,
        theme: str | None = None,
        name: str | None = None,
        month: str = APRIL,
        day: int = 10,
    ) -> RaabraStory:
        org = await self.organisation()
        assert org.id is not None
        first = raabra.parse_month(month)
        shared = (
            None
            if visibility == RaabraVisibility.PRIVATE
            else local_occurrence(first.replace(day=day), 12 * 60, self.rt.settings.zone)
        )
        cipher = self.rt.cipher(raabra.KEY)
        async with self.rt.sessions() as session:
            row = RaabraStory(
                organisation_id=org.id,
                person_id=author.id if author is not None else None,
                step=RaabraStep.DONE,
                theme_id=theme,
                visibility=visibility,
                text_ciphertext=cipher.encrypt(text),
                name_ciphertext=cipher.encrypt(name) if name else None,
                shared_at=shared,
                created_at=shared or utcnow(),
            )
            session.add(row)
            await session.commit()
            await session.refresh(row)
        return row

    async def month(self, month: str = APRIL) -> raabra.Month:
        org = await self.organisation()
        async with self.rt.sessions() as session:
            return await raabra.month_of_stories(self.rt, session, org, month)


@pytest.fixture
def world(rt: Runtime) -> World:
    return World(rt)


async def test_anonymous_stories_are_shown_and_counted_only_when_five_people_told_anonymously(
    world: World,
) -> None:
    named = await world.person()
    await world.story(named, "named", "Et navngitt eksempel.", theme="samarbeid", name="Kari")
    await world.story(named, "private", "Bare for Kari.", theme="samarbeid")
    authors = [await world.person() for _ in range(4)]
    for n, author in enumerate(authors):
        await world.story(author, "anonymous", f"Anonym {n}", theme="kollega")
    await world.story(authors[0], "anonymous", "Anonym 0 igjen", theme="samarbeid")
    # Another month, and another organisation, do not count.
    await world.story(await world.person(), "anonymous", "Mars", month="2026-03")
    other = World(world.rt, "Annen HF")
    other.ids = count(8001)
    await other.story(await other.person(), "anonymous", "Annen organisasjon")

    april = await world.month()
    assert not april.anonymous_shown  # four people: held back, not even counted
    assert [s.text for s in april.shown] == ["Et navngitt eksempel."]
    assert april.counts(world.rt.content.raabra) == [("samarbeid", 1)]

    fifth = await world.person()
    await world.story(fifth, "anonymous", "Anonym uten tema")
    april = await world.month()
    assert april.anonymous_shown
    assert [s.name for s in april.named] == ["Kari"]
    # By the content's theme order, then text; never by time. No theme last.
    assert [s.text for s in april.anonymous] == [
        "Anonym 0 igjen",
        "Anonym 0",
        "Anonym 1",
        "Anonym 2",
        "Anonym 3",
        "Anonym uten tema",
    ]
    assert all(s.name is None for s in april.anonymous)
    assert april.counts(world.rt.content.raabra) == [("samarbeid", 2), ("kollega", 4), (None, 1)]
    assert "Bare for Kari." not in [s.text for s in april.shown]


async def test_authors_whose_data_is_deleted_count_together_as_one(world: World) -> None:
    for n in range(3):
        await world.story(await world.person(), "anonymous", f"Kjent forfatter {n}")
    for n in range(3):
        await world.story(None, "anonymous", f"Slettet forfatter {n}")
    assert not (await world.month()).anonymous_shown  # 3 + 1, not 3 + 3
    await world.story(await world.person(), "anonymous", "En til")
    assert (await world.month()).anonymous_shown  # 4 + 1


async def test_digests_are_queued_once_per_leader_and_month_at_the_leaders_own_time(
    world: World,
) -> None:
    rt = world.rt
    zone = rt.settings.zone
    tuesday = await world.leader(weekday=1, minute=540)  # first Tuesday of May: the 5th
    no_time = await world.leader(weekday=None, minute=None)  # first weekday: Friday the 1st
    await world.leader(status=LeaderStatus.PAUSED)
    blocked = await world.leader()
    async with rt.sessions() as session:
        await session.exec(
            update(Person).where(col(Person.id) == blocked.person_id).values(blocked_at=utcnow())
        )
        await session.commit()
    assert raabra.digest_due(MAY_FIRST, tuesday, zone) == local_occurrence(
        dt.date(2026, 5, 5), 540, zone
    )
    assert raabra.digest_due(MAY_FIRST, no_time, zone) == local_occurrence(MAY_FIRST, 540, zone)

    # Only an anonymous story by one person: nothing to show, so no digest tells it exists.
    await world.story(await world.person(), "anonymous", "Holdt tilbake")
    friday = local_occurrence(MAY_FIRST, 600, zone)
    assert await raabra.send_due_digests(rt, friday) == 0

    await world.story(await world.person(), "named", "Med navn", name="Per")
    assert await raabra.send_due_digests(rt, friday) == 1  # the leader without a time
    assert await raabra.send_due_digests(rt, friday + dt.timedelta(days=3)) == 0  # Monday
    tuesday_10 = local_occurrence(dt.date(2026, 5, 5), 600, zone)
    assert await raabra.send_due_digests(rt, tuesday_10) == 1
    # Once per leader and month, even after the outbox's finished rows are purged.
    async with rt.sessions() as session:
        await session.exec(delete(OutboxMessage))
        await session.commit()
    assert await raabra.send_due_digests(rt, tuesday_10 + dt.timedelta(hours=1)) == 0
    async with rt.sessions() as session:
        sent = (await session.exec(select(RaabraDigest).order_by(col(RaabraDigest.id)))).all()
    assert [(d.leader_id, d.month) for d in sent] == [(no_time.id, APRIL), (tuesday.id, APRIL)]

    # A leader who joins late gets it within the week after their time, not later.
    late = await world.leader(weekday=1, minute=540)
    assert await raabra.send_due_digests(rt, tuesday_10 + dt.timedelta(days=7)) == 0
    assert late.id not in {d.leader_id for d in sent}


async def test_the_digest_is_written_when_sent_from_the_stories_as_they_are_then(
    world: World,
) -> None:
    rt = world.rt
    leader = await world.leader(weekday=4, minute=540)  # Friday the 1st
    named = await world.story(
        await world.person(), "named", "Godt gjort.", theme="samarbeid", name="Ola <b>"
    )
    await world.story(await world.person(), "named", "Også bra.", name="Siri")
    assert (
        await raabra.send_due_digests(rt, local_occurrence(MAY_FIRST, 600, rt.settings.zone)) == 1
    )
    async with rt.sessions() as session:
        [row] = (await session.exec(select(OutboxMessage))).all()
    assert world.org is not None
    payload = {"organisation_id": world.org.id, "month": APRIL}
    assert (row.kind, row.payload) == ("raabra_digest", payload)

    [message] = (await Renderers(rt)([row])).values()
    assert isinstance(message, Message)
    assert message.text.startswith("<b>#Råbra: dette gikk bra i Helse Vest HF, april 2026</b>")
    assert "• Godt samarbeid: 1\n• Uten tema: 1" in message.text
    assert "<i>Godt samarbeid</i> — Ola &lt;b&gt;\nGodt gjort." in message.text

    async with rt.sessions() as session:  # the person reads in Nynorsk now
        await session.exec(update(Person).values(locale="nn"))
        await session.commit()
    [message] = (await Renderers(rt)([row])).values()
    assert isinstance(message, Message)
    assert message.text.startswith("<b>#Råbra: dette gjekk bra i Helse Vest HF, april 2026</b>")

    # Stories deleted before it is sent are not in it; with nothing left it is not sent.
    await raabra.delete_story(rt, named.person_id or 0, named.id or 0)
    [message] = (await Renderers(rt)([row])).values()
    assert isinstance(message, Message) and "Godt gjort." not in message.text
    async with rt.sessions() as session:
        await session.exec(update(Leader).values(status=LeaderStatus.STOPPED))
        await session.commit()
    [gone] = (await Renderers(rt)([row])).values()
    assert gone == Permanent("ContentGone")  # no longer a leader there: not sent
    assert leader.id is not None


@pytest.fixture
def env(
    settings: Settings, rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    return {
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(settings.var_dir),
        "SECRET_KEY": "test-secret-" + "x" * 32,  # as the settings fixture
        "TELEGRAM_BOT_TOKEN": "",
    }


async def test_the_report_exports_what_the_digests_show_as_text_csv_and_json(
    world: World, env: dict[str, str]
) -> None:
    zone = world.rt.settings.zone
    last = raabra.previous_month(utcnow(), zone)
    before = raabra.month_key(raabra.add_months(raabra.parse_month(last), -1))
    await world.story(
        await world.person(), "named", "Navngitt.", theme="kollega", name="Kari", month=last
    )
    await world.story(await world.person(), "private", "Privat, aldri i rapporten.")
    for n in range(5):
        await world.story(await world.person(), "anonymous", f"Anonym {n}", month=before)
    await world.story(await world.person(), "anonymous", "Alene denne måneden", month=last)

    async def run(*args: str, org: str = "helse vest hf", ok: bool = True) -> str:
        command = ["report", "raabra", "--org", org, *args]
        result = await asyncio.to_thread(CliRunner().invoke, main, command, env=env)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    text = await run("--months", "2")
    assert text.startswith(f"#Råbra: Helse Vest HF, {before} – {last}\n")
    assert f"== {before} (stories shown: 5)" in text and f"== {last} (stories shown: 1)" in text
    assert "Kari · En kollega som stilte opp" in text and "Anonym 4" in text
    assert "Alene denne måneden" not in text and "Privat, aldri" not in text

    rows = list(csv.DictReader(io.StringIO(await run("--months", "2", "--format", "csv"))))
    assert [(r["month"], r["shared_as"], r["name"], r["text"]) for r in rows] == [
        *[(before, "anonymous", "", f"Anonym {n}") for n in range(5)],
        (last, "named", "Kari", "Navngitt."),
    ]
    data = json.loads(await run("--format", "json"))
    [month] = data["months"]
    assert (month["month"], month["anonymous_shown"]) == (last, False)
    assert month["counts"] == [
        {"theme_id": "kollega", "theme": "En kollega som stilte opp", "stories": 1}
    ]

    assert "known organisations: Helse Vest HF" in await run(org="Ukjent", ok=False)
