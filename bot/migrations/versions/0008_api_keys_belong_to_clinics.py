"""API keys belong to clinics; dispatches to the clinic that made them; clinics share by region

Re-contact look-ups see only the asking clinic's dispatches (and its region's). Existing rows:

- every API key gets the organisation with the key's own name (trimmed, case ignored, as
  ``invite create`` matches names), made if there is none: keys are named for their clinic, so
  each clinic's keys land together, and no key sees another clinic's dispatches any more;
- every dispatch gets its key's organisation; one made on the command line (no key) gets none,
  and is then found only by ``python -m bot dispatch recontacts``;
- no organisation is in a region: sharing is switched on by an admin (``org region``).

Downgrading drops the three columns (the organisations made stay).

Revision ID: 0008_api_keys_belong_to_clinics
Revises: 0007
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008_api_keys_belong_to_clinics"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_organisation = sa.table(
    "organisation",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("created_at", sa.DateTime),
)
_api_key = sa.table(
    "api_key",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("organisation_id", sa.Integer),
)
_dispatch = sa.table(
    "dispatch",
    sa.column("api_key_id", sa.Integer),
    sa.column("organisation_id", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("region", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
        )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))

    bind = op.get_bind()
    organisations = {
        " ".join(name.split()).casefold(): org_id
        for org_id, name in bind.execute(
            sa.select(_organisation.c.id, _organisation.c.name).order_by(_organisation.c.id)
        )
    }
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # stored naive UTC, as UTCDateTime does
    for key_id, name in list(bind.execute(sa.select(_api_key.c.id, _api_key.c.name))):
        clinic = " ".join(name.split())[:200] or f"API key {key_id}"
        org_id = organisations.get(clinic.casefold())
        if org_id is None:
            org_id = bind.execute(
                _organisation.insert()
                .values(name=clinic, created_at=now)
                .returning(_organisation.c.id)
            ).scalar_one()
            organisations[clinic.casefold()] = org_id
        bind.execute(
            _api_key.update().where(_api_key.c.id == key_id).values(organisation_id=org_id)
        )
    bind.execute(
        _dispatch.update()
        .where(_dispatch.c.api_key_id.is_not(None))
        .values(
            organisation_id=sa.select(_api_key.c.organisation_id)
            .where(_api_key.c.id == _dispatch.c.api_key_id)
            .scalar_subquery()
        )
    )

    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.alter_column("organisation_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(
            batch_op.f("ix_api_key_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_api_key_organisation_id_organisation"),
            "organisation",
            ["organisation_id"],
            ["id"],
        )
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dispatch_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_dispatch_organisation_id_organisation"),
            "organisation",
            ["organisation_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_dispatch_organisation_id_organisation"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_dispatch_organisation_id"))
        batch_op.drop_column("organisation_id")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_api_key_organisation_id_organisation"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_api_key_organisation_id"))
        batch_op.drop_column("organisation_id")
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_column("region")
