"""#Råbra: stories of what went well, staff who may send them, and the monthly digests queued

Three new tables and one column, all for #Råbra (issue 17):

- ``raabra_story``: one story (organisation, author, theme, who may read it, the text and a named
  story's signature Fernet-encrypted, the message it came in, when it was shared);
- ``raabra_member``: a member of staff who joined with an invite of kind ``raabra``;
- ``raabra_digest``: a leader's monthly digest was queued (unique per leader and month);
- ``invite.kind``: ``leader`` (every invite made so far) or ``raabra``.

Nothing to move: no story existed before.

Revision ID: 0012_raabra
Revises: 0011_one_outbox
Create Date: 2026-12-02 08:11:39
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.models

revision: str = "0012_raabra"
down_revision: str | None = "0011_one_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "raabra_story",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("theme_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("visibility", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("text_ciphertext", sa.Text(), nullable=True),
        sa.Column("name_ciphertext", sa.Text(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(), nullable=False),
        sa.Column("edited_at", bot.models.UTCDateTime(), nullable=True),
        sa.Column("shared_at", bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_raabra_story_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_raabra_story_person_id_person"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raabra_story")),
    )
    with op.batch_alter_table("raabra_story", schema=None) as batch_op:
        batch_op.create_index(
            "ix_raabra_story_organisation_id_shared_at",
            ["organisation_id", "shared_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_raabra_story_person_id"), ["person_id"], unique=False)

    op.create_table(
        "raabra_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("invite_id", sa.Integer(), nullable=True),
        sa.Column("joined_at", bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invite_id"],
            ["invite.id"],
            name=op.f("fk_raabra_member_invite_id_invite"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_raabra_member_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_raabra_member_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raabra_member")),
        sa.UniqueConstraint("person_id", name=op.f("uq_raabra_member_person_id")),
    )
    with op.batch_alter_table("raabra_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_raabra_member_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "raabra_digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("leader_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["leader_id"],
            ["leader.id"],
            name=op.f("fk_raabra_digest_leader_id_leader"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_raabra_digest_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raabra_digest")),
        sa.UniqueConstraint("leader_id", "month", name="uq_raabra_digest_leader_id_month"),
    )
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="leader",  # every invite made before this revision
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("invite", schema=None) as batch_op:
        batch_op.drop_column("kind")

    op.drop_table("raabra_digest")
    with op.batch_alter_table("raabra_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_raabra_member_organisation_id"))

    op.drop_table("raabra_member")
    with op.batch_alter_table("raabra_story", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_raabra_story_person_id"))
        batch_op.drop_index("ix_raabra_story_organisation_id_shared_at")

    op.drop_table("raabra_story")
