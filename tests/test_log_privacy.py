"""No personal data in any log line, tracebacks included: database errors forced in the middle of
a caller's and a leader's dialogue, logged at DEBUG through the production log set-up, leave no
user id, phone number, note or answer in what is written.

The errors are real ones from the database: a trigger refuses the statement (on PostgreSQL with
a DETAIL quoting the row's values, as PostgreSQL's own constraint errors do).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.app import RunningBot
from bot.db import is_postgres
from bot.logs import RedactingFilter
from bot.services import invites
from devkit.localapi import LocalBotApi, LocalUser
from tests.conftest import Api
from tests.test_leaders import question_arrives

CALLER_ID = 7315093  # seven digits: too short for the digit mask, so only the set-up can hide it
LEADER_ID = 7315094
PHONE = "+4791234567"
NOTE = "Mor er bekymret for utslettet på armen"
ANSWER = "Jeg angrer på beslutningen om bemanningen i helgen"
SORRY = "Beklager, noe gikk galt hos oss."


@pytest.fixture
def log_output(production_logging_at_debug: None) -> Iterator[io.StringIO]:
    """What the production handler writes (stderr in production), captured."""
    [handler] = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactingFilter) for f in h.filters)
    ]
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    old = handler.setStream(out)
    yield out
    handler.setStream(old)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def statements_fail(bot: RunningBot, table: str, event: str) -> AsyncIterator[None]:
    """While inside, the database refuses ``event`` (INSERT, UPDATE) on ``table``."""
    name = f"fail_{table}_{event.lower()}"
    async with bot.rt.sessions() as session:
        if is_postgres(bot.rt.engine):
            column = {"person": "telegram_user_id", "prompt": "answer_ciphertext"}.get(table, "id")
            await session.exec(  # type: ignore[call-overload]
                text(
                    f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
                    f"RAISE EXCEPTION 'forced failure' USING DETAIL = "
                    f"'Failing row contains (' || NEW.{column} || ').'; END $$ LANGUAGE plpgsql"
                )
            )
            await session.exec(  # type: ignore[call-overload]
                text(
                    f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
                    f"FOR EACH ROW EXECUTE FUNCTION {name}()"
                )
            )
        else:
            await session.exec(  # type: ignore[call-overload]
                text(
                    f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'forced failure'); END"
                )
            )
        await session.commit()
    try:
        yield
    finally:
        async with bot.rt.sessions() as session:
            await session.exec(
                text(
                    f"DROP TRIGGER {name}"
                    + (  # type: ignore[call-overload]
                        f" ON {table}" if is_postgres(bot.rt.engine) else ""
                    )
                )
            )
            if is_postgres(bot.rt.engine):
                await session.exec(text(f"DROP FUNCTION {name}()"))  # type: ignore[call-overload]
            await session.commit()


async def test_database_errors_mid_dialogue_leave_no_personal_data_in_the_log(
    api: Api, bot: RunningBot, local_api: LocalBotApi, log_output: io.StringIO
) -> None:
    body = {"topic": "fever-child", "locale": "nb", "note": NOTE, "phone": PHONE}

    # The call system's request fails in the database: the note and the number were in it.
    headers = {"Authorization": f"Bearer {api.key}"}
    async with (
        statements_fail(bot, "dispatch", "INSERT"),
        api.session.post(
            api.base_url + "/api/v1/dispatches", json=body, headers=headers
        ) as response,
    ):
        assert response.status == 500

    # The caller opens the link; storing them fails (their Telegram id was in the statement).
    created = await api.dispatch(**body)
    link = created["deep_link"].split("?start=", 1)[1]
    async with LocalUser(local_api.url, CALLER_ID, "Torbjørg", "nb") as caller:
        async with statements_fail(bot, "person", "INSERT"):
            [sorry] = await caller.says(f"/start {link}")
        assert sorry.text.startswith(SORRY)
        advice = await caller.says(f"/start {link}")  # it works once the database does
        assert advice[0].text.startswith("Feber hos barn")

    # A leader's answer cannot be saved (the answer was in the statement).
    invite = await invites.create(bot.rt, "Helse Vest HF", "unit-leader")
    async with LocalUser(local_api.url, LEADER_ID, "Gudbjørg", "nb") as leader:
        await leader.says("/start " + invite.deep_link.split("?start=", 1)[1])
        await leader.presses("Bokmål")
        await leader.presses("Tirsdag")
        await leader.presses("09:00")
        await question_arrives(bot, leader)
        async with statements_fail(bot, "prompt", "UPDATE"):
            [sorry] = await leader.says(ANSWER)
        assert sorry.text.startswith(SORRY)

    written = log_output.getvalue()
    assert written.count("forced failure") >= 3  # all three errors were logged …
    assert written.count("Traceback (most recent call last)") >= 3  # … with their tracebacks
    for secret in (
        NOTE,
        ANSWER,
        PHONE,
        "91234567",
        "Torbjørg",
        "Gudbjørg",
        link,
        link.removeprefix("a_"),
        local_api.token.split(":", 1)[1],
    ):
        assert secret not in written, f"{secret!r} reached the log"
    for user_id in (CALLER_ID, LEADER_ID):
        assert not re.search(rf"(?<!\d){user_id}(?!\d)", written), f"{user_id} reached the log"


def test_the_filter_cleans_a_traceback_whose_text_quotes_values() -> None:
    """A database error from an engine made without hide_parameters, or PostgreSQL's DETAIL."""
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", ("boom",), None)
    try:
        raise DBAPIError(
            "INSERT INTO prompt (answer_text, leader_id) VALUES (?, ?)",
            (ANSWER, 7315094),
            Exception(f"forced\nDETAIL:  Failing row contains ({ANSWER}, 7315094)."),
        )
    except DBAPIError:
        import sys

        record.exc_info = sys.exc_info()
    from bot.logs import redact

    RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "Traceback" in formatted and "INSERT INTO prompt" in formatted
    assert ANSWER not in formatted and "7315094" not in formatted
    assert redact("input_value='hemmelig', input_type=str") == "input_value=…, input_type=str"
