"""dispatch.expired, once: mark the dispatches whose link's life the tick has seen end

- ``dispatch.expiry_noted_at``: when the tick saw ``expires_at`` pass (and told the clinic
  ``dispatch.expired`` if the link was never opened). Indexed with ``expires_at`` for the
  tick's look for links not noted yet.

Links that had already ended before this migration are marked as noted (at their
``expires_at``): clinic events start with 0015, so no ``dispatch.expired`` is told for advice
given before events existed.

Downgrading drops the column and its index.

Revision ID: 0016_dispatch_expired_event
Revises: 0015_clinic_events
Create Date: 2026-12-02 13:33:01.798817
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.models

revision: str = "0016_dispatch_expired_event"
down_revision: str | None = "0015_clinic_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expiry_noted_at", bot.models.UTCDateTime(), nullable=True))
        batch_op.create_index(
            "ix_dispatch_expiry_noted_at_expires_at",
            ["expiry_noted_at", "expires_at"],
            unique=False,
        )
    dispatch = sa.table(
        "dispatch",
        sa.column("expires_at", bot.models.UTCDateTime()),
        sa.column("expiry_noted_at", bot.models.UTCDateTime()),
    )
    op.execute(
        dispatch.update()
        .where(dispatch.c.expires_at <= dt.datetime.now(dt.UTC))
        .values(expiry_noted_at=dispatch.c.expires_at)
    )


def downgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.drop_index("ix_dispatch_expiry_noted_at_expires_at")
        batch_op.drop_column("expiry_noted_at")
