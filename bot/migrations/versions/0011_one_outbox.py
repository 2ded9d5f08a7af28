"""one outbox for every channel: typed rows (channel, kind, references), rendered at send time

The Telegram outbox (``outbox_message``: a method and a frozen Bot API payload, keyed by a
string that doubled as a type tag) and the SMS queue (``sms_message``) become one table,
``outbox``. Every row is converted, whatever its state, so nothing queued is lost and claims in
force stay in force (a new sender takes them over when their lease runs out):

- ``checkin:<dispatch>`` → kind ``checkin`` with ``dispatch_id``;
- ``prompt:<leader>:<week>`` → ``weekly_question`` with the ``prompt_id`` of that leader's week;
- ``remind:<prompt>:<n>`` → ``reminder`` with ``prompt_id``;
- any other key (an admin's reload notice) → ``admin_notice`` with its text, as plain text;
- every SMS → ``sms_link`` with ``dispatch_id`` and its ciphertext as ``secret``.

The old key is kept as ``dedupe_key``, so a question queued before the upgrade is not queued
again after it. A row whose dispatch or prompt no longer exists could not be written any more
and is not carried over. This is the one place old keys are read, once. Rows get an
``expires_at`` where they had none (their kind's default life).

Downgrade moves SMS rows and admin notices back; queued check-ins and weekly questions have no
text to go back to (it is written at send time now) and are dropped, with a warning.

Revision ID: 0011_one_outbox
Revises: 0010_encrypted_free_text
"""

from __future__ import annotations

import datetime as dt
import html
import re
import sys
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.models

revision: str = "0011_one_outbox"
down_revision: str | None = "0010_encrypted_free_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIFE = {  # hours: the kinds' default life (bot.outbox.KINDS), as of this revision
    "checkin": 2,
    "weekly_question": 12,
    "reminder": 12,
    "admin_notice": 24,
    "sms_link": 6,
}


def _outbox_table() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("dedupe_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("dispatch_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("prompt_id", sa.Integer(), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("due_at", bot.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", bot.models.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("claimed_until", bot.models.UTCDateTime(), nullable=True),
        sa.Column("sent_at", bot.models.UTCDateTime(), nullable=True),
        sa.Column("provider_message_id", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispatch_id"],
            ["dispatch.id"],
            name=op.f("fk_outbox_dispatch_id_dispatch"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_outbox_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompt.id"],
            name=op.f("fk_outbox_prompt_id_prompt"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_status_due_at", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_dispatch_id"), ["dispatch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_prompt_id"), ["prompt_id"], unique=False)


def _as_utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands back text
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=None)


def _plain(payload: Any) -> str:
    """An old payload's text as plain text (HTML tags dropped where it was HTML)."""
    if isinstance(payload, str):
        import json

        payload = json.loads(payload)
    text = str((payload or {}).get("text") or "")
    if (payload or {}).get("parse_mode") == "HTML":
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return text


def upgrade() -> None:
    _outbox_table()
    conn = op.get_bind()
    meta = sa.MetaData()
    old = sa.Table("outbox_message", meta, autoload_with=conn)
    sms = sa.Table("sms_message", meta, autoload_with=conn)
    dispatch = sa.Table("dispatch", meta, autoload_with=conn)
    prompt = sa.Table("prompt", meta, autoload_with=conn)
    new = sa.Table("outbox", meta, autoload_with=conn)
    dispatches = {row[0] for row in conn.execute(sa.select(dispatch.c.id))}
    prompts = {int(row[0]) for row in conn.execute(sa.select(prompt.c.id))}
    weeks = {
        (int(row[0]), str(row[1])): int(row[2])
        for row in conn.execute(sa.select(prompt.c.leader_id, prompt.c.week, prompt.c.id))
    }
    rows: list[dict[str, Any]] = []
    dropped = 0
    for r in conn.execute(sa.select(old)).mappings():
        key = str(r["idempotency_key"])
        refs: dict[str, Any] = {}
        if key.startswith("checkin:") and key[8:] in dispatches:
            kind, refs = "checkin", {"dispatch_id": key[8:]}
        elif key.startswith("prompt:") and key.count(":") == 2:
            _prefix, leader, week = key.split(":")
            found = weeks.get((int(leader), week)) if leader.isdigit() else None
            kind, refs = ("weekly_question", {"prompt_id": found}) if found else ("", {})
        elif key.startswith("remind:") and key.split(":")[1].isdigit():
            found = int(key.split(":")[1])
            kind, refs = ("reminder", {"prompt_id": found}) if found in prompts else ("", {})
        elif key.startswith(("checkin:", "prompt:", "remind:")):
            kind = ""
        else:
            kind, refs = "admin_notice", {"payload": {"text": _plain(r["payload"])}}
        if not kind:
            dropped += 1
            continue
        due = _as_utc(r["due_at"])
        assert due is not None
        rows.append(
            {
                "channel": "telegram",
                "kind": kind,
                "dedupe_key": key,
                "person_id": r["person_id"],
                "dispatch_id": None,
                "prompt_id": None,
                "chat_id": r["chat_id"],
                "secret": None,
                "payload": None,
                **refs,
                "status": r["status"],
                "due_at": due,
                "expires_at": _as_utc(r["expires_at"]) or due + dt.timedelta(hours=LIFE[kind]),
                "attempts": r["attempts"],
                "claimed_by": r["claimed_by"],
                "claimed_until": _as_utc(r["claimed_until"]),
                "sent_at": _as_utc(r["sent_at"]),
                "provider_message_id": r["telegram_message_id"],
                "last_error": r["last_error"],
                "created_at": _as_utc(r["created_at"]),
            }
        )
    for r in conn.execute(sa.select(sms)).mappings():
        due = _as_utc(r["due_at"])
        assert due is not None
        rows.append(
            {
                "channel": "sms",
                "kind": "sms_link",
                "dedupe_key": None,
                "person_id": None,
                "dispatch_id": r["dispatch_id"],
                "prompt_id": None,
                "chat_id": None,
                "secret": r["ciphertext"],
                "payload": None,
                "status": r["status"],
                "due_at": due,
                "expires_at": _as_utc(r["expires_at"])
                or due + dt.timedelta(hours=LIFE["sms_link"]),
                "attempts": r["attempts"],
                "claimed_by": r["claimed_by"],
                "claimed_until": _as_utc(r["claimed_until"]),
                "sent_at": _as_utc(r["sent_at"]),
                "provider_message_id": None,
                "last_error": r["last_error"],
                "created_at": _as_utc(r["created_at"]),
            }
        )
    if rows:
        # Through a plain table (naive UTC): UTCDateTime would refuse the naive values.
        plain = sa.table(
            "outbox",
            *(
                sa.column(
                    c.name, sa.DateTime() if isinstance(c.type, bot.models.UTCDateTime) else c.type
                )
                for c in new.columns
                if c.name != "id"
            ),
        )
        conn.execute(sa.insert(plain), rows)
    if dropped:
        print(
            f"0011: {dropped} queued message(s) whose dispatch or prompt is gone "
            "were not carried over",
            file=sys.stderr,
        )
    op.drop_table("outbox_message")  # and its indexes
    op.drop_table("sms_message")


def downgrade() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("due_at", bot.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", bot.models.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("claimed_until", bot.models.UTCDateTime(), nullable=True),
        sa.Column("sent_at", bot.models.UTCDateTime(), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_outbox_message_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_message_idempotency_key")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_message_status_due_at", ["status", "due_at"], unique=False)
    op.create_table(
        "sms_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispatch_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("ciphertext", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("due_at", bot.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", bot.models.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("claimed_until", bot.models.UTCDateTime(), nullable=True),
        sa.Column("sent_at", bot.models.UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispatch_id"],
            ["dispatch.id"],
            name=op.f("fk_sms_message_dispatch_id_dispatch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_message")),
    )
    with op.batch_alter_table("sms_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sms_message_dispatch_id"), ["dispatch_id"], unique=False
        )
        batch_op.create_index("ix_sms_message_status_due_at", ["status", "due_at"], unique=False)
    conn = op.get_bind()
    meta = sa.MetaData()
    new = sa.Table("outbox", meta, autoload_with=conn)
    common = [
        "status",
        "due_at",
        "expires_at",
        "attempts",
        "claimed_by",
        "claimed_until",
        "sent_at",
        "last_error",
        "created_at",
    ]
    dropped = 0
    for r in conn.execute(sa.select(new)).mappings():
        values = {c: r[c] for c in common}
        if r["kind"] == "sms_link":
            conn.execute(
                sa.table(
                    "sms_message", *(sa.column(c) for c in [*common, "dispatch_id", "ciphertext"])
                ).insert(),
                {**values, "dispatch_id": r["dispatch_id"], "ciphertext": r["secret"]},
            )
        elif r["kind"] == "admin_notice" and r["chat_id"] is not None:
            conn.execute(
                sa.table(
                    "outbox_message",
                    *(
                        sa.column(c)
                        for c in [
                            *common,
                            "idempotency_key",
                            "person_id",
                            "chat_id",
                            "method",
                            "payload",
                            "telegram_message_id",
                        ]
                    ),
                ).insert(),
                {
                    **values,
                    "idempotency_key": r["dedupe_key"] or f"notice:{r['id']}",
                    "person_id": r["person_id"],
                    "chat_id": r["chat_id"],
                    "method": "sendMessage",
                    "payload": r["payload"],
                    "telegram_message_id": r["provider_message_id"],
                },
            )
        elif r["status"] in ("pending", "sending"):
            dropped += 1
    if dropped:
        print(f"0011 downgrade: {dropped} queued message(s) dropped", file=sys.stderr)
    op.drop_table("outbox")
