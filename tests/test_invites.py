"""`python -m bot invite …` as an admin runs it: links shown once and stored as a hash.

The commands run in demo mode (no TELEGRAM_BOT_TOKEN) on a database of their own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.services.invites import parse_duration
from devkit.localapi import DEFAULT_USERNAME
from tests.conftest import table_rows

ORG = "Legevakten i Bergen"


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
    return table_rows(env["DATABASE_URL"], table, order_by="id")


def create(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = run(env, "invite", "create", *args)
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def lasts(made: dict[str, Any], before: dt.datetime) -> dt.timedelta:
    """How long the invite lasts, to the minute (it was made within seconds after ``before``)."""
    expires = dt.datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    lifetime = expires - before.replace(microsecond=0)
    assert dt.timedelta(0) <= lifetime % dt.timedelta(minutes=1) < dt.timedelta(seconds=30)
    return lifetime - lifetime % dt.timedelta(minutes=1)


def test_an_invite_link_is_shown_once_and_only_its_hash_is_stored(env: dict[str, str]) -> None:
    before = dt.datetime.now(dt.UTC)
    made = create(env, "--org", f"  {ORG} ", "--role", "legevakt-leader")

    prefix = f"https://t.me/{DEFAULT_USERNAME}?start="
    assert made["deep_link"].startswith(prefix)
    payload = made["deep_link"].removeprefix(prefix)
    assert len(payload) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", payload)
    assert payload.startswith("i_")
    token = payload.removeprefix("i_")
    assert len(token) >= 22
    assert made["organisation"] == ORG and made["kind"] == "leader"
    assert made["role"] == "legevakt-leader" and made["role_title"] == "Leder ved legevakt"
    assert made["programme"] == "gjentatte-henvendelser"
    assert made["max_uses"] == 1 and made["uses"] == 0
    assert made["expires_at"].endswith("Z")
    assert lasts(made, before) == dt.timedelta(days=30)
    assert set(made) == {
        "id",
        "kind",
        "organisation",
        "role",
        "role_title",
        "programme",
        "deep_link",
        "max_uses",
        "uses",
        "expires_at",
    }

    [row] = rows(env, "invite")
    assert row["id"] == made["id"]
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token in str(value) for value in row.values())
    [org] = rows(env, "organisation")
    assert org["name"] == ORG and row["organisation_id"] == org["id"]


def test_the_same_organisation_name_is_the_same_organisation(env: dict[str, str]) -> None:
    first = create(env, "--org", ORG, "--role", "legevakt-leader")
    second = create(env, "--org", "legevakten  i  bergen", "--role", "municipal-leadership")
    other = create(env, "--org", "Legevakten i Førde", "--role", "unit-leader")

    assert second["organisation"] == first["organisation"] == ORG
    assert other["organisation"] == "Legevakten i Førde"
    assert [o["name"] for o in rows(env, "organisation")] == [ORG, "Legevakten i Førde"]
    invites = rows(env, "invite")
    assert [i["organisation_id"] for i in invites] == [1, 1, 2]
    assert len({first["deep_link"], second["deep_link"], other["deep_link"]}) == 3


def test_uses_and_expiry_can_be_chosen(env: dict[str, str]) -> None:
    before = dt.datetime.now(dt.UTC)
    hours = create(env, "--org", ORG, "--role", "top-leader", "--expires", "12h", "--uses", "10")
    weeks = create(env, "--org", ORG, "--role", "top-leader", "--expires", "2w")

    assert hours["max_uses"] == 10
    assert lasts(hours, before) == dt.timedelta(hours=12)
    assert lasts(weeks, before) == dt.timedelta(weeks=2)
    assert [r["max_uses"] for r in rows(env, "invite")] == [10, 1]


def test_durations() -> None:
    assert parse_duration("30d") == dt.timedelta(days=30)
    assert parse_duration("12h") == dt.timedelta(hours=12)
    assert parse_duration(" 2W ") == dt.timedelta(weeks=2)
    assert parse_duration("90m") == dt.timedelta(minutes=90)
    for bad in ["soon", "", "30", "d", "1.5d", "-2d", "3 days", "2y"]:
        with pytest.raises(ValueError, match="is not a duration; write a number and a unit"):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        (["--role", "chief"], "role", "unknown role 'chief'; known roles: legevakt-leader, "),
        (["--uses", "0"], "uses", "must be a whole number from 1 to 1000"),
        (["--uses", "1001"], "uses", "from 1 to 1000"),
        (["--expires", "soon"], "expires", "'soon' is not a duration; write a number and a unit"),
        (["--expires", "30m"], "expires", "from 1 hour to 365 days, not 0.5 hours"),
        (["--expires", "53w"], "expires", "from 1 hour to 365 days, not 371 days"),
        (["--org", "   "], "org", "give the organisation's name"),
        (["--org", "x" * 201], "org", "at most 200 characters"),
    ],
)
def test_bad_input_exits_1_with_the_field_and_stores_nothing(
    env: dict[str, str], args: list[str], field: str, message: str
) -> None:
    given = {"--org": ORG, "--role": "legevakt-leader"}
    given.update(zip(args[::2], args[1::2], strict=True))
    result = run(env, "invite", "create", *[part for pair in given.items() for part in pair])

    assert result.exit_code == 1, result.output
    answer = json.loads(result.stdout)
    assert answer["error"] == "invalid" and answer["message"] == "the invite was not created"
    assert list(answer["fields"]) == [field]
    assert message in answer["fields"][field]
    assert rows(env, "invite") == [] and rows(env, "organisation") == []


def test_every_problem_is_reported_at_once(env: dict[str, str]) -> None:
    result = run(
        env, "invite", "create", "--org", " ", "--role", "x", "--uses", "0", "--expires", "soon"
    )

    assert result.exit_code == 1
    assert sorted(json.loads(result.stdout)["fields"]) == ["expires", "org", "role", "uses"]


def test_the_unknown_role_message_lists_every_role(env: dict[str, str]) -> None:
    result = run(env, "invite", "create", "--org", ORG, "--role", "chief")

    message = json.loads(result.stdout)["fields"]["role"]
    for role in ["legevakt-leader", "municipal-leadership", "review-leader", "top-leader"]:
        assert role in message


def test_invites_are_listed_without_links_and_revoked(env: dict[str, str]) -> None:
    one = create(env, "--org", ORG, "--role", "legevakt-leader", "--uses", "5")
    two = create(env, "--org", "Legevakten i Førde", "--role", "unit-leader")
    token_one = one["deep_link"].split("start=i_")[1]
    token_two = two["deep_link"].split("start=i_")[1]

    listed = run(env, "invite", "list")
    assert listed.exit_code == 0, listed.output
    assert re.search(
        rf"1\s+active\s+used 0/5\s+expires \S+\s+{ORG} — legevakt-leader", listed.stdout
    )
    assert re.search(r"2\s+active\s+used 0/1 .*Legevakten i Førde — unit-leader", listed.stdout)
    for output in [listed.output, run(env, "invite", "list", "--format", "json").output]:
        assert token_one not in output and token_two not in output
        assert "start=" not in output and "token" not in output

    only = json.loads(run(env, "invite", "list", "--org", ORG, "--format", "json").stdout)
    assert [i["id"] for i in only] == [one["id"]]
    assert only[0]["state"] == "active" and only[0]["role_title"] == "Leder ved legevakt"
    nobody = run(env, "invite", "list", "--org", "Nowhere")
    assert nobody.exit_code == 0 and "No invites for 'Nowhere'." in nobody.stdout

    revoked = run(env, "invite", "revoke", str(one["id"]))
    assert revoked.exit_code == 0 and f"Invite {one['id']} revoked." in revoked.stdout
    assert rows(env, "invite")[0]["revoked_at"] is not None
    assert re.search(r"1\s+revoked\s+", run(env, "invite", "list").stdout)

    again = run(env, "invite", "revoke", str(one["id"]))
    assert again.exit_code == 1 and "There is no active invite 1" in again.stderr
    assert run(env, "invite", "revoke", "99").exit_code == 1
    assert rows(env, "invite")[1]["revoked_at"] is None


def test_an_empty_list_says_so(env: dict[str, str]) -> None:
    result = run(env, "invite", "list")

    assert result.exit_code == 0 and "No invites yet." in result.stdout


def test_the_help_of_invite_create_shows_an_example(env: dict[str, str]) -> None:
    result = run(env, "invite", "create", "--help")

    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert 'python -m bot invite create --org "Legevakten i Bergen"' in result.stdout


def test_a_raabra_invite_is_for_staff_has_no_role_and_its_own_prefix(
    env: dict[str, str],
) -> None:
    made = create(env, "--org", ORG, "--kind", "raabra", "--uses", "40")
    prefix = f"https://t.me/{DEFAULT_USERNAME}?start="
    payload = made["deep_link"].removeprefix(prefix)
    assert payload.startswith("s_") and len(payload) <= 64
    assert (made["kind"], made["role"], made["max_uses"]) == ("raabra", None, 40)
    [stored] = rows(env, "invite")
    assert stored["kind"] == "raabra" and stored["role_id"] == ""

    listed = run(env, "invite", "list")
    assert "#Råbra" in listed.stdout and "used 0/40" in listed.stdout

    # A role with a raabra invite, or a leader invite without one, is refused with the field.
    for args, field, message in (
        (("--kind", "raabra", "--role", "unit-leader"), "role", "a raabra invite has no role"),
        ((), "role", "give the leaders' role"),
    ):
        result = run(env, "invite", "create", "--org", ORG, *args)
        assert result.exit_code == 1
        assert message in json.loads(result.stdout)["fields"][field]
    assert len(rows(env, "invite")) == 1
