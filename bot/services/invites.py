"""Invites: an admin makes a link for one organisation and one role (the weekly reflection), or
one of kind ``raabra`` for its staff (#Råbra stories only, no weekly questions).

The link is a deep link ``https://t.me/<bot>?start=i_<token>`` (``s_<token>`` for raabra); only
the token's SHA-256 is stored, so the link is shown once, when it is made. An invite may be used
a set number of times (one person each) until it expires or is revoked. Redeeming it is the
dialogue's job (``bot/services/leaders.py``, ``bot/services/raabra.py``); this module makes,
lists and revokes invites.

The organisation is made on first use of its name: the same name (spaces trimmed, case ignored)
is the same organisation.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.models import Invite, InviteKind, Organisation, utcnow
from bot.privacy import new_token, token_hash
from bot.runtime import Runtime

log = logging.getLogger(__name__)

PREFIX = "i"  # deep-link payloads for invites start with "i_"
RAABRA_PREFIX = "s"  # and for raabra invites (staff) with "s_"
INVITE_KINDS = (InviteKind.LEADER, InviteKind.RAABRA)
ORG_NAME_MAX = 200
USES_MAX = 1000
EXPIRES_MIN = dt.timedelta(hours=1)
EXPIRES_MAX = dt.timedelta(days=365)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidInvite(Exception):
    """Bad input for an invite, with one plain message per field."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


# --- durations -----------------------------------------------------------------------------

_UNITS = {
    "m": dt.timedelta(minutes=1),
    "h": dt.timedelta(hours=1),
    "d": dt.timedelta(days=1),
    "w": dt.timedelta(weeks=1),
}
_DURATION = re.compile(r"\s*([0-9]{1,6})\s*([mhdw])\s*", re.IGNORECASE)


def parse_duration(text: str) -> dt.timedelta:
    """``"90m"``, ``"12h"``, ``"30d"`` or ``"2w"`` as a timedelta.

    Raises ValueError with a plain message for anything else.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"'{text.strip()}' is not a duration; write a number and a unit: "
            "m (minutes), h (hours), d (days) or w (weeks), e.g. 30d, 12h or 2w"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _describe(delta: dt.timedelta) -> str:
    if delta % dt.timedelta(days=1) == dt.timedelta(0):
        return f"{delta.days} days"
    return f"{delta.total_seconds() / 3600:g} hours"


# --- organisations -------------------------------------------------------------------------


def normalise_org_name(name: str) -> str:
    """The name as stored: surrounding spaces trimmed, runs of spaces made one."""
    return " ".join(name.split())


async def find_organisation(session: Any, name: str) -> Organisation | None:
    """The organisation called ``name``: spaces trimmed, case ignored if nothing matches exactly."""
    wanted = normalise_org_name(name)
    exact = (
        await session.exec(select(Organisation).where(Organisation.name == wanted))
    ).one_or_none()
    if exact is not None:
        return exact
    # SQLite's lower() knows only ASCII, so compare in Python; there are few organisations.
    folded = wanted.casefold()
    every: list[Organisation] = list(await session.exec(select(Organisation)))
    for org in sorted(every, key=lambda o: o.id or 0):
        if org.name.casefold() == folded:
            return org
    return None


async def organisation_names(rt: Runtime) -> list[str]:
    async with rt.sessions() as session:
        return list(await session.exec(select(Organisation.name).order_by(Organisation.name)))


# --- creating ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InviteInfo:
    """An invite with its organisation and role, for lists (the token is never known again)."""

    invite: Invite
    organisation: Organisation
    role_title: str
    programme: str

    def state(self, now: dt.datetime | None = None) -> str:
        """active, used (all uses taken), expired or revoked."""
        i = self.invite
        if i.revoked_at is not None:
            return "revoked"
        if i.uses >= i.max_uses:
            return "used"
        if i.expires_at <= (now or utcnow()):
            return "expired"
        return "active"

    def as_json(self, now: dt.datetime | None = None) -> dict[str, Any]:
        i = self.invite
        return {
            "id": i.id,
            "organisation": self.organisation.name,
            "kind": i.kind,
            "role": i.role_id or None,
            "role_title": self.role_title,
            "programme": self.programme,
            "max_uses": i.max_uses,
            "uses": i.uses,
            "expires_at": _iso(i.expires_at),
            "created_at": _iso(i.created_at),
            "revoked_at": _iso(i.revoked_at),
            "state": self.state(now),
        }


@dataclass(frozen=True)
class CreatedInvite:
    invite: Invite
    organisation: Organisation
    deep_link: str
    role_title: str = ""
    programme: str = ""

    def as_json(self) -> dict[str, Any]:
        i = self.invite
        return {
            "id": i.id,
            "organisation": self.organisation.name,
            "kind": i.kind,
            "role": i.role_id or None,
            "role_title": self.role_title,
            "programme": self.programme,
            "deep_link": self.deep_link,
            "max_uses": i.max_uses,
            "uses": i.uses,
            "expires_at": _iso(i.expires_at),
        }


def _validate(
    rt: Runtime,
    org_name: str,
    role_id: str | None,
    uses: int,
    expires: dt.timedelta | str | None,
    kind: str = InviteKind.LEADER,
) -> tuple[str, dt.timedelta]:
    errors: dict[str, str] = {}
    name = normalise_org_name(org_name)
    if not name:
        errors["org"] = "give the organisation's name, e.g. 'Legevakten i Bergen'"
    elif len(name) > ORG_NAME_MAX:
        errors["org"] = f"must be at most {ORG_NAME_MAX} characters"
    elif _CONTROL.search(name):
        errors["org"] = "must be plain text, without control characters"
    if kind not in INVITE_KINDS:
        errors["kind"] = f"unknown kind '{kind}'; an invite is of kind leader or raabra"
    elif kind == InviteKind.RAABRA:
        if role_id:
            errors["role"] = "a raabra invite has no role: staff send #Råbra stories only"
        elif rt.content.raabra is None:
            errors["kind"] = "the content has no content/raabra.yaml, so #Råbra is off"
    elif not role_id:
        errors["role"] = "give the leaders' role (see `content list`), or --kind raabra for staff"
    elif role_id not in rt.content.roles:
        known = ", ".join(sorted(rt.content.roles)) or "none (add a reflection programme)"
        errors["role"] = f"unknown role '{role_id}'; known roles: {known}"
    if isinstance(uses, bool) or not isinstance(uses, int) or not 1 <= uses <= USES_MAX:
        errors["uses"] = f"must be a whole number from 1 to {USES_MAX}"
    lifetime = dt.timedelta(days=rt.settings.invite_days)
    if isinstance(expires, str):
        try:
            lifetime = parse_duration(expires)
        except ValueError as exc:
            errors["expires"] = str(exc)
    elif expires is not None:
        lifetime = expires
    if "expires" not in errors and not EXPIRES_MIN <= lifetime <= EXPIRES_MAX:
        errors["expires"] = (
            f"an invite lasts from 1 hour to 365 days, not {_describe(lifetime)}"
            if lifetime > dt.timedelta(0)
            else "an invite lasts from 1 hour to 365 days"
        )
    if errors:
        raise InvalidInvite(errors)
    return name, lifetime


async def create(
    rt: Runtime,
    org_name: str,
    role_id: str | None,
    *,
    uses: int = 1,
    expires: dt.timedelta | str | None = None,
    now: dt.datetime | None = None,
    kind: str = InviteKind.LEADER,
) -> CreatedInvite:
    """Make an invite link for leaders of ``org_name`` in ``role_id`` (or, with ``kind``
    raabra and no role, for its staff to send #Råbra stories); the organisation is made if it
    is new. ``expires`` is a timedelta or a duration such as "30d" (default INVITE_DAYS days).

    Raises InvalidInvite (nothing stored) on bad input.
    """
    now = now or utcnow()
    name, lifetime = _validate(rt, org_name, role_id, uses, expires, kind)
    if kind == InviteKind.RAABRA:
        role_id, role_title, programme_id, prefix = "", "", "", RAABRA_PREFIX
    else:
        assert role_id is not None
        programme, role = rt.content.roles[role_id]
        role_title, programme_id, prefix = role.title, programme.id, PREFIX
    token = new_token()
    deep_link = f"https://t.me/{rt.bot_username}?start={prefix}_{token}"
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
        invite = Invite(
            organisation_id=org.id,
            kind=kind,
            role_id=role_id,
            token_hash=token_hash(token),
            max_uses=uses,
            uses=0,
            expires_at=now + lifetime,
            created_at=now,
        )
        session.add(invite)
        await session.commit()
        await session.refresh(invite)
        await session.refresh(org)
    log.info("invite %s created: organisation %s, %s %s", invite.id, org.id, kind, role_id)
    return CreatedInvite(
        invite=invite,
        organisation=org,
        deep_link=deep_link,
        role_title=role_title,
        programme=programme_id,
    )


# --- listing and revoking ------------------------------------------------------------------


async def list_invites(rt: Runtime, org_name: str | None = None) -> list[InviteInfo]:
    """Invites, newest last; only ``org_name``'s if given (none if it does not exist)."""
    async with rt.sessions() as session:
        query = select(Invite, Organisation).join(
            Organisation,
            col(Invite.organisation_id) == Organisation.id,
        )
        if org_name is not None:
            org = await find_organisation(session, org_name)
            if org is None:
                return []
            query = query.where(Invite.organisation_id == org.id)
        found = list(await session.exec(query.order_by(col(Invite.id))))
    infos = []
    for invite, org in found:
        programme, role = rt.content.roles.get(invite.role_id, (None, None))
        infos.append(
            InviteInfo(
                invite=invite,
                organisation=org,
                role_title="#Råbra"
                if invite.kind == InviteKind.RAABRA
                else role.title
                if role is not None
                else invite.role_id,
                programme=programme.id if programme is not None else "",
            )
        )
    return infos


async def revoke(rt: Runtime, invite_id: int, *, now: dt.datetime | None = None) -> bool:
    """Stop an invite from being used; False if there is no such invite or it is revoked."""
    async with rt.sessions() as session:
        invite = await session.get(Invite, invite_id)
        if invite is None or invite.revoked_at is not None:
            return False
        invite.revoked_at = now or utcnow()
        session.add(invite)
        await session.commit()
    log.info("invite %s revoked", invite_id)
    return True


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
