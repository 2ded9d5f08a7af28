"""People who write to the bot: find or create them, remember their language, delete them.

Takes Telegram user ids as plain ints; returns ``Person`` rows. No Telegram types here.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.db import Sessions
from bot.i18n import Locale, as_locale
from bot.models import Person, utcnow


async def ensure_person(sessions: Sessions, telegram_user_id: int, guessed: Locale) -> Person:
    """The person for a Telegram user, created with a guessed language on first contact.

    Writing to the bot again also means they have not blocked it (any more).
    """
    async with sessions() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_user_id == telegram_user_id))
        ).one_or_none()
        if person is None:
            person = Person(telegram_user_id=telegram_user_id, locale=guessed)
            session.add(person)
            try:
                await session.commit()
            except IntegrityError:  # two first updates at once: the other one created it
                await session.rollback()
                return await ensure_person(sessions, telegram_user_id, guessed)
            await session.refresh(person)
            return person
        person.last_seen_at = utcnow()
        person.blocked_at = None
        person.locale = as_locale(person.locale)
        session.add(person)
        await session.commit()
        return person


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
        person = (
            await session.exec(select(Person).where(Person.telegram_user_id == telegram_user_id))
        ).one_or_none()
        if person is None or person.locale_chosen:
            return
        person.locale = locale
        session.add(person)
        await session.commit()


async def delete_person(sessions: Sessions, telegram_user_id: int) -> bool:
    """Delete a person and, through the foreign keys, everything stored about them."""
    async with sessions() as session:
        result = await session.exec(
            delete(Person).where(Person.telegram_user_id == telegram_user_id)  # type: ignore[arg-type]
        )
        await session.commit()
        return bool(getattr(result, "rowcount", 0))
