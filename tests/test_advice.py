"""Advice after a call, end to end: the clinic's API, the one-time link, the advice in the chat,
"I am getting worse", the check-in, switching language and deleting one's data.

Everything goes over real HTTP: the API on the bot's own server, the chat through the local Bot
API. Time passing is simulated by moving a check-in's due time in the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import select

from bot import migrate
from bot.app import RunningBot, build_runtime, running_bot
from bot.config import Settings
from bot.models import Channel, Dispatch, OutboxMessage, Person, utcnow
from bot.services.dispatches import answer_checkin
from devkit.localapi import DEFAULT_USERNAME, LocalBotApi, LocalUser
from tests.conftest import Api, People

PHONE = "+4791234567"


def start_payload(deep_link: str) -> str:
    match = re.fullmatch(r"https://t\.me/(\w+)\?start=([A-Za-z0-9_-]{1,64})", deep_link)
    assert match, deep_link
    return match.group(2)


async def dispatch_row(bot: RunningBot, dispatch_id: str) -> Dispatch:
    async with bot.rt.sessions() as session:
        row = await session.get(Dispatch, dispatch_id)
        assert row is not None
        return row


async def make_checkin_due(bot: RunningBot, dispatch_id: str, *, late: bool = False) -> None:
    """Let the check-in's hours pass: due now, or (late) so long ago that its window closed."""
    now = utcnow()
    due = now - dt.timedelta(hours=5) if late else now - dt.timedelta(seconds=1)
    async with bot.rt.sessions() as session:
        await session.exec(
            update(OutboxMessage)
            .where(OutboxMessage.dedupe_key == f"checkin:{dispatch_id}")  # type: ignore[arg-type]
            .values(due_at=due, expires_at=due + dt.timedelta(hours=2))
        )
        await session.commit()
    assert bot.rt.sender is not None
    bot.rt.sender.wake()


async def test_a_caller_gets_tailored_advice_says_worse_answers_the_checkin_and_deletes(
    api: Api, people: People, bot: RunningBot
) -> None:
    created = await api.dispatch(
        topic="fever-child",
        locale="nb",
        note="Gi paracetamol etter vekt, og mål temperaturen igjen i kveld.",
        risk_groups=["infant-under-3-months"],
        checkin_hours=6,
        phone="912 34 567",
    )
    payload = start_payload(created["deep_link"])
    assert created["deep_link"].startswith(f"https://t.me/{DEFAULT_USERNAME}?start=a_")
    assert len(payload) <= 64
    assert created["topic"] == "fever-child" and created["locale"] == "nb"
    assert created["advice_url"] in created["sms_text"]
    assert created["deep_link"] not in created["sms_text"]  # the page offers it

    kari = await people("Kari", language_code="en")
    [advice] = await kari.says(f"/start {payload}")

    text = advice.text
    assert text.startswith(
        "Feber hos barn\nVed fare for liv: ring 113.\nEksempeltekst: ikke godkjent av lege ennå."
    )
    # The nurse's own words, the chosen risk group, and nothing from the other risk group.
    assert "Fra sykepleieren du snakket med\nGi paracetamol etter vekt" in text
    assert "Barn under 3 måneder\nSmå barn kan bli alvorlig syke fort." in text
    assert "Nedsatt immunforsvar" not in text
    # Worsening signs by tier, 113 before 116 117 before self-care, each a concrete sign.
    urgent = text.index("Ring 113 nå hvis")
    again = text.index("Ring legevakten på 116 117 nå hvis")
    soon = text.index("Kontakt lege i dag eller neste virkedag hvis")
    assert urgent < again < soon < text.index("Dette kan du gjøre selv")
    assert "• Barnet får kramper" in text[urgent:again]
    assert "• Barnet har ikke tisset på 8 timer" in text[again:soon]
    assert "• Barn under 3 måneder: Barnet har 38 °C eller mer" in text[again:soon]
    assert "Vi spør deg hvordan det går" in text
    assert "<b>Ring 113 nå hvis</b>" in advice.html
    assert advice.button_texts == ["Barnet blir verre", "Vis på Nynorsk", "Slett dataene mine"]

    [what_now] = await kari.presses("Barnet blir verre")
    assert what_now.text.startswith("Ring 113 nå hvis du ser noe av dette:\n• Barnet har små")
    assert "Ring legevakten på 116 117 nå hvis du ser noe av dette:" in what_now.text
    assert "• Barn under 3 måneder: Barnet har 38 °C eller mer" in what_now.text
    assert "Ingen av disse, men blir det verre? Ring legevakten på 116 117 nå." in what_now.text
    assert "Si at du har fått skriftlige råd om: Feber hos barn." in what_now.text
    row = await dispatch_row(bot, created["id"])
    assert row.worse_count == 1 and row.worse_at is not None
    assert row.opened_at is not None and row.topic_version == 2 and row.locale == "nb"

    await make_checkin_due(bot, created["id"])
    [checkin] = await kari.replies(timeout=5)
    assert checkin.text == (
        "Hvordan går det nå? Du fikk råd fra legevakten om: Feber hos barn.\n"
        "Haster det: ring legevakten på 116 117. Ved fare for liv: ring 113."
    )
    assert checkin.button_texts == ["Bedre", "Som før", "Verre"]

    answers = await kari.presses("Bedre")
    assert [m.text for m in answers if m.edited] == [checkin.text + "\n\nDitt svar: Bedre"]
    assert [m.text for m in answers if not m.edited] == [
        "Så bra. Takk for svaret, og god bedring!\n\n"
        "Haster det: ring legevakten på 116 117. Ved fare for liv: ring 113."
    ]
    row = await dispatch_row(bot, created["id"])
    assert row.checkin_status == "answered" and row.checkin_answer == "better"

    # What the next nurse sees.
    status, found = await api.post("/api/v1/recontacts", {"phone": PHONE})
    assert status == 200 and found["recontact"] is True
    [seen] = found["dispatches"]
    assert seen["link_opened"] and seen["worse_pressed"] and seen["worse_count"] == 1
    assert seen["checkin"]["answer"] == "better" and seen["topic"] == "fever-child"

    [confirm] = await kari.presses("Slett dataene mine")
    assert "116 117" in confirm.text and "113" in confirm.text
    [done] = await kari.presses("Ja, slett")
    assert done.text.startswith("Ferdig. Alt vi hadde lagret om deg, er slettet.")
    assert done.text.endswith("Haster det: ring legevakten på 116 117. Ved fare for liv: ring 113.")
    async with bot.rt.sessions() as session:
        assert (await session.get(Dispatch, created["id"])) is None

    # "Worse" on the old advice still says what to do, in a message that stays.
    [after] = await kari.presses("Barnet blir verre", message_id=advice.message_id)
    assert after.text == (
        "Disse rådene er ikke lagret her lenger, så de kan ikke vises igjen.\n\n"
        "Blir du verre: ring legevakten på 116 117 nå. Ved fare for liv: ring 113."
    )
    status, found = await api.post("/api/v1/recontacts", {"phone": PHONE})
    assert found == {"recontact": False, "hours": 72, "dispatches": []}


async def test_the_advice_comes_in_the_language_the_nurse_chose_and_can_be_switched(
    api: Api, people: People, bot: RunningBot
) -> None:
    created = await api.dispatch(topic="head-injury", locale="nn", checkin_hours=None)
    ola = await people("Ola", language_code="nb")

    [advice] = await ola.says(f"/start {start_payload(created['deep_link'])}")
    assert advice.text.startswith("Slag mot hovudet hos vaksne\nVed fare for liv: ring 113.")
    assert "Ring 113 no viss" in advice.text
    assert "Dette kan du gjere sjølv" in advice.text
    assert advice.button_texts == ["Eg blir verre", "Vis på Bokmål", "Slett dataa mine"]
    # The rest of the bot now speaks Nynorsk too.
    [helptext] = await ola.says("/help")
    assert "Dette kan du gjere her" in helptext.text

    [switched] = await ola.presses("Vis på Bokmål")
    assert switched.edited and switched.message_id == advice.message_id
    assert "Ring 113 nå hvis" in switched.text
    assert switched.button_texts == ["Jeg blir verre", "Vis på Nynorsk", "Slett dataene mine"]
    async with bot.rt.sessions() as session:
        person = (await session.exec(select(Person))).one()
    assert person.locale == "nb" and person.locale_chosen


async def test_a_link_works_in_the_first_chat_only(api: Api, people: People) -> None:
    created = await api.dispatch(topic="urinary-tract-infection", locale="nb")
    payload = start_payload(created["deep_link"])
    kari, stranger = await people("Kari"), await people("Per")

    [advice] = await kari.says(f"/start {payload}")
    assert advice.text.startswith("Urinveisinfeksjon")

    [refusal] = await stranger.says(f"/start {payload}")
    assert refusal.text.startswith("Denne lenken er allerede åpnet i en annen chat.")
    assert "Urinveisinfeksjon" not in refusal.text and "116 117" in refusal.text
    assert refusal.buttons == []

    # The first chat can open its own advice again.
    [again] = await kari.says(f"/start {payload}")
    assert again.text == advice.text


async def test_an_expired_link_names_116_117_and_shows_no_advice(
    api: Api, people: People, bot: RunningBot
) -> None:
    created = await api.dispatch(topic="abdominal-pain", locale="nb")
    async with bot.rt.sessions() as session:
        await session.exec(
            update(Dispatch)
            .where(Dispatch.id == created["id"])  # type: ignore[arg-type]
            .values(expires_at=utcnow() - dt.timedelta(minutes=1))
        )
        await session.commit()
    kari = await people("Kari")

    [answer] = await kari.says(f"/start {start_payload(created['deep_link'])}")

    assert answer.text.startswith("Denne lenken har gått ut: den kunne åpnes i 72 timer")
    assert answer.text.endswith(
        "Haster det: ring legevakten på 116 117. Ved fare for liv: ring 113."
    )
    assert answer.buttons == []
    assert (await dispatch_row(bot, created["id"])).opened_at is None


@pytest.mark.parametrize("payload", ["a_" + "A" * 23, "a_", "a_short", "a_" + "x" * 62])
async def test_a_made_up_or_mangled_link_is_refused(people: People, payload: str) -> None:
    kari = await people("Kari")
    [answer] = await kari.says(f"/start {payload}")
    assert answer.text.startswith("Denne lenken er ikke gyldig.")


async def test_worse_in_nynorsk_puts_113_first(api: Api, people: People) -> None:
    created = await api.dispatch(topic="urinary-tract-infection", locale="nn")
    kari = await people("Kari")
    await kari.says(f"/start {start_payload(created['deep_link'])}")
    [what_now] = await kari.presses("Eg blir verre")
    assert what_now.text.startswith("Ring 113 no viss du ser noko av dette:")
    assert "Ingen av desse, men blir det verre? Ring legevakta på 116 117 no." in what_now.text


async def test_a_checkin_answered_worse_says_what_to_do_and_counts(
    api: Api, people: People, bot: RunningBot
) -> None:
    created = await api.dispatch(topic="vomiting-diarrhoea-child", locale="nb", checkin_hours=4)
    kari = await people("Kari")
    await kari.says(f"/start {start_payload(created['deep_link'])}")
    await make_checkin_due(bot, created["id"])
    await kari.replies(timeout=5)

    answers = await kari.presses("Verre")
    [what_now] = [m for m in answers if not m.edited]
    assert what_now.text.startswith("Ring 113 nå hvis du ser noe av dette:")
    row = await dispatch_row(bot, created["id"])
    assert row.checkin_answer == "worse" and row.worse_count == 1

    # The buttons are gone; a quick second tap that raced the edit keeps the first answer.
    [edited] = [m for m in await kari.inbox() if m.message_id == answers[0].message_id]
    assert edited.buttons == []
    person = (await dispatch_row(bot, created["id"])).person_id
    async with bot.rt.sessions() as session:
        owner = await session.get(Person, person)
    assert owner is not None
    stored, first = await answer_checkin(bot.rt, created["id"], owner, "better")
    assert not first and stored is not None and stored.checkin_answer == "worse"


async def test_a_checkin_that_could_not_be_sent_in_time_is_dropped_and_recorded(
    api: Api, people: People, bot: RunningBot, local_api: LocalBotApi
) -> None:
    created = await api.dispatch(topic="fever-child", locale="nb", checkin_hours=12)
    kari = await people("Kari")
    await kari.says(f"/start {start_payload(created['deep_link'])}")

    await make_checkin_due(bot, created["id"], late=True)
    for _ in range(50):
        if (await dispatch_row(bot, created["id"])).checkin_status != "scheduled":
            break
        await asyncio.sleep(0.1)

    assert (await dispatch_row(bot, created["id"])).checkin_status == "expired"
    await kari.silence(0.5)
    status, found = await api.post("/api/v1/recontacts", {"phone": "+47 912 34 567"})
    assert status == 200 and found["recontact"] is False  # no phone given: no re-contact


async def test_a_checkin_survives_a_restart(
    settings: Settings, local_api: LocalBotApi, api: Api, people: People, bot: RunningBot
) -> None:
    created = await api.dispatch(topic="breathing-cough-adult", locale="nb", checkin_hours=4)
    kari = await people("Kari")
    await kari.says(f"/start {start_payload(created['deep_link'])}")
    # Stop the running bot as a deploy would, then let the hours pass while it is down.
    await bot.app.updater.stop()  # type: ignore[union-attr]
    assert bot.rt.sender is not None
    await bot.rt.sender.stop(deadline=1)
    await make_checkin_due(bot, created["id"])

    await asyncio.to_thread(migrate.upgrade, settings.async_database_url)
    rt = build_runtime(settings)
    try:
        async with running_bot(rt, local_api.token, local_api.base_url, shutdown_deadline=1):
            [checkin] = await kari.replies(timeout=5)
    finally:
        await rt.engine.dispose()
    assert checkin.text.startswith("Hvordan går det nå?")


async def test_retention_deletes_old_dispatches_and_callers_with_nothing_left(
    api: Api, people: People, bot: RunningBot
) -> None:
    from bot.services.dispatches import purge_old

    old = await api.dispatch(topic="fever-child", locale="nb", phone=PHONE, send_sms=True)
    new = await api.dispatch(topic="fever-child", locale="nb", phone=PHONE)
    # The second call from the same number is flagged to the nurse making it.
    assert (old["recontact"], new["recontact"], new["earlier_dispatches"]) == (False, True, 1)
    kari = await people("Kari")
    await kari.says(f"/start {start_payload(old['deep_link'])}")
    # Aged to an hour short of the retention period, and purged as if two hours later: the
    # running bot's own tick also purges (at its first pass, whenever a loaded machine runs
    # it), and must not take these rows before this call does.
    days = bot.rt.settings.retention_days
    almost = utcnow() - dt.timedelta(days=days) + dt.timedelta(hours=1)
    async with bot.rt.sessions() as session:
        await session.exec(
            update(Dispatch)
            .where(Dispatch.id == old["id"])  # type: ignore[arg-type]
            .values(created_at=almost)
        )
        await session.exec(update(Person).values(last_seen_at=almost))
        await session.commit()

    assert await purge_old(bot.rt, now=utcnow() + dt.timedelta(hours=2)) == (1, 1)

    async with bot.rt.sessions() as session:
        assert await session.get(Dispatch, old["id"]) is None
        assert await session.get(Dispatch, new["id"]) is not None
        assert (
            await session.exec(select(OutboxMessage).where(OutboxMessage.channel == Channel.SMS))  # type: ignore[arg-type]
        ).all() == []
        assert (await session.exec(select(Person))).all() == []
    _status, found = await api.post("/api/v1/recontacts", {"phone": PHONE})
    assert [d["id"] for d in found["dispatches"]] == [new["id"]]


async def test_no_phone_number_chat_id_token_or_note_reaches_the_logs(
    api: Api,
    people: People,
    bot: RunningBot,
    caplog: pytest.LogCaptureFixture,
    production_logging_at_debug: None,
) -> None:
    note = "Ring fastlegen mandag om hosten ikke har gitt seg."
    created = await api.dispatch(
        topic="breathing-cough-adult",
        locale="nb",
        note=note,
        checkin_hours=4,
        phone=PHONE,
        send_sms=True,
    )
    payload = start_payload(created["deep_link"])
    kari = await people("Kari")
    with caplog.at_level(logging.DEBUG):
        await kari.says(f"/start {payload}")
        await kari.presses("Jeg blir verre")
        await make_checkin_due(bot, created["id"])
        await kari.replies(timeout=5)
        await kari.presses("Som før")
        await api.post("/api/v1/recontacts", {"phone": PHONE})

    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "dispatch " + created["id"] in logged  # the log does tell what happened, by id
    secret_things: list[Any] = [
        PHONE,
        "91234567",
        "912 34 567",
        payload,
        payload.removeprefix("a_"),
        str(kari.user_id),
        note,
        api.key,
    ]
    for thing in secret_things:
        assert str(thing) not in logged, f"{thing!r} was logged"
    assert LocalUser  # the chat ran over the local Bot API


async def test_two_chats_opening_one_link_at_the_same_moment_get_one_advice(
    api: Api, people: People, bot: RunningBot
) -> None:
    from bot.services.dispatches import Opened, open_link
    from bot.services.people import ensure_person

    created = await api.dispatch(topic="head-injury", locale="nb", checkin_hours=6)
    token = start_payload(created["deep_link"]).removeprefix("a_")
    people_ = [await ensure_person(bot.rt.sessions, 9100 + n, "nb") for n in range(6)]

    results = await asyncio.gather(*(open_link(bot.rt, token, p) for p in people_))

    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == ["first"] + ["taken"] * 5
    async with bot.rt.sessions() as session:
        checkins = (
            await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.dedupe_key == f"checkin:{created['id']}"  # type: ignore[arg-type]
                )
            )
        ).all()
    assert len(checkins) == 1
    [winner] = [r for r in results if r.outcome is Opened.FIRST]
    assert winner.dispatch is not None and checkins[0].person_id == winner.dispatch.person_id


async def test_advice_keeps_the_version_it_was_made_with_after_the_content_changes(
    api: Api, people: People, bot: RunningBot
) -> None:
    created = await api.dispatch(topic="fever-child", locale="nb")
    # An admin edits the topic and reloads: the live content now says something else.
    old = bot.rt.content.advice["fever-child"]
    new = old.model_copy(update={"title": "Feber hos barn (ny tekst)", "version": old.version + 1})
    bot.rt.content.advice["fever-child"] = new
    try:
        kari = await people("Kari")
        [advice] = await kari.says(f"/start {start_payload(created['deep_link'])}")
        assert advice.text.startswith("Feber hos barn\n")
        assert (await dispatch_row(bot, created["id"])).topic_version == old.version
        later = await api.dispatch(topic="fever-child", locale="nb")
        ola = await people("Ola")
        [fresh] = await ola.says(f"/start {start_payload(later['deep_link'])}")
        assert fresh.text.startswith("Feber hos barn (ny tekst)\n")
        assert later["topic_version"] == old.version + 1
    finally:
        bot.rt.content.advice["fever-child"] = old


BOTH_NUMBERS = ("116 117", "113")


async def test_every_message_a_caller_can_reach_names_116_117_and_113(
    api: Api, people: People, bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No dead end: walk every path a caller can take, then read everything the bot sent."""
    created = await api.dispatch(topic="fever-child", locale="nb", checkin_hours=6)
    payload = start_payload(created["deep_link"])
    expired = await api.dispatch(topic="abdominal-pain", locale="nb")
    async with bot.rt.sessions() as session:
        await session.exec(
            update(Dispatch)
            .where(Dispatch.id == expired["id"])  # type: ignore[arg-type]
            .values(expires_at=utcnow() - dt.timedelta(minutes=1))
        )
        await session.commit()
    kari, per = await people("Kari"), await people("Per")

    await kari.says("/start")
    await kari.says("/help")
    await kari.says("Hei, er det noen der?")
    await kari.says("/start a_" + "A" * 23)  # unknown link
    await kari.says(f"/start {start_payload(expired['deep_link'])}")  # expired link
    [advice] = await kari.says(f"/start {payload}")
    await per.says(f"/start {payload}")  # taken: opened in another chat
    await kari.presses("Barnet blir verre")
    await kari.presses("Vis på Nynorsk")
    await kari.presses("Vis på Bokmål")
    await make_checkin_due(bot, created["id"])
    [checkin] = await kari.replies(timeout=5)
    await kari.says("/language")
    await kari.presses("Nynorsk")
    await kari.says("/privacy")
    await kari.presses("Slett dataa mine")
    await kari.presses("Nei, behald")
    await kari.presses("Slett dataa mine")
    await kari.presses("Ja, slett")
    # Everything stored is gone; the old buttons still lead somewhere.
    await kari.presses(callback_data=f"a:worse:{created['id']}", message_id=advice.message_id)
    await kari.presses(callback_data=f"a:lang:{created['id']}:nn", message_id=advice.message_id)
    await kari.presses("Bedre", message_id=checkin.message_id)

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the database is on fire")

    monkeypatch.setattr("handlers.base.ensure_person", broken)
    await kari.says("/help")  # an error on our side
    monkeypatch.undo()

    seen = [m for user in (kari, per) for m in await user.inbox()]
    assert len(seen) >= 15  # edits replace the message they edit
    dead_ends = [m.text for m in seen if not all(n in m.text for n in BOTH_NUMBERS)]
    assert dead_ends == []
    toasts = [a.text for a in await kari.callback_answers() if a.text]
    assert all(all(n in t for n in BOTH_NUMBERS) for t in toasts), toasts
    # "Worse" after deletion answered with a message that stays, not only a toast.
    # (Deleting forgot her language too, so she is answered in Telegram's: Bokmål.)
    assert any(
        m.text.startswith("Disse rådene er ikke lagret her lenger, så de kan ikke vises igjen.")
        and "Blir du verre: ring legevakten på 116 117 nå." in m.text
        for m in seen
    )


async def test_advice_stored_in_the_old_shape_still_renders(
    api: Api, people: People, bot: RunningBot
) -> None:
    """A dispatch made before urgency tiers keeps its stored copy (``action``, no scope, no
    sources, risk groups with advice only); it still shows by tier and answers "worse"."""
    created = await api.dispatch(
        topic="fever-child", locale="nb", risk_groups=["infant-under-3-months"]
    )
    row = await dispatch_row(bot, created["id"])
    assert row.content is not None
    old: dict[str, Any] = {}
    for locale, topic in row.content.items():
        topic = dict(topic)
        topic.pop("scope"), topic.pop("sources")
        topic["worsening_signs"] = [
            {"id": s["id"], "sign": s["sign"], "action": _OLD_ACTION[s["tier"]]}
            for s in topic["worsening_signs"]
        ]
        topic["tailoring"] = {
            **topic["tailoring"],
            "risk_groups": [
                {"id": g["id"], "label": g["label"], "advice": g["advice"]}
                for g in topic["tailoring"]["risk_groups"]
            ],
        }
        old[locale] = topic
    async with bot.rt.sessions() as session:
        await session.exec(
            update(Dispatch)
            .where(Dispatch.id == created["id"])  # type: ignore[arg-type]
            .values(content=old)
        )
        await session.commit()

    kari = await people("Kari")
    [advice] = await kari.says(f"/start {start_payload(created['deep_link'])}")
    assert advice.text.startswith("Feber hos barn\nVed fare for liv: ring 113.")
    assert "Ring 113 nå hvis\n• Barnet har små mørkerøde" in advice.text
    assert "Ring legevakten på 116 117 nå hvis" in advice.text
    # The scope is not advice: it is borrowed from the live topic, so "worse" names the child.
    assert advice.button_texts[0] == "Barnet blir verre"
    [what_now] = await kari.presses("Barnet blir verre")
    assert what_now.text.startswith("Ring 113 nå hvis du ser noe av dette:")


_OLD_ACTION = {"emergency": "call_113", "urgent": "call_116117", "soon": "call_116117"}


def test_an_old_copy_without_a_live_topic_reads_as_adults_advice() -> None:
    from bot.content.schema import topic_from_snapshot

    old = {
        "id": "gone",
        "version": 1,
        "status": "draft",
        "title": "Borte",
        "summary": "Et emne som er fjernet.",
        "self_care": ["Hvil."],
        "normal": ["Det går over."],
        "worsening_signs": [{"id": "x", "sign": "Du besvimer.", "action": "call_113"}],
    }
    topic = topic_from_snapshot(old)
    assert [s.tier for s in topic.worsening_signs] == ["emergency"]
    assert topic.audience == "adults" and topic.scope is None and topic.sources == []
