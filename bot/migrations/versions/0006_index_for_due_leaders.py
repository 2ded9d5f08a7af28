"""index for due leaders

The tick asks for active leaders whose next_due_at has come, in due order. With only the
single-column indexes SQLite chose ix_leader_status_paused_until and sorted every active leader
(3.3 ms at 10,000 leaders, ~30 ms at 100,000); with (status, next_due_at) it is an index range.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leader", schema=None) as batch_op:
        batch_op.create_index(
            "ix_leader_status_next_due_at", ["status", "next_due_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("leader", schema=None) as batch_op:
        batch_op.drop_index("ix_leader_status_next_due_at")
