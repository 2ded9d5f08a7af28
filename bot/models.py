"""Tables, as SQLModel classes. One class per domain concept, named as in the docs.

Times are stored as UTC (naive in the database, aware in Python, see ``UTCDateTime``).
Only models live here; queries belong to the services and the outbox.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, MetaData, TypeDecorator
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


class Person(SQLModel, table=True):
    """Someone who has written to the bot: a caller or a leader. Holds the language choice."""

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_type=BigInteger, unique=True, index=True)
    locale: str = Field(max_length=8)
    locale_chosen: bool = False  # an explicit choice; otherwise a guess from Telegram
    blocked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboxStatus:
    PENDING = "pending"  # waiting for due_at
    SENDING = "sending"  # claimed by a sender until claimed_until
    SENT = "sent"
    FAILED = "failed"  # given up: 400, 403 or too many attempts
    EXPIRED = "expired"  # its window passed before it could be sent: never sent stale


class OutboxMessage(SQLModel, table=True):
    """A message the bot sends on its own initiative, written with its cause, sent by the sender."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_status_due_at", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", ondelete="CASCADE")
    chat_id: int = Field(sa_type=BigInteger)
    method: str = Field(default="sendMessage", max_length=40)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    due_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    telegram_message_id: int | None = Field(default=None, sa_type=BigInteger)
    last_error: str | None = Field(default=None, max_length=200)  # error class only, no text
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """A key a clinic's call system uses for the HTTP API. Only its SHA-256 is stored."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)  # the clinic or system, for people reading the list
    key_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


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


class Dispatch(SQLModel, table=True):
    """Advice sent to one caller after one call: what was sent, and what the caller did with it.

    Caller data: deleted after ``RETENTION_DAYS``, or at once when the caller asks.
    """

    id: str = Field(primary_key=True, max_length=32)  # random hex, safe to show to a call system
    api_key_id: int | None = Field(
        default=None, foreign_key="api_key.id", ondelete="SET NULL", index=True
    )
    topic_id: str = Field(max_length=40)
    topic_version: int  # the version the caller was shown (updated when the link is opened)
    locale: str = Field(max_length=8)  # the language the advice was sent in
    note: str | None = Field(default=None, max_length=500)  # the nurse's note, free text
    risk_groups: list[str] = Field(default_factory=list, sa_type=JSON)
    checkin_hours: int | None = None
    phone_hash: str | None = Field(default=None, max_length=64, index=True)  # HMAC, not the number
    token_hash: str = Field(max_length=64, unique=True)  # SHA-256 of the link token
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)  # the link, not the record
    person_id: int | None = Field(
        default=None, foreign_key="person.id", ondelete="CASCADE", index=True
    )
    opened_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    worse_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # first press
    worse_count: int = 0
    checkin_status: str = Field(default=CheckinStatus.NONE, max_length=16)
    checkin_due_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    checkin_answer: str | None = Field(default=None, max_length=16)  # better / same / worse
    checkin_answered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    sms_status: str = Field(default=SmsStatus.NONE, max_length=16)


class SmsMessage(SQLModel, table=True):
    """An SMS waiting to be sent through the clinic's gateway.

    The number and text (which holds the link) are encrypted, and erased once the SMS is sent or
    given up; what remains is the outcome.
    """

    __tablename__ = "sms_message"
    __table_args__ = (Index("ix_sms_message_status_due_at", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dispatch_id: str | None = Field(
        default=None, max_length=32, foreign_key="dispatch.id", ondelete="CASCADE", index=True
    )
    ciphertext: str | None = Field(default=None, max_length=2000)  # Fernet({"to":…, "text":…})
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    due_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=200)  # error class or HTTP status
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
