"""the advice page: its own token per dispatch, when it was opened, clinics' display names

- ``dispatch.page_token_hash``: the SHA-256 of the token in the page's URL (``/r/<token>``);
  None for dispatches made before (they have no page). Unique.
- ``dispatch.page_opened_at``: when the page was first seen in a browser.
- ``organisation.display_name``: the clinic's name as callers read it (SMS, page).
- ``gone_link``: the hashes of deleted dispatches' page tokens, so their URL answers 410.

Downgrading drops them.

Revision ID: 0013_advice_page
Revises: 0012_raabra
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from bot.models import UTCDateTime

revision: str = "0013_advice_page"
down_revision: str | None = "0012_raabra"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("page_token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("page_opened_at", UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_dispatch_page_token_hash"), ["page_token_hash"]
        )
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    op.create_table(
        "gone_link",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("forget_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_gone_link")),
    )
    with op.batch_alter_table("gone_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gone_link_forget_at"), ["forget_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gone_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gone_link_forget_at"))
    op.drop_table("gone_link")
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_column("display_name")
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_dispatch_page_token_hash"), type_="unique")
        batch_op.drop_column("page_opened_at")
        batch_op.drop_column("page_token_hash")
