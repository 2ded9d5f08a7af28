"""Shared fixtures: a fresh database, the local Bot API on a free port, and the real bot running
against it, exactly as ``python -m bot run`` starts it.

The database is a new SQLite file per test, or, with ``TEST_DATABASE_URL`` set (``make test-pg``),
a new PostgreSQL database per test on that server: ``CREATE DATABASE test_<random>`` before the
test (0.05 to 0.2 s) and ``DROP DATABASE … WITH (FORCE)`` after it. On PostgreSQL only the tests
that use a database (the ``database_url`` fixture, which ``settings`` uses) are collected; the
rest ran already on SQLite and do not depend on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot import migrate, outbox
from bot.app import PerChatUpdateProcessor, RunningBot, build_runtime, running_bot
from bot.config import Settings
from bot.db import Sessions, make_engine, make_sessions
from bot.runtime import Runtime
from devkit.localapi import LocalBotApi, LocalUser, serve_local_api
from devkit.localapi.client import Settle

# postgresql://user:password@host/database: a server where the tests may create databases.
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip() or None
ON_POSTGRES = TEST_DATABASE_URL is not None


def _libpq_url(url: str, database: str | None = None) -> str:
    """A plain postgresql:// URL for psycopg (no SQLAlchemy driver name), optionally renamed."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def pytest_configure(config: pytest.Config) -> None:
    if TEST_DATABASE_URL is None:
        return
    try:
        make_url(TEST_DATABASE_URL)
    except ArgumentError:
        # Not the value itself: it may hold a password.
        pytest.exit(
            f"TEST_DATABASE_URL is not a database URL ({len(TEST_DATABASE_URL.splitlines())} "
            "line(s)); expected postgresql://user:password@host:port/database",
            returncode=3,
        )


def pytest_report_header(config: pytest.Config) -> str:
    if TEST_DATABASE_URL is None:
        return "database: a new SQLite file per test"
    shown = make_url(TEST_DATABASE_URL).render_as_string(hide_password=True)
    return f"database: a new PostgreSQL database per test on {shown}"


# Test databases are named test_<unix time>_<random>; ones a killed run left behind are dropped
# by a later run once they are this old (a younger one may belong to a run still going).
STALE_AFTER_SECONDS = 6 * 3600


def pytest_sessionstart(session: pytest.Session) -> None:
    if TEST_DATABASE_URL is None:
        return
    import psycopg
    from psycopg import sql

    try:
        conn = psycopg.connect(_libpq_url(TEST_DATABASE_URL), connect_timeout=10, autocommit=True)
    except psycopg.Error as exc:
        pytest.exit(f"TEST_DATABASE_URL: cannot connect to PostgreSQL: {exc}", returncode=3)
    with conn:
        names = conn.execute(
            "SELECT datname FROM pg_database WHERE datname ~ '^test_[0-9]+_[0-9a-f]+$'"
        ).fetchall()
        for (name,) in names:
            if int(name.split("_")[1]) > time.time() - STALE_AFTER_SECONDS:
                continue
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            with contextlib.suppress(psycopg.Error):  # e.g. another role's: not ours to drop
                conn.execute(drop)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run only the tests that use a database; the others ran on SQLite."""
    if TEST_DATABASE_URL is None:
        return
    keep, drop = [], []
    for item in items:
        uses_db = "database_url" in getattr(item, "fixturenames", ())
        (keep if uses_db else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test, as a DATABASE_URL (not migrated yet)."""
    if TEST_DATABASE_URL is None:
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"test_{int(time.time())}_{uuid.uuid4().hex[:12]}"
    admin = _libpq_url(TEST_DATABASE_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        # UTF-8 and the C collation whatever the server's defaults: text sorts by code point, as
        # on SQLite. template0, because template1 may have another encoding.
        create = "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"
        conn.execute(sql.SQL(create).format(sql.Identifier(name)))
    try:
        yield _libpq_url(TEST_DATABASE_URL, name)
    finally:
        _drop_test_database(admin, name)


def _drop_test_database(admin: str, name: str) -> None:
    """Drop a test's database; if the server will not let us yet, leave it for a later run.

    FORCE ends connections a failed test left open. It may not end an autovacuum worker that
    just started on the database (``InsufficientPrivilege`` without ``pg_signal_backend``, which
    .ci/pg-up grants); such a worker finishes within moments, so the drop is tried again, and a
    database still left is dropped by the stale-database sweep of a later run.
    """
    import psycopg
    from psycopg import sql

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for attempt in range(20):
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(drop)
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse) as exc:
            if attempt == 19:
                logging.getLogger(__name__).warning(
                    "test database %s left for a later run: %s", name, type(exc).__name__
                )
                return
            time.sleep(0.25)


async def active_leaders(
    session: Any, rt: Runtime, org: Any, role_id: str, count: int, user_ids: Iterator[int]
) -> list[Any]:
    """``count`` active leaders in ``role_id`` of ``org``, each a new person (ids from
    ``user_ids``), written in ``session`` (flushed, not committed)."""
    from bot.models import Leader, LeaderStatus, Person

    programme, _role = rt.content.roles[role_id]
    made = []
    for _ in range(count):
        person = Person(telegram_user_id=next(user_ids), locale="nb")
        session.add(person)
        await session.flush()
        assert person.id is not None and org.id is not None
        leader = Leader(
            person_id=person.id,
            organisation_id=org.id,
            role_id=role_id,
            programme_id=programme.id,
            status=LeaderStatus.ACTIVE,
        )
        session.add(leader)
        made.append(leader)
    await session.flush()
    return made


def free_port() -> int:
    """A TCP port nobody listens on right now, for a server a test starts itself."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def table_rows(database_url: str, table: str, order_by: str | None = None) -> list[dict[str, Any]]:
    """Every row of a table, read straight from the database behind a DATABASE_URL."""
    from sqlalchemy import create_engine, text

    from bot.config import to_async_url

    engine = create_engine(to_async_url(database_url).replace("+aiosqlite", ""))
    try:
        with engine.connect() as conn:
            order = f" ORDER BY {order_by}" if order_by else ""
            result = conn.execute(text(f"SELECT * FROM {table}{order}"))  # names from the tests
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=None,
        database_url=database_url,
        var_dir=tmp_path / "var",
        secret_key="test-secret-" + "x" * 32,
        outbox_tick_seconds=0.2,
    )


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[Sessions]:
    """A migrated database and its sessions, for tests of the senders without a bot."""
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    engine = make_engine(settings.async_database_url)
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture
async def rt(settings: Settings) -> AsyncIterator[Runtime]:
    """A migrated database and the runtime, without a running bot (no tick, no sender)."""
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        await runtime.engine.dispose()


@pytest.fixture
async def local_api() -> AsyncIterator[LocalBotApi]:
    async with serve_local_api() as api:
        yield api


@pytest.fixture
async def bot(settings: Settings, local_api: LocalBotApi) -> AsyncIterator[RunningBot]:
    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    rt = build_runtime(settings)
    try:
        async with running_bot(
            rt,
            local_api.token,
            local_api.base_url,
            web_host="127.0.0.1",
            web_port=0,
            shutdown_deadline=2,
        ) as running:
            # The command menus are set after start-up (in the background): tests that read
            # them begin once they are there.
            assert running.startup is not None
            await asyncio.wait_for(running.startup.wait(), 30)
            yield running
    finally:
        await rt.engine.dispose()


People = Callable[..., Awaitable[LocalUser]]


def settled(bot: RunningBot) -> Settle:
    """The bot's own word that it is done: the update is handled (its handlers returned, every
    reply sent) and nothing is due in its queue. No window of silence to wait out."""
    processor = bot.app.update_processor
    assert isinstance(processor, PerChatUpdateProcessor)

    async def settle(update_id: int | None) -> None:
        if update_id is not None:
            await processor.handled_update(update_id)
        while (await outbox.depth(bot.rt.sessions)).due or processor.in_progress:
            await asyncio.sleep(0.02)  # polls a condition; the caller bounds it with a timeout

    return settle


@pytest.fixture
async def people(bot: RunningBot, local_api: LocalBotApi) -> AsyncIterator[People]:
    """Make people who talk to the bot: ``kari = people("Kari", language_code="nn")``."""
    stack = AsyncExitStack()
    next_id = iter(range(5001, 6000))

    async def make(first_name: str = "Kari", language_code: str | None = "nb") -> LocalUser:
        user = LocalUser(
            local_api.url,
            user_id=next(next_id),
            first_name=first_name,
            language_code=language_code,
            settle=settled(bot),
        )
        return await stack.enter_async_context(user)

    yield make
    await stack.aclose()


@pytest.fixture
def production_logging_at_debug():  # type: ignore[no-untyped-def]
    """The bot's own log set-up, at its most talkative level; restored afterwards."""
    from bot.logs import setup_logging

    names = ["", "telegram", "httpx", "aiosqlite", "sqlalchemy.engine", "apscheduler"]
    saved = {n: logging.getLogger(n).level for n in names}
    handlers = logging.getLogger().handlers[:]
    setup_logging("DEBUG")
    yield
    logging.getLogger().handlers[:] = handlers
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


class Api:
    """The clinic's HTTP API of the running bot, as a call system uses it."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, key: str | None) -> None:
        self.session = session
        self.base_url = base_url
        self.key = key

    async def post(
        self, path: str, body: Any, *, key: str | bool | None = True
    ) -> tuple[int, dict[str, Any]]:
        """POST JSON; ``key=True`` sends this client's key, a string sends that, None none."""
        headers = {}
        sent_key = self.key if key is True else key
        if sent_key:
            headers["Authorization"] = f"Bearer {sent_key}"
        async with self.session.post(self.base_url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        async with self.session.get(self.base_url + path, headers=headers) as resp:
            return resp.status, await resp.json()

    async def dispatch(self, **body: Any) -> dict[str, Any]:
        """Create a dispatch that must succeed."""
        status, data = await self.post("/api/v1/dispatches", body)
        assert status == 201, data
        return data


@pytest.fixture
async def api(bot: RunningBot) -> AsyncIterator[Api]:
    """The bot's HTTP API with a fresh key, as made by `python -m bot apikey create`."""
    from bot.services import apikeys

    _row, key = await apikeys.create(bot.rt.sessions, "Telefonsystemet", "Testlegevakt")
    assert bot.web_url is not None
    async with aiohttp.ClientSession() as session:
        yield Api(session, bot.web_url.rstrip("/"), key)


async def drain_until_idle(sender: Any, seconds: float = 10.0) -> None:
    """Run a sender's rounds (as its loop would) until no queued message is pending or being
    sent, within a time limit."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await sender.drain_once()
        if (await outbox.depth(sender.sessions)).waiting == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the queue did not drain in time")


class Gateway:
    """A fake SMS gateway: records requests and answers with the statuses it is told to."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []  # statuses to answer next, then 200
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append({"headers": dict(request.headers), "json": await request.json()})
        status = self.script.pop(0) if self.script else 200
        headers = {"Retry-After": "1"} if status == 429 else {}
        return web.json_response(
            {"echo": "details the bot must not keep"}, status=status, headers=headers
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/send", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    """A fake SMS gateway on a free port (``gateway.url``)."""
    gw = Gateway()
    await gw.start()
    yield gw
    await gw.stop()
