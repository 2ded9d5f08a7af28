"""Free text is encrypted at rest: a nurse's note and risk groups, a leader's answer.

The raw database (read with plain SQL, as anyone with a copy of it would) holds none of it, and
still everything that shows it works: the caller's advice, the leader's /answers and /export,
the participation report. The key rotates (``python -m bot keys rotate``), and a database from
before is encrypted by its migration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, inspect, text
from sqlmodel import select

from bot import migrate
from bot.app import RunningBot, build_runtime
from bot.cli import main
from bot.config import Settings, to_async_url
from bot.models import Dispatch, Organisation, Prompt
from bot.privacy import Cipher
from bot.services import dispatches, leaders, reports
from tests.conftest import Api, People, active_leaders, table_rows
from tests.test_leaders import enrolled, question_arrives

NOTE = "Mor sier at utslettet kom etter penicillinkuren i går."
RISK = "infant-under-3-months"
ANSWER = "Jeg var redd for å si ifra da vaktlegen overså tegnene."


def raw_database(url: str) -> str:
    """Every value of every table, as text: what a stolen copy of the database reveals."""
    engine = create_engine(to_async_url(url).replace("+aiosqlite", ""))
    try:
        with engine.connect() as conn:
            values = []
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f"SELECT * FROM {table}")):  # names from the schema
                    values.extend(str(value) for value in row)
            return "\n".join(values)
    finally:
        engine.dispose()


async def test_the_database_holds_no_note_risk_group_or_answer_in_clear_and_all_still_shows(
    bot: RunningBot, api: Api, people: People
) -> None:
    created = await api.dispatch(
        topic="fever-child", locale="nb", note=NOTE, risk_groups=[RISK], phone="+4791234567"
    )
    caller = await people("Kari")
    advice = await caller.says("/start " + created["deep_link"].split("?start=")[1])
    shown = "\n".join(m.text or "" for m in advice)
    assert NOTE in shown and "Barn under 3 måneder" in shown  # the caller reads them

    lise = await enrolled(bot, people)
    await question_arrives(bot, lise)
    await lise.says(ANSWER)
    await lise.presses("Del med Helse Vest HF")
    await lise.presses("Ja, del det")
    [page] = await lise.says("/answers")
    assert ANSWER in page.text
    [document] = await lise.says("/export")
    assert ANSWER in (await lise.file(document.message_id)).decode()

    url = bot.rt.settings.database_url or ""
    stored = raw_database(url)
    assert NOTE not in stored and ANSWER not in stored
    assert "utslettet" not in stored and "vaktlegen" not in stored
    [row] = table_rows(url, "dispatch")
    assert {"note", "risk_groups"}.isdisjoint(row) and row["tailoring"].startswith("gAAAA")
    # Which risk group was chosen is not in the row either (the advice snapshot lists them all).
    assert RISK not in str({k: v for k, v in row.items() if k != "content"})
    [prompt] = table_rows(url, "prompt")
    assert "answer_text" not in prompt and prompt["answer_ciphertext"].startswith("gAAAA")

    # The SECRET_KEY opens it again, and only the "dispatch" key opens a dispatch.
    secret = bot.rt.settings.secret()
    assert json.loads(Cipher(secret, "dispatch").decrypt(row["tailoring"]) or "") == {
        "note": NOTE,
        "risk_groups": [RISK],
    }
    assert Cipher(secret, "answer").decrypt(row["tailoring"]) is None
    async with bot.rt.sessions() as session:  # enough unit leaders for her role to be shown
        org = (
            await session.exec(select(Organisation).where(Organisation.name == "Helse Vest HF"))
        ).one()
        await active_leaders(session, bot.rt, org, "unit-leader", 4, iter(range(9001, 9010)))
        await session.commit()
    report = reports.as_text(await reports.participation(bot.rt, "Helse Vest HF"))
    assert ANSWER in report  # shared, and read in clear for the report


# --- rotating the key ----------------------------------------------------------------------------


def cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


async def test_keys_rotate_moves_everything_to_the_new_key(
    bot: RunningBot,
    api: Api,
    people: People,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    phone = "+4791234567"
    created = await api.dispatch(
        topic="fever-child", locale="nb", note=NOTE, risk_groups=[RISK], phone=phone
    )
    sms = await api.dispatch(topic="fever-child", locale="nb", phone="+4741234567")
    lise = await enrolled(bot, people)
    await question_arrives(bot, lise)
    await lise.says(ANSWER)
    assert created and sms

    old = settings.secret_key
    assert old is not None
    new = "the-new-secret-key-" + "n" * 32
    url = settings.database_url or ""
    monkeypatch.chdir(tmp_path)
    env = {
        "DATABASE_URL": url,
        "VAR_DIR": str(settings.var_dir),
        "SECRET_KEY": new,
        "SECRET_KEY_FALLBACKS": old.get_secret_value(),
        "TELEGRAM_BOT_TOKEN": "",
    }
    before = table_rows(url, "dispatch", "created_at")[0]["tailoring"]

    rotated = await asyncio.to_thread(cli, env, "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    lines = {line.split()[0]: line.split() for line in rotated.stdout.splitlines()[:4]}
    assert lines["dispatch"][2] == "1" and lines["prompt"][2] == "1"
    assert "Keep SECRET_KEY_FALLBACKS for 30 more days" in rotated.stdout

    again = await asyncio.to_thread(cli, env, "keys", "rotate")  # nothing left to do
    assert [line.split()[2] for line in again.stdout.splitlines()[:4]] == ["0", "0", "0", "0"]

    # With the new key alone, the note and the answer still read.
    [row] = [r for r in table_rows(url, "dispatch") if r["id"] == created["id"]]
    assert row["tailoring"] != before
    assert Cipher(old.get_secret_value().encode(), "dispatch").decrypt(row["tailoring"]) is None
    only_new = settings.model_copy(update={"secret_key": SecretStr(new)})
    rt = build_runtime(only_new)
    try:
        async with rt.sessions() as session:
            dispatch = await session.get(Dispatch, created["id"])
            [prompt] = (await session.exec(select(Prompt))).all()
        assert dispatch is not None
        assert dispatches.tailoring_of(rt, dispatch).note == NOTE
        assert leaders.answer_text(rt, prompt) == ANSWER
    finally:
        await rt.engine.dispose()

    # Keys that are not given leave values unreadable, and the command says so (exit 1).
    stranger = {**env, "SECRET_KEY": "a-stranger-key-" + "s" * 32, "SECRET_KEY_FALLBACKS": ""}
    refused = await asyncio.to_thread(cli, stranger, "keys", "rotate")
    assert refused.exit_code == 1 and "given neither as SECRET_KEY nor" in refused.stderr


async def test_recontacts_still_find_numbers_hashed_with_a_fallback_key(
    bot: RunningBot, api: Api, settings: Settings
) -> None:
    phone = "+4791234567"
    first = await api.dispatch(topic="fever-child", locale="nb", phone=phone)
    old = settings.secret_key
    assert old is not None
    # The key changed, the old one kept as a fallback (as the bot would read its settings).
    bot.rt.settings = settings.model_copy(
        update={"secret_key": SecretStr("n" * 40), "secret_key_fallbacks": [old]}
    )
    second = await api.dispatch(topic="fever-child", locale="nb", phone=phone)
    assert second["earlier_dispatches"] == 1
    status, found = await api.post("/api/v1/recontacts", {"phone": phone})
    assert status == 200
    assert [d["id"] for d in found["dispatches"]] == [second["id"], first["id"]]


# --- a database from before ----------------------------------------------------------------------


@pytest.fixture
def url(database_url: str) -> str:
    return to_async_url(database_url)


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    sync = create_engine(url.replace("+aiosqlite", ""))
    yield sync
    sync.dispose()


def test_the_migration_encrypts_existing_notes_and_answers_and_decrypts_them_back(
    url: str, engine: Engine
) -> None:
    secret = b"a-secret-key-for-the-migration-" + b"m" * 8
    at = dt.datetime(2026, 11, 30, 10, 0)
    migrate.upgrade(url, "0009_lookup_audit")
    with engine.begin() as conn:
        conn.execute(
            text("insert into organisation (name, created_at) values ('Helse Vest HF', :at)"),
            {"at": at},
        )
        conn.execute(
            text(
                "insert into person (id, telegram_user_id, locale, locale_chosen, created_at,"
                " last_seen_at) values (1, 4242, 'nb', false, :at, :at)"
            ),
            {"at": at},
        )
        conn.execute(
            text(
                "insert into leader (id, person_id, organisation_id, role_id, programme_id,"
                " status, timezone, position, cycle, created_at) values (1, 1, 1, 'unit-leader',"
                " 'systemperspektiv', 'active', 'Europe/Oslo', 0, 0, :at)"
            ),
            {"at": at},
        )
        conn.execute(
            text(
                "insert into prompt (leader_id, programme_id, theme_id, question_id, role_id,"
                " position, cycle, week, due_at, status, reminders_sent, answer_text, shared,"
                " created_at) values (1, 'p', 't', 'q', 'unit-leader', 0, 0, '2026-W49', :at,"
                " 'answered', 0, :answer, false, :at)"
            ),
            {"at": at, "answer": ANSWER},
        )
        for dispatch_id, note, groups in (("a" * 32, NOTE, [RISK]), ("b" * 32, None, [])):
            conn.execute(
                text(
                    "insert into dispatch (id, topic_id, topic_version, locale, note, risk_groups,"
                    " token_hash, created_at, expires_at, worse_count, checkin_status,"
                    " sms_status) values (:id, 'fever-child', 1, 'nb', :note, :groups, :token,"
                    " :at, :at, 0, 'none', 'none')"
                ),
                {
                    "id": dispatch_id,
                    "note": note,
                    "groups": json.dumps(groups),
                    "token": dispatch_id * 2,
                    "at": at,
                },
            )

    migrate.upgrade(url, secrets=[secret])

    stored = raw_database(url)
    assert NOTE not in stored and ANSWER not in stored
    rows = {r["id"]: r for r in table_rows(url, "dispatch")}
    assert rows["b" * 32]["tailoring"] is None  # nothing to hide: nothing stored
    assert json.loads(Cipher(secret, "dispatch").decrypt(rows["a" * 32]["tailoring"]) or "") == {
        "note": NOTE,
        "risk_groups": [RISK],
    }
    [prompt] = table_rows(url, "prompt")
    assert Cipher(secret, "answer").decrypt(prompt["answer_ciphertext"]) == ANSWER

    migrate.downgrade(url, "0009_lookup_audit", secrets=[secret])
    with engine.connect() as conn:
        notes = dict(conn.execute(text("select id, note from dispatch")).all())
        answer = conn.execute(text("select answer_text from prompt")).scalar_one()
    assert notes == {"a" * 32: NOTE, "b" * 32: None} and answer == ANSWER


def test_encrypting_existing_rows_needs_the_key_and_says_so(
    url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bot.config import ConfigError

    migrate.upgrade(url, "0009_lookup_audit")
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into dispatch (id, topic_id, topic_version, locale, note, risk_groups,"
                " token_hash, created_at, expires_at, worse_count, checkin_status, sms_status)"
                " values (:id, 'fever-child', 1, 'nb', :note, '[]', 'x', :at, :at, 0, 'none',"
                " 'none')"
            ),
            {"id": "c" * 32, "note": NOTE, "at": dt.datetime(2026, 11, 30)},
        )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456789:" + "A" * 35)  # production, no key
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY is missing"):
        migrate.upgrade(url)
    assert migrate.current_revision(url) == "0009_lookup_audit"  # nothing half done
    assert [r["note"] for r in table_rows(url, "dispatch")] == [NOTE]
