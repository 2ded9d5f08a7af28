"""Advice after a call: create a dispatch, show its advice page, open its Telegram link, "worse",
check-in, deletion, re-contacts, retention.

A dispatch is the advice one caller got after one call. The clinic creates it (HTTP API or CLI)
and gets back the advice page's URL (``PUBLIC_URL/r/<token>``) to send by SMS, and a Telegram
deep link. The page shows the advice to whoever has the link, in any browser, until
``LINK_TTL_HOURS``; opening the deep link in Telegram binds the dispatch to that chat for good,
for the check-in. Everything the caller does, on the page or in Telegram (``Via``), is recorded
on the dispatch, so the next nurse can see a re-contact.

No Telegram types here: callers of these functions render and send.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import Update, and_, bindparam, delete, exists, func, literal, update
from sqlalchemy import select as select_rows
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import outbox, render
from bot.content.schema import AdviceTopic, topic_from_snapshot
from bot.db import detached, table_of
from bot.events import CheckinFinished, Delivery, SmsFinished
from bot.i18n import LOCALES, Locale, as_locale
from bot.models import (
    CheckinStatus,
    Dispatch,
    GoneLink,
    IdempotentRequest,
    Leader,
    MessageKind,
    Organisation,
    Person,
    SmsStatus,
    UTCDateTime,
    utcnow,
)
from bot.privacy import (
    Cipher,
    PhoneError,
    contains_national_id,
    new_token,
    normalise_phone,
    phone_hash,
    sms_reachable,
    telegram_token,
    token_hash,
)
from bot.problems import N_, Gettext, Problem, problem, texts
from bot.runtime import Runtime
from bot.services import apikeys, audit, clinic_events
from bot.services.clinic_events import EventType
from bot.services.people import guessed_locale, upsert_person

log = logging.getLogger(__name__)

PREFIX = "a"  # deep-link payloads for advice start with "a_"
PAGE_PATH = "/r/"  # the advice page: PUBLIC_URL + PAGE_PATH + token
SMS_SEPTETS = 306  # two GSM-7 segments of 153 (a concatenated SMS)
Via = Literal["telegram", "web"]  # where the caller did something: in the chat, or on the page
NOTE_MAX = 500
MIN_CHECKIN_AFTER_OPEN = dt.timedelta(hours=1)


# --- the request ---------------------------------------------------------------------------


class DispatchRequest(BaseModel):
    """What the clinic sends, the same for the HTTP API and the CLI."""

    # Strict: "6" is not 6 and "yes" is not true; a call system gets told, not guessed at.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    topic: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    locale: Literal["nb", "nn"]
    note: Annotated[str, StringConstraints(max_length=NOTE_MAX)] | None = None
    risk_groups: list[Annotated[str, StringConstraints(max_length=40)]] = Field(
        default_factory=list, max_length=10
    )
    checkin_hours: Annotated[int, Field(ge=1, le=168)] | None = None
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    send_sms: bool = False


class InvalidRequest(Exception):
    """Bad input, with one message per field (every field's at once), in any language."""

    def __init__(self, problems: Mapping[str, Problem | str]) -> None:
        self.problems = {
            name: found if isinstance(found, Problem) else Problem(found)
            for name, found in problems.items()
        }
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))

    @property
    def fields(self) -> dict[str, str]:
        """``{field: message}`` in English."""
        return texts(self.problems)

    def localized(self, gettext: Gettext | None) -> dict[str, str]:
        return texts(self.problems, gettext)


@dataclass(frozen=True)
class ValidRequest:
    request: DispatchRequest
    topic: AdviceTopic
    phone: str | None  # E.164
    note: str | None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but tab and line breaks


def validate(data: Any, rt: Runtime) -> ValidRequest:
    """Check a request against the schema, the live content and the privacy rules.

    Every field is checked, and every problem reported at once: a note that is too long does
    not hide an unknown topic or a bad phone number.
    """
    errors: dict[str, Problem] = {}
    request: DispatchRequest | None = None
    try:
        request = DispatchRequest.model_validate(data)
        values: dict[str, Any] = request.model_dump()
    except ValidationError as exc:
        errors.update(_field_errors(exc))
        # The fields the schema did not object to are checked against the content as well.
        values = _fields_without_errors(data, errors)
    topic = None
    if "topic" in values:
        topic = rt.content.advice.get(values["topic"])
        if topic is None:
            known = ", ".join(sorted(rt.content.advice))
            errors["topic"] = problem(
                N_("unknown topic '{topic}'; known topics: {known}"),
                topic=values["topic"],
                known=known,
            )
        elif topic.status != "approved" and not rt.settings.draft_advice_allowed:
            errors["topic"] = problem(
                N_("topic '{topic}' is a draft awaiting clinical approval and cannot be sent"),
                topic=topic.id,
            )
            topic = None
    note = values.get("note") or None
    if note is not None and "note" not in errors:
        found = _note_problem(note, topic)
        if found is not None:
            errors["note"] = found
    if topic is not None:
        allowed = [group.id for group in topic.tailoring.risk_groups]
        unknown = [g for g in values.get("risk_groups") or [] if g not in allowed]
        if unknown and "risk_groups" not in errors:
            errors["risk_groups"] = (
                problem(
                    N_("unknown risk group '{group}' for topic '{topic}'; choose from: {allowed}"),
                    group=unknown[0],
                    topic=topic.id,
                    allowed=", ".join(allowed),
                )
                if allowed
                else problem(
                    N_("unknown risk group '{group}' for topic '{topic}'; this topic has none"),
                    group=unknown[0],
                    topic=topic.id,
                )
            )
        hours = values.get("checkin_hours")
        offered = topic.tailoring.checkin_hours
        if hours is not None and hours not in offered and "checkin_hours" not in errors:
            errors["checkin_hours"] = (
                problem(
                    N_("topic '{topic}' offers a check-in after {offered} hours, not {hours}"),
                    topic=topic.id,
                    offered=", ".join(str(h) for h in offered),
                    hours=hours,
                )
                if offered
                else problem(
                    N_("topic '{topic}' offers no check-in, so not one after {hours} hours"),
                    topic=topic.id,
                    hours=hours,
                )
            )
    phone = None
    send_sms = values.get("send_sms") is True
    if values.get("phone") and "phone" not in errors:
        try:
            phone = normalise_phone(values["phone"])
        except PhoneError as exc:
            errors["phone"] = exc.problem
        else:
            found = _sms_number_problem(phone, rt) if send_sms else None
            if found is not None:
                errors["phone"] = found
    if send_sms and "send_sms" not in errors:
        if rt.settings.sms_mode == "none":
            errors["send_sms"] = problem(
                N_(
                    "this service sends no SMS (SMS_PROVIDER=none): send the link in the call "
                    "system's own SMS, and leave send_sms out"
                )
            )
        elif not values.get("phone") and "phone" not in errors:
            errors["send_sms"] = problem(N_("sending an SMS needs the caller's phone number"))
    if errors or request is None:
        raise InvalidRequest(errors or {"body": problem(N_("must be a JSON object"))})
    assert topic is not None
    return ValidRequest(request=request, topic=topic, phone=phone, note=note)


def _note_problem(note: str, topic: AdviceTopic | None) -> Problem | None:
    if topic is not None and not topic.tailoring.note:
        return problem(N_("topic '{topic}' takes no note"), topic=topic.id)
    if _CONTROL.search(note):  # NUL cannot be stored in PostgreSQL text
        return problem(N_("must be plain text, without control characters"))
    if contains_national_id(note):
        return problem(
            N_(
                "the note contains a national identity number (fødselsnummer); identifying "
                "details do not belong in a chat, so leave them out"
            )
        )
    return None


def _sms_number_problem(e164: str, rt: Runtime) -> Problem | None:
    """Why no SMS may go to this number (SMS pumping: only mobiles, only chosen countries)."""
    countries = rt.settings.sms_countries
    verdict = sms_reachable(e164, countries)
    if verdict == "country":
        return problem(
            N_(
                "an SMS is sent only to mobile numbers in {countries}; this number is from "
                "another country (SMS_COUNTRIES)"
            ),
            countries=", ".join(countries),
        )
    if verdict == "not_mobile":
        return problem(
            N_(
                "an SMS is sent only to mobile numbers; this is a landline, toll-free or "
                "service number"
            )
        )
    return None


def _fields_without_errors(data: Any, errors: Mapping[str, Problem]) -> dict[str, Any]:
    """The request's fields the schema found nothing wrong with, as the schema would clean them."""
    if not isinstance(data, dict):
        return {}
    values: dict[str, Any] = {}
    for name in DispatchRequest.model_fields:
        if name in data and name not in errors:
            value = data[name]
            if isinstance(value, str):
                value = value.strip()
            elif isinstance(value, list):
                value = [v.strip() if isinstance(v, str) else v for v in value]
            values[name] = value
    return values


def _field_errors(exc: ValidationError) -> dict[str, Problem]:
    errors: dict[str, Problem] = {}
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        field = loc[0] if loc else "body"
        kind = err["type"]
        ctx = err.get("ctx", {})
        if kind == "extra_forbidden":
            found = problem(N_("is not a field of a dispatch"))
        elif kind == "missing":
            found = problem(N_("is required"))
        elif kind == "literal_error":
            found = problem(N_("must be one of {expected}"), expected=ctx["expected"])
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            field, found = "body", problem(N_("must be a JSON object"))
        elif kind == "string_too_long":
            found = problem(N_("must be at most {limit} characters"), limit=ctx["max_length"])
        elif kind == "string_too_short":
            found = problem(N_("must not be empty"))
        elif kind == "too_long":
            found = problem(N_("must hold at most {limit} items"), limit=ctx["max_length"])
        elif kind == "string_type":
            found = problem(N_("must be text"))
        elif kind in ("int_type", "int_from_float", "int_parsing"):
            found = problem(N_("must be a whole number"))
        elif kind == "bool_type":
            found = problem(N_("must be true or false"))
        elif kind == "list_type":
            found = problem(N_("must be a list"))
        elif kind == "greater_than_equal":
            found = problem(N_("must be at least {limit}"), limit=ctx["ge"])
        elif kind == "less_than_equal":
            found = problem(N_("must be at most {limit}"), limit=ctx["le"])
        else:
            found = Problem(str(err["msg"]).lower())
        errors.setdefault(field, found)
    return errors


# --- idempotency ---------------------------------------------------------------------------

# How long a retry with the same Idempotency-Key gets the first answer (it holds the link).
IDEMPOTENCY_HOURS = 24
_KEY_CHARS = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True)
class Idempotency:
    """A request's ``Idempotency-Key``, scoped to the API key that sent it."""

    api_key_id: int
    key_hash: str
    request_hash: str


class IdempotencyConflict(Exception):
    """The key was used before for another request, or its answer can no longer be read."""

    def __init__(self, template: str) -> None:
        super().__init__(template)
        self.problem = Problem(template)


def idempotency(api_key_id: int, key: str, body: Any) -> Idempotency:
    """Check an ``Idempotency-Key`` header; raises InvalidRequest if it is not 1-255 visible
    ASCII characters."""
    if not _KEY_CHARS.fullmatch(key):
        raise InvalidRequest(
            {
                "Idempotency-Key": problem(
                    N_("must be 1 to 255 visible ASCII characters, e.g. a UUID")
                )
            }
        )
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Idempotency(
        api_key_id=api_key_id,
        key_hash=hashlib.sha256(key.encode()).hexdigest(),
        request_hash=hashlib.sha256(canonical.encode()).hexdigest(),
    )


async def replay(rt: Runtime, idem: Idempotency) -> dict[str, Any] | None:
    """The answer given to the first request with this key; None if there was none.

    Raises IdempotencyConflict if the key came with a different body.
    """
    async with rt.sessions() as session:
        earlier = (
            await session.exec(
                select(IdempotentRequest).where(
                    col(IdempotentRequest.api_key_id) == idem.api_key_id,
                    col(IdempotentRequest.key_hash) == idem.key_hash,
                )
            )
        ).one_or_none()
    if earlier is None:
        return None
    if earlier.request_hash != idem.request_hash:
        raise IdempotencyConflict(N_("this Idempotency-Key was used for a different request"))
    answer = _idempotency_cipher(rt).decrypt(earlier.response)
    if answer is None:  # SECRET_KEY changed since
        raise IdempotencyConflict(N_("the first answer to this Idempotency-Key cannot be read"))
    result: dict[str, Any] = json.loads(answer)
    return result


def _idempotency_cipher(rt: Runtime) -> Cipher:
    return rt.cipher("idempotency")


# --- creating ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tailoring:
    """What the nurse added to the advice: a note and risk groups (stored encrypted)."""

    note: str | None = None
    risk_groups: tuple[str, ...] = ()


TAILORING = "dispatch"  # the purpose of the key a dispatch's tailoring is encrypted with


def seal_tailoring(rt: Runtime, tailoring: Tailoring) -> str | None:
    """The encrypted form stored in ``Dispatch.tailoring``; None when there is nothing."""
    if tailoring.note is None and not tailoring.risk_groups:
        return None
    plain = json.dumps({"note": tailoring.note, "risk_groups": list(tailoring.risk_groups)})
    return rt.cipher(TAILORING).encrypt(plain)


def tailoring_of(rt: Runtime, dispatch: Dispatch) -> Tailoring:
    """A dispatch's note and risk groups in clear. If they cannot be decrypted (a SECRET_KEY no
    longer given), the advice goes without them, and the log says so (with the id only)."""
    if dispatch.tailoring is None:
        return Tailoring()
    plain = rt.cipher(TAILORING).decrypt(dispatch.tailoring)
    if plain is None:
        log.warning("dispatch %s: note and risk groups cannot be decrypted", dispatch.id)
        return Tailoring()
    data = json.loads(plain)
    return Tailoring(note=data.get("note"), risk_groups=tuple(data.get("risk_groups") or ()))


@dataclass(frozen=True)
class Created:
    dispatch: Dispatch
    deep_link: str
    advice_url: str
    sms_text: str
    risk_groups: tuple[str, ...] = ()
    earlier: int = 0  # dispatches to the same number in the last RECONTACT_HOURS

    def as_json(self) -> dict[str, Any]:
        d = self.dispatch
        return {
            "id": d.id,
            "topic": d.topic_id,
            "topic_version": d.topic_version,
            "locale": d.locale,
            "advice_url": self.advice_url,
            "deep_link": self.deep_link,
            "expires_at": _iso(d.expires_at),
            "sms_text": self.sms_text,
            "sms": d.sms_status,
            "checkin_hours": d.checkin_hours,
            "risk_groups": list(self.risk_groups),
            "recontact": self.earlier > 0,
            "earlier_dispatches": self.earlier,
        }


async def create(
    rt: Runtime,
    valid: ValidRequest,
    *,
    api_key_id: int | None = None,
    organisation_id: int | None = None,
    visible: Sequence[int] | None = None,
    now: dt.datetime | None = None,
    idem: Idempotency | None = None,
) -> Created:
    """Store a dispatch (and its SMS, if asked) in one transaction; return the link and SMS text.

    The dispatch belongs to ``organisation_id`` (the clinic of the key that made it); the count
    of earlier dispatches to the number covers only the ``visible`` clinics (None: all).
    With ``idem``, the answer is kept (encrypted) for retries with the same key; if another
    request with that key got in first, IdempotencyRace is raised and nothing is stored.
    """
    from bot.sms import gsm7_septets, is_gsm7, queue_sms, sms_cipher

    now = now or utcnow()
    request = valid.request
    if not rt.public_url:  # production settings refuse to start without PUBLIC_URL
        raise RuntimeError("no PUBLIC_URL: the advice page has no address")
    page_token = new_token()
    token = telegram_token(page_token)  # the deep link's, derived one way from the page's
    deep_link = f"https://t.me/{rt.bot_username}?start={PREFIX}_{token}"
    advice_url = f"{rt.public_url}{PAGE_PATH}{page_token}"
    locale = as_locale(request.locale)
    hours = rt.settings.link_ttl_hours
    tailoring = Tailoring(valid.note, tuple(dict.fromkeys(request.risk_groups)))
    dispatch = Dispatch(
        id=secrets.token_hex(16),
        api_key_id=api_key_id,
        organisation_id=organisation_id,
        topic_id=valid.topic.id,
        topic_version=valid.topic.version,
        content={
            loc: localized_topic(rt, valid.topic, loc).model_dump(mode="json") for loc in LOCALES
        },
        locale=locale,
        tailoring=seal_tailoring(rt, tailoring),
        checkin_hours=request.checkin_hours,
        phone_hash=phone_hash(rt.settings.secret(), valid.phone) if valid.phone else None,
        token_hash=token_hash(token),
        page_token_hash=token_hash(page_token),
        created_at=now,
        expires_at=now + dt.timedelta(hours=hours),
        checkin_status=CheckinStatus.WAITING if request.checkin_hours else CheckinStatus.NONE,
        sms_status=SmsStatus.QUEUED if request.send_sms else SmsStatus.NONE,
    )
    earlier = 0
    async with rt.sessions() as session:
        clinic = None
        if organisation_id is not None:
            clinic = apikeys.shown_name(await session.get(Organisation, organisation_id))
        text = render.sms_text(rt.catalogs.gettext(locale), advice_url, hours, clinic)
        if not is_gsm7(text) or gsm7_septets(text) > SMS_SEPTETS:
            # Only a translation can cause this (PUBLIC_URL and the clinic's name are held to
            # lengths that fit); the content check catches it first.
            raise RuntimeError("the SMS text does not fit two GSM-7 segments; check translations")
        if valid.phone is not None:
            since = now - dt.timedelta(hours=rt.settings.recontact_hours)
            earlier = len(list(await session.exec(_same_number(rt, valid.phone, since, visible))))
        session.add(dispatch)
        await session.flush()
        await clinic_events.emit(
            session,
            dispatch,
            EventType.DISPATCH_CREATED,
            {
                "topic": dispatch.topic_id,
                "locale": dispatch.locale,
                "checkin_hours": dispatch.checkin_hours,
                "sms": request.send_sms,
                "expires_at": _iso(dispatch.expires_at) or "",
            },
            now=now,
        )
        if request.send_sms:
            assert valid.phone is not None
            await queue_sms(
                session,
                sms_cipher(rt.settings),
                dispatch_id=dispatch.id,
                to=valid.phone,
                text=text,
                due_at=now,
                expires_at=now + dt.timedelta(hours=rt.settings.sms_window_hours),
            )
        created = Created(
            dispatch=dispatch,
            deep_link=deep_link,
            advice_url=advice_url,
            sms_text=text,
            risk_groups=tailoring.risk_groups,
            earlier=earlier,
        )
        if idem is not None:
            session.add(
                IdempotentRequest(
                    api_key_id=idem.api_key_id,
                    key_hash=idem.key_hash,
                    request_hash=idem.request_hash,
                    dispatch_id=dispatch.id,
                    response=_idempotency_cipher(rt).encrypt(json.dumps(created.as_json())),
                    created_at=now,
                )
            )
        try:
            await session.commit()
        except IntegrityError:
            if idem is None:
                raise
            await session.rollback()
            raise IdempotencyRace from None
    log.info(
        "dispatch %s created: topic %s, sms %s", dispatch.id, dispatch.topic_id, request.send_sms
    )
    return created


class IdempotencyRace(Exception):
    """Two requests with one Idempotency-Key at once: the other one made the dispatch."""


# --- opening the link ----------------------------------------------------------------------


class Opened(enum.Enum):
    FIRST = "first"  # bound to this person now
    AGAIN = "again"  # this person opened it before
    UNKNOWN = "unknown"  # no such link (never made, mistyped, or deleted)
    EXPIRED = "expired"  # never opened in time
    TAKEN = "taken"  # opened in another chat


@dataclass(frozen=True)
class OpenResult:
    outcome: Opened
    dispatch: Dispatch | None = None


_DISPATCH = table_of(Dispatch)
# The opening's statements, built once: building and cache-keying them anew cost more than
# running them.
_BY_TOKEN = select_rows(_DISPATCH).where(_DISPATCH.c.token_hash == bindparam("digest"))


@functools.cache
def _claim_dispatch(columns: tuple[str, ...]) -> Update:
    """``UPDATE dispatch SET <columns> WHERE id = :dispatch_id AND person_id IS NULL RETURNING
    id``; the values are bound at each execution as ``new_<column>``."""
    return (
        update(_DISPATCH)
        .where(_DISPATCH.c.id == bindparam("dispatch_id"), _DISPATCH.c.person_id.is_(None))
        .values({name: bindparam(f"new_{name}", type_=_DISPATCH.c[name].type) for name in columns})
        .returning(_DISPATCH.c.id)
    )


async def open_link(
    rt: Runtime, token: str, person: Person, *, now: dt.datetime | None = None
) -> OpenResult:
    """Bind the dispatch behind a link to the first person who opens it, plan the check-in, and
    take the advice's language as the better guess of the person's: one transaction.

    The hot path of every caller (one per opened link), so Core statements, not ORM loads: one
    SELECT of the row, one conditional ``UPDATE … RETURNING id`` (only the first of two chats
    opening the link at once gets it), the check-in's INSERT, the language guess's UPDATE
    only when it would change something, and the clinic's ``dispatch.opened`` event (after the
    row lock, as everywhere ``emit`` runs).
    """
    async with rt.sessions() as session:
        result = await _open(rt, session, token, person, now or utcnow())
        await session.commit()
    _opened(result)
    return result


async def open_link_as(
    rt: Runtime, token: str, telegram_user_id: int, guessed: Locale
) -> tuple[OpenResult, Person]:
    """``open_link`` for a Telegram user, with the write every update makes of its person
    (``people.ensure_person``) in the same transaction: the person as they were before the
    opening (their language guess may change with it), and the outcome."""
    async with rt.sessions() as session:
        person = await upsert_person(await session.connection(), telegram_user_id, guessed)
        result = await _open(rt, session, token, person, utcnow())
        await session.commit()
    _opened(result)
    return result, person


def _opened(result: OpenResult) -> None:
    if result.outcome is Opened.FIRST and result.dispatch is not None:
        log.info("dispatch %s opened (via %s)", result.dispatch.id, "telegram")


async def _open(
    rt: Runtime, session: AsyncSession, token: str, person: Person, now: dt.datetime
) -> OpenResult:
    """``open_link`` in the caller's transaction; writes nothing unless the outcome is
    ``FIRST`` (the caller commits either way)."""
    connection = await session.connection()  # the session's transaction, without the ORM
    row = (await connection.execute(_BY_TOKEN, {"digest": token_hash(token)})).first()
    if row is None:
        return OpenResult(Opened.UNKNOWN)
    dispatch = detached(Dispatch, row._asdict())
    if dispatch.person_id is not None:
        if dispatch.person_id == person.id:
            return OpenResult(Opened.AGAIN, dispatch)
        return OpenResult(Opened.TAKEN)
    if now > dispatch.expires_at:
        return OpenResult(Opened.EXPIRED)
    values: dict[str, Any] = {"person_id": person.id, "opened_at": now}
    checkin = _checkin_message(rt, dispatch, person, now)
    if checkin is not None:
        values |= {
            "checkin_status": CheckinStatus.SCHEDULED,
            "checkin_due_at": checkin["due_at"],
        }
    claimed = (
        await connection.execute(
            _claim_dispatch(tuple(values)),
            {f"new_{name}": value for name, value in values.items()} | {"dispatch_id": dispatch.id},
        )
    ).first()
    if claimed is None:  # another chat claimed it first; this UPDATE changed nothing
        return OpenResult(Opened.TAKEN)
    for name, value in values.items():
        setattr(dispatch, name, value)
    if checkin is not None:
        # A person who has just written to the bot has not blocked it (their update
        # cleared ``blocked_at``): no need to look that up again.
        await outbox.enqueue(
            session, MessageKind.CHECKIN, person_unblocked=person.blocked_at is None, **checkin
        )
    # The nurse knows the caller's language better than Telegram's setting does.
    if not person.locale_chosen and person.locale != dispatch.locale:
        await connection.execute(
            guessed_locale(person.telegram_user_id, as_locale(dispatch.locale))
        )
    await _tell_opened(session, dispatch, "telegram", now)
    # No sender wake-up: the check-in just queued is hours away, and the tick finds it then.
    return OpenResult(Opened.FIRST, dispatch)


# --- the advice page -----------------------------------------------------------------------


class Page(enum.Enum):
    SHOWN = "shown"  # the advice can be read
    EXPIRED = "expired"  # more than LINK_TTL_HOURS after the call
    GONE = "gone"  # deleted (by the caller on the page, or with their data in Telegram)
    UNKNOWN = "unknown"  # no such page (never made, mistyped, or past retention)


@dataclass(frozen=True)
class PageResult:
    state: Page
    dispatch: Dispatch | None = None
    clinic: str | None = None  # the clinic's name as callers read it
    locale: str | None = None  # the advice's language (also for an expired or deleted one)


async def find_page(rt: Runtime, page_token: str, *, now: dt.datetime | None = None) -> PageResult:
    """What the advice page behind a token shows. Only reads: a GET of the page (a link
    preview's included) binds, consumes and records nothing."""
    now = now or utcnow()
    digest = token_hash(page_token)
    async with rt.sessions() as session:
        dispatch = (
            await session.exec(select(Dispatch).where(col(Dispatch.page_token_hash) == digest))
        ).one_or_none()
        if dispatch is None:
            gone = await session.get(GoneLink, digest)
            if gone is None:
                return PageResult(Page.UNKNOWN)
            return PageResult(Page.GONE, locale=gone.locale)
        if now > dispatch.expires_at:
            return PageResult(Page.EXPIRED, locale=dispatch.locale)
        org = None
        if dispatch.organisation_id is not None:
            org = await session.get(Organisation, dispatch.organisation_id)
    return PageResult(Page.SHOWN, dispatch, apikeys.shown_name(org), dispatch.locale)


async def record_page_opened(
    rt: Runtime, dispatch_id: str, *, now: dt.datetime | None = None
) -> bool:
    """The advice page was seen in a browser (``via="web"``); True the first time. The
    Telegram chat's opening is ``open_link`` (``via="telegram"``)."""
    now = now or utcnow()
    async with rt.sessions() as session:
        opened = await _returning(
            session,
            update(Dispatch)
            .where(col(Dispatch.id) == dispatch_id, col(Dispatch.page_opened_at).is_(None))
            .values(page_opened_at=now),
        )
        if opened is not None:
            await _tell_opened(session, opened, "web", now)
        await session.commit()
    first = opened is not None
    if first:
        log.info("dispatch %s opened (via web)", dispatch_id)
    return first


async def _returning(session: AsyncSession, statement: Any) -> Dispatch | None:
    """Run an ``UPDATE`` of one dispatch and return the row as it now is (None: none matched)."""
    found: Dispatch | None = (
        await session.exec(
            statement.returning(Dispatch), execution_options={"populate_existing": True}
        )
    ).scalar_one_or_none()
    return found


async def _tell_opened(
    session: AsyncSession, dispatch: Dispatch, via: Via, now: dt.datetime
) -> None:
    """Tell the clinic the advice was opened on one channel (once per channel: the caller
    calls this only when that channel's opening time is first set; a reload tells nothing).
    ``first``: it had not been opened on the other channel either."""
    other = dispatch.page_opened_at if via == "telegram" else dispatch.opened_at
    await clinic_events.emit(
        session, dispatch, EventType.DISPATCH_OPENED, {"via": via, "first": other is None}, now=now
    )


def telegram_link(rt: Runtime, page_token: str) -> str:
    """The deep link of the dispatch whose page token this is (the token is derived from it)."""
    return f"https://t.me/{rt.bot_username}?start={PREFIX}_{telegram_token(page_token)}"


def form_token(rt: Runtime, dispatch: Dispatch) -> str:
    """The advice page's forms carry this: an HMAC (SECRET_KEY) bound to the dispatch's page,
    so a form posted from anywhere but a page that showed this advice is refused."""
    return _form_mac(rt.settings.secret(), dispatch)


def form_token_valid(rt: Runtime, dispatch: Dispatch, presented: str) -> bool:
    """Whether a form's token is this dispatch's (with SECRET_KEY or a fallback)."""
    given = presented.encode("ascii", "replace")
    return any(
        hmac.compare_digest(given, _form_mac(secret, dispatch).encode())
        for secret in rt.settings.secrets()
    )


def _form_mac(secret: bytes, dispatch: Dispatch) -> str:
    message = f"sikkerhetsnett:advice-page-form:{dispatch.id}:{dispatch.page_token_hash}"
    return hmac.new(secret, message.encode(), "sha256").hexdigest()[:40]


async def delete_dispatch(
    rt: Runtime, dispatch_id: str, *, via: Via, now: dt.datetime | None = None
) -> bool:
    """The caller deleted their advice: the dispatch and everything that refers to it (queued
    SMS and check-in, the idempotent answer) go at once; its page's URL answers 410 from now on
    (only the token's hash is kept, until the dispatch's retention would have ended)."""
    now = now or utcnow()
    async with rt.sessions() as session:
        # The row's lock first (PostgreSQL), then emit's per-clinic lock: one order everywhere,
        # and two presses at once count 1 and 2.
        dispatch = await session.get(Dispatch, dispatch_id, with_for_update=True)
        if dispatch is None:
            return False
        gone_links(session, [dispatch], rt.settings.retention_days)
        # The event outlives the dispatch (it carries nothing personal): the clinic learns that
        # the caller deleted, and its earlier events (say, "worse") stay until retention.
        await clinic_events.emit(
            session, dispatch, EventType.DISPATCH_DELETED, {"via": via}, now=now
        )
        await session.exec(delete(Dispatch).where(col(Dispatch.id) == dispatch_id))
        await session.commit()
    log.info("dispatch %s deleted by the caller (via %s)", dispatch_id, via)
    return True


def gone_links(session: AsyncSession, found: Sequence[Dispatch], retention_days: int) -> None:
    """Remember deleted dispatches' page tokens (hashes), so their URLs answer 410."""
    for dispatch in found:
        if dispatch.page_token_hash is not None:
            forget = dispatch.created_at + dt.timedelta(days=retention_days)
            session.add(
                GoneLink(
                    token_hash=dispatch.page_token_hash, locale=dispatch.locale, forget_at=forget
                )
            )


def checkin_due(dispatch: Dispatch, opened_at: dt.datetime) -> dt.datetime:
    """N hours after the call; at least an hour after the advice was opened."""
    assert dispatch.checkin_hours
    return max(
        dispatch.created_at + dt.timedelta(hours=dispatch.checkin_hours),
        opened_at + MIN_CHECKIN_AFTER_OPEN,
    )


def _checkin_message(
    rt: Runtime, dispatch: Dispatch, person: Person, now: dt.datetime
) -> dict[str, Any] | None:
    """The queued check-in (``outbox.enqueue``'s arguments), if one was asked for. Its text is
    written when it is sent, in the person's language of that moment."""
    if not dispatch.checkin_hours:
        return None
    due = checkin_due(dispatch, now)
    return {
        "dedupe_key": f"checkin:{dispatch.id}",
        "person_id": person.id,
        "chat_id": person.telegram_user_id,
        "dispatch_id": dispatch.id,
        "due_at": due,
        "expires_at": due + dt.timedelta(hours=rt.settings.checkin_window_hours),
    }


def advice_for(rt: Runtime, dispatch: Dispatch, locale: Locale) -> AdviceTopic | None:
    """The advice exactly as the dispatch was made; None if neither it nor the topic exists.

    A stored copy in an older shape (before urgency tiers, scope and sources) is read as such
    (``topic_from_snapshot``).
    """
    topic = rt.content.advice.get(dispatch.topic_id)
    if dispatch.content and locale in dispatch.content:
        live = localized_topic(rt, topic, locale) if topic is not None else None
        return topic_from_snapshot(dispatch.content[locale], live)
    return localized_topic(rt, topic, locale) if topic is not None else None  # no copy kept


def localized_topic(rt: Runtime, topic: AdviceTopic, locale: Locale) -> AdviceTopic:
    """A topic of the live content in ``locale`` (cached until the next reload)."""
    return rt.localized(topic, "advice", locale)


def checkin_when(rt: Runtime, dispatch: Dispatch, locale: Locale) -> str | None:
    """When the check-in will come, in words, if it is still ahead."""
    if dispatch.checkin_status != CheckinStatus.SCHEDULED or dispatch.checkin_due_at is None:
        return None
    _ = rt.catalogs.gettext(locale)
    return render.when_text(_, dispatch.checkin_due_at, utcnow(), locale, rt.settings.zone)


# --- what the caller does ------------------------------------------------------------------


async def get(rt: Runtime, dispatch_id: str) -> Dispatch | None:
    async with rt.sessions() as session:
        return await session.get(Dispatch, dispatch_id)


async def for_person(rt: Runtime, dispatch_id: str, person: Person) -> Dispatch | None:
    """The dispatch, if it belongs to this person (a button from someone else's chat is not)."""
    async with rt.sessions() as session:
        dispatch = await session.get(Dispatch, dispatch_id)
        if dispatch is None or dispatch.person_id != person.id:
            return None
        return dispatch


async def record_worse(
    rt: Runtime,
    dispatch_id: str,
    person: Person | None,
    *,
    via: Via = "telegram",
    now: dt.datetime | None = None,
) -> Dispatch | None:
    """The caller pressed "I am getting worse": count it, remember the first time.

    In Telegram only the chat the dispatch is bound to may (``person``); on the page
    (``via="web"``, no person) the page's token was the caller's proof, and pressing it also
    means the page was seen.
    """
    now = now or utcnow()
    mine = col(Dispatch.id) == dispatch_id
    if via == "telegram":
        if person is None:
            return None
        mine = and_(mine, col(Dispatch.person_id) == person.id)
    at_now = literal(now, UTCDateTime())
    async with rt.sessions() as session:
        # Each change one conditional UPDATE: two presses at once count 1 and 2, and the row is
        # locked (written) before emit takes its per-clinic lock, in that order everywhere.
        if via == "web":
            seen = await _returning(
                session,
                update(Dispatch)
                .where(mine, col(Dispatch.page_opened_at).is_(None))
                .values(page_opened_at=now),
            )
            if seen is not None:
                await _tell_opened(session, seen, "web", now)
        dispatch = await _returning(
            session,
            update(Dispatch)
            .where(mine)
            .values(
                worse_count=col(Dispatch.worse_count) + 1,
                worse_at=func.coalesce(col(Dispatch.worse_at), at_now),
            ),
        )
        if dispatch is None:
            await session.rollback()
            return None
        await clinic_events.emit(
            session,
            dispatch,
            EventType.DISPATCH_WORSE,
            {"via": via, "count": dispatch.worse_count},
            now=now,
        )
        await session.commit()
    log.info(
        "dispatch %s: caller getting worse (%d, via %s)", dispatch.id, dispatch.worse_count, via
    )
    return dispatch


async def answer_checkin(
    rt: Runtime, dispatch_id: str, person: Person, answer: str, *, now: dt.datetime | None = None
) -> tuple[Dispatch | None, bool]:
    """Store the first answer to the check-in; later taps keep the first. (dispatch, is_first)."""
    if answer not in render.CHECKIN_ANSWERS:
        return None, False
    now = now or utcnow()
    mine = and_(col(Dispatch.id) == dispatch_id, col(Dispatch.person_id) == person.id)
    values: dict[str, Any] = {
        "checkin_answer": answer,
        "checkin_answered_at": now,
        "checkin_status": CheckinStatus.ANSWERED,
    }
    if answer == "worse":
        values |= {
            "worse_count": col(Dispatch.worse_count) + 1,
            "worse_at": func.coalesce(col(Dispatch.worse_at), literal(now, UTCDateTime())),
        }
    async with rt.sessions() as session:
        # The first answer only, in one conditional UPDATE (two taps at once: one answer).
        dispatch = await _returning(
            session,
            update(Dispatch).where(mine, col(Dispatch.checkin_answer).is_(None)).values(**values),
        )
        if dispatch is None:
            earlier = (await session.exec(select(Dispatch).where(mine))).one_or_none()
            return earlier, False
        await clinic_events.emit(
            session, dispatch, EventType.CHECKIN_ANSWERED, {"answer": answer}, now=now
        )
        await session.commit()
    log.info("dispatch %s: check-in answered %s", dispatch.id, answer)
    return dispatch, True


async def record_checkin_outcome(session: AsyncSession, event: CheckinFinished) -> None:
    """The check-in question was sent, expired (too late) or failed: say so on the dispatch.

    Runs in the sender's transaction that records the outcome (an ``bot.events`` subscriber).
    """
    new = {
        Delivery.SENT: CheckinStatus.SENT,
        Delivery.EXPIRED: CheckinStatus.EXPIRED,
        Delivery.FAILED: CheckinStatus.FAILED,
    }[event.delivery]
    changed = await _returning(
        session,
        update(Dispatch)
        .where(
            col(Dispatch.id) == event.dispatch_id,
            col(Dispatch.checkin_status) == CheckinStatus.SCHEDULED,
        )
        .values(checkin_status=new),
    )
    if changed is not None:
        if event.delivery is Delivery.SENT:
            await clinic_events.emit(session, changed, EventType.CHECKIN_SENT)
        elif event.delivery is Delivery.EXPIRED:
            await clinic_events.emit(session, changed, EventType.CHECKIN_EXPIRED)
        else:
            await clinic_events.emit(
                session, changed, EventType.CHECKIN_FAILED, {"reason": reason_code(event.reason)}
            )
    if new != CheckinStatus.SENT:
        log.info("dispatch %s: check-in %s (%s)", event.dispatch_id, new, event.reason)


async def record_sms_outcome(session: AsyncSession, event: SmsFinished) -> None:
    """The SMS with the link was sent, or given up (failed or expired): say so on the dispatch
    (``sms`` in the API's answers). Runs in the sender's transaction, like the one above."""
    status = SmsStatus.FAILED
    if event.delivery is Delivery.SENT:  # a provider that only pretends (console): not sent
        status = SmsStatus.SENT if event.delivered else SmsStatus.NOT_SENT
    changed = await _returning(
        session,
        update(Dispatch).where(col(Dispatch.id) == event.dispatch_id).values(sms_status=status),
    )
    if changed is not None:  # None: the caller deleted the advice before the SMS was final
        if event.delivery is Delivery.SENT:
            await clinic_events.emit(
                session, changed, EventType.SMS_SENT, {"delivered": event.delivered}
            )
        else:
            reason = "expired" if event.delivery is Delivery.EXPIRED else event.reason
            await clinic_events.emit(
                session, changed, EventType.SMS_FAILED, {"reason": reason_code(reason)}
            )
    if status != SmsStatus.SENT:
        log.info("dispatch %s: SMS %s (%s)", event.dispatch_id, event.delivery, event.reason)


# The fixed failure reasons of the adapters, the renderers and the sender, as an event may
# carry them; anything else (a gateway's own words, which might echo a number) is "refused".
REASON_CODES = frozenset(
    {
        "expired",
        "NoChat",
        "ChatMigrated",
        "BadRequest",
        "NoNumber",
        "NotRendered",
        "NoRenderer",
        "RenderFailed",
        "KeyChanged",
        "ContentGone",
    }
)


def reason_code(reason: str | None) -> str | None:
    """A failure's reason as an event carries it: one of ``REASON_CODES``, else "refused"."""
    if reason is None:
        return None
    return reason if reason in REASON_CODES else "refused"


# --- re-contacts ---------------------------------------------------------------------------


def _same_number(
    rt: Runtime, phone_e164: str, since: dt.datetime, visible: Sequence[int] | None
) -> Any:
    """Dispatches to this number since ``since`` among the ``visible`` clinics (None: all).

    The number is hashed with every key in use (SECRET_KEY and its fallbacks), so a rotated
    SECRET_KEY still finds the dispatches made before it changed.
    """
    digests = [phone_hash(secret, phone_e164) for secret in rt.settings.secrets()]
    query = select(Dispatch).where(
        col(Dispatch.phone_hash).in_(digests), col(Dispatch.created_at) >= since
    )
    if visible is not None:
        query = query.where(col(Dispatch.organisation_id).in_(list(visible)))
    return query.order_by(col(Dispatch.created_at).desc())


async def recontacts(
    rt: Runtime,
    phone_e164: str,
    hours: int,
    asker: audit.Asker,
    *,
    now: dt.datetime | None = None,
) -> list[Dispatch]:
    """Dispatches for this number in the last ``hours`` that ``asker`` may see, newest first.

    The look-up is written to the audit log in the same transaction: no record, no answer.
    """
    now = now or utcnow()
    since = now - dt.timedelta(hours=hours)
    async with rt.sessions() as session:
        found = list(await session.exec(_same_number(rt, phone_e164, since, asker.visible)))
        audit.record(
            session,
            asker,
            phone_hash=phone_hash(rt.settings.secret(), phone_e164),
            hours=hours,
            results=len(found),
            now=now,
        )
        await session.commit()
    return found


def recontact_json(dispatch: Dispatch, rt: Runtime) -> dict[str, Any]:
    topic = advice_for(rt, dispatch, "nb")
    return {
        "id": dispatch.id,
        "topic": dispatch.topic_id,
        "topic_title": topic.title if topic is not None else None,
        "topic_version": dispatch.topic_version,
        "locale": dispatch.locale,
        "created_at": _iso(dispatch.created_at),
        "link_opened": dispatch.opened_at is not None or dispatch.page_opened_at is not None,
        "opened_at": _iso(_first(dispatch.opened_at, dispatch.page_opened_at)),
        "page_opened_at": _iso(dispatch.page_opened_at),
        "telegram_opened_at": _iso(dispatch.opened_at),
        "worse_pressed": dispatch.worse_count > 0,
        "worse_count": dispatch.worse_count,
        "first_worse_at": _iso(dispatch.worse_at),
        "checkin": {
            "status": dispatch.checkin_status,
            "hours": dispatch.checkin_hours,
            "answer": dispatch.checkin_answer,
            "answered_at": _iso(dispatch.checkin_answered_at),
        },
        "sms": dispatch.sms_status,
    }


# --- retention -----------------------------------------------------------------------------


async def purge_old(rt: Runtime, *, now: dt.datetime | None = None) -> tuple[int, int]:
    """Delete dispatches older than the retention period, and callers with nothing left.

    A person is deleted when they have not written for the retention period, no dispatch
    remains, and they are not a leader (a leader's answers are kept until they delete them).
    """
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=rt.settings.retention_days)
    async with rt.sessions() as session:
        gone: Any = await session.exec(delete(Dispatch).where(col(Dispatch.created_at) < cutoff))
        # The clinic's events go with the dispatches' retention (deletion by the caller keeps
        # them: they carry nothing personal), in the same transaction.
        await clinic_events.purge_older_than(session, cutoff)
        await session.exec(delete(GoneLink).where(col(GoneLink.forget_at) < now))
        await session.exec(
            delete(IdempotentRequest).where(
                col(IdempotentRequest.created_at) < now - dt.timedelta(hours=IDEMPOTENCY_HOURS)
            )
        )
        people: Any = await session.exec(
            delete(Person).where(
                col(Person.last_seen_at) < cutoff,
                ~exists().where(col(Dispatch.person_id) == Person.id),
                ~exists().where(col(Leader.person_id) == Person.id),
            )
        )
        await session.commit()
    return int(gone.rowcount or 0), int(people.rowcount or 0)


# --- links that ended unopened --------------------------------------------------------------

EXPIRY_BATCH = 500


async def note_expired_links(rt: Runtime, *, now: dt.datetime | None = None) -> int:
    """Mark dispatches whose link's life ended (``expiry_noted_at``) and tell each clinic
    ``dispatch.expired`` for those never opened, in the page or in Telegram; returns how many.

    Once per dispatch across restarts and instances: the conditional ``UPDATE … WHERE
    expiry_noted_at IS NULL RETURNING`` claims each row for one caller, and returns its opened
    times as committed (an opening that raced the end of the link wins, and no event is told).
    """
    now = now or utcnow()
    told = 0
    async with rt.sessions() as session:
        due = (
            select(Dispatch.id)
            .where(col(Dispatch.expiry_noted_at).is_(None), col(Dispatch.expires_at) <= now)
            .limit(EXPIRY_BATCH)
        )
        ended = (
            await session.exec(
                update(Dispatch)
                .where(
                    col(Dispatch.id).in_(due.scalar_subquery()),
                    col(Dispatch.expiry_noted_at).is_(None),
                    col(Dispatch.expires_at) <= now,
                )
                .values(expiry_noted_at=now)
                .returning(Dispatch),
                execution_options={"populate_existing": True},
            )
        ).scalars()
        for dispatch in sorted(ended.all(), key=lambda d: (d.expires_at, d.id)):
            if dispatch.opened_at is None and dispatch.page_opened_at is None:
                await clinic_events.emit(session, dispatch, EventType.DISPATCH_EXPIRED, now=now)
                told += 1
        await session.commit()
    if told:
        log.info("%d dispatch links ended unopened", told)
    return told


def _first(*times: dt.datetime | None) -> dt.datetime | None:
    found = [t for t in times if t is not None]
    return min(found) if found else None


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
