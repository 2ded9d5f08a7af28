"""Migrations: an empty database upgrades to head, every step down and up again keeps data,
and the models match what the migrations build (no forgotten migration)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from bot import migrate
from bot.models import metadata


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def test_empty_database_upgrades_to_head(tmp_path: Path) -> None:
    db = tmp_path / "new" / "bot.db"
    migrate.upgrade(_url(db))
    assert migrate.current_revision(_url(db)) == migrate.head_revision()
    tables = {
        row[0]
        for row in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")
    }
    assert {"person", "outbox_message", "alembic_version"} <= tables


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    migrate.upgrade(_url(db))
    migrate.upgrade(_url(db))
    assert migrate.current_revision(_url(db)) == migrate.head_revision()


def test_each_revision_upgrades_from_the_previous_one_keeping_people(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    revisions = migrate.revisions()
    assert revisions, "there must be at least one migration"
    migrate.upgrade(_url(db), revisions[0])
    with sqlite3.connect(db) as conn:
        conn.execute(
            "insert into person (telegram_user_id, locale, locale_chosen, created_at, last_seen_at)"
            " values (4242, 'nn', 1, '2026-01-01 10:00:00', '2026-01-01 10:00:00')"
        )
    for revision in revisions[1:]:
        migrate.upgrade(_url(db), revision)
        assert migrate.current_revision(_url(db)) == revision
    with sqlite3.connect(db) as conn:
        assert conn.execute("select locale from person where telegram_user_id=4242").fetchone() == (
            "nn",
        )


def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    migrate.upgrade(_url(db))
    migrate.downgrade(_url(db), "base")
    assert migrate.current_revision(_url(db)) is None
    migrate.upgrade(_url(db))
    assert migrate.current_revision(_url(db)) == migrate.head_revision()


def test_models_match_migrations(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    migrate.upgrade(_url(db))
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"
