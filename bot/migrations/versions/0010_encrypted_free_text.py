"""free text encrypted at rest: a dispatch's note and risk groups, a leader's answer

``dispatch.note`` and ``dispatch.risk_groups`` become one ``dispatch.tailoring``, Fernet of
``{"note": …, "risk_groups": […]}``; ``prompt.answer_text`` becomes ``prompt.answer_ciphertext``.
Existing rows are encrypted here, with the keys the bot uses (derived from SECRET_KEY, as for
the SMS queue): given by ``python -m bot db upgrade``, or read from the environment. A database
with no such rows needs no key. Downgrading decrypts them back.

Revision ID: 0010_encrypted_free_text
Revises: 0009_lookup_audit
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import context, op

revision: str = "0010_encrypted_free_text"
down_revision: str | None = "0009_lookup_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# The purposes bot.services.dispatches.TAILORING and bot.services.leaders.ANSWER; written out
# here, as a migration must not change when the code does.
DISPATCH, ANSWER = "dispatch", "answer"
BATCH = 500


def _cipher(purpose: str) -> Any:
    from bot.migrate import secrets_for_migration
    from bot.privacy import Cipher

    given = context.config.attributes.get("secrets")
    return Cipher(secrets_for_migration(given), purpose)


def _batches(bind: Any, query: Any) -> Any:
    """The rows of ``query`` (ordered by id), BATCH at a time, so a large table is not loaded
    whole."""
    last: Any = None
    while True:
        page = query if last is None else query.where(sa.column("id") > last)
        rows = bind.execute(page.limit(BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tailoring", sa.Text(), nullable=True))
    with op.batch_alter_table("prompt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer_ciphertext", sa.Text(), nullable=True))

    bind = op.get_bind()
    dispatch = sa.table(
        "dispatch",
        sa.column("id", sa.String),
        sa.column("note", sa.String),
        sa.column("risk_groups", sa.JSON),
        sa.column("tailoring", sa.Text),
    )
    query = (
        sa.select(dispatch.c.id, dispatch.c.note, dispatch.c.risk_groups)
        .where(sa.or_(dispatch.c.note.is_not(None), dispatch.c.risk_groups.is_not(None)))
        .order_by(dispatch.c.id)
    )
    cipher = None
    for rows in _batches(bind, query):
        for dispatch_id, note, groups in rows:
            groups = list(groups or [])
            if note is None and not groups:
                continue
            cipher = cipher or _cipher(DISPATCH)
            sealed = cipher.encrypt(json.dumps({"note": note, "risk_groups": groups}))
            bind.execute(
                dispatch.update().where(dispatch.c.id == dispatch_id).values(tailoring=sealed)
            )

    prompt = sa.table(
        "prompt",
        sa.column("id", sa.Integer),
        sa.column("answer_text", sa.Text),
        sa.column("answer_ciphertext", sa.Text),
    )
    query = (
        sa.select(prompt.c.id, prompt.c.answer_text)
        .where(prompt.c.answer_text.is_not(None))
        .order_by(prompt.c.id)
    )
    cipher = None
    for rows in _batches(bind, query):
        for prompt_id, text in rows:
            cipher = cipher or _cipher(ANSWER)
            bind.execute(
                prompt.update()
                .where(prompt.c.id == prompt_id)
                .values(answer_ciphertext=cipher.encrypt(text))
            )

    with op.batch_alter_table("prompt", schema=None) as batch_op:
        batch_op.drop_column("answer_text")
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.drop_column("risk_groups")
        batch_op.drop_column("note")


def downgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
        batch_op.add_column(sa.Column("risk_groups", sa.JSON(), nullable=True))
    with op.batch_alter_table("prompt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer_text", sa.Text(), nullable=True))

    bind = op.get_bind()
    dispatch = sa.table(
        "dispatch",
        sa.column("id", sa.String),
        sa.column("note", sa.String),
        sa.column("risk_groups", sa.JSON),
        sa.column("tailoring", sa.Text),
    )
    bind.execute(dispatch.update().values(risk_groups=[]))
    query = (
        sa.select(dispatch.c.id, dispatch.c.tailoring)
        .where(dispatch.c.tailoring.is_not(None))
        .order_by(dispatch.c.id)
    )
    cipher, unreadable = None, 0
    for rows in _batches(bind, query):
        for dispatch_id, sealed in rows:
            cipher = cipher or _cipher(DISPATCH)
            plain = cipher.decrypt(sealed)
            if plain is None:
                unreadable += 1
                continue
            data = json.loads(plain)
            bind.execute(
                dispatch.update()
                .where(dispatch.c.id == dispatch_id)
                .values(note=data.get("note"), risk_groups=data.get("risk_groups") or [])
            )

    prompt = sa.table(
        "prompt",
        sa.column("id", sa.Integer),
        sa.column("answer_text", sa.Text),
        sa.column("answer_ciphertext", sa.Text),
    )
    query = (
        sa.select(prompt.c.id, prompt.c.answer_ciphertext)
        .where(prompt.c.answer_ciphertext.is_not(None))
        .order_by(prompt.c.id)
    )
    cipher = None
    for rows in _batches(bind, query):
        for prompt_id, sealed in rows:
            cipher = cipher or _cipher(ANSWER)
            text = cipher.decrypt(sealed)
            if text is None:
                unreadable += 1
                continue
            bind.execute(prompt.update().where(prompt.c.id == prompt_id).values(answer_text=text))
    if unreadable:
        log.warning(
            "%d encrypted values could not be read with the keys given; left empty", unreadable
        )

    with op.batch_alter_table("prompt", schema=None) as batch_op:
        batch_op.drop_column("answer_ciphertext")
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.alter_column("risk_groups", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("tailoring")
