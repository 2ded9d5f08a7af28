"""The API under abuse: rate limits per key, SMS only to mobile numbers, clinics that see only
their own (and their region's) dispatches, an audit log of every look-up, and keys whose last use
is written at most once a minute.

Over real HTTP to the running bot, as call systems (honest or not) use it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.app import RunningBot
from bot.models import Dispatch, SmsMessage
from tests.conftest import Api

FEVER = {"topic": "fever-child", "locale": "nb"}


async def stored(bot: RunningBot) -> tuple[int, int]:
    async with bot.rt.sessions() as session:
        dispatches = (await session.exec(select(func.count()).select_from(Dispatch))).one()
        sms = (await session.exec(select(func.count()).select_from(SmsMessage))).one()
    return int(dispatches), int(sms)


# --- SMS pumping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "why"),
    [
        ("+4722123456", "landline"),  # Oslo, fixed line
        ("80012345", "toll-free"),  # 800: grønt nummer
        ("+4781012345", "toll-free"),  # 810: shared cost
        ("+4702123", "toll-free"),  # 02xxx: short service number
        ("+46701234567", "another country"),  # a Swedish mobile
        ("+447911123456", "another country"),  # a British mobile
    ],
)
async def test_an_sms_goes_only_to_a_norwegian_mobile_number(
    api: Api, bot: RunningBot, phone: str, why: str
) -> None:
    status, data = await api.post("/api/v1/dispatches", {**FEVER, "phone": phone, "send_sms": True})
    assert status == 422 and data["error"] == "invalid", data
    message = data["fields"]["phone"]
    assert message.startswith("an SMS is sent only to mobile numbers")
    if why == "another country":
        assert "this number is from another country (SMS_COUNTRIES)" in message
    else:
        assert "this is a landline, toll-free or service number" in message
    assert await stored(bot) == (0, 0)

    created = await api.dispatch(**FEVER, phone=phone)  # without an SMS: a re-contact key only
    assert created["sms"] == "none"


async def test_norwegian_mobile_numbers_get_their_sms(api: Api, bot: RunningBot) -> None:
    for phone in ("+4791234567", "412 34 567", "0047 98765432"):
        created = await api.dispatch(**FEVER, phone=phone, send_sms=True)
        assert created["sms"] == "queued"
    assert await stored(bot) == (3, 3)


@pytest.fixture
def settings(settings, request):  # type: ignore[no-untyped-def]
    return settings.model_copy(update=getattr(request, "param", {}))


@pytest.mark.parametrize("settings", [{"sms_countries": ["NO", "SE"]}], indirect=True)
async def test_more_countries_can_be_allowed(api: Api, bot: RunningBot) -> None:
    created = await api.dispatch(**FEVER, phone="+46701234567", send_sms=True)
    assert created["sms"] == "queued"
    status, data = await api.post(
        "/api/v1/dispatches", {**FEVER, "phone": "+4722123456", "send_sms": True}
    )
    assert status == 422 and "landline" in data["fields"]["phone"]
