"""webhooks: a key's signed webhook, and queued clinic events

``api_key`` gains the webhook's URL, its signing secret (Fernet, "webhook" key), the previous
secret during a rotation's grace, when a 410 turned it off, and its last outcomes for /status.
``outbox`` gains the two references a queued ``clinic_event`` row needs: the event (SET NULL
when it is purged: the row then fails cleanly) and the key it goes to (CASCADE). New nullable
columns only: nothing to move.

Revision ID: 0017_webhooks
Revises: 0016_dispatch_expired_event
Create Date: 2026-12-02 13:33:22.954209
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.models

revision: str = "0017_webhooks"
down_revision: str | None = "0016_dispatch_expired_event"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
        batch_op.add_column(
            sa.Column("webhook_secret", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "webhook_previous_secret",
                sqlmodel.sql.sqltypes.AutoString(length=500),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("webhook_previous_until", bot.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("webhook_disabled_at", bot.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("webhook_last_success_at", bot.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("webhook_last_failure_at", bot.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "webhook_last_failure", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True
            )
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clinic_event_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbox_api_key_id"), ["api_key_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbox_clinic_event_id"), ["clinic_event_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_clinic_event_id_clinic_event"),
            "clinic_event",
            ["clinic_event_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_api_key_id_api_key"),
            "api_key",
            ["api_key_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_outbox_api_key_id_api_key"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_outbox_clinic_event_id_clinic_event"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_outbox_clinic_event_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_api_key_id"))
        batch_op.drop_column("api_key_id")
        batch_op.drop_column("clinic_event_id")

    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_column("webhook_last_failure")
        batch_op.drop_column("webhook_last_failure_at")
        batch_op.drop_column("webhook_last_success_at")
        batch_op.drop_column("webhook_disabled_at")
        batch_op.drop_column("webhook_previous_until")
        batch_op.drop_column("webhook_previous_secret")
        batch_op.drop_column("webhook_secret")
        batch_op.drop_column("webhook_url")
