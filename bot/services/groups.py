"""Leader groups: a Telegram group linked to an organisation (and perhaps one role), where the
week's question is posted for discussion and leaders may share their own answers.

The lifecycle:

- **Link.** An admin makes a single-use, expiring ``startgroup`` link (``create_link``; only
  its SHA-256 is stored, like invites). Adding the bot to a group with it sends ``/start
  g_<token>`` in that group, and ``link_group`` redeems it (a conditional ``UPDATE … WHERE
  used_at IS NULL``) and makes the ``TeamGroup``: its chat id, title, organisation, role, and
  the weekday and minute of day of its question in the bot's zone. A group linked again with a
  new link takes the new link's settings.
- **Weekly question.** The tick calls ``send_due_group_questions``: a due group is claimed by a
  conditional update that moves ``next_due_at`` one week on (local time, as for leaders); its
  ``GroupPost`` (unique per group and ISO week) and the queued ``group_question`` (dedupe key
  ``group:<group>:<week>``) are written in that transaction, so a restart or a second process
  never posts a week twice. A week more than ``PROMPT_LATE_HOURS`` late is skipped, not posted
  stale.
- **Sharing.** A leader shares an answer to a group of their own organisation (and role, if the
  group has one): a ``GroupPost`` of kind answer (once per group and answer) and a queued
  ``group_answer`` whose ``secret`` holds the text and the name as the leader chose to show it,
  Fernet-encrypted, erased once it is posted.
- **Unlink.** The bot removed from the group (``my_chat_member``), or ``group unlink``: the
  ``TeamGroup`` row goes, and with it (cascade) its posts and anything still queued for it.
  A group that becomes a supergroup keeps its link (``migrate_chat``).

Nothing of the group's discussion is ever read or stored here. No Telegram types; logs carry
ids only, never chat ids, titles or text.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot import outbox
from bot.content.schema import Programme, Question, Theme
from bot.db import table_of, upsert_insert
from bot.i18n import LOCALES, Locale, as_locale
from bot.models import (
    GroupLink,
    GroupPost,
    GroupPostKind,
    Leader,
    MessageKind,
    Organisation,
    OutboxMessage,
    OutboxStatus,
    Prompt,
    PromptStatus,
    TeamGroup,
    utcnow,
)
from bot.privacy import Cipher, new_token, token_hash
from bot.runtime import Runtime
from bot.services.invites import (
    EXPIRES_MAX,
    EXPIRES_MIN,
    find_organisation,
    normalise_org_name,
    parse_duration,
)
from bot.services.weekly import iso_week, next_due

log = logging.getLogger(__name__)

PREFIX = "g"  # deep-link payloads for group links start with "g_"
GROUP_KEY = "group"  # the purpose of the key a shared answer waits encrypted with
TITLE_MAX = 128
BATCH = 200

WEEKDAYS = {
    # English, Bokmål and Nynorsk names and abbreviations, and ISO numbers (1 = Monday)
    **{name: i for i, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    **{
        name: i
        for i, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
    **{name: i for i, name in enumerate(("man", "tir", "ons", "tor", "fre", "lør", "søn"))},
    **{
        name: i
        for i, name in enumerate(
            ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
        )
    },
    **{
        name: i
        for i, name in enumerate(
            ("måndag", "tysdag", "onsdag", "torsdag", "fredag", "laurdag", "sundag")
        )
    },
    **{str(i + 1): i for i in range(7)},
}
_TIME = re.compile(r"^([01]?\d|2[0-3])[:.]([0-5]\d)$")


class InvalidGroupLink(Exception):
    """Bad input for a group link, with one plain message per field."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def parse_weekday(text: str) -> int:
    """A weekday as 0 (Monday) … 6: "mon", "monday", "mandag", "tysdag", or 1-7 (ISO)."""
    found = WEEKDAYS.get(text.strip().casefold())
    if found is None:
        raise ValueError(f"'{text}' is not a weekday; write e.g. mon, tirsdag or 1-7 (1 = Monday)")
    return found


def parse_time(text: str) -> int:
    """``"09:00"`` as minutes after midnight (540)."""
    match = _TIME.match(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not a time; write HH:MM, e.g. 09:00")
    return int(match[1]) * 60 + int(match[2])


def zone_of(rt: Runtime, group: TeamGroup) -> ZoneInfo:
    try:
        return ZoneInfo(group.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return rt.settings.zone


def locale_of(rt: Runtime, group: TeamGroup) -> Locale:
    """The group's language: its own, or the bot's default."""
    return as_locale(group.locale or rt.settings.default_locale, rt.settings.default_locale)


def group_cipher(rt: Runtime) -> Cipher:
    return rt.cipher(GROUP_KEY)


# --- links ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedGroupLink:
    link: GroupLink
    organisation: Organisation
    deep_link: str

    def as_json(self) -> dict[str, Any]:
        link = self.link
        return {
            "id": link.id,
            "organisation": self.organisation.name,
            "role": link.role_id,
            "programme": link.programme_id,
            "weekday": link.weekday,
            "time": hhmm(link.minute_of_day),
            "language": link.locale,
            "deep_link": self.deep_link,
            "expires_at": _iso(link.expires_at),
        }


def hhmm(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def _programme_for(rt: Runtime, role_id: str | None, programme_id: str | None) -> str:
    """The programme a group's questions come from: its role's, the one named, or the only
    one there is. Raises ValueError with a plain message otherwise."""
    if role_id is not None:
        if role_id not in rt.content.roles:
            known = ", ".join(sorted(rt.content.roles)) or "none (add a reflection programme)"
            raise ValueError(f"unknown role '{role_id}'; known roles: {known}")
        programme, _role = rt.content.roles[role_id]
        if programme_id is not None and programme_id != programme.id:
            raise ValueError(f"the role '{role_id}' belongs to the programme '{programme.id}'")
        return programme.id
    known_programmes = sorted(rt.content.programmes)
    if programme_id is not None:
        if programme_id not in rt.content.programmes:
            raise ValueError(
                f"unknown programme '{programme_id}'; known: {', '.join(known_programmes)}"
            )
        return programme_id
    if len(known_programmes) == 1:
        return known_programmes[0]
    raise ValueError(
        "a group for every role needs --programme (or give --role); programmes: "
        + ", ".join(known_programmes)
    )


async def create_link(
    rt: Runtime,
    org_name: str,
    *,
    role_id: str | None = None,
    programme_id: str | None = None,
    weekday: int | str = 0,
    minute_of_day: int | str = 9 * 60,
    locale: str | None = None,
    expires: dt.timedelta | str | None = None,
    now: dt.datetime | None = None,
) -> CreatedGroupLink:
    """A single-use ``startgroup`` link that links a group to ``org_name`` (made if new).
    ``weekday`` and ``minute_of_day`` may be given as typed ("tue", "08:30").

    Raises InvalidGroupLink (nothing stored) on bad input, naming every bad field.
    """
    now = now or utcnow()
    errors: dict[str, str] = {}
    if isinstance(weekday, str):
        try:
            weekday = parse_weekday(weekday)
        except ValueError as exc:
            errors["weekday"], weekday = str(exc), 0
    if isinstance(minute_of_day, str):
        try:
            minute_of_day = parse_time(minute_of_day)
        except ValueError as exc:
            errors["time"], minute_of_day = str(exc), 0
    name = normalise_org_name(org_name)
    if not name:
        errors["org"] = "give the organisation's name, e.g. 'Legevakten i Bergen'"
    elif len(name) > 200:
        errors["org"] = "must be at most 200 characters"
    programme = ""
    try:
        programme = _programme_for(rt, role_id, programme_id)
    except ValueError as exc:
        errors["role" if role_id is not None else "programme"] = str(exc)
    if "weekday" not in errors and not 0 <= weekday <= 6:
        errors["weekday"] = "must be 0 (Monday) to 6 (Sunday)"
    if "time" not in errors and not 0 <= minute_of_day < 24 * 60:
        errors["time"] = "must be a time of day, 00:00 to 23:59"
    if locale is not None and locale not in LOCALES:
        errors["language"] = f"must be one of {', '.join(LOCALES)}"
    lifetime = dt.timedelta(days=rt.settings.invite_days)
    if isinstance(expires, str):
        try:
            lifetime = parse_duration(expires)
        except ValueError as exc:
            errors["expires"] = str(exc)
    elif expires is not None:
        lifetime = expires
    if "expires" not in errors and not EXPIRES_MIN <= lifetime <= EXPIRES_MAX:
        errors["expires"] = "a link lasts from 1 hour to 365 days"
    if errors:
        raise InvalidGroupLink(errors)
    token = new_token()
    deep_link = f"https://t.me/{rt.bot_username}?startgroup={PREFIX}_{token}"
    async with rt.sessions() as session:
        org = await find_organisation(session, name)
        if org is None:
            org = Organisation(name=name, created_at=now)
            session.add(org)
            try:
                await session.flush()
            except IntegrityError:  # made by another process just now: use theirs
                await session.rollback()
                org = await find_organisation(session, name)
                assert org is not None
        assert org.id is not None
        link = GroupLink(
            organisation_id=org.id,
            role_id=role_id,
            programme_id=programme,
            weekday=weekday,
            minute_of_day=minute_of_day,
            locale=locale,
            token_hash=token_hash(token),
            expires_at=now + lifetime,
            created_at=now,
        )
        session.add(link)
        await session.commit()
        await session.refresh(link)
        await session.refresh(org)
    log.info("group link %s created: organisation %s", link.id, org.id)
    return CreatedGroupLink(link, org, deep_link)


class Linked(enum.Enum):
    LINKED = "linked"
    RELINKED = "relinked"  # the group was linked already: it takes the new link's settings
    UNKNOWN = "unknown"
    EXPIRED = "expired"  # expired or revoked
    USED = "used"  # single use, and used


@dataclass(frozen=True)
class LinkResult:
    outcome: Linked
    group: TeamGroup | None = None
    organisation: Organisation | None = None


async def link_group(
    rt: Runtime, token: str, chat_id: int, title: str, *, now: dt.datetime | None = None
) -> LinkResult:
    """Redeem a group link in the group ``chat_id``: the group is linked (or re-linked)."""
    now = now or utcnow()
    async with rt.sessions() as session:
        link = (
            await session.exec(select(GroupLink).where(GroupLink.token_hash == token_hash(token)))
        ).one_or_none()
        if link is None:
            return LinkResult(Linked.UNKNOWN)
        if link.revoked_at is not None or now > link.expires_at:
            return LinkResult(Linked.EXPIRED)
        used: Any = await session.exec(
            update(GroupLink)
            .where(col(GroupLink.id) == link.id, col(GroupLink.used_at).is_(None))
            .values(used_at=now)
        )
        if used.rowcount != 1:
            await session.rollback()
            return LinkResult(Linked.USED)
        group = (
            await session.exec(select(TeamGroup).where(TeamGroup.chat_id == chat_id))
        ).one_or_none()
        outcome = Linked.LINKED if group is None else Linked.RELINKED
        if group is None:
            group = TeamGroup(
                chat_id=chat_id,
                organisation_id=link.organisation_id,
                programme_id=link.programme_id,
                weekday=link.weekday,
                minute_of_day=link.minute_of_day,
                timezone=rt.settings.timezone,
                linked_at=now,
            )
        elif group.programme_id != link.programme_id or group.role_id != link.role_id:
            group.position, group.cycle = 0, 0
        group.organisation_id = link.organisation_id
        group.role_id = link.role_id
        group.programme_id = link.programme_id
        group.weekday = link.weekday
        group.minute_of_day = link.minute_of_day
        group.locale = link.locale
        group.title = " ".join(title.split())[:TITLE_MAX]
        group.link_id = link.id
        group.next_due_at = next_due(now, link.weekday, link.minute_of_day, zone_of(rt, group))
        session.add(group)
        await session.commit()
        await session.refresh(group)
        organisation = await session.get(Organisation, group.organisation_id)
    log.info("group %s %s with link %s", group.id, outcome.value, link.id)
    return LinkResult(outcome, group, organisation)


async def group_of_chat(rt: Runtime, chat_id: int) -> TeamGroup | None:
    async with rt.sessions() as session:
        return (
            await session.exec(select(TeamGroup).where(TeamGroup.chat_id == chat_id))
        ).one_or_none()


async def unlink_chat(rt: Runtime, chat_id: int) -> bool:
    """The bot left or was removed from the group: drop its link (posts and anything queued
    for it go too). False if the chat was not linked."""
    async with rt.sessions() as session:
        group = (
            await session.exec(select(TeamGroup).where(TeamGroup.chat_id == chat_id))
        ).one_or_none()
        if group is None:
            return False
        await _drop(session, group)
        await session.commit()
    log.info("group %s unlinked: the bot is no longer in it", group.id)
    return True


async def unlink(rt: Runtime, group_id: int) -> TeamGroup | None:
    """``group unlink``: drop a group's link; the group as it was, or None if there is none."""
    async with rt.sessions() as session:
        group = await session.get(TeamGroup, group_id)
        if group is None:
            return None
        await _drop(session, group)
        await session.commit()
    log.info("group %s unlinked by an admin", group_id)
    return group


async def _drop(session: Any, group: TeamGroup) -> None:
    # Queued messages go with their posts (ON DELETE CASCADE); said here as well, so that a
    # database without enforced foreign keys drops them too.
    posts = select(GroupPost.id).where(col(GroupPost.group_id) == group.id)
    await session.exec(
        delete(OutboxMessage).where(
            col(OutboxMessage.group_post_id).in_(posts),
            col(OutboxMessage.status).in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
        )
    )
    await session.exec(delete(TeamGroup).where(col(TeamGroup.id) == group.id))


async def migrate_chat(rt: Runtime, old_chat_id: int, new_chat_id: int) -> bool:
    """The group became a supergroup (a new chat id): it keeps its link, and what is queued
    for it goes to the new id. True if a link moved (False: not linked, or moved already)."""
    async with rt.sessions() as session:
        moved: Any = await session.exec(
            update(TeamGroup)
            .where(col(TeamGroup.chat_id) == old_chat_id)
            .values(chat_id=new_chat_id)
        )
        if moved.rowcount != 1:
            await session.rollback()
            return False
        await session.exec(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.chat_id) == old_chat_id,
                col(OutboxMessage.status).in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
            )
            .values(chat_id=new_chat_id)
        )
        await session.commit()
    log.info("a linked group became a supergroup; its link moved with it")
    return True


async def retitle(rt: Runtime, chat_id: int, title: str) -> None:
    """The group's new title, so leaders see where they share."""
    async with rt.sessions() as session:
        await session.exec(
            update(TeamGroup)
            .where(col(TeamGroup.chat_id) == chat_id)
            .values(title=" ".join(title.split())[:TITLE_MAX])
        )
        await session.commit()


@dataclass(frozen=True)
class GroupInfo:
    group: TeamGroup
    organisation: Organisation

    def as_json(self) -> dict[str, Any]:
        g = self.group
        return {
            "id": g.id,
            "title": g.title,
            "organisation": self.organisation.name,
            "role": g.role_id,
            "programme": g.programme_id,
            "weekday": g.weekday,
            "time": hhmm(g.minute_of_day),
            "language": g.locale,
            "next_due_at": _iso(g.next_due_at),
            "linked_at": _iso(g.linked_at),
        }


async def list_groups(rt: Runtime, org_name: str | None = None) -> list[GroupInfo]:
    """Linked groups, oldest first; only ``org_name``'s if given."""
    async with rt.sessions() as session:
        query = select(TeamGroup, Organisation).join(
            Organisation, col(TeamGroup.organisation_id) == col(Organisation.id)
        )
        if org_name is not None:
            org = await find_organisation(session, org_name)
            if org is None:
                return []
            query = query.where(col(TeamGroup.organisation_id) == org.id)
        found = list(await session.exec(query.order_by(col(TeamGroup.id))))
    return [GroupInfo(group, org) for group, org in found]


async def groups_for(rt: Runtime, leader: Leader) -> list[TeamGroup]:
    """The groups a leader may share to: their organisation's, for every role or theirs."""
    async with rt.sessions() as session:
        found = await session.exec(
            select(TeamGroup)
            .where(col(TeamGroup.organisation_id) == leader.organisation_id)
            .order_by(col(TeamGroup.id))
        )
        return [g for g in found if g.role_id is None or g.role_id == leader.role_id]


# --- the week's question -------------------------------------------------------------------


class NoQuestion(LookupError):
    """The group's programme or role is not in the live content."""


def question_at(
    rt: Runtime, programme_id: str, role_id: str | None, position: int
) -> tuple[Programme, Theme, Question | None]:
    """What a group discusses at ``position``: the role's question there (a role's group), or
    the whole theme there (a group for every role; ``None`` for the question)."""
    programme = rt.content.programmes.get(programme_id)
    if programme is None:
        raise NoQuestion(f"no programme '{programme_id}'")
    if role_id is not None:
        questions = programme.questions_for(role_id)
        if not questions:
            raise NoQuestion(f"no questions for role '{role_id}'")
        theme, question = questions[position % len(questions)]
        return programme, theme, question
    return programme, programme.themes[position % len(programme.themes)], None


def _length(rt: Runtime, group: TeamGroup) -> int:
    programme = rt.content.programmes[group.programme_id]
    if group.role_id is not None:
        return len(programme.questions_for(group.role_id))
    return len(programme.themes)


async def send_due_group_questions(rt: Runtime, now: dt.datetime | None = None) -> dict[str, int]:
    """Queue the week's question for every group whose time has come (or skip a week that is
    too late to be worth posting). ``{"sent": n, "missed": m}`` for this process."""
    now = now or utcnow()
    counts = {"sent": 0, "missed": 0}
    async with rt.sessions() as session:
        due = list(
            (
                await session.exec(
                    select(TeamGroup.id)
                    .where(col(TeamGroup.next_due_at) <= now)
                    .order_by(col(TeamGroup.next_due_at))
                    .limit(BATCH)
                )
            ).all()
        )
    for group_id in due:
        if group_id is None:
            continue
        try:
            await _send_group(rt, group_id, now, counts)
        except Exception:  # one group's trouble must not stop the others
            log.exception("group %s: weekly question failed", group_id)
    if counts["sent"] and rt.sender is not None:
        rt.sender.wake()
    if any(counts.values()):
        log.info("groups: %d questions queued, %d weeks missed", counts["sent"], counts["missed"])
    return counts


async def _send_group(rt: Runtime, group_id: int, now: dt.datetime, counts: dict[str, int]) -> None:
    """Every due week of one group, one transaction each (a restart catches up, never twice)."""
    late = dt.timedelta(hours=rt.settings.prompt_late_hours)
    while True:
        async with rt.sessions() as session:
            group = await session.get(TeamGroup, group_id)
            if group is None or group.next_due_at is None or group.next_due_at > now:
                return
            old_due = group.next_due_at
            zone = zone_of(rt, group)
            new_due = next_due(old_due, group.weekday, group.minute_of_day, zone)
            claimed: Any = await session.exec(
                update(TeamGroup)
                .where(
                    col(TeamGroup.id) == group_id,
                    col(TeamGroup.next_due_at) == old_due,
                    col(TeamGroup.position) == group.position,
                )
                .values(next_due_at=new_due)
            )
            if claimed.rowcount != 1:
                await session.rollback()
                return
            more = new_due <= now
            week = iso_week(old_due, zone)
            if now - old_due > late:  # the bot was down: not posted stale
                await session.commit()
                counts["missed"] += 1
                log.info("group %s: week %s missed (too late to post)", group_id, week)
                if more:
                    continue
                return
            try:
                programme, theme, question = question_at(
                    rt, group.programme_id, group.role_id, group.position
                )
                count = _length(rt, group)
            except (NoQuestion, KeyError) as exc:
                await session.commit()  # keep the claim, or this repeats every tick
                log.error("group %s: week not posted: %s", group_id, exc)
                return
            post_id = await _insert_post(
                session,
                GroupPost(
                    group_id=group_id,
                    kind=GroupPostKind.QUESTION,
                    week=week,
                    programme_id=programme.id,
                    theme_id=theme.id,
                    question_id=question.id if question is not None else None,
                    due_at=old_due,
                    created_at=now,
                ),
                ["group_id", "week"],
            )
            if post_id is None:  # the week was posted already (its day was moved within it)
                await session.commit()
                if more:
                    continue
                return
            await outbox.enqueue(
                session,
                MessageKind.GROUP_QUESTION,
                dedupe_key=f"group:{group_id}:{week}",
                chat_id=group.chat_id,
                group_post_id=post_id,
                due_at=now,
                expires_at=old_due + late,
            )
            position, cycle = group.position + 1, group.cycle
            if position >= count:
                position, cycle = 0, cycle + 1
            await session.exec(
                update(TeamGroup)
                .where(col(TeamGroup.id) == group_id)
                .values(position=position, cycle=cycle)
            )
            await session.commit()
        counts["sent"] += 1
        log.info("group %s: week %s queued (post %s)", group_id, week, post_id)
        if not more:
            return


async def _insert_post(session: Any, post: GroupPost, unique: list[str]) -> int | None:
    """Insert unless the group has that post already (``unique``); the new id, or None."""
    table = table_of(GroupPost)
    stmt = (
        upsert_insert(session)(table)
        .values(**post.model_dump(exclude={"id"}))
        .on_conflict_do_nothing(index_elements=unique)
        .returning(table.c.id)
    )
    result: Any = await session.exec(stmt)
    row = result.first()
    return None if row is None else int(row[0])


async def post_now(rt: Runtime, group: TeamGroup, *, now: dt.datetime | None = None) -> bool:
    """The demo's "send the week's question now": make the group due and run the tick's own
    function. False if this week's question was posted already (once a week)."""
    now = now or utcnow()
    async with rt.sessions() as session:
        await session.exec(
            update(TeamGroup).where(col(TeamGroup.id) == group.id).values(next_due_at=now)
        )
        await session.commit()
    assert group.id is not None
    counts = {"sent": 0, "missed": 0}
    await _send_group(rt, group.id, now, counts)
    if rt.sender is not None:
        rt.sender.wake()
    if not counts["sent"]:  # put the schedule back where it was
        async with rt.sessions() as session:
            row = await session.get(TeamGroup, group.id)
            if row is not None and row.next_due_at is not None and row.next_due_at <= now:
                row.next_due_at = next_due(now, row.weekday, row.minute_of_day, zone_of(rt, row))
                session.add(row)
                await session.commit()
    return counts["sent"] > 0


# --- sharing an answer ---------------------------------------------------------------------


class Shared(enum.Enum):
    QUEUED = "queued"
    ALREADY = "already"  # this answer was shared to this group before
    NOT_ALLOWED = "not_allowed"  # not a group of the leader's organisation (and role)
    NOT_ANSWERED = "not_answered"  # not the leader's, or not answered


@dataclass(frozen=True)
class AnswerPost:
    """What a shared answer's post says, before it is rendered: the name as the leader
    chose to show it (None: without a name) and the text."""

    name: str | None
    text: str

    def seal(self, cipher: Cipher) -> str:
        return cipher.encrypt(json.dumps({"name": self.name, "text": self.text}))

    @classmethod
    def open(cls, cipher: Cipher, secret: str | None) -> AnswerPost | None:
        if secret is None:
            return None
        plaintext = cipher.decrypt(secret)
        if plaintext is None:
            return None
        try:
            data = json.loads(plaintext)
            name = data.get("name")
            return cls(name if isinstance(name, str) and name else None, str(data["text"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


async def shareable(
    rt: Runtime, leader: Leader, prompt_id: int, group_id: int
) -> tuple[Shared, Prompt | None, TeamGroup | None]:
    """Whether the leader may share this answer to this group now, with both rows."""
    async with rt.sessions() as session:
        prompt = await session.get(Prompt, prompt_id) if 0 < prompt_id < 2**31 else None
        group = await session.get(TeamGroup, group_id) if 0 < group_id < 2**31 else None
        if (
            prompt is None
            or prompt.leader_id != leader.id
            or prompt.status != PromptStatus.ANSWERED
            or prompt.answer_ciphertext is None
        ):
            return Shared.NOT_ANSWERED, prompt, group
        if (
            group is None
            or group.organisation_id != leader.organisation_id
            or (group.role_id is not None and group.role_id != leader.role_id)
        ):
            return Shared.NOT_ALLOWED, prompt, None
        posted = (
            await session.exec(
                select(GroupPost.id).where(
                    col(GroupPost.group_id) == group_id, col(GroupPost.prompt_id) == prompt_id
                )
            )
        ).first()
    if posted is not None:
        return Shared.ALREADY, prompt, group
    return Shared.QUEUED, prompt, group


async def share_answer(
    rt: Runtime,
    leader: Leader,
    prompt_id: int,
    group_id: int,
    post: AnswerPost,
    *,
    now: dt.datetime | None = None,
) -> tuple[Shared, TeamGroup | None]:
    """Queue the leader's answer for the group, as ``post`` (what the preview showed)."""
    now = now or utcnow()
    outcome, prompt, group = await shareable(rt, leader, prompt_id, group_id)
    if outcome is not Shared.QUEUED or prompt is None or group is None:
        return outcome, group
    async with rt.sessions() as session:
        post_id = await _insert_post(
            session,
            GroupPost(
                group_id=group_id,
                kind=GroupPostKind.ANSWER,
                programme_id=prompt.programme_id,
                theme_id=prompt.theme_id,
                question_id=prompt.question_id,
                prompt_id=prompt_id,
                due_at=now,
                created_at=now,
            ),
            ["group_id", "prompt_id"],
        )
        if post_id is None:
            await session.rollback()
            return Shared.ALREADY, group
        await outbox.enqueue(
            session,
            MessageKind.GROUP_ANSWER,
            dedupe_key=f"groupanswer:{group_id}:{prompt_id}",
            chat_id=group.chat_id,
            prompt_id=prompt_id,
            group_post_id=post_id,
            secret=post.seal(group_cipher(rt)),
            due_at=now,
        )
        await session.commit()
    if rt.sender is not None:
        rt.sender.wake()
    log.info("leader %s shared prompt %s to group %s", leader.id, prompt_id, group_id)
    return Shared.QUEUED, group


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
