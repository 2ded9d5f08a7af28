"""Migrations: an empty database upgrades to head, every step down and up again keeps data,
and the models match what the migrations build (no forgotten migration). On SQLite, and on
PostgreSQL with TEST_DATABASE_URL set."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, inspect, text

from bot import migrate
from bot.cli import main
from bot.config import to_async_url
from bot.models import metadata


@pytest.fixture
def url(database_url: str) -> str:
    """The fresh, empty database's URL for the async driver, as the bot passes it to Alembic."""
    return to_async_url(database_url)


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    """A plain synchronous engine on the same database, to look at it from outside."""
    sync = create_engine(url.replace("+aiosqlite", ""))
    yield sync
    sync.dispose()


def test_empty_database_upgrades_to_head(url: str, engine: Engine) -> None:
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    assert {"person", "outbox", "alembic_version"} <= set(inspect(engine).get_table_names())


def test_a_start_on_a_current_database_skips_alembic_and_a_behind_one_upgrades(url: str) -> None:
    assert migrate.upgrade_if_behind(url) is True  # empty: upgraded
    assert migrate.current_revision(url) == migrate.head_revision()
    assert migrate.upgrade_if_behind(url) is False  # current: nothing to do
    previous = migrate.revisions()[-2]
    migrate.downgrade(url, previous)
    assert migrate.upgrade_if_behind(url) is True
    assert migrate.current_revision(url) == migrate.head_revision()


def test_production_start_refuses_a_schema_that_is_not_current(url: str) -> None:
    with pytest.raises(migrate.SchemaNotCurrent, match=r"no schema yet.*python -m bot db upgrade"):
        migrate.require_current(url)
    migrate.upgrade(url, migrate.revisions()[-2])
    with pytest.raises(migrate.SchemaNotCurrent, match=f"needs {migrate.head_revision()}"):
        migrate.require_current(url)
    migrate.upgrade(url)
    migrate.require_current(url)  # current: no error


def test_the_start_reads_the_same_head_as_alembic_or_leaves_it_to_alembic(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up reads the newest revision from the scripts' lines (no Alembic import); where
    that is not plain (here: a merge revision), it says so and Alembic decides, as before."""
    assert migrate.declared_head() == migrate.head_revision()
    shutil.copytree(migrate.MIGRATIONS, tmp_path / "migrations")
    monkeypatch.setattr(migrate, "MIGRATIONS", tmp_path / "migrations")
    head = migrate.head_revision()
    migrate.upgrade(url)
    (tmp_path / "migrations" / "versions" / "9998_branch.py").write_text(
        f'revision = "9998_branch"\ndown_revision = "{head}"\n'
        "def upgrade() -> None: ...\ndef downgrade() -> None: ...\n"
    )
    (tmp_path / "migrations" / "versions" / "9999_merge.py").write_text(
        f'revision = "9999_merge"\ndown_revision = ("{head}", "9998_branch")\n'
        "def upgrade() -> None: ...\ndef downgrade() -> None: ...\n"
    )
    assert migrate.declared_head() is None
    assert migrate.head_revision() == "9999_merge"
    with pytest.raises(migrate.SchemaNotCurrent, match="needs 9999_merge"):
        migrate.require_current(url)
    migrate.upgrade(url)
    migrate.require_current(url)


def test_instances_that_start_together_on_an_empty_database_do_not_race(
    url: str, tmp_path: Path
) -> None:
    """Three `db upgrade` processes at once (a release phase run twice, or instances migrating
    on start): one migrates under the lock, the others wait and find nothing to do."""
    env = {**os.environ, "DATABASE_URL": url, "VAR_DIR": str(tmp_path / "var")}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    assert migrate.current_revision(url) == migrate.head_revision()


def test_a_sqlite_file_in_a_new_folder_is_made(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'bot.db'}"
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()


def test_upgrade_is_idempotent(url: str) -> None:
    migrate.upgrade(url)
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()


def test_each_revision_upgrades_from_the_previous_one_keeping_people(
    url: str, engine: Engine
) -> None:
    revisions = migrate.revisions()
    assert revisions, "there must be at least one migration"
    migrate.upgrade(url, revisions[0])
    at = dt.datetime(2026, 1, 1, 10, 0)
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into person (telegram_user_id, locale, locale_chosen, created_at,"
                " last_seen_at) values (4242, 'nn', :chosen, :at, :at)"
            ),
            {"chosen": True, "at": at},
        )
    for revision in revisions[1:]:
        migrate.upgrade(url, revision)
        assert migrate.current_revision(url) == revision
    with engine.connect() as conn:
        found = conn.execute(text("select locale from person where telegram_user_id=4242"))
        assert found.one() == ("nn",)


def test_downgrade_to_base_and_up_again(url: str, engine: Engine) -> None:
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()


def test_models_match_migrations(url: str, engine: Engine) -> None:
    migrate.upgrade(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_db_revision_writes_the_next_numbered_script(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer adds a migration with one command, without an Alembic config of their own."""
    shutil.copytree(migrate.MIGRATIONS, tmp_path / "migrations")
    monkeypatch.setattr(migrate, "MIGRATIONS", tmp_path / "migrations")
    monkeypatch.setenv("DATABASE_URL", url)
    head = migrate.head_revision()
    assert head is not None
    leading = re.match(r"\d+", head)  # "0009" or a descriptive "0009_lookup_audit"
    assert leading is not None
    number = int(leading.group())

    refused = CliRunner().invoke(main, ["db", "revision", "-m", "audit log", "--autogenerate"])
    assert refused.exit_code != 0
    assert "no schema yet" in refused.output and "db upgrade" in refused.output

    migrate.upgrade(url)
    made = CliRunner().invoke(main, ["db", "revision", "-m", "audit log", "--autogenerate"])
    assert made.exit_code == 0, made.output
    script = tmp_path / "migrations" / "versions" / f"{number + 1:04d}_audit_log.py"
    assert script.exists(), made.output
    assert f'down_revision: str | None = "{head}"' in script.read_text()
    assert migrate.head_revision() == f"{number + 1:04d}"
    assert migrate.declared_head() == migrate.head_revision()  # the start's check sees it too
    migrate.upgrade(url)  # the empty migration applies
    assert migrate.current_revision(url) == migrate.head_revision()


def test_0011_carries_every_queued_message_of_both_old_queues_over(
    url: str, engine: Engine
) -> None:
    """A production database at 0010 with messages waiting in the Telegram outbox and the SMS
    queue: after the upgrade each is one typed row of the new queue, with its claim, its
    expiry and (for the SMS) its ciphertext; nothing waiting is lost."""
    migrate.upgrade(url, "0010_encrypted_free_text")
    at = dt.datetime(2026, 12, 1, 9, 0)
    later = at + dt.timedelta(hours=3)
    with engine.begin() as conn:
        run = conn.execute
        run(
            text(
                "insert into person (id, telegram_user_id, locale, locale_chosen, created_at,"
                " last_seen_at) values (1, 111, 'nn', true, :at, :at), (2, 222, 'nb', false, :at,"
                " :at)"
            ),
            {"at": at},
        )
        for dispatch_id in ("d" * 32, "e" * 32):
            run(
                text(
                    "insert into dispatch (id, topic_id, topic_version, locale,"
                    " token_hash, created_at, expires_at, person_id, worse_count,"
                    " checkin_status, sms_status) values (:id, 'fever-child', 1, 'nb',"
                    " :token, :at, :later, 2, 0, 'scheduled', 'queued')"
                ),
                {"id": dispatch_id, "token": dispatch_id * 2, "at": at, "later": later},
            )
        run(
            text("insert into organisation (id, name, created_at) values (1, 'Gamle HF', :at)"),
            {"at": at},
        )
        run(
            text(
                "insert into leader (id, person_id, organisation_id, role_id, programme_id,"
                " status, timezone, position, cycle, created_at) values (1, 1, 1, 'unit-leader',"
                " 'systemperspektiv', 'active', 'Europe/Oslo', 1, 0, :at)"
            ),
            {"at": at},
        )
        run(
            text(
                "insert into prompt (id, leader_id, programme_id, theme_id, question_id, role_id,"
                " position, cycle, week, due_at, status, reminders_sent, shared, created_at)"
                " values (7, 1, 'systemperspektiv', 't', 'q', 'unit-leader', 0, 0, '2026-W49',"
                " :at, 'sent', 0, false, :at)"
            ),
            {"at": at},
        )
        outbox = (
            "insert into outbox_message (idempotency_key, person_id, chat_id, method, payload,"
            " status, due_at, expires_at, attempts, claimed_by, claimed_until, created_at)"
            " values (:key, :person, :chat, 'sendMessage', :payload, :status, :at, :expires,"
            " :attempts, :claimed_by, :claimed_until, :at)"
        )
        rows = [
            ("checkin:" + "d" * 32, 2, 222, "pending", later, 0, None, None),
            ("prompt:1:2026-W49", 1, 111, "sending", None, 2, "sender-old:1", later),
            ("remind:7:1", 1, 111, "pending", later, 0, None, None),
            ("reload:20261201:111", None, 111, "pending", None, 0, None, None),
            ("checkin:" + "0" * 32, 2, 222, "pending", later, 0, None, None),  # dispatch gone
            ("prompt:1:2026-W48", 1, 111, "sent", None, 1, None, None),  # no such week
        ]
        for key, person, chat, status, expires, attempts, claimed_by, claimed_until in rows:
            payload = '{"text": "<b>Innhold</b> lastet p&#229; nytt", "parse_mode": "HTML"}'
            run(
                text(outbox),
                {
                    "key": key,
                    "person": person,
                    "chat": chat,
                    "payload": payload,
                    "status": status,
                    "at": at,
                    "expires": expires,
                    "attempts": attempts,
                    "claimed_by": claimed_by,
                    "claimed_until": claimed_until,
                },
            )
        run(
            text(
                "insert into sms_message (dispatch_id, ciphertext, status, due_at, expires_at,"
                " attempts, created_at) values (:d, 'gAAAA-ciphertext', 'pending', :at, :later,"
                " 3, :at)"
            ),
            {"d": "e" * 32, "at": at, "later": later},
        )

    migrate.upgrade(url)

    names = set(inspect(engine).get_table_names())
    assert "outbox" in names and not {"outbox_message", "sms_message"} & names
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "select kind, channel, dedupe_key, person_id, chat_id, dispatch_id, prompt_id,"
                " status, attempts, claimed_by, expires_at, secret, payload from outbox order by id"
            )
        ).all()
    by_kind = {row[0]: row for row in found}
    assert len(found) == 5, found  # the two whose dispatch or week is gone are not carried
    checkin = by_kind["checkin"]
    assert (checkin[1], checkin[5], checkin[7]) == ("telegram", "d" * 32, "pending")
    question = by_kind["weekly_question"]
    assert (question[6], question[7], question[8], question[9]) == (7, "sending", 2, "sender-old:1")
    assert question[10] is not None  # a default life: 12 hours after it was due
    assert by_kind["reminder"][6] == 7 and by_kind["reminder"][2] == "remind:7:1"
    notice = by_kind["admin_notice"]
    payload = notice[12] if isinstance(notice[12], dict) else json.loads(notice[12])
    assert notice[4] == 111 and payload == {"text": "Innhold lastet på nytt"}  # as plain text
    sms = by_kind["sms_link"]
    assert (sms[1], sms[5], sms[8], sms[11]) == ("sms", "e" * 32, 3, "gAAAA-ciphertext")
