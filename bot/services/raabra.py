"""#Råbra: stories of good work and good colleagueship, and what leaders learn from them.

"Et avvikssystem med positivt fortegn" (the white paper's Boks 1.5, after Learning from
Excellence): anyone enrolled as a leader, or a member of staff invited with an invite of kind
``raabra``, tells in free text about something that went well, gives it a theme from
``content/raabra.yaml`` if they like, and chooses who may read it:

- **private**: only they (``/raabra mine``); it appears nowhere else, ever;
- **anonymous**: the organisation's leaders in the monthly digest, and the organisation's
  ``report raabra``, without a name;
- **named**: the same, signed with the name they were shown before choosing.

The rules that protect people:

- The text (and a named story's signature) is Fernet-encrypted with the "raabra" key; a text
  holding a fødselsnummer is refused (``privacy.contains_national_id``), as for answers.
- **The small-group rule.** A month's anonymous stories are shown (in the digest and the report,
  text, theme and in the counts) only when at least ``REPORT_MIN_GROUP`` different people shared
  anonymously in that organisation that month (authors whose data is deleted count together as
  one). Otherwise they are held back for good: shown to no one, not even counted, and the
  digest's footnote says so in words that are the same whether there were any or not. Named
  stories are always shown (their authors chose to be seen). The counts by theme count only
  what is shown, so no count tells more than the stories themselves. Anonymous stories are
  listed by theme and text, never by time.
- **Deleting one's data** (``/privacy``) deletes the person's private and named stories and any
  they had not finished; stories they shared anonymously stay with the organisation without any
  link to them (``forget_author``): they were given without a name, and nothing ties them to
  anyone any more. An author who wants those gone too deletes them in ``/raabra mine`` first;
  the share question and ``/privacy`` say so.

No Telegram types here; text is never logged.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, update
from sqlmodel import col, select

from bot import outbox
from bot.content.schema import Raabra
from bot.db import table_of, upsert_insert
from bot.models import (
    Invite,
    InviteKind,
    Leader,
    LeaderStatus,
    MessageKind,
    Organisation,
    Person,
    RaabraDigest,
    RaabraMember,
    RaabraStep,
    RaabraStory,
    RaabraVisibility,
    utcnow,
)
from bot.privacy import contains_national_id, token_hash
from bot.runtime import Runtime
from bot.services.invites import RAABRA_PREFIX, find_organisation
from bot.services.weekly import leader_zone, local_occurrence

log = logging.getLogger(__name__)

KEY = "raabra"  # the purpose of the key stories are encrypted with (``Runtime.cipher``)
PREFIX = RAABRA_PREFIX  # deep-link payloads of raabra invites start with "s_" (staff)
WAIT = dt.timedelta(hours=2)  # how long /raabra waits for the story to be written
DIGEST_WINDOW = dt.timedelta(days=7)  # a digest not queued within a week of its time is not
DIGEST_MINUTE = 9 * 60  # 09:00, for a leader without a chosen time
NAME_MAX = 64  # characters of a signature
MONTHS_MAX = 120
SHARED = (RaabraVisibility.ANONYMOUS, RaabraVisibility.NAMED)
VISIBILITIES = (RaabraVisibility.PRIVATE, RaabraVisibility.ANONYMOUS, RaabraVisibility.NAMED)
MAX_ROW_ID = 2**31 - 1  # PostgreSQL's int4: a button's id above it names no row


# --- who may tell ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Contributor:
    """Someone who may send stories, and the organisation their stories go to."""

    person_id: int
    organisation: Organisation
    leader: Leader | None = None  # taking part in the weekly reflection (not stopped)
    member: RaabraMember | None = None  # joined with a raabra invite


async def contributor(rt: Runtime, person: Person) -> Contributor | None:
    """The person as a #Råbra contributor: a leader (their organisation first), or staff."""
    assert person.id is not None
    async with rt.sessions() as session:
        leader = (
            await session.exec(select(Leader).where(col(Leader.person_id) == person.id))
        ).one_or_none()
        member = (
            await session.exec(select(RaabraMember).where(col(RaabraMember.person_id) == person.id))
        ).one_or_none()
        if leader is not None and leader.status == LeaderStatus.STOPPED:
            leader = None
        organisation_id = (
            leader.organisation_id
            if leader is not None
            else member.organisation_id
            if member is not None
            else None
        )
        if organisation_id is None:
            return None
        organisation = await session.get(Organisation, organisation_id)
    if organisation is None:
        return None
    return Contributor(person.id, organisation, leader, member)


class Joined(enum.Enum):
    JOINED = "joined"
    ALREADY = "already"  # already a member of this organisation, or one of its leaders
    UNKNOWN = "unknown"
    EXPIRED = "expired"  # expired or revoked
    USED_UP = "used_up"


@dataclass(frozen=True)
class JoinResult:
    outcome: Joined
    organisation: Organisation | None = None


async def join(
    rt: Runtime, token: str, person: Person, *, now: dt.datetime | None = None
) -> JoinResult:
    """Redeem a raabra invite: the person may send stories to its organisation.

    One membership per person: joining another organisation's invite moves them there.
    """
    now = now or utcnow()
    assert person.id is not None
    async with rt.sessions() as session:
        invite = (
            await session.exec(
                select(Invite).where(
                    col(Invite.token_hash) == token_hash(token),
                    col(Invite.kind) == InviteKind.RAABRA,
                )
            )
        ).one_or_none()
        if invite is None:
            return JoinResult(Joined.UNKNOWN)
        organisation = await session.get(Organisation, invite.organisation_id)
        if invite.revoked_at is not None or now > invite.expires_at:
            return JoinResult(Joined.EXPIRED, organisation)
        member = (
            await session.exec(select(RaabraMember).where(col(RaabraMember.person_id) == person.id))
        ).one_or_none()
        leader = (
            await session.exec(
                select(Leader).where(
                    col(Leader.person_id) == person.id,
                    col(Leader.status) != LeaderStatus.STOPPED,
                    col(Leader.organisation_id) == invite.organisation_id,
                )
            )
        ).one_or_none()
        if leader is not None or (
            member is not None and member.organisation_id == invite.organisation_id
        ):
            return JoinResult(Joined.ALREADY, organisation)
        used: Any = await session.exec(
            update(Invite)
            .where(col(Invite.id) == invite.id, col(Invite.uses) < Invite.max_uses)
            .values(uses=Invite.uses + 1)
        )
        if used.rowcount != 1:
            await session.rollback()
            return JoinResult(Joined.USED_UP, organisation)
        if member is None:
            member = RaabraMember(person_id=person.id, organisation_id=invite.organisation_id)
        member.organisation_id = invite.organisation_id
        member.invite_id = invite.id
        member.joined_at = now
        session.add(member)
        await session.commit()
    log.info("person %s joined #Råbra with invite %s", person.id, invite.id)
    return JoinResult(Joined.JOINED, organisation)


# --- telling a story ------------------------------------------------------------------------


async def start(rt: Runtime, who: Contributor, *, now: dt.datetime | None = None) -> RaabraStory:
    """/raabra: the next message the person writes is a story. A story begun before and never
    written is dropped (there is nothing in it)."""
    now = now or utcnow()
    async with rt.sessions() as session:
        await session.exec(
            delete(RaabraStory).where(
                col(RaabraStory.person_id) == who.person_id,
                col(RaabraStory.step) == RaabraStep.TEXT,
            )
        )
        assert who.organisation.id is not None
        story = RaabraStory(
            organisation_id=who.organisation.id,
            person_id=who.person_id,
            step=RaabraStep.TEXT,
            created_at=now,
        )
        session.add(story)
        await session.commit()
        await session.refresh(story)
    return story


async def waiting(
    rt: Runtime, person_id: int, *, now: dt.datetime | None = None
) -> RaabraStory | None:
    """The story this person began within ``WAIT`` and has not written yet."""
    now = now or utcnow()
    async with rt.sessions() as session:
        return (
            await session.exec(
                select(RaabraStory)
                .where(
                    col(RaabraStory.person_id) == person_id,
                    col(RaabraStory.step) == RaabraStep.TEXT,
                    col(RaabraStory.created_at) > now - WAIT,
                )
                .order_by(col(RaabraStory.id).desc())
                .limit(1)
            )
        ).one_or_none()


async def waiting_for_user(
    rt: Runtime, telegram_user_id: int, *, now: dt.datetime | None = None
) -> bool:
    """Whether the bot waits for a story from this Telegram user (one read, no write: asked for
    every text a person sends, before anything else handles it)."""
    now = now or utcnow()
    async with rt.sessions() as session:
        found = (
            await session.exec(
                select(RaabraStory.id)
                .join(Person, col(Person.id) == col(RaabraStory.person_id))
                .where(
                    col(Person.telegram_user_id) == telegram_user_id,
                    col(RaabraStory.step) == RaabraStep.TEXT,
                    col(RaabraStory.created_at) > now - WAIT,
                )
                .limit(1)
            )
        ).first()
    return found is not None


async def is_story_message(rt: Runtime, telegram_user_id: int, message_id: int) -> bool:
    """Whether this user's message (by its id in their chat) is one of their stories."""
    async with rt.sessions() as session:
        found = (
            await session.exec(
                select(RaabraStory.id)
                .join(Person, col(Person.id) == col(RaabraStory.person_id))
                .where(
                    col(Person.telegram_user_id) == telegram_user_id,
                    col(RaabraStory.message_id) == message_id,
                )
                .limit(1)
            )
        ).first()
    return found is not None


async def organisation_of(rt: Runtime, story: RaabraStory) -> Organisation | None:
    async with rt.sessions() as session:
        return await session.get(Organisation, story.organisation_id)


async def cancel(rt: Runtime, person_id: int) -> bool:
    """Stop waiting for a story (nothing was written); False if nothing was waiting."""
    async with rt.sessions() as session:
        result: Any = await session.exec(
            delete(RaabraStory).where(
                col(RaabraStory.person_id) == person_id,
                col(RaabraStory.step) == RaabraStep.TEXT,
            )
        )
        await session.commit()
    return bool(result.rowcount)


class Written(enum.Enum):
    SAVED = "saved"  # stored (private until they choose); now the theme
    UPDATED = "updated"  # an edit of the story's message, applied
    HELD = "held"  # holds a national identity number: not stored
    SHARED = "shared"  # an edit of a story already shared: not applied
    NONE = "none"  # not a story


async def write(
    rt: Runtime,
    person_id: int,
    text: str,
    message_id: int,
    *,
    now: dt.datetime | None = None,
) -> tuple[Written, RaabraStory | None]:
    """The person's message as the story they began with /raabra (``Written.NONE`` if none)."""
    now = now or utcnow()
    story = await waiting(rt, person_id, now=now)
    if story is None:
        return Written.NONE, None
    if contains_national_id(text):
        return Written.HELD, story
    async with rt.sessions() as session:
        row = await session.get(RaabraStory, story.id)
        if row is None or row.step != RaabraStep.TEXT:
            return Written.NONE, None
        row.text_ciphertext = rt.cipher(KEY).encrypt(text)
        row.message_id = message_id
        row.step = RaabraStep.THEME
        row.created_at = now
        session.add(row)
        await session.commit()
        await session.refresh(row)
    log.info("person %s wrote #Råbra story %s", person_id, row.id)
    return Written.SAVED, row


async def edit(
    rt: Runtime, person_id: int, message_id: int, text: str, *, now: dt.datetime | None = None
) -> tuple[Written, RaabraStory | None]:
    """The author edited the message that is their story: the story follows the edit until it
    is shared. A shared story stays as it was shared (leaders may have read it already)."""
    async with rt.sessions() as session:
        row = (
            await session.exec(
                select(RaabraStory).where(
                    col(RaabraStory.person_id) == person_id,
                    col(RaabraStory.message_id) == message_id,
                )
            )
        ).one_or_none()
        if row is None or row.text_ciphertext is None:
            return Written.NONE, None
        if row.visibility in SHARED:
            return Written.SHARED, row
        if contains_national_id(text):
            return Written.HELD, row
        row.text_ciphertext = rt.cipher(KEY).encrypt(text)
        row.edited_at = now or utcnow()
        session.add(row)
        await session.commit()
        await session.refresh(row)
    log.info("person %s edited #Råbra story %s", person_id, row.id)
    return Written.UPDATED, row


async def own_story(rt: Runtime, person_id: int, story_id: int) -> RaabraStory | None:
    """The person's own written story with this id; None for anyone else's or none."""
    if not 0 < story_id <= MAX_ROW_ID:
        return None
    async with rt.sessions() as session:
        row = await session.get(RaabraStory, story_id)
    if row is None or row.person_id != person_id or row.text_ciphertext is None:
        return None
    return row


async def choose_theme(
    rt: Runtime, person_id: int, story_id: int, theme_id: str | None
) -> RaabraStory | None:
    """Give the story a theme (or none: ``theme_id`` None); unknown themes are refused."""
    raabra = rt.content.raabra
    if theme_id is not None and (raabra is None or raabra.theme(theme_id) is None):
        return None
    row = await own_story(rt, person_id, story_id)
    if row is None:
        return None
    async with rt.sessions() as session:
        row.theme_id = theme_id
        if row.step == RaabraStep.THEME:
            row.step = RaabraStep.SHARING
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def choose_visibility(
    rt: Runtime,
    person_id: int,
    story_id: int,
    visibility: str,
    *,
    name: str | None = None,
    now: dt.datetime | None = None,
) -> RaabraStory | None:
    """Keep the story private, or share it anonymously or signed with ``name``.

    The month it is shared in is the month of its digest; sharing it again under another
    choice (anonymous → named) keeps that month. None if it is not theirs, or a named story
    has no name to sign with.
    """
    if visibility not in VISIBILITIES:
        return None
    signature = clean_name(name) if visibility == RaabraVisibility.NAMED else None
    if visibility == RaabraVisibility.NAMED and not signature:
        return None
    row = await own_story(rt, person_id, story_id)
    if row is None:
        return None
    now = now or utcnow()
    async with rt.sessions() as session:
        row.visibility = visibility
        row.step = RaabraStep.DONE
        row.name_ciphertext = rt.cipher(KEY).encrypt(signature) if signature else None
        if visibility == RaabraVisibility.PRIVATE:
            row.shared_at = None
        elif row.shared_at is None:
            row.shared_at = now
        session.add(row)
        await session.commit()
        await session.refresh(row)
    log.info("person %s: #Råbra story %s is %s", person_id, row.id, visibility)
    return row


def clean_name(name: str | None) -> str | None:
    """A name to sign a story with: one line, trimmed, at most ``NAME_MAX`` characters."""
    if not name:
        return None
    text = " ".join(name.split())[:NAME_MAX].strip()
    return text or None


def story_text(rt: Runtime, story: RaabraStory) -> str | None:
    """The story in clear; None if there is none or it cannot be read (an old SECRET_KEY)."""
    if story.text_ciphertext is None:
        return None
    text = rt.cipher(KEY).decrypt(story.text_ciphertext)
    if text is None:
        log.warning("#Råbra story %s cannot be decrypted (SECRET_KEY changed?)", story.id)
    return text


def story_name(rt: Runtime, story: RaabraStory) -> str | None:
    """The name a named story is signed with."""
    if story.name_ciphertext is None:
        return None
    return rt.cipher(KEY).decrypt(story.name_ciphertext)


async def mine(
    rt: Runtime, person_id: int, *, offset: int = 0, limit: int | None = None
) -> tuple[list[RaabraStory], int]:
    """The person's own written stories, newest first, and how many there are."""
    where = (
        col(RaabraStory.person_id) == person_id,
        col(RaabraStory.text_ciphertext).is_not(None),
    )
    async with rt.sessions() as session:
        total = (
            await session.exec(select(func.count()).select_from(RaabraStory).where(*where))
        ).one()
        query = (
            select(RaabraStory)
            .where(*where)
            .order_by(col(RaabraStory.created_at).desc(), col(RaabraStory.id).desc())
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        rows = list(await session.exec(query))
    return rows, int(total)


async def delete_story(rt: Runtime, person_id: int, story_id: int) -> bool:
    """The author deletes one of their stories, whatever it was shared as."""
    if not 0 < story_id <= MAX_ROW_ID:
        return False
    async with rt.sessions() as session:
        result: Any = await session.exec(
            delete(RaabraStory).where(
                col(RaabraStory.id) == story_id, col(RaabraStory.person_id) == person_id
            )
        )
        await session.commit()
    if result.rowcount:
        log.info("person %s deleted #Råbra story %s", person_id, story_id)
    return bool(result.rowcount)


async def forget_author(session: Any, person_id: int) -> None:
    """Before a person is deleted (in the caller's transaction): their private, named and
    unfinished stories go; their anonymous shared stories stay, with no link to them."""
    await session.exec(
        delete(RaabraStory).where(
            col(RaabraStory.person_id) == person_id,
            col(RaabraStory.visibility) != RaabraVisibility.ANONYMOUS,
        )
    )
    await session.exec(
        delete(RaabraStory).where(
            col(RaabraStory.person_id) == person_id,
            col(RaabraStory.shared_at).is_(None),
        )
    )
    await session.exec(
        update(RaabraStory).where(col(RaabraStory.person_id) == person_id).values(person_id=None)
    )


# --- months ---------------------------------------------------------------------------------


def month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_month(key: str) -> dt.date:
    """ "2026-04" → 1 April 2026; ValueError for anything else."""
    year, month = key.split("-")
    return dt.date(int(year), int(month), 1)


def add_months(first: dt.date, months: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_bounds(key: str, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The month's first and the next month's first moment (local midnight), as aware UTC."""
    first = parse_month(key)
    start = local_occurrence(first, 0, zone)
    end = local_occurrence(add_months(first, 1), 0, zone)
    return start, end


def month_of(moment: dt.datetime, zone: ZoneInfo) -> str:
    return month_key(moment.astimezone(zone).date())


def previous_month(now: dt.datetime, zone: ZoneInfo) -> str:
    local = now.astimezone(zone).date()
    return month_key(add_months(local.replace(day=1), -1))


def digest_due(first: dt.date, leader: Leader, zone: ZoneInfo) -> dt.datetime:
    """When a leader's digest for the month before ``first`` is due: their own weekday and
    time in the month's first seven days; without them, the first weekday (Mon–Fri) at 09:00."""
    if leader.weekday is not None and leader.minute_of_day is not None:
        day = first + dt.timedelta(days=(leader.weekday - first.weekday()) % 7)
        return local_occurrence(day, leader.minute_of_day, zone)
    day = first
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return local_occurrence(day, DIGEST_MINUTE, zone)


# --- the month's shared stories: the digest and the report ----------------------------------


@dataclass(frozen=True)
class SharedStory:
    theme_id: str | None
    text: str
    name: str | None  # a named story's signature; None for an anonymous one


@dataclass
class Month:
    """What one month of an organisation's shared stories shows, the small-group rule applied."""

    organisation: str
    month: str  # "2026-04"
    min_group: int
    named: list[SharedStory] = field(default_factory=list)  # in the order they were shared
    anonymous: list[SharedStory] = field(default_factory=list)  # by theme, then text
    anonymous_shown: bool = False  # enough people shared anonymously this month

    @property
    def shown(self) -> list[SharedStory]:
        return self.named + self.anonymous

    def counts(self, raabra: Raabra | None) -> list[tuple[str | None, int]]:
        """(theme id or None for none, stories) over what is shown, in the content's order."""
        counted = Counter(s.theme_id for s in self.shown)
        order = [t.id for t in raabra.themes] if raabra is not None else []
        keys: list[str | None] = [t for t in order if t in counted]
        keys += sorted(t for t in counted if t is not None and t not in order)
        if None in counted:
            keys.append(None)
        return [(key, counted[key]) for key in keys]


async def month_of_stories(
    rt: Runtime,
    session: Any,
    organisation: Organisation,
    month: str,
    *,
    read_text: bool = True,
) -> Month:
    """The organisation's shared stories of ``month`` as they may be shown (``read_text``
    False: the same selection without decrypting, to decide whether there is anything)."""
    start, end = month_bounds(month, rt.settings.zone)
    min_group = rt.settings.report_min_group
    rows = list(
        await session.exec(
            select(RaabraStory)
            .where(
                col(RaabraStory.organisation_id) == organisation.id,
                col(RaabraStory.visibility).in_(SHARED),
                col(RaabraStory.shared_at) >= start,
                col(RaabraStory.shared_at) < end,
                col(RaabraStory.text_ciphertext).is_not(None),
            )
            .order_by(col(RaabraStory.shared_at), col(RaabraStory.id))
        )
    )
    anonymous = [r for r in rows if r.visibility == RaabraVisibility.ANONYMOUS]
    # Authors whose data is deleted may be one person: together they count as one.
    authors = {r.person_id for r in anonymous if r.person_id is not None}
    people = len(authors) + (1 if any(r.person_id is None for r in anonymous) else 0)
    result = Month(organisation.name, month, min_group, anonymous_shown=people >= min_group)
    for row in rows:
        if row.visibility == RaabraVisibility.ANONYMOUS and not result.anonymous_shown:
            continue
        text = story_text(rt, row) if read_text else ""
        if text is None:  # made with a SECRET_KEY no longer given: nothing to show
            continue
        if row.visibility == RaabraVisibility.NAMED:
            name = story_name(rt, row) if read_text else ""
            if name is None:
                continue
            result.named.append(SharedStory(row.theme_id, text, name))
        else:
            result.anonymous.append(SharedStory(row.theme_id, text, None))
    order = {t.id: i for i, t in enumerate(rt.content.raabra.themes)} if rt.content.raabra else {}
    # Not by time: the order would tell when, and so perhaps who.
    result.anonymous.sort(key=lambda s: (order.get(s.theme_id or "", len(order)), s.text))
    return result


async def digest_for(
    rt: Runtime, session: Any, person_id: int | None, payload: dict[str, Any] | None
) -> Month | None:
    """A queued digest's month, for its renderer at send time; None if the recipient is no
    longer a leader of that organisation (left, or moved), or the payload is not one."""
    payload = payload or {}
    organisation_id, month = payload.get("organisation_id"), payload.get("month")
    if person_id is None or not isinstance(organisation_id, int) or not isinstance(month, str):
        return None
    leader = (
        await session.exec(
            select(Leader).where(
                col(Leader.person_id) == person_id,
                col(Leader.organisation_id) == organisation_id,
                col(Leader.status).in_((LeaderStatus.ACTIVE, LeaderStatus.PAUSED)),
            )
        )
    ).one_or_none()
    organisation = await session.get(Organisation, organisation_id)
    if leader is None or organisation is None:
        return None
    try:
        return await month_of_stories(rt, session, organisation, month)
    except ValueError:
        return None


async def send_due_digests(rt: Runtime, now: dt.datetime | None = None) -> int:
    """Queue last month's digest for every active leader whose time for it has come.

    For each organisation with something to show from last month (``month_of_stories``), each
    active leader (not blocked) gets one digest, at ``digest_due`` and within
    ``DIGEST_WINDOW`` after it: a ``raabra_digest`` row (unique per leader and month) and the
    queued message, in one transaction. Returns how many were queued.
    """
    now = now or utcnow()
    zone = rt.settings.zone
    month = previous_month(now, zone)
    first = add_months(parse_month(month), 1)
    start, end = month_bounds(month, zone)
    queued = 0
    async with rt.sessions() as session:
        organisation_ids = list(
            await session.exec(
                select(RaabraStory.organisation_id)
                .where(
                    col(RaabraStory.visibility).in_(SHARED),
                    col(RaabraStory.shared_at) >= start,
                    col(RaabraStory.shared_at) < end,
                )
                .distinct()
            )
        )
    for organisation_id in organisation_ids:
        async with rt.sessions() as session:
            organisation = await session.get(Organisation, organisation_id)
            if organisation is None:
                continue
            found = await month_of_stories(rt, session, organisation, month, read_text=False)
            if not found.shown:
                continue
            already = select(RaabraDigest.id).where(
                col(RaabraDigest.leader_id) == col(Leader.id), col(RaabraDigest.month) == month
            )
            rows = list(
                await session.exec(
                    select(Leader, Person)
                    .join(Person, col(Person.id) == col(Leader.person_id))
                    .where(
                        col(Leader.organisation_id) == organisation_id,
                        col(Leader.status) == LeaderStatus.ACTIVE,
                        col(Person.blocked_at).is_(None),
                        ~already.exists(),
                    )
                )
            )
        for leader, person in rows:
            due = digest_due(first, leader, leader_zone(rt, leader))
            if not due <= now < due + DIGEST_WINDOW:
                continue
            if await _queue_digest(rt, leader, person, month, due, now):
                queued += 1
    if queued:
        log.info("#Råbra: %d monthly digests queued for %s", queued, month)
        if rt.sender is not None:
            rt.sender.wake()
    return queued


async def _queue_digest(
    rt: Runtime, leader: Leader, person: Person, month: str, due: dt.datetime, now: dt.datetime
) -> bool:
    assert leader.id is not None
    async with rt.sessions() as session:
        table = table_of(RaabraDigest)
        inserted: Any = await session.exec(
            upsert_insert(session)(table)
            .values(
                leader_id=leader.id,
                organisation_id=leader.organisation_id,
                month=month,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["leader_id", "month"])
            .returning(table.c.id)
        )
        if inserted.first() is None:  # another process queued it just now
            await session.rollback()
            return False
        await outbox.enqueue(
            session,
            MessageKind.RAABRA_DIGEST,
            dedupe_key=f"raabra:{leader.id}:{month}",
            person_id=person.id,
            chat_id=person.telegram_user_id,
            payload={"organisation_id": leader.organisation_id, "month": month},
            due_at=now,
            expires_at=due + DIGEST_WINDOW,
        )
        await session.commit()
    log.info("leader %s: #Råbra digest for %s queued", leader.id, month)
    return True


# --- the report -----------------------------------------------------------------------------


@dataclass
class Report:
    organisation: str
    months: list[Month]  # oldest first
    min_group: int


async def report(
    rt: Runtime, org_name: str, months: int = 1, *, now: dt.datetime | None = None
) -> Report:
    """The organisation's shared stories of the last ``months`` whole months (the month now
    going on is not included: its digest has not gone out), as the digests show them.

    Raises LookupError naming the known organisations, ValueError for ``months`` out of range.
    """
    if not 1 <= months <= MONTHS_MAX:
        raise ValueError(f"months must be from 1 to {MONTHS_MAX}, not {months}")
    now = now or utcnow()
    last = parse_month(previous_month(now, rt.settings.zone))
    keys = [month_key(add_months(last, -back)) for back in range(months - 1, -1, -1)]
    async with rt.sessions() as session:
        organisation = await find_organisation(session, org_name)
        if organisation is None:
            known = list(await session.exec(select(Organisation.name).order_by(Organisation.name)))
            raise LookupError(_unknown_org(org_name, known))
        found = [await month_of_stories(rt, session, organisation, key) for key in keys]
    return Report(organisation.name, found, rt.settings.report_min_group)


def _unknown_org(name: str, known: list[str]) -> str:
    if not known:
        return f"There is no organisation '{name.strip()}', nor any other yet."
    return f"There is no organisation '{name.strip()}'; known organisations: {', '.join(known)}."


def _theme_title(raabra: Raabra | None, theme_id: str | None) -> str:
    if theme_id is None:
        return "(no theme)"
    theme = raabra.theme(theme_id) if raabra is not None else None
    return theme.title if theme is not None else theme_id


def held_back_note(min_group: int) -> str:
    return (
        f"Anonymous stories are shown for a month only when at least {min_group} people shared "
        "anonymously in it; in the other months they are not shown or counted."
    )


def as_text(r: Report, raabra: Raabra | None) -> str:
    first, last = r.months[0].month, r.months[-1].month
    span = first if first == last else f"{first} – {last}"
    lines = [f"#Råbra: {r.organisation}, {span}", ""]
    for m in r.months:
        lines.append(f"== {m.month} (stories shown: {len(m.shown)})")
        for theme_id, count in m.counts(raabra):
            lines.append(f"  {_theme_title(raabra, theme_id)}: {count}")
        if not m.anonymous_shown:
            lines.append("  Anonymous stories: not shown this month (too few people).")
        for story in m.named:
            lines.append("")
            lines.append(f"  {story.name} · {_theme_title(raabra, story.theme_id)}")
            lines.extend("    " + line for line in story.text.splitlines() or [""])
        for story in m.anonymous:
            lines.append("")
            lines.append(f"  (anonymous) · {_theme_title(raabra, story.theme_id)}")
            lines.extend("    " + line for line in story.text.splitlines() or [""])
        lines.append("")
    lines.append(held_back_note(r.min_group) + " Private stories are never shown.")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ["month", "theme_id", "theme", "shared_as", "name", "text"]


def as_csv(r: Report, raabra: Raabra | None) -> str:
    """One row per story shown (counts are the rows per month and theme)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for m in r.months:
        for story in m.shown:
            writer.writerow(
                [
                    m.month,
                    story.theme_id or "",
                    _theme_title(raabra, story.theme_id) if story.theme_id else "",
                    "named" if story.name is not None else "anonymous",
                    story.name or "",
                    story.text,
                ]
            )
    return out.getvalue()


def as_json(r: Report, raabra: Raabra | None) -> dict[str, Any]:
    return {
        "organisation": r.organisation,
        "min_group": r.min_group,
        "months": [
            {
                "month": m.month,
                "anonymous_shown": m.anonymous_shown,
                "counts": [
                    {"theme_id": key, "theme": _theme_title(raabra, key), "stories": count}
                    for key, count in m.counts(raabra)
                ],
                "stories": [
                    {
                        "theme_id": s.theme_id,
                        "shared_as": "named" if s.name is not None else "anonymous",
                        "name": s.name,
                        "text": s.text,
                    }
                    for s in m.shown
                ],
            }
            for m in r.months
        ],
    }
