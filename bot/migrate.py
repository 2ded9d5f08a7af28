"""Schema migrations through Alembic, driven from Python (``python -m bot db upgrade``).

The scripts live in ``bot/migrations``; this module only builds the Alembic config. Alembic is
imported only when it is needed: a start on a database that is already current (the usual case)
checks the revision with one query instead (``upgrade_if_behind``), which saves ~0.14 s.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_REVISION = re.compile(r'^revision: str = "([^"]+)"', re.MULTILINE)
_DOWN = re.compile(r'^down_revision: str \| None = (?:"([^"]+)"|None)', re.MULTILINE)


def alembic_config(async_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", async_url.replace("%", "%%"))
    return cfg


def _prepare(async_url: str) -> None:
    if async_url.startswith("sqlite") and ":///" in async_url:
        path = async_url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def upgrade(async_url: str, revision: str = "head") -> None:
    from alembic import command

    _prepare(async_url)
    command.upgrade(alembic_config(async_url), revision)


def upgrade_if_behind(async_url: str) -> bool:
    """Upgrade to the newest revision unless the database is there already; True if it ran."""
    head = _head_from_files()
    if head is not None and head == _version_in_database(async_url):
        return False
    upgrade(async_url)
    return True


def downgrade(async_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(async_url), revision)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def revisions() -> list[str]:
    """All revisions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def current_revision(async_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(_sync_url(async_url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def _sync_url(async_url: str) -> str:
    return async_url.replace("+aiosqlite", "")


def _head_from_files() -> str | None:
    """The one revision no other script revises, read from the scripts' text; None if unsure."""
    revised: set[str] = set()
    found: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            return None  # a script in another shape: let Alembic decide
        found.add(revision.group(1))
        if down.group(1):
            revised.add(down.group(1))
    heads = found - revised
    return heads.pop() if len(heads) == 1 else None


def _version_in_database(async_url: str) -> str | None:
    """The revision stamped in the database; None if there is none (or no database yet)."""
    if async_url.startswith("sqlite") and ":///" in async_url:
        path = async_url.split(":///", 1)[1]
        if path and path != ":memory:" and not Path(path).exists():
            return None  # do not create the file here: upgrade() prepares its folder
    engine = create_engine(_sync_url(async_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:  # no such table yet
        return None
    finally:
        engine.dispose()
    return rows[0][0] if len(rows) == 1 else None
