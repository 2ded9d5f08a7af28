"""Tables, as SQLModel classes. One class per domain concept, named as in the docs.

Times are stored as UTC (naive in the database, aware in Python, see ``UTCDateTime``).
Only models live here; queries belong to the services and the outbox.
"""

# No ``from __future__ import annotations`` here: with real annotations SQLModel and SQLAlchemy
# need not evaluate some 500 strings when the tables are built (~15 ms of every start).
import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    MetaData,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

# Deterministic constraint names, so Alembic batch migrations on SQLite can find them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


class TableModel(SQLModel):
    """The base of every table: pydantic's validators and serialisers for a table are built on
    first use (``defer_build``), not for all of them at import (~20 ms of every start): rows are
    made and read through SQLAlchemy, and few paths validate or dump a table model."""

    model_config = ConfigDict(defer_build=True)  # type: ignore[assignment]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Person(TableModel, table=True):
    """Someone who has written to the bot: a caller or a leader. Holds the language choice."""

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_type=BigInteger, unique=True, index=True)
    locale: str = Field(max_length=8)
    locale_chosen: bool = False  # an explicit choice; otherwise a guess from Telegram
    blocked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for due_at
    SENDING = "sending"  # claimed by a sender until claimed_until
    SENT = "sent"
    FAILED = "failed"  # given up: refused for good, or the person blocked the bot
    EXPIRED = "expired"  # its life (expires_at) ran out before it could be sent: never stale


FINAL = (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.EXPIRED)


class Channel(StrEnum):
    """The way out a queued message takes (bot.channels holds one adapter per channel)."""

    TELEGRAM = "telegram"
    SMS = "sms"
    WEBHOOK = "webhook"  # a clinic's webhook: its events POSTed, signed (bot.channels.webhook)


class MessageKind(StrEnum):
    """What a queued message is; bot.renderers has one renderer per kind."""

    CHECKIN = "checkin"  # a caller's check-in question (dispatch_id)
    WEEKLY_QUESTION = "weekly_question"  # a leader's question of the week (prompt_id)
    REMINDER = "reminder"  # the same question again, with a reminder line (prompt_id)
    ADMIN_NOTICE = "admin_notice"  # a plain text for an admin (payload: {"text": …})
    SMS_LINK = "sms_link"  # the SMS with the advice link (dispatch_id; number and text in secret)
    # A leader's monthly digest of #Råbra stories (payload: {"organisation_id": …, "month": …})
    RAABRA_DIGEST = "raabra_digest"
    GROUP_QUESTION = "group_question"  # the week's question to a leader group (group_post_id)
    # A leader's answer shared to a leader group (group_post_id, prompt_id; the text and the
    # name as the leader chose to show it wait in secret)
    GROUP_ANSWER = "group_answer"
    # A clinic event POSTed to the webhook of the key that made the dispatch (clinic_event_id,
    # api_key_id); the body is written at send time from the event
    CLINIC_EVENT = "clinic_event"


class OutboxMessage(TableModel, table=True):
    """One message waiting to go out on some channel: *what* to send, never *how*.

    ``kind`` and the typed references (person, dispatch, prompt) say what it is; the renderer
    of that kind writes it at send time in the person's current language. ``dedupe_key`` only
    makes enqueueing exactly-once and is never read back. ``secret`` holds what must wait
    encrypted (an SMS's number and text) and is erased when the row is final.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due_at", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)  # a Channel
    kind: str = Field(max_length=32)  # a MessageKind
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    person_id: int | None = Field(
        default=None, foreign_key="person.id", ondelete="CASCADE", index=True
    )
    dispatch_id: str | None = Field(
        default=None, max_length=32, foreign_key="dispatch.id", ondelete="CASCADE", index=True
    )
    prompt_id: int | None = Field(
        default=None, foreign_key="prompt.id", ondelete="CASCADE", index=True
    )
    group_post_id: int | None = Field(
        default=None, foreign_key="group_post.id", ondelete="CASCADE", index=True
    )
    # A webhook's event (None once the event is purged: the row then fails, "EventGone") and
    # its address, the key whose webhook it goes to.
    clinic_event_id: int | None = Field(
        default=None, foreign_key="clinic_event.id", ondelete="SET NULL", index=True
    )
    api_key_id: int | None = Field(
        default=None, foreign_key="api_key.id", ondelete="CASCADE", index=True
    )
    chat_id: int | None = Field(default=None, sa_type=BigInteger)  # Telegram's address
    secret: str | None = Field(default=None, max_length=2000)  # Fernet; None once final
    payload: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # a notice's own data
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    due_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)  # retried until then, never after
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    provider_message_id: int | None = Field(default=None, sa_type=BigInteger)
    last_error: str | None = Field(default=None, max_length=200)  # an outcome's reason, no text
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(TableModel, table=True):
    """A key a clinic's call system uses for the HTTP API. Only its SHA-256 is stored.

    Every key belongs to a clinic (an ``Organisation``): its re-contact look-ups see that
    clinic's dispatches, and those of clinics in the same region.
    """

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)  # the clinic or system, for people reading the list
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # ± a minute
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The clinic's webhook (README, "Webhooks"): where its events are POSTed, and the signing
    # secret(s), Fernet-encrypted ("webhook" key). During a rotation's grace the previous secret
    # signs too (a second v1), until ``webhook_previous_until``. A 410 turns it off
    # (``webhook_disabled_at``); the last outcomes are for /status.
    webhook_url: str | None = Field(default=None, max_length=500)
    webhook_secret: str | None = Field(default=None, max_length=500)
    webhook_previous_secret: str | None = Field(default=None, max_length=500)
    webhook_previous_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    webhook_disabled_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    webhook_last_success_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    webhook_last_failure_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    webhook_last_failure: str | None = Field(default=None, max_length=40)  # "HTTP 500", "Timeout"


class CheckinStatus:
    NONE = "none"  # the nurse asked for no check-in
    WAITING = "waiting"  # asked for; the link is not opened yet, so there is no chat to ask in
    SCHEDULED = "scheduled"  # in the outbox, due at checkin_due_at
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"  # could not be sent within its window: dropped, never sent stale
    FAILED = "failed"  # Telegram refused it (e.g. the caller blocked the bot)


class SmsStatus:
    NONE = "none"
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    NOT_SENT = "not_sent"  # SMS_PROVIDER=console: printed (link masked), never sent


class Dispatch(TableModel, table=True):
    """Advice sent to one caller after one call: what was sent, and what the caller did with it.

    Caller data: deleted after ``RETENTION_DAYS``, or at once when the caller asks.
    """

    # The tick's look for links whose life ended and that it has not noted yet.
    __table_args__ = (
        Index("ix_dispatch_expiry_noted_at_expires_at", "expiry_noted_at", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=32)  # random hex, safe to show to a call system
    api_key_id: int | None = Field(
        default=None, foreign_key="api_key.id", ondelete="SET NULL", index=True
    )
    # The clinic that made it (its key's); None for one made on the command line without --org.
    organisation_id: int | None = Field(
        default=None, foreign_key="organisation.id", ondelete="SET NULL", index=True
    )
    topic_id: str = Field(max_length=40)
    topic_version: int  # the content version the dispatch was made with
    locale: str = Field(max_length=8)  # the language the advice was sent in
    # The topic as it was when the dispatch was made, in both languages: a content reload later
    # never changes advice a caller already has. {"nb": {...}, "nn": {...}}
    content: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # The nurse's note and the risk groups, Fernet({"note": …, "risk_groups": […]}) with the
    # "dispatch" key (``dispatches.tailoring_of``); None when there is neither.
    tailoring: str | None = Field(default=None, sa_type=Text)
    checkin_hours: int | None = None
    phone_hash: str | None = Field(default=None, max_length=64, index=True)  # HMAC, not the number
    token_hash: str = Field(max_length=64, unique=True)  # SHA-256 of the Telegram link's token
    # SHA-256 of the advice page's token (``PUBLIC_URL/r/<token>``); None for dispatches made
    # before the page existed. The Telegram link's token is derived from it (``privacy``).
    page_token_hash: str | None = Field(default=None, max_length=64, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)  # the link, not the record
    person_id: int | None = Field(
        default=None, foreign_key="person.id", ondelete="CASCADE", index=True
    )
    opened_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # in Telegram
    page_opened_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # the web page
    worse_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # first press
    worse_count: int = 0
    checkin_status: str = Field(default=CheckinStatus.NONE, max_length=16)
    checkin_due_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    checkin_answer: str | None = Field(default=None, max_length=16)  # better / same / worse
    checkin_answered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    sms_status: str = Field(default=SmsStatus.NONE, max_length=16)
    # When the tick saw the link's life end (``expires_at`` passed): ``dispatch.expired`` was
    # told then if it had never been opened. Marks it so that happens once.
    expiry_noted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdempotentRequest(TableModel, table=True):
    """A dispatch request made with an ``Idempotency-Key``: a retry gets the same answer.

    The answer holds the link, so it is kept encrypted, and only for ``IDEMPOTENCY_HOURS``.
    """

    __tablename__ = "idempotent_request"
    __table_args__ = (UniqueConstraint("api_key_id", "key_hash", name="uq_idempotent_request_key"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="api_key.id", ondelete="CASCADE")
    key_hash: str = Field(max_length=64)  # SHA-256 of the client's key
    request_hash: str = Field(max_length=64)  # SHA-256 of the request body, canonical JSON
    dispatch_id: str = Field(max_length=32, foreign_key="dispatch.id", ondelete="CASCADE")
    response: str = Field(max_length=4000)  # Fernet(the JSON answered the first time)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


# --- weekly reflection for leaders ---------------------------------------------------------


class Organisation(TableModel, table=True):
    """A health service: a clinic with API keys, or one whose leaders take part (or both).

    Clinics with the same ``region`` see each other's dispatches in re-contact look-ups (a
    legevakt and the ones it shares callers with); without one a clinic sees only its own.
    """

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    region: str | None = Field(default=None, max_length=100)
    # The clinic's name as callers read it in the SMS and on the advice page (GSM-7, at most
    # ``DISPLAY_NAME_MAX``); None: ``name`` if it fits, else the SMS says "the legevakt".
    display_name: str | None = Field(default=None, max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


DISPLAY_NAME_MAX = 32  # characters; the SMS is checked to fit two segments with this many


class GoneLink(TableModel, table=True):
    """An advice page whose dispatch was deleted (by the caller, or with their data): its URL
    answers 410 Gone, with the numbers, instead of 404. Only the token's hash is kept, and only
    until ``forget_at`` (the dispatch's own retention)."""

    __tablename__ = "gone_link"

    token_hash: str = Field(primary_key=True, max_length=64)
    locale: str = Field(max_length=8)  # the advice's language: the 410 page speaks it
    forget_at: dt.datetime = Field(sa_type=UTCDateTime, index=True)


class LookupAudit(TableModel, table=True):
    """One re-contact look-up: who asked, when, about which number (its keyed hash only), and
    how many dispatches they were shown. Kept ``AUDIT_RETENTION_DAYS``."""

    __tablename__ = "lookup_audit"

    id: int | None = Field(default=None, primary_key=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id", ondelete="SET NULL")
    organisation_id: int | None = Field(
        default=None, foreign_key="organisation.id", ondelete="SET NULL"
    )
    actor: str = Field(max_length=200)  # "API key 3 (Legevakten i Bergen)", "command line (ola)"
    phone_hash: str = Field(max_length=64, index=True)  # HMAC(SECRET_KEY), as on Dispatch
    hours: int  # how far back
    results: int  # how many dispatches were shown


class InviteKind:
    LEADER = "leader"  # enrols a leader in the weekly reflection, in ``role_id``
    RAABRA = "raabra"  # lets a member of staff send #Råbra stories; no role, no weekly questions


class Invite(TableModel, table=True):
    """A link that enrols leaders of one organisation in one role, or (kind ``raabra``) lets its
    staff send #Råbra stories. Only its SHA-256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", ondelete="CASCADE", index=True)
    kind: str = Field(default=InviteKind.LEADER, max_length=16)  # an InviteKind
    role_id: str = Field(max_length=40)  # "" for a raabra invite
    token_hash: str = Field(max_length=64, unique=True)
    max_uses: int = 1
    uses: int = 0
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class LeaderStatus:
    ENROLLING = "enrolling"  # answering the enrolment questions
    ACTIVE = "active"
    PAUSED = "paused"  # until paused_until, or until /resume when that is empty
    STOPPED = "stopped"  # left, but chose to keep their answers


class Leader(TableModel, table=True):
    """A person taking part in the weekly reflection: role, day and time, place in the programme."""

    # The tick asks every second for paused leaders whose pause has ended.
    __table_args__ = (
        Index("ix_leader_status_paused_until", "status", "paused_until"),
        # The tick's "active and due" query: without it SQLite walked every active leader.
        Index("ix_leader_status_next_due_at", "status", "next_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", ondelete="CASCADE", unique=True)
    organisation_id: int = Field(foreign_key="organisation.id", ondelete="CASCADE", index=True)
    role_id: str = Field(max_length=40)
    programme_id: str = Field(max_length=40)
    status: str = Field(default=LeaderStatus.ENROLLING, max_length=16)
    enrol_step: str | None = Field(default=None, max_length=16)  # language, weekday, time, confirm
    weekday: int | None = None  # 0 = Monday, in the leader's time zone
    minute_of_day: int | None = None  # 540 = 09:00, local time
    timezone: str = Field(default="Europe/Oslo", max_length=64)
    position: int = 0  # index of the next question in the role's programme order
    cycle: int = 0  # how many times the programme has been completed
    next_due_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    paused_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    invite_id: int | None = Field(default=None, foreign_key="invite.id", ondelete="SET NULL")
    enrolled_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    stopped_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PromptStatus:
    SENT = "sent"  # in the outbox or delivered; open for an answer
    ANSWERED = "answered"
    SKIPPED = "skipped"  # the leader chose to skip, perhaps with a reason
    MISSED = "missed"  # the bot was down too long: not sent, recorded


class Prompt(TableModel, table=True):
    """One week's question to one leader, and what became of it (the answer lives here too)."""

    __table_args__ = (
        UniqueConstraint("leader_id", "week", name="uq_prompt_leader_id_week"),
        Index("ix_prompt_status_reminder_due_at", "status", "reminder_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    leader_id: int = Field(foreign_key="leader.id", ondelete="CASCADE", index=True)
    programme_id: str = Field(max_length=40)
    theme_id: str = Field(max_length=40)
    question_id: str = Field(max_length=40)
    role_id: str = Field(max_length=40)
    position: int
    cycle: int = 0
    week: str = Field(max_length=10)  # ISO week of due_at in the leader's zone, e.g. 2026-W49
    due_at: dt.datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=PromptStatus.SENT, max_length=16)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminder_due_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminders_sent: int = 0
    skip_reason: str | None = Field(default=None, max_length=16)  # not_relevant, busy, leave
    # The answer, Fernet(text) with the "answer" key (``leaders.answer_text``); never logged.
    answer_ciphertext: str | None = Field(default=None, sa_type=Text)
    answer_message_id: int | None = Field(default=None, sa_type=BigInteger)
    answered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    edited_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    shared: bool = False  # shared with the organisation by the leader
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- #Råbra: what went well ----------------------------------------------------------------


class RaabraMember(TableModel, table=True):
    """A member of staff who joined #Råbra with an invite of kind ``raabra``: they may send
    stories to their organisation, and get nothing else (no weekly questions)."""

    __tablename__ = "raabra_member"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", ondelete="CASCADE", unique=True)
    organisation_id: int = Field(foreign_key="organisation.id", ondelete="CASCADE", index=True)
    invite_id: int | None = Field(default=None, foreign_key="invite.id", ondelete="SET NULL")
    joined_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RaabraVisibility:
    PRIVATE = "private"  # only the author reads it (also an unfinished story's state)
    ANONYMOUS = "anonymous"  # the organisation's leaders and report, without a name
    NAMED = "named"  # the organisation's leaders and report, with the author's name


class RaabraStep:
    TEXT = "text"  # /raabra was sent: the next message is the story
    THEME = "theme"  # the story is written; a theme may be chosen
    SHARING = "sharing"  # waiting for the choice of who may read it
    DONE = "done"


class RaabraStory(TableModel, table=True):
    """One #Råbra story: good work or good colleagueship someone wants to tell about.

    The text (and, for a named story, the name it is signed with) is Fernet-encrypted with the
    "raabra" key (``raabra.story_text``). ``person_id`` is the author; an anonymous story whose
    author deleted their data is kept without one (see ``raabra.forget_author``).
    """

    __tablename__ = "raabra_story"
    __table_args__ = (
        Index("ix_raabra_story_organisation_id_shared_at", "organisation_id", "shared_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", ondelete="CASCADE")
    person_id: int | None = Field(
        default=None, foreign_key="person.id", ondelete="SET NULL", index=True
    )
    step: str = Field(default=RaabraStep.TEXT, max_length=16)  # a RaabraStep
    theme_id: str | None = Field(default=None, max_length=40)  # content/raabra.yaml's themes
    visibility: str = Field(default=RaabraVisibility.PRIVATE, max_length=16)
    text_ciphertext: str | None = Field(default=None, sa_type=Text)  # None until it is written
    name_ciphertext: str | None = Field(default=None, sa_type=Text)  # a named story's signature
    message_id: int | None = Field(default=None, sa_type=BigInteger)  # edits follow it
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    edited_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    shared_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # month of digest


class RaabraDigest(TableModel, table=True):
    """That a leader's monthly #Råbra digest was queued: at most one per leader and month,
    whatever the outbox's retention (its queued row refers to the organisation and month)."""

    __tablename__ = "raabra_digest"
    __table_args__ = (
        UniqueConstraint("leader_id", "month", name="uq_raabra_digest_leader_id_month"),
    )

    id: int | None = Field(default=None, primary_key=True)
    leader_id: int = Field(foreign_key="leader.id", ondelete="CASCADE")
    organisation_id: int = Field(foreign_key="organisation.id", ondelete="CASCADE")
    month: str = Field(max_length=7)  # the month it is about: "2026-04"
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- leader groups: the week's question for discussion -------------------------------------


class GroupLink(TableModel, table=True):
    """A ``startgroup`` link that links one Telegram group to an organisation (and perhaps a
    role), with the day and time of its weekly question. Single use; only its SHA-256 is kept."""

    __tablename__ = "group_link"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", ondelete="CASCADE", index=True)
    role_id: str | None = Field(default=None, max_length=40)  # None: every role's leaders
    programme_id: str = Field(max_length=40)
    weekday: int  # 0 = Monday, in the group's zone
    minute_of_day: int  # 540 = 09:00, local time
    locale: str | None = Field(default=None, max_length=8)  # None: the bot's default language
    token_hash: str = Field(max_length=64, unique=True)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)
    used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TeamGroup(TableModel, table=True):
    """A Telegram group linked to an organisation (and perhaps one role): it gets the week's
    question for discussion, and leaders of the organisation may share their answers there.

    Nothing of the group's discussion is stored: its chat id (the address), its title (so a
    leader knows where a shared answer goes) and its schedule.
    """

    __tablename__ = "team_group"
    __table_args__ = (Index("ix_team_group_next_due_at", "next_due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, unique=True)
    organisation_id: int = Field(foreign_key="organisation.id", ondelete="CASCADE", index=True)
    role_id: str | None = Field(default=None, max_length=40)
    programme_id: str = Field(max_length=40)
    title: str = Field(default="", max_length=128)
    weekday: int
    minute_of_day: int
    timezone: str = Field(default="Europe/Oslo", max_length=64)
    locale: str | None = Field(default=None, max_length=8)
    position: int = 0  # the next question (a role's group) or theme (a group for all roles)
    cycle: int = 0
    next_due_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    link_id: int | None = Field(default=None, foreign_key="group_link.id", ondelete="SET NULL")
    linked_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class GroupPostKind:
    QUESTION = "question"  # the week's question (or theme) for discussion
    ANSWER = "answer"  # a leader's own answer, shared by them


class GroupPost(TableModel, table=True):
    """Something the bot posts to a leader group: the week's question (one per ISO week), or
    a leader's answer they chose to share (once per group). Holds ids, never text: the text
    of a shared answer waits encrypted in its queued message and is gone once it is posted."""

    __tablename__ = "group_post"
    __table_args__ = (
        UniqueConstraint("group_id", "week", name="uq_group_post_group_id_week"),
        UniqueConstraint("group_id", "prompt_id", name="uq_group_post_group_id_prompt_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="team_group.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=16)  # a GroupPostKind
    week: str | None = Field(default=None, max_length=10)  # a question's ISO week
    programme_id: str = Field(max_length=40)
    theme_id: str = Field(max_length=40)
    question_id: str | None = Field(default=None, max_length=40)  # None: the whole theme
    prompt_id: int | None = Field(
        default=None, foreign_key="prompt.id", ondelete="CASCADE", index=True
    )
    due_at: dt.datetime = Field(sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- the clinic's events: what happened to its dispatches -----------------------------------


class ClinicEvent(TableModel, table=True):
    """Something that happened to a dispatch, told to the clinic that made it: by the events
    feed (``GET /api/v1/events``) and, where its key has one, by a signed webhook.

    ``public_id`` is the stable id a receiver deduplicates by; ``seq`` orders one clinic's
    events without gaps or reordering between commits (``bot.services.clinic_events.emit``).
    No foreign key to the dispatch: ``dispatch.deleted`` outlives the dispatch it tells of.
    Carries no phone number, no note, no name (``data`` holds only whitelisted keys); deleted
    with the dispatches' retention.
    """

    __tablename__ = "clinic_event"
    __table_args__ = (
        UniqueConstraint("organisation_id", "seq", name="uq_clinic_event_organisation_id_seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=32, unique=True)  # "evt_" + 24 hex
    organisation_id: int | None = Field(
        default=None, foreign_key="organisation.id", ondelete="CASCADE"
    )
    seq: int  # 1, 2, 3 … within the organisation (None organisation: its own sequence)
    # The key that made the dispatch: its webhook, if any, is told. None for a dispatch made on
    # the command line, or once the key is deleted.
    api_key_id: int | None = Field(
        default=None, foreign_key="api_key.id", ondelete="SET NULL", index=True
    )
    dispatch_id: str = Field(max_length=32, index=True)
    type: str = Field(max_length=32)  # an EventType
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
