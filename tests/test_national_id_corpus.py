"""The identity-number guard against the corpus in ``tests/national_ids.py``: every spelling of a
fødselsnummer, D-number or H-number in running text is held back wherever free text comes in
(a nurse's note by the API and by ``dispatch create --note``, a leader's answer as sent and as
edited), and the numbers that are not one (phone numbers, dates, amounts, order numbers) go
through.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlmodel import select

from bot.app import RunningBot
from bot.cli import main
from bot.models import Dispatch, Prompt
from bot.privacy import contains_national_id
from tests.conftest import Api, People, table_rows
from tests.national_ids import CONTEXTS, FNR, NOT_IDS, SPELLINGS, D, H, corpus
from tests.test_leaders import enrolled, question_arrives

CORPUS = corpus()
NOTE_REFUSED = "the note contains a national identity number (fødselsnummer)"
HELD = "Dette er ikke lagret: det inneholder noe som ser ut som et"
QUIET = 0.05  # the bot answers each message with one reply at once: no need to wait longer


def test_the_corpus_is_large_and_covers_every_kind_of_number() -> None:
    assert len(CORPUS) >= 40
    for kind in ("fnr", "D-number", "H-number"):
        assert sum(f"({kind} " in label for label, _ in CORPUS) >= 5, kind
    for number in FNR + D + H:  # every number, in more than one spelling and sentence
        assert sum(number in label for label, _ in CORPUS) >= 5, number
    assert len(SPELLINGS) == len(CORPUS) and len(CONTEXTS) > 3


@pytest.mark.parametrize(("label", "text"), CORPUS, ids=[label for label, _ in CORPUS])
def test_every_spelling_is_found(label: str, text: str) -> None:
    assert contains_national_id(text), label


@pytest.mark.parametrize("text", NOT_IDS)
def test_numbers_that_are_not_identity_numbers_pass(text: str) -> None:
    assert not contains_national_id(text)


async def test_the_api_refuses_every_spelling_in_a_note_and_stores_nothing(
    api: Api, bot: RunningBot
) -> None:
    for label, text in CORPUS:
        status, data = await api.post(
            "/api/v1/dispatches", {"topic": "fever-child", "locale": "nb", "note": text}
        )
        assert status == 422, label
        assert NOTE_REFUSED in data["fields"]["note"], label
    async with bot.rt.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Dispatch))).one() == 0

    for text in NOT_IDS:
        status, data = await api.post(
            "/api/v1/dispatches", {"topic": "fever-child", "locale": "nb", "note": text}
        )
        assert status == 201, (text, data)


def test_dispatch_create_on_the_command_line_refuses_every_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "DATABASE_URL": database_url,
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "cli-secret-" + "y" * 32,
        "TELEGRAM_BOT_TOKEN": "",
        "BOT_USERNAME": "",
    }
    runner = CliRunner()
    create = ["dispatch", "create", "--topic", "fever-child", "--locale", "nb", "--note"]
    for label, text in CORPUS:
        result = runner.invoke(main, [*create, text], env=env, catch_exceptions=False)
        assert result.exit_code == 1, label
        assert result.stderr.startswith("The dispatch was not created:\n  --note: "), label
        assert NOTE_REFUSED in result.stderr, label
    assert table_rows(database_url, "dispatch") == []

    result = runner.invoke(main, [*create, NOT_IDS[2]], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output


async def test_a_leader_answer_with_any_spelling_is_held_as_sent_and_as_edited(
    bot: RunningBot, people: People
) -> None:
    lise = await enrolled(bot, people)
    await question_arrives(bot, lise)
    for label, text in CORPUS:
        [held] = await lise.says(text, quiet=QUIET)
        assert held.text.startswith(HELD), label
    async with bot.rt.sessions() as session:
        [prompt] = (await session.exec(select(Prompt))).all()
    assert prompt.status == "sent" and prompt.answer_ciphertext is None

    answer = "Vi må lære av hendelser sammen."
    [saved] = await lise.says(answer)
    assert saved.text.startswith("Takk, svaret ditt er lagret.")
    answer_id = lise.last_message_id
    assert answer_id is not None
    for label, text in CORPUS:
        [held] = await lise.edits(answer_id, text, quiet=QUIET)
        assert held.text.startswith(HELD), label
    for text in NOT_IDS:
        [updated] = await lise.edits(answer_id, text, quiet=QUIET)
        assert updated.text == "Svaret ditt er oppdatert.", text
    async with bot.rt.sessions() as session:
        [prompt] = (await session.exec(select(Prompt))).all()
    assert prompt.status == "answered"
