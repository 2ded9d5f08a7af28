"""Database engine and sessions (SQLAlchemy asyncio: aiosqlite or psycopg).

Only connection set-up lives here; tables are in ``bot.models``, schema changes in
``bot/migrations`` (never ``create_all`` outside tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import Table, event, inspect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import class_mapper
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

Sessions = async_sessionmaker[AsyncSession]
M = TypeVar("M", bound=SQLModel)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for an async URL; SQLite gets WAL, foreign keys and a busy timeout.

    ``hide_parameters``: a database error's text (and so its traceback in the log) shows the
    statement but never the values, which can be a user id, a note or an answer.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, **kwargs)


def make_sessions(engine: AsyncEngine) -> Sessions:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def engine_of(sessions: Sessions) -> AsyncEngine:
    """The engine behind a session factory: for a read on a plain connection (``engine.connect()``),
    which needs no identity map, and closes with one rollback where a session's close costs two."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the session factory is not bound to an async engine")
    return bind


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a model (SQLModel's classes do not declare ``__table__`` to mypy)."""
    table = inspect(model).local_table
    assert isinstance(table, Table)
    return table


def dialect_of(session: Any) -> str:
    """The name of the session's database dialect (``sqlite`` or ``postgresql``)."""
    return str(session.bind.dialect.name) if session.bind is not None else "sqlite"


def insert_for(dialect: str) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_*``), by dialect name: for a statement
    built once per dialect and cached. Imports only that dialect (PostgreSQL's package pulls in
    every one of its drivers' modules, ~50 ms that a SQLite start need not pay)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def detached(model: type[M], values: Mapping[str, Any]) -> M:
    """A model instance (not in any session) from a row's column values, built as the ORM
    builds a row it loads: no validation, no per-attribute instrumentation.

    For rows read with Core statements on hot paths: ``Model(**row)`` runs SQLModel's table
    constructor, which sets each field through pydantic and the ORM, ~0.2 ms a row here.
    """
    instance: M = class_mapper(model).class_manager.new_instance()
    instance.__dict__.update(values)
    return instance


def upsert_insert(session: Any) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_*``) for the session's database."""
    return insert_for(dialect_of(session))
