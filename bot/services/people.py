"""People who write to the bot: find or create them, remember their language, delete them.

Takes Telegram user ids as plain ints; returns ``Person`` rows. No Telegram types here.
"""

from __future__ import annotations

import functools

from sqlalchemy import Insert, Update, bindparam, delete, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from bot.db import Sessions, detached, insert_for, table_of
from bot.i18n import Locale, as_locale
from bot.models import Dispatch, Person, utcnow

_PERSON = table_of(Person)


async def ensure_person(sessions: Sessions, telegram_user_id: int, guessed: Locale) -> Person:
    """The person for a Telegram user, created with a guessed language on first contact.

    Writing to the bot again also means they have not blocked it (any more). One Core statement
    (an upsert with RETURNING), since this runs for every update; the row becomes a ``Person``
    without an ORM load.
    """
    async with sessions() as session:
        person = await upsert_person(await session.connection(), telegram_user_id, guessed)
        await session.commit()
    return person


async def upsert_person(
    connection: AsyncConnection, telegram_user_id: int, guessed: Locale
) -> Person:
    """``ensure_person``'s statement in the caller's transaction (the caller commits)."""
    params = {"telegram_user_id": telegram_user_id, "locale": guessed, "now": utcnow()}
    row = (await connection.execute(_upsert_person(connection.dialect.name), params)).one()
    values = row._asdict()
    values["locale"] = as_locale(values["locale"])
    return detached(Person, values)


@functools.cache
def _upsert_person(dialect: str) -> Insert:
    """``ensure_person``'s statement, built once per dialect (values bound at each execution):
    building and cache-keying it anew cost more than running it."""
    insert = insert_for(dialect)
    now = bindparam("now", type_=_PERSON.c.last_seen_at.type)  # UTCDateTime, as the columns
    return (
        insert(_PERSON)
        .values(
            telegram_user_id=bindparam("telegram_user_id"),
            locale=bindparam("locale"),
            locale_chosen=False,
            created_at=now,
            last_seen_at=now,
        )
        .on_conflict_do_update(
            index_elements=["telegram_user_id"],
            set_={"last_seen_at": now, "blocked_at": None},
        )
        .returning(*_PERSON.c)
    )


async def choose_locale(sessions: Sessions, telegram_user_id: int, locale: Locale) -> Person:
    """Store an explicit language choice; from now on Telegram's language is ignored."""
    async with sessions() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_user_id == telegram_user_id))
        ).one()
        person.locale = locale
        person.locale_chosen = True
        session.add(person)
        await session.commit()
        return person


async def guess_locale_once(sessions: Sessions, telegram_user_id: int, locale: Locale) -> None:
    """A better guess (e.g. the language a nurse chose); an explicit choice is kept."""
    async with sessions() as session:
        await session.exec(guessed_locale(telegram_user_id, locale))
        await session.commit()


def guessed_locale(telegram_user_id: int, locale: Locale) -> Update:
    """The statement of ``guess_locale_once``, for a caller's own transaction."""
    return (
        update(Person)
        .where(
            col(Person.telegram_user_id) == telegram_user_id,
            col(Person.locale_chosen).is_(False),
            col(Person.locale) != locale,
        )
        .values(locale=locale)
    )


async def delete_person(
    sessions: Sessions, telegram_user_id: int, *, retention_days: int = 30
) -> bool:
    """Delete a person and, through the foreign keys, everything stored about them. Their
    advice pages answer 410 from now on (``dispatches.gone_links``); #Råbra stories they shared
    anonymously stay, with no link to them (``raabra.forget_author``); each of their
    dispatches' clinics gets ``dispatch.deleted`` (``via="telegram"``), and their events stay
    until retention."""
    from bot.services import clinic_events, raabra
    from bot.services.dispatches import gone_links

    async with sessions() as session:
        person_id = (
            await session.exec(
                select(Person.id).where(col(Person.telegram_user_id) == telegram_user_id)
            )
        ).first()
        if person_id is not None:
            await raabra.forget_author(session, person_id)
        theirs = await session.exec(
            select(Dispatch)
            .join(Person, col(Dispatch.person_id) == col(Person.id))
            .where(col(Person.telegram_user_id) == telegram_user_id)
            .with_for_update(of=Dispatch)  # rows before the events' lock, as everywhere
        )
        found = list(theirs)
        gone_links(session, found, retention_days)
        # Each clinic learns its advice was deleted; the events stay (nothing personal in them).
        for dispatch in found:
            await clinic_events.emit(
                session, dispatch, clinic_events.EventType.DISPATCH_DELETED, {"via": "telegram"}
            )
        result = await session.exec(
            delete(Person).where(col(Person.telegram_user_id) == telegram_user_id)
        )
        await session.commit()
        return bool(getattr(result, "rowcount", 0))


async def has_advice(sessions: Sessions, person_id: int) -> bool:
    """Whether the person has advice from a legevakt that is still kept (they opened a link)."""
    from bot.models import Dispatch

    async with sessions() as session:
        found = await session.exec(
            select(Dispatch.id).where(col(Dispatch.person_id) == person_id).limit(1)
        )
        return found.first() is not None
