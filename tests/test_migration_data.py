"""Data already in a database survives this change's migrations, and means what it meant.

Rows are written as the schema before each migration had them (plain SQL), the migration runs,
and the rows are read back as the code after it reads them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from bot import migrate
from bot.config import to_async_url

AT = dt.datetime(2026, 11, 30, 10, 0)


@pytest.fixture
def url(database_url: str) -> str:
    return to_async_url(database_url)


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    sync = create_engine(url.replace("+aiosqlite", ""))
    yield sync
    sync.dispose()


def _dispatch(conn: object, dispatch_id: str, api_key_id: int | None) -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            "insert into dispatch (id, api_key_id, topic_id, topic_version, locale, note,"
            " risk_groups, phone_hash, token_hash, created_at, expires_at, worse_count,"
            " checkin_status, sms_status) values (:id, :key, 'fever-child', 1, 'nb',"
            " 'Mål temperaturen', '[\"infant-under-3-months\"]', :hash, :token, :at, :at, 0,"
            " 'none', 'none')"
        ),
        {
            "id": dispatch_id,
            "key": api_key_id,
            "hash": "h" * 64,
            "token": dispatch_id * 2,
            "at": AT,
        },
    )


def test_existing_keys_get_the_clinic_they_are_named_for_and_dispatches_their_keys(
    url: str, engine: Engine
) -> None:
    migrate.upgrade(url, "0007")
    with engine.begin() as conn:
        conn.execute(
            text("insert into organisation (name, created_at) values ('Legevakten i Bergen', :at)"),
            {"at": AT},
        )
        for key_id, name in (
            (1, "Legevakten i Bergen"),
            (2, " legevakten  i bergen"),
            (3, "Askøy"),
        ):
            conn.execute(
                text(
                    "insert into api_key (id, name, key_hash, created_at)"
                    " values (:id, :name, :hash, :at)"
                ),
                {"id": key_id, "name": name, "hash": str(key_id) * 64, "at": AT},
            )
        _dispatch(conn, "a" * 32, 1)
        _dispatch(conn, "b" * 32, 3)
        _dispatch(conn, "c" * 32, None)  # made on the command line

    migrate.upgrade(url, "0008_api_keys_belong_to_clinics")

    with engine.connect() as conn:
        orgs = dict(conn.execute(text("select name, id from organisation")).all())
        keys = dict(conn.execute(text("select id, organisation_id from api_key")).all())
        owners = dict(conn.execute(text("select id, organisation_id from dispatch")).all())
        regions = conn.execute(text("select region from organisation")).scalars().all()
    assert set(orgs) == {"Legevakten i Bergen", "Askøy"}  # the existing clinic is reused
    assert keys == {
        1: orgs["Legevakten i Bergen"],
        2: orgs["Legevakten i Bergen"],
        3: orgs["Askøy"],
    }
    assert owners == {
        "a" * 32: orgs["Legevakten i Bergen"],
        "b" * 32: orgs["Askøy"],
        "c" * 32: None,
    }
    assert regions == [None, None]  # sharing is an admin's decision, not the migration's

    migrate.downgrade(url, "0007")
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from api_key")).scalar_one() == 3
        assert conn.execute(text("select count(*) from dispatch")).scalar_one() == 3
