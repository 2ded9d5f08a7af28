"""clinic events: what happened to a clinic's dispatches, for its feed and its webhook

``clinic_event`` holds one row per event (``bot.services.clinic_events``): a stable public id,
a per-clinic sequence number for the feed's order, the dispatch's id (no foreign key: an event
about a deleted dispatch stays) and whitelisted data. New table only: nothing to move; events
start with this migration (older dispatches have none).

Revision ID: 0015_clinic_events
Revises: 0014_team_groups
Create Date: 2026-12-02 13:28:53.740381
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.models

revision: str = "0015_clinic_events"
down_revision: str | None = "0014_team_groups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinic_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("dispatch_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_key.id"],
            name=op.f("fk_clinic_event_api_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_clinic_event_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_event")),
        sa.UniqueConstraint("organisation_id", "seq", name="uq_clinic_event_organisation_id_seq"),
        sa.UniqueConstraint("public_id", name=op.f("uq_clinic_event_public_id")),
    )
    with op.batch_alter_table("clinic_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_clinic_event_api_key_id"), ["api_key_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_clinic_event_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_clinic_event_dispatch_id"), ["dispatch_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("clinic_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinic_event_dispatch_id"))
        batch_op.drop_index(batch_op.f("ix_clinic_event_created_at"))
        batch_op.drop_index(batch_op.f("ix_clinic_event_api_key_id"))

    op.drop_table("clinic_event")
