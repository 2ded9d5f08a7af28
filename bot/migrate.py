"""Schema migrations through Alembic, driven from Python (``python -m bot db upgrade``).

The scripts live in ``bot/migrations``; this module builds the Alembic config, holds the lock that
lets several instances start against one database at once, and answers "is the schema current?"
for start-up. Alembic is imported inside the functions that need it, never at import time.

- ``upgrade`` runs under a lock: PostgreSQL's transaction-scoped advisory lock (the migrations
  run in that same transaction), a lock file beside a SQLite database. A second instance waits,
  then finds the schema current and does nothing.
- In production the release phase migrates (``Procfile``: ``release: python -m bot db upgrade``);
  a web process only checks (``require_current``) and refuses to run on an older schema.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant both instances agree on: "Sikkerhetsnett migrations" as a signed 64-bit number.
_ADVISORY_LOCK_KEY = 0x5369_6B6B_6D69_6772


class SchemaNotCurrent(Exception):
    """The database's schema is not the one this code was written for."""


def alembic_config(async_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", async_url.replace("%", "%%"))
    return cfg


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str | None:
    return script_directory().get_current_head()


_REVISION_LINE = re.compile(
    r"^(down_revision|revision)\b[^=\n]*=\s*(?:\"([^\"\n]*)\"|'([^'\n]*)'|(None))\s*$", re.M
)


def declared_head() -> str | None:
    """The newest revision, read from the scripts' own ``revision`` / ``down_revision`` lines
    without importing Alembic (~0.1 s of every start): the one revision no script names as its
    parent. None when the scripts are not one plain chain (a merge, an unreadable line): then
    ``head_revision`` decides."""
    parents: dict[str, str | None] = {}
    for script in (MIGRATIONS / "versions").glob("*.py"):
        found: dict[str, str | None] = {}
        for match in _REVISION_LINE.finditer(script.read_text(encoding="utf-8")):
            name, double, single, _none = match.groups()
            if name in found:
                return None
            found[name] = double if double is not None else single
        revision = found.get("revision")
        if revision is None or "down_revision" not in found or revision in parents:
            return None
        parents[revision] = found["down_revision"]
    heads = set(parents) - set(parents.values())
    roots = [r for r, parent in parents.items() if parent is None]
    if (
        len(heads) != 1
        or len(roots) != 1
        or any(parent is not None and parent not in parents for parent in parents.values())
    ):
        return None
    return heads.pop()


def _is_current(current: str | None) -> bool:
    """True if ``current`` is the newest revision; Alembic is imported only to be sure of a
    "no" (or when the scripts' lines cannot be read plainly)."""
    head = declared_head()
    if head is not None and current == head:
        return True
    return current == head_revision()


def revisions() -> list[str]:
    """All revisions, oldest first."""
    return [r.revision for r in reversed(list(script_directory().walk_revisions()))]


def upgrade(
    async_url: str, revision: str = "head", *, secrets: Sequence[bytes] | None = None
) -> None:
    """Bring the schema to ``revision`` under the migration lock (safe to run again, or twice).

    ``secrets`` (``Settings.secrets()``) are for migrations that encrypt existing rows; without
    them such a migration reads SECRET_KEY from the environment, if it has rows to encrypt.
    """
    from alembic import command

    with _locked_transaction(async_url) as connection:
        cfg = alembic_config(async_url)
        cfg.attributes["connection"] = connection
        cfg.attributes["secrets"] = secrets
        command.upgrade(cfg, revision)


def downgrade(async_url: str, revision: str, *, secrets: Sequence[bytes] | None = None) -> None:
    from alembic import command

    with _locked_transaction(async_url) as connection:
        cfg = alembic_config(async_url)
        cfg.attributes["connection"] = connection
        cfg.attributes["secrets"] = secrets
        command.downgrade(cfg, revision)


def upgrade_if_behind(async_url: str, *, secrets: Sequence[bytes] | None = None) -> bool:
    """Upgrade to the newest revision unless the database is there already; True if it ran."""
    if _is_current(current_revision(async_url)):
        return False
    upgrade(async_url, secrets=secrets)
    return True


def secrets_for_migration(given: Sequence[bytes] | None) -> list[bytes]:
    """The keys a data migration encrypts (the first) and decrypts with: those given by the
    command, or else SECRET_KEY (and its fallbacks) from the environment, as the bot reads them."""
    if given:
        return list(given)
    from bot.config import load_settings

    return load_settings().secrets()


def require_current(async_url: str) -> None:
    """Raise ``SchemaNotCurrent`` with what to do, unless the schema is the code's newest."""
    current = current_revision(async_url)
    if _is_current(current):
        return
    head = head_revision()
    if current is None:
        problem = "the database has no schema yet"
    elif current in revisions():
        problem = f"the database is at revision {current}, this code needs {head}"
    else:
        problem = f"the database is at revision {current}, which this code does not know (newer?)"
    raise SchemaNotCurrent(
        f"{problem}. Run `python -m bot db upgrade` first (the Procfile's release phase does), "
        "or start with `python -m bot run --migrate` on a single instance"
    )


def current_revision(async_url: str) -> str | None:
    """The revision stamped in the database; None if there is none (or no database yet)."""
    path = _sqlite_path(async_url)
    if path is not None and not path.exists():
        return None  # do not create the file here: upgrade() prepares its folder
    engine = create_engine(_sync_url(async_url), hide_parameters=True)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:  # no such table yet
        return None
    finally:
        engine.dispose()
    return rows[0][0] if len(rows) == 1 else None


def new_revision(async_url: str, message: str, autogenerate: bool) -> Path:
    """Write the next migration script (``0008_<message>.py``); with autogenerate, from the
    difference between the models and the database (which must be at head)."""
    import importlib.util

    from alembic import command

    head = head_revision()
    number = re.match(r"\d+", head or "")  # "0009" or "0009_lookup_audit"
    rev_id = f"{int(number.group()) + 1:04d}" if number else None
    cfg = alembic_config(async_url)
    if importlib.util.find_spec("ruff") is not None:  # a dev tool: tidy the new script with it
        hooks = {
            "hooks": "fix, format",
            "fix.type": "module",
            "fix.module": "ruff",
            "fix.options": "check --fix --quiet REVISION_SCRIPT_FILENAME",
            "format.type": "module",
            "format.module": "ruff",
            "format.options": "format --quiet REVISION_SCRIPT_FILENAME",
        }
        for name, value in hooks.items():
            cfg.set_section_option("post_write_hooks", name, value)
    if not autogenerate:
        script = command.revision(cfg, message=message, rev_id=rev_id)
    else:
        engine = create_engine(_sync_url(async_url), hide_parameters=True)
        try:
            with engine.connect() as connection:
                cfg.attributes["connection"] = connection
                script = command.revision(cfg, message=message, rev_id=rev_id, autogenerate=True)
        finally:
            engine.dispose()
    scripts = script if isinstance(script, list) else [script]
    assert scripts and scripts[0] is not None
    return Path(scripts[0].path)


@contextmanager
def _locked_transaction(async_url: str) -> Iterator[Connection]:
    """One transaction on a synchronous connection, held by the migration lock."""
    sqlite = _sqlite_path(async_url)
    if sqlite is not None:
        sqlite.parent.mkdir(parents=True, exist_ok=True)
        with sqlite.with_name(sqlite.name + ".migrate-lock").open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            with _transaction(async_url) as connection:
                yield connection
        return
    with _transaction(async_url) as connection:
        if connection.dialect.name == "postgresql":
            # Released by the commit (or rollback) that ends the migrations' own transaction.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        yield connection


@contextmanager
def _transaction(async_url: str) -> Iterator[Connection]:
    engine = create_engine(_sync_url(async_url), hide_parameters=True)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _sqlite_path(async_url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    if not async_url.startswith("sqlite") or ":///" not in async_url:
        return None
    path = async_url.split(":///", 1)[1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _sync_url(async_url: str) -> str:
    return re.sub(r"^sqlite\+aiosqlite", "sqlite", async_url)
