"""Participation reports: counts per week, role and theme; small groups hidden; only shared text.

Leaders and prompts are written straight into the database, as the weekly tick would leave them;
the report is read through the service and through `python -m bot report participation`.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from bot import migrate
from bot.app import build_runtime
from bot.cli import main
from bot.config import Settings
from bot.models import Leader, Organisation, Prompt, PromptStatus, utcnow
from bot.runtime import Runtime
from bot.services import reports
from bot.services.leaders import ANSWER
from tests.conftest import active_leaders

BERGEN = "Legevakten i Bergen"
FORDE = "Legevakten i Førde"
NOW = utcnow()

SHARED_1 = "Vi har begynt å skrive konkrete grenser i rådene, med tall og klokkeslett."
SHARED_2 = "Beslutningsstøtten brukes lite på natt; vi trenger opplæring der."
SHARED_SMALL = "Vi har fått tid til gjennomgangene etter at vi endret turnusen."
UNSHARED = [
    "PRIVAT: jeg rekker ikke dette, og sjefen min vet det ikke.",
    "PRIVAT: video har vi aldri fått til å virke.",
    "PRIVAT: jeg er usikker på om gjennomgangen var god nok.",
    "PRIVAT: eldre svar fra lenge siden.",
    "PRIVAT: svar fra en annen legevakt.",
]
SHARED_ELSEWHERE = [
    "DELT, men for gammelt: dette skal ikke med i perioden.",
    "DELT i Førde: hører ikke hjemme i Bergens rapport.",
]


def week(back: int) -> str:
    """The ISO week ``back`` weeks before now, in the bot's zone."""
    return reports.iso_week(NOW - dt.timedelta(weeks=back), ZoneInfo("Europe/Oslo"))


THIS, LAST, OLD = 0, 1, 10


@pytest.fixture
async def rt(settings: Settings) -> AsyncIterator[Runtime]:
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    runtime = build_runtime(settings)
    await seed(runtime)
    try:
        yield runtime
    finally:
        await runtime.engine.dispose()


_user_ids = itertools.count(7001)


async def seed(rt: Runtime) -> None:
    """Two organisations, several roles and weeks, every status, shared and unshared answers."""
    seal = rt.cipher(ANSWER).encrypt  # answers are stored encrypted, as the bot stores them
    async with rt.sessions() as session:
        bergen = Organisation(name=BERGEN)
        forde = Organisation(name=FORDE)
        session.add_all([bergen, forde])
        await session.flush()

        async def leaders(org: Organisation, role_id: str, count: int) -> list[Leader]:
            return await active_leaders(session, rt, org, role_id, count, _user_ids)

        def prompt(
            leader: Leader,
            back: int,
            theme_id: str,
            question_id: str,
            status: str,
            text: str | None = None,
            shared: bool = False,
        ) -> None:
            assert leader.id is not None
            due = NOW - dt.timedelta(weeks=back)
            answered = status == PromptStatus.ANSWERED
            session.add(
                Prompt(
                    leader_id=leader.id,
                    programme_id=leader.programme_id,
                    theme_id=theme_id,
                    question_id=question_id,
                    role_id=leader.role_id,
                    position=0,
                    week=week(back),
                    due_at=due,
                    status=status,
                    sent_at=None if status == PromptStatus.MISSED else due,
                    skip_reason="busy" if status == PromptStatus.SKIPPED else None,
                    answer_ciphertext=seal(text) if answered else None,
                    answered_at=due + dt.timedelta(hours=1) if answered else None,
                    shared=shared,
                )
            )

        A, S, K, M = (
            PromptStatus.ANSWERED,
            PromptStatus.SENT,
            PromptStatus.SKIPPED,
            PromptStatus.MISSED,
        )
        # Bergen, five leaders at the legevakt: a group that is shown.
        lv = await leaders(bergen, "legevakt-leader", 5)
        theme, question = "klinisk-kommunikasjon", "konkrete-rad"
        prompt(lv[0], LAST, theme, question, A, SHARED_1, shared=True)
        prompt(lv[1], LAST, theme, question, A, UNSHARED[0])
        prompt(lv[2], LAST, theme, question, K)
        prompt(lv[3], LAST, theme, question, M)
        prompt(lv[4], LAST, theme, question, S)
        theme, question = "beslutningsstotte", "video"
        prompt(lv[0], THIS, theme, question, A, "Kort svar.")
        prompt(lv[1], THIS, theme, question, A, SHARED_2, shared=True)
        prompt(lv[2], THIS, theme, question, A, UNSHARED[1])
        prompt(lv[3], THIS, theme, question, S)
        prompt(lv[4], THIS, theme, question, K)
        prompt(lv[0], OLD, "risiko-og-kvalitetsforbedring", "konkrete-rad", A, UNSHARED[3])
        prompt(lv[1], OLD, "risiko-og-kvalitetsforbedring", "video", A, SHARED_ELSEWHERE[0], True)
        # Bergen, four unit leaders: hidden by default.
        unit = await leaders(bergen, "unit-leader", 4)
        theme, question = "ledelse-av-gjennomganger", "stotte-leder-av-gjennomgangen"
        prompt(unit[0], LAST, theme, question, A, UNSHARED[2])
        prompt(unit[1], LAST, theme, question, A, SHARED_SMALL, shared=True)
        prompt(unit[2], LAST, theme, question, K)
        prompt(unit[3], LAST, theme, question, M)
        # Bergen, one municipal leader: hidden whatever the minimum (above 1).
        [municipal] = await leaders(bergen, "municipal-leadership", 1)
        prompt(municipal, THIS, "kommuneledelse", "kommunens-ansvar", M)
        # Førde: another organisation, same week, role and theme as Bergen's shown group.
        fo = await leaders(forde, "legevakt-leader", 5)
        theme, question = "klinisk-kommunikasjon", "konkrete-rad"
        prompt(fo[0], LAST, theme, question, A, UNSHARED[4])
        prompt(fo[1], LAST, theme, question, A, SHARED_ELSEWHERE[1], shared=True)
        for leader in fo[2:]:
            prompt(leader, LAST, theme, question, A, "Svar.")
        await session.commit()


def by_group(p: reports.Participation) -> dict[tuple[str, str, str], reports.ParticipationRow]:
    return {(r.week, r.role_id, r.theme_id): r for r in p.rows}


async def test_counts_and_rates_per_week_role_and_theme(rt: Runtime) -> None:
    p = await reports.participation(rt, BERGEN)

    assert p.organisation == BERGEN and p.min_group == 5
    assert len(p.weeks) == 8 and p.weeks[-1] == week(THIS) and p.weeks[-2] == week(LAST)
    assert week(OLD) not in p.weeks
    groups = by_group(p)
    assert set(groups) == {
        (week(LAST), "legevakt-leader", "klinisk-kommunikasjon"),
        (week(THIS), "legevakt-leader", "beslutningsstotte"),
        (week(LAST), "unit-leader", "ledelse-av-gjennomganger"),
        (week(THIS), "municipal-leadership", "kommuneledelse"),
    }
    last = groups[(week(LAST), "legevakt-leader", "klinisk-kommunikasjon")]
    assert (last.leaders, last.sent, last.answered, last.skipped, last.missed) == (5, 4, 2, 1, 1)
    assert last.response_rate == 0.5 and not last.hidden
    assert last.role_title == "Leder ved legevakt" and last.theme_title == "Klinisk kommunikasjon"
    this = groups[(week(THIS), "legevakt-leader", "beslutningsstotte")]
    assert (this.leaders, this.sent, this.answered, this.skipped, this.missed) == (5, 5, 3, 1, 0)
    assert this.response_rate == 0.6 and this.theme_title == "Beslutningsstøtte"
    assert [r.week for r in p.rows] == sorted(r.week for r in p.rows)


async def test_skipping_is_not_missing(rt: Runtime) -> None:
    p = await reports.participation(rt, BERGEN)

    last = by_group(p)[(week(LAST), "legevakt-leader", "klinisk-kommunikasjon")]
    # Skipped reached the leader (it is in sent and lowers the rate); missed never did.
    assert last.skipped == 1 and last.missed == 1
    assert last.sent == 4  # sent 1 + answered 2 + skipped 1; the missed one is not sent


async def test_groups_under_the_minimum_are_hidden_and_counted(rt: Runtime) -> None:
    p = await reports.participation(rt, BERGEN)

    groups = by_group(p)
    unit = groups[(week(LAST), "unit-leader", "ledelse-av-gjennomganger")]
    assert unit.leaders is None and unit.hidden  # not even the head count: 4 would say who
    assert (unit.sent, unit.answered, unit.skipped, unit.missed, unit.response_rate) == (
        (None,) * 5
    )
    assert groups[(week(THIS), "municipal-leadership", "kommuneledelse")].hidden
    assert p.hidden_rows == 2
    text = reports.as_text(p)
    assert "2 groups with fewer than 5 leaders are not shown" in text

    rt.settings = rt.settings.model_copy(update={"report_min_group": 3})
    p3 = await reports.participation(rt, BERGEN)
    unit3 = by_group(p3)[(week(LAST), "unit-leader", "ledelse-av-gjennomganger")]
    assert (unit3.sent, unit3.answered, unit3.skipped, unit3.missed) == (3, 2, 1, 1)
    assert unit3.response_rate == pytest.approx(2 / 3)
    assert p3.hidden_rows == 1 and p3.min_group == 3
    assert "1 group with fewer than 3 leaders is not shown" in reports.as_text(p3)


async def test_only_shared_answers_of_the_organisation_and_period_appear(rt: Runtime) -> None:
    p = await reports.participation(rt, BERGEN)

    assert [a.text for a in p.shared_answers] == [SHARED_1, SHARED_2]
    # A unit leader's (4 of them): pooled with the municipal leader's role (1), 5 in all, and
    # shown as text only.
    assert [a.text for a in p.pooled_answers] == [SHARED_SMALL]
    assert p.pooled_answers[0].week is None and p.pooled_answers[0].role_title is None
    first = p.shared_answers[0]
    assert first.week == week(LAST) and first.role_title == "Leder ved legevakt"
    assert first.theme_title == "Klinisk kommunikasjon"
    assert first.question_text.startswith("Hvordan kan vi gjøre rådene konkrete")
    for output in [reports.as_text(p), reports.as_csv(p), json.dumps(reports.as_json(p))]:
        for secret in UNSHARED + SHARED_ELSEWHERE + ["Kort svar.", "Svar."]:
            assert secret not in output
    for output in [reports.as_text(p), json.dumps(reports.as_json(p), ensure_ascii=False)]:
        for shared in [SHARED_1, SHARED_2, SHARED_SMALL]:
            assert shared in output
    # No leader, person or Telegram ids in the answers.
    assert set(reports.as_json(p)["shared_answers"][0]) == {
        "week",
        "role_title",
        "theme_title",
        "question_text",
        "text",
    }
    assert reports.as_json(p)["pooled_answers"] == [SHARED_SMALL]
    text = reports.as_text(p)
    pooled = text.split("Shared answers from roles with fewer than 5 leaders (1)", 1)[1]
    assert SHARED_SMALL in pooled and "Leder i virksomheten" not in pooled
    assert week(LAST) not in pooled and "Q:" not in pooled


async def test_the_text_report_reads_plainly(rt: Runtime) -> None:
    text = reports.as_text(await reports.participation(rt, BERGEN))

    assert text.startswith(f"Participation: {BERGEN}, ")
    table = [line for line in text.splitlines() if re.match(r"\d{4}-W\d\d  ", line)]
    assert len(table) == 4
    [row] = [line for line in table if "Klinisk kommunikasjon" in line]
    assert row.split()[-6:] == ["5", "4", "2", "1", "1", "50%"]
    [hidden] = [line for line in table if "Kommuneledelse" in line]
    assert hidden.split()[-6:] == ["–", "–", "–", "–", "–", "–"]  # the head count too
    assert "Shared answers (2)" in text


async def test_a_period_without_prompts_and_an_unknown_organisation(rt: Runtime) -> None:
    later = NOW + dt.timedelta(weeks=30)
    empty = await reports.participation(rt, BERGEN, weeks=2, now=later)
    assert empty.rows == [] and empty.shared_answers == [] and empty.hidden_rows == 0
    assert "No questions were due in this period." in reports.as_text(empty)
    one_week = await reports.participation(rt, BERGEN, weeks=1)
    assert {r.week for r in one_week.rows} == {week(THIS)}
    assert [a.text for a in one_week.shared_answers] == [SHARED_2]

    with pytest.raises(LookupError, match=f"known organisations: {BERGEN}, {FORDE}"):
        await reports.participation(rt, "Legevakten i Oslo")
    with pytest.raises(ValueError):
        await reports.participation(rt, BERGEN, weeks=0)
    assert (await reports.participation(rt, " legevakten i bergen ")).organisation == BERGEN


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    assert settings.database_url is not None and settings.secret_key is not None
    return {
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(settings.var_dir),
        "SECRET_KEY": settings.secret_key.get_secret_value(),
        "TELEGRAM_BOT_TOKEN": "",
        "BOT_USERNAME": "",
    }


async def run(env: dict[str, str], *args: str) -> Result:
    def invoke() -> Result:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return await asyncio.to_thread(invoke)


async def test_the_csv_report_parses(rt: Runtime, env: dict[str, str]) -> None:
    result = await run(env, "report", "participation", "--org", BERGEN, "--format", "csv")

    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(table[0]) == reports.CSV_COLUMNS
    groups = {(r["week"], r["role_id"], r["theme_id"]): r for r in table}
    shown = groups[(week(LAST), "legevakt-leader", "klinisk-kommunikasjon")]
    assert shown["role"] == "Leder ved legevakt" and shown["theme"] == "Klinisk kommunikasjon"
    assert [shown[c] for c in ["leaders", "sent", "answered", "skipped", "missed"]] == [
        "5",
        "4",
        "2",
        "1",
        "1",
    ]
    assert shown["response_rate"] == "0.5" and shown["hidden"] == "no"
    hidden = groups[(week(LAST), "unit-leader", "ledelse-av-gjennomganger")]
    assert hidden["leaders"] == "" and hidden["hidden"] == "yes"
    assert [hidden[c] for c in ["sent", "answered", "skipped", "missed", "response_rate"]] == [
        ""
    ] * 5
    for secret in UNSHARED + SHARED_ELSEWHERE:
        assert secret not in result.output


async def test_the_text_and_json_reports(rt: Runtime, env: dict[str, str]) -> None:
    text = await run(env, "report", "participation", "--org", BERGEN)
    as_json = await run(
        env, "report", "participation", "--org", BERGEN, "--format", "json", "--weeks", "1"
    )
    env3 = {**env, "REPORT_MIN_GROUP": "3"}
    smaller = await run(env3, "report", "participation", "--org", BERGEN, "--format", "json")

    assert text.exit_code == 0, text.output
    assert "2 groups with fewer than 5 leaders are not shown" in text.stdout
    assert SHARED_1 in text.stdout
    assert as_json.exit_code == 0, as_json.output
    answer: dict[str, Any] = json.loads(as_json.stdout)
    assert answer["weeks"] == [week(THIS)] and answer["hidden_rows"] == 1
    assert [a["text"] for a in answer["shared_answers"]] == [SHARED_2]
    [shown] = [r for r in answer["rows"] if not r["hidden"]]
    assert shown["response_rate"] == 0.6 and shown["sent"] == 5
    assert json.loads(smaller.stdout)["hidden_rows"] == 1
    for output in [text.output, as_json.output, smaller.output]:
        for secret in UNSHARED + SHARED_ELSEWHERE:
            assert secret not in output


async def test_an_unknown_organisation_exits_1_naming_the_known_ones(
    rt: Runtime, env: dict[str, str]
) -> None:
    result = await run(env, "report", "participation", "--org", "Legevakten i Oslo")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"There is no organisation 'Legevakten i Oslo'; known organisations: {BERGEN}, {FORDE}."
    )
    bad_weeks = await run(env, "report", "participation", "--org", BERGEN, "--weeks", "0")
    assert bad_weeks.exit_code == 2


async def test_one_top_leaders_shared_answer_names_no_one(rt: Runtime) -> None:
    """The attack: one top leader in an organisation, who shared an answer "without your name"."""
    secret = "Jeg burde ha stoppet innsparingen i helgebemanningen."
    async with rt.sessions() as session:
        oslo = Organisation(name="Oslo kommune")
        session.add(oslo)
        await session.flush()
        units = await active_leaders(session, rt, oslo, "unit-leader", 5, _user_ids)
        [top] = await active_leaders(session, rt, oslo, "top-leader", 1, _user_ids)
        for leader, text, shared in [(top, secret, True), (units[0], "Et svar.", True)]:
            assert leader.id is not None
            session.add(
                Prompt(
                    leader_id=leader.id,
                    programme_id=leader.programme_id,
                    theme_id="kommuneledelse",
                    question_id="kommunens-ansvar",
                    role_id=leader.role_id,
                    position=0,
                    week=week(LAST),
                    due_at=NOW - dt.timedelta(weeks=LAST),
                    status=PromptStatus.ANSWERED,
                    sent_at=NOW - dt.timedelta(weeks=LAST),
                    answer_ciphertext=rt.cipher(ANSWER).encrypt(text),
                    answered_at=NOW - dt.timedelta(weeks=LAST),
                    shared=shared,
                )
            )
        await session.commit()

    p = await reports.participation(rt, "Oslo kommune")
    outputs = [reports.as_text(p), reports.as_csv(p), json.dumps(reports.as_json(p))]
    [hidden] = [r for r in p.rows if r.role_id == "top-leader"]
    assert hidden.hidden and hidden.leaders is None
    for output in outputs:
        assert secret not in output  # held back: the only small role has one leader
    text = reports.as_text(p)
    [line] = [line for line in text.splitlines() if "Overordnet leder" in line]
    assert line.split()[-6:] == ["–"] * 6  # no "1" leader
    assert [a.text for a in p.shared_answers] == ["Et svar."]  # five unit leaders: shown whole
    assert p.pooled_answers == []

    # With enough leaders in small roles, it is shown, as text only.
    async with rt.sessions() as session:
        org = await session.get(Organisation, oslo.id)
        await active_leaders(session, rt, org, "review-leader", 4, _user_ids)
        await session.commit()
    p = await reports.participation(rt, "Oslo kommune")
    assert [a.text for a in p.pooled_answers] == [secret]
    pooled = reports.as_text(p).split("Shared answers from roles with fewer than 5 leaders")[1]
    assert "Overordnet leder" not in pooled and week(LAST) not in pooled
