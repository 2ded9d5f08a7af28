"""an audit log of re-contact look-ups

Who asked (API key or command line), when, for how many hours back, how many dispatches were
shown, and the number only as its keyed hash. Nothing to move: look-ups were not recorded before.

Revision ID: 0009_lookup_audit
Revises: 0008_api_keys_belong_to_clinics
Create Date: 2026-12-02 07:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.models

revision: str = "0009_lookup_audit"
down_revision: str | None = "0008_api_keys_belong_to_clinics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lookup_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("phone_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_key.id"],
            name=op.f("fk_lookup_audit_api_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_lookup_audit_organisation_id_organisation"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookup_audit")),
    )
    with op.batch_alter_table("lookup_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lookup_audit_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lookup_audit_phone_hash"), ["phone_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lookup_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lookup_audit_phone_hash"))
        batch_op.drop_index(batch_op.f("ix_lookup_audit_created_at"))
    op.drop_table("lookup_audit")
