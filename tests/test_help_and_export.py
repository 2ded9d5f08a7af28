"""Small things found in use, as dialogues: /help lists what this person can use (leader,
caller, admin) in their language, and /export has full dates and comes as CSV too.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.app import RunningBot
from bot.cli import main
from bot.config import Settings
from bot.models import Prompt, utcnow
from bot.services import leaders, weekly
from tests.conftest import Api, People
from tests.test_advice import start_payload
from tests.test_leaders import OSLO, enrolled, leader_row

ADMIN = 5001
NUMBERS_END = "ring 113."


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_user_ids": [ADMIN]})


def commands_in(text: str) -> list[str]:
    return [line.split(" – ")[0] for line in text.splitlines() if line.startswith("/")]


async def test_help_lists_an_enrolled_leaders_commands_with_raabra(
    bot: RunningBot, people: People
) -> None:
    await people("Ada")  # the admin is the first person (5001); Lise is a leader only
    lise = await enrolled(bot, people, language="Nynorsk")
    [help_] = await lise.says("/help")
    assert help_.text.startswith("Dette kan du gjere her\n\nVekentleg refleksjon\n")
    assert commands_in(help_.text) == [
        "/settings",
        "/answers",
        "/export",
        "/raabra",
        "/pause",
        "/resume",
        "/stop",
        "/language",
        "/privacy",
        "/start",
    ]
    assert "/raabra – fortel om godt arbeid eller godt kollegaskap (#Råbra)" in help_.text
    assert "/settings – dag, klokkeslett og språk for det vekentlege spørsmålet" in help_.text
    assert "administratorar" not in help_.text and "legevakta" not in help_.text.split("\n\n")[1]
    assert help_.text.endswith(NUMBERS_END)


async def test_help_for_a_caller_an_admin_and_someone_new(
    bot: RunningBot, people: People, api: Api
) -> None:
    ada = await people("Ada")  # 5001: an admin
    [admin_help] = await ada.says("/help")
    assert "For administratorer\n/status – botens tilstand" in admin_help.text
    assert commands_in(admin_help.text) == [
        "/status",
        "/stats",
        "/reload",
        "/language",
        "/privacy",
        "/start",
    ]

    kari = await people("Kari", language_code="nn")
    [new] = await kari.says("/help")
    assert commands_in(new.text) == ["/language", "/privacy", "/start"]
    assert "Råd og invitasjonar kjem som lenkjer" in new.text
    created = await api.dispatch(topic="fever-child", locale="nn")
    await kari.says(f"/start {start_payload(created['deep_link'])}")
    [caller] = await kari.says("/help")
    assert "Råda dine frå legevakta\nOpna lenkja frå SMS-en igjen" in caller.text
    assert "/status" not in caller.text and "/settings" not in caller.text
    assert "116 117" in caller.text and caller.text.endswith(NUMBERS_END)


async def test_export_has_full_dates_and_comes_as_csv_too(bot: RunningBot, people: People) -> None:
    lise = await enrolled(bot, people)
    leader = await leader_row(bot, lise)
    programme, _role = bot.rt.content.roles[leader.role_id]
    theme, question = programme.questions_for(leader.role_id)[0]
    due = dt.datetime(2025, 12, 30, 8, 0, tzinfo=dt.UTC)  # Tuesday 30 December 2025, 09:00
    async with bot.rt.sessions() as session:
        session.add(
            Prompt(
                leader_id=leader.id or 0,
                programme_id=programme.id,
                theme_id=theme.id,
                question_id=question.id,
                role_id=leader.role_id,
                position=0,
                week=weekly.iso_week(due, OSLO),
                due_at=due,
                sent_at=due,
                status="answered",
                answer_ciphertext=bot.rt.cipher(leaders.ANSWER).encrypt("Svar; med «semikolon»"),
                answered_at=due,
                shared=True,
            )
        )
        await session.commit()

    [document] = await lise.says("/export")
    markdown = (await lise.file(document.message_id)).decode()
    assert f"## tirsdag 30. desember 2025: {theme.title}" in markdown
    assert document.button_texts == ["Som CSV, for regneark"]

    [as_csv] = await lise.presses("Som CSV, for regneark")
    assert as_csv.caption == "Svarene dine, 1 i alt. For regneark."
    assert as_csv.document is not None and as_csv.document["file_name"].endswith(".csv")
    raw = await lise.file(as_csv.message_id)
    assert raw.startswith("\ufeff".encode())  # spreadsheets then read æøå as UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows == [
        ["Dato", "Uke", "Tema", "Spørsmål", "Svar", "Delt"],
        ["2025-12-30", "2026-W01", theme.title, question.text, "Svar; med «semikolon»", "ja"],
    ]
    [typed] = await lise.says("/export csv")
    assert (await lise.file(typed.message_id)) == raw


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    return {
        "DATABASE_URL": database_url,
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "cli-secret-" + "y" * 32,
        "TELEGRAM_BOT_TOKEN": "",
        "BOT_USERNAME": "",
    }


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_group_link_prints_a_startgroup_link_and_refuses_bad_input(env: dict[str, str]) -> None:
    made = run(
        env, "group", "link", "--org", "Helse Vest HF", "--role", "unit-leader",
        "--weekday", "tysdag", "--time", "8.30", "--language", "nn",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    link = json.loads(made.stdout)
    assert link["deep_link"].startswith("https://t.me/sikkerhetsnett_local_bot?startgroup=g_")
    assert (link["weekday"], link["time"], link["language"]) == (1, "08:30", "nn")
    assert link["expires_at"] > utcnow().isoformat()[:10]

    bad = run(env, "group", "link", "--org", "X", "--weekday", "someday", "--time", "25:00")
    assert bad.exit_code == 1
    fields = json.loads(bad.stdout)["fields"]
    assert set(fields) == {"weekday", "time", "programme"}
    assert "programmes: gjentatte-henvendelser, systemperspektiv" in fields["programme"]

    assert run(env, "group", "list").stdout == "No linked groups yet.\n"
    gone = run(env, "group", "unlink", "7")
    assert gone.exit_code == 1 and "There is no linked group 7" in gone.output
