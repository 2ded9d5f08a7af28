"""leader groups: Telegram groups linked to an organisation, and what the bot posts there

``group_link`` holds the single-use ``startgroup`` links (their SHA-256 only), ``team_group``
the linked groups (chat id, title, organisation, optional role, day and time of the weekly
question), ``group_post`` what the bot posts to a group (the week's question, once per ISO
week; a leader's shared answer, once per group), and ``outbox.group_post_id`` the queued
message's reference to it. New tables only: nothing to move.

Downgrade drops messages queued for groups (they could not be written without their post).

Revision ID: 0014_team_groups
Revises: 0013_advice_page
Create Date: 2026-12-02 08:10:47
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.models

revision: str = "0014_team_groups"
down_revision: str | None = "0013_advice_page"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "group_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("role_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("programme_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("minute_of_day", sa.Integer(), nullable=False),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", bot.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", bot.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", bot.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_group_link_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_group_link_token_hash")),
    )
    with op.batch_alter_table("group_link", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_group_link_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "team_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("role_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("programme_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("minute_of_day", sa.Integer(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("next_due_at", bot.models.UTCDateTime(), nullable=True),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("linked_at", bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["group_link.id"],
            name=op.f("fk_team_group_link_id_group_link"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_team_group_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_group")),
        sa.UniqueConstraint("chat_id", name=op.f("uq_team_group_chat_id")),
    )
    with op.batch_alter_table("team_group", schema=None) as batch_op:
        batch_op.create_index("ix_team_group_next_due_at", ["next_due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_team_group_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "group_post",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("week", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("programme_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("theme_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("question_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("prompt_id", sa.Integer(), nullable=True),
        sa.Column("due_at", bot.models.UTCDateTime(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["team_group.id"],
            name=op.f("fk_group_post_group_id_team_group"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompt.id"],
            name=op.f("fk_group_post_prompt_id_prompt"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_post")),
        sa.UniqueConstraint("group_id", "prompt_id", name="uq_group_post_group_id_prompt_id"),
        sa.UniqueConstraint("group_id", "week", name="uq_group_post_group_id_week"),
    )
    with op.batch_alter_table("group_post", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_post_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_group_post_prompt_id"), ["prompt_id"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_post_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_outbox_group_post_id"), ["group_post_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_group_post_id_group_post"),
            "group_post",
            ["group_post_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    outbox = sa.table("outbox", sa.column("kind", sa.String()))
    op.execute(outbox.delete().where(outbox.c.kind.in_(["group_question", "group_answer"])))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_outbox_group_post_id_group_post"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_outbox_group_post_id"))
        batch_op.drop_column("group_post_id")

    with op.batch_alter_table("group_post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_post_prompt_id"))
        batch_op.drop_index(batch_op.f("ix_group_post_group_id"))

    op.drop_table("group_post")
    with op.batch_alter_table("team_group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_group_organisation_id"))
        batch_op.drop_index("ix_team_group_next_due_at")

    op.drop_table("team_group")
    with op.batch_alter_table("group_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_link_organisation_id"))

    op.drop_table("group_link")
