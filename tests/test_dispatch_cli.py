"""`python -m bot apikey …` and `python -m bot dispatch …`, as an admin or a nurse runs them.

The commands run in demo mode (no TELEGRAM_BOT_TOKEN) on a database of their own; one test
runs them against the database of a running bot to compare with what its HTTP API answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.app import RunningBot
from bot.cli import main
from bot.config import Settings
from bot.models import Dispatch
from bot.privacy import Cipher, phone_hash
from bot.services import dispatches
from devkit.localapi import DEFAULT_USERNAME
from tests.conftest import Api, table_rows

NOTE = "Gi paracetamol etter vekt, og mål temperaturen igjen i kveld."
CREATE = [
    "dispatch",
    "create",
    "--topic",
    "fever-child",
    "--locale",
    "nn",
    "--checkin-hours",
    "6",
    "--risk",
    "infant-under-3-months",
    "--phone",
    "+47 912 34 567",
    "--note",
    NOTE,
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> dict[str, str]:
    """A demo set-up of its own; run from an empty folder so no .env is read."""
    monkeypatch.chdir(tmp_path)
    return {
        "DATABASE_URL": database_url,
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "cli-secret-" + "y" * 32,
        "TELEGRAM_BOT_TOKEN": "",
        "BOT_USERNAME": "",
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def rows(env: dict[str, str], table: str) -> list[dict[str, Any]]:
    """Every row of a table, read straight from the database."""
    return table_rows(env["DATABASE_URL"], table)


def test_an_api_key_is_shown_once_stored_as_a_hash_listed_without_it_and_revoked(
    env: dict[str, str],
) -> None:
    made = run(
        env, "apikey", "create", "--name", "Telefonsystemet", "--org", " Legevakten  i Bergen"
    )

    assert made.exit_code == 0, made.output
    [key] = re.findall(r"\bsn_[A-Za-z0-9_-]{43}\b", made.stdout)
    assert "API key 1 for Telefonsystemet (Legevakten i Bergen)" in made.stdout
    assert "only time the key is shown" in made.stdout
    [row] = rows(env, "api_key")
    assert row["name"] == "Telefonsystemet"
    [clinic] = rows(env, "organisation")
    assert clinic["name"] == "Legevakten i Bergen" and row["organisation_id"] == clinic["id"]
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert not any(key in str(value) for value in row.values())

    listed = run(env, "apikey", "list")
    assert listed.exit_code == 0
    assert re.search(
        r"1\s+active\s+last used never\s+Telefonsystemet — Legevakten i Bergen", listed.stdout
    )
    assert key not in listed.output and "sn_" not in listed.output

    revoked = run(env, "apikey", "revoke", "1")
    assert revoked.exit_code == 0 and "API key 1 revoked." in revoked.stdout
    assert rows(env, "api_key")[0]["revoked_at"] is not None
    assert re.search(r"1\s+revoked\s+", run(env, "apikey", "list").stdout)

    again = run(env, "apikey", "revoke", "1")
    assert again.exit_code == 1
    assert "There is no active API key 1" in again.stderr
    assert run(env, "apikey", "revoke", "99").exit_code == 1
    assert run(env, "apikey", "create", "--name", "  ", "--org", "X").exit_code == 2
    missing = run(env, "apikey", "create", "--name", "Telefonsystemet")  # every key has a clinic
    assert missing.exit_code == 2 and "--org" in missing.stderr


def test_a_nurse_creates_advice_and_finds_it_again_as_a_recontact(env: dict[str, str]) -> None:
    made = run(env, *CREATE)

    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    assert created["deep_link"].startswith(f"https://t.me/{DEFAULT_USERNAME}?start=a_")
    # No clinic (no --org): the SMS says "the legevakt"; the link is the page on this machine.
    assert created["advice_url"].startswith("http://127.0.0.1:")
    assert created["sms_text"].startswith(
        f"Råd frå legevakta etter samtalen: {created['advice_url']}"
    )
    assert created["topic"] == "fever-child" and created["locale"] == "nn"
    assert created["checkin_hours"] == 6 and created["risk_groups"] == ["infant-under-3-months"]
    assert created["sms"] == "none" and created["recontact"] is False
    [row] = rows(env, "dispatch")
    assert row["id"] == created["id"] and NOTE not in str(row)  # the note is stored encrypted
    tailoring = Cipher(env["SECRET_KEY"].encode(), "dispatch").decrypt(row["tailoring"])
    assert tailoring is not None and json.loads(tailoring) == {
        "note": NOTE,
        "risk_groups": ["infant-under-3-months"],
    }
    assert row["phone_hash"] == phone_hash(env["SECRET_KEY"].encode(), "+4791234567")
    assert not any("91234567" in str(value) or "912 34 567" in str(value) for value in row.values())

    found = run(env, "dispatch", "recontacts", "--phone", "91234567")
    assert found.exit_code == 0, found.output
    answer = json.loads(found.stdout)
    assert answer["recontact"] is True and answer["hours"] == 72
    [seen] = answer["dispatches"]
    assert seen["id"] == created["id"] and seen["checkin"]["status"] == "waiting"

    nobody = json.loads(run(env, "dispatch", "recontacts", "--phone", "+4741234567").stdout)
    assert nobody == {"recontact": False, "hours": 72, "dispatches": []}
    bad = run(env, "dispatch", "recontacts", "--phone", "123")
    assert bad.exit_code == 2 and "--phone:" in bad.stderr


def test_invalid_input_exits_1_with_the_fields_and_stores_nothing(env: dict[str, str]) -> None:
    for args, field in [
        (["--topic", "cough", "--locale", "nb"], "topic"),
        (["--topic", "fever-child", "--locale", "nb", "--note", "fnr 01019000083"], "note"),
        (["--topic", "fever-child", "--locale", "nb", "--send-sms"], "send_sms"),
        (["--topic", "fever-child", "--locale", "nb", "--checkin-hours", "5"], "checkin_hours"),
    ]:
        result = run(env, "dispatch", "create", *args)
        assert result.exit_code == 1, (args, result.output)
        answer = json.loads(result.stdout)
        assert answer["error"] == "invalid" and list(answer["fields"]) == [field], args
    assert (
        "known topics: abdominal-pain"
        in json.loads(run(env, "dispatch", "create", "--topic", "cough", "--locale", "nb").stdout)[
            "fields"
        ]["topic"]
    )
    assert rows(env, "dispatch") == [] and rows(env, "outbox") == []


def test_the_help_of_dispatch_create_shows_an_example(env: dict[str, str]) -> None:
    result = run(env, "dispatch", "create", "--help")

    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert "python -m bot dispatch create --topic fever-child --locale nn" in result.stdout
    assert "--risk" in result.stdout and "--send-sms" in result.stdout


async def test_the_cli_prints_what_the_api_answers_and_they_share_the_records(
    settings: Settings, bot: RunningBot, api: Api
) -> None:
    assert settings.database_url is not None and settings.secret_key is not None
    env = {
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(settings.var_dir),
        "SECRET_KEY": settings.secret_key.get_secret_value(),
        "TELEGRAM_BOT_TOKEN": "",
        "BOT_USERNAME": "",
    }
    from_api = await api.dispatch(topic="fever-child", locale="nb", phone="91234567")

    made = await asyncio.to_thread(run, env, *CREATE, "--org", "Testlegevakt")  # the key's clinic

    assert made.exit_code == 0, made.output
    from_cli = json.loads(made.stdout)
    assert set(from_cli) == set(from_api)
    assert from_cli["recontact"] is True and from_cli["earlier_dispatches"] == 1
    async with bot.rt.sessions() as session:
        row = await session.get(Dispatch, from_cli["id"])
    assert row is not None and row.api_key_id is None
    assert dispatches.tailoring_of(bot.rt, row).note == NOTE
    status, found = await api.post("/api/v1/recontacts", {"phone": "+4791234567"})
    assert status == 200
    assert [d["id"] for d in found["dispatches"]] == [from_cli["id"], from_api["id"]]

    # Without --org the dispatch is no clinic's: the key's look-ups do not see it.
    unowned = json.loads((await asyncio.to_thread(run, env, *CREATE)).stdout)
    status, found = await api.post("/api/v1/recontacts", {"phone": "+4791234567"})
    assert unowned["id"] not in [d["id"] for d in found["dispatches"]]

    # The clinic's events feed tells of the CLI's dispatch as of the API's; not of the unowned.
    status, events = await api.get("/api/v1/events")
    assert status == 200
    assert [(e["type"], e["dispatch_id"]) for e in events["data"]] == [
        ("dispatch.created", from_api["id"]),
        ("dispatch.created", from_cli["id"]),
    ]
    assert events["data"][1]["data"] == {
        "topic": "fever-child",
        "locale": "nn",
        "checkin_hours": 6,
        "sms": False,
        "expires_at": from_cli["expires_at"],
    }
