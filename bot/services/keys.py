"""Key rotation: re-encrypt everything stored encrypted with the current SECRET_KEY.

After ``SECRET_KEY`` is changed (the old one moved to ``SECRET_KEY_FALLBACKS``, so everything
stays readable meanwhile), ``python -m bot keys rotate`` moves every encrypted value to the new
key; then the old key is needed only for what cannot be re-keyed: the phone-number hashes of
dispatches and look-ups made before (HMACs, one way), until they age out.

Each value is rewritten with a conditional update (only if it is still what was read), so a
running bot that sends an SMS or edits an answer meanwhile is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from bot.models import metadata
from bot.runtime import Runtime

# Every encrypted column: (table, its key's purpose, column, the rows of that purpose, as
# {column: values}, or all). Purposes as ``Runtime.cipher``.
ENCRYPTED: list[tuple[str, str, str, dict[str, tuple[str, ...]] | None]] = [
    ("dispatch", "dispatch", "tailoring", None),
    ("prompt", "answer", "answer_ciphertext", None),
    # the queue's secrets: an SMS's number and text; a shared answer waiting for its group
    ("outbox", "sms", "secret", {"kind": ("sms_link",)}),
    ("outbox", "group", "secret", {"kind": ("group_answer",)}),
    ("idempotent_request", "idempotency", "response", None),
    ("raabra_story", "raabra", "text_ciphertext", None),  # a #Råbra story
    ("raabra_story", "raabra", "name_ciphertext", None),  # a named story's signature
    # a clinic webhook's signing secret, and the previous one during a rotation's grace
    ("api_key", "webhook", "webhook_secret", None),
    ("api_key", "webhook", "webhook_previous_secret", None),
]
BATCH = 500


@dataclass
class Rotation:
    table: str
    rotated: int = 0  # re-encrypted with the current key
    current: int = 0  # already with the current key
    unreadable: int = 0  # made with a key that is no longer given: left as it is


async def rotate(rt: Runtime) -> list[Rotation]:
    """Re-encrypt every encrypted value with the current key; what was done, per table."""
    done = []
    for name, purpose, column_name, only in ENCRYPTED:
        table: Any = metadata.tables[name]
        column = table.c[column_name]
        cipher = rt.cipher(purpose)
        # A label per line of output: "outbox:sms" for a purpose's rows of a shared column,
        # "raabra_story.name_ciphertext" where one table has several encrypted columns.
        twice = sum(1 for other, _p, _c, _o in ENCRYPTED if other == name and _o is None) > 1
        label = f"{name}.{column_name}" if twice else name
        result = Rotation(label if only is None else f"{name}:{purpose}")
        last: Any = None
        while True:
            query = select(table.c.id, column).where(column.is_not(None)).order_by(table.c.id)
            for key, values in (only or {}).items():
                query = query.where(table.c[key].in_(values))
            if last is not None:
                query = query.where(table.c.id > last)
            async with rt.sessions() as session:
                connection = await session.connection()  # Core statements, on the session's
                rows = list(await connection.execute(query.limit(BATCH)))
                if not rows:
                    break
                for row_id, sealed in rows:
                    if cipher.is_current(sealed):
                        result.current += 1
                        continue
                    fresh = cipher.rotate(sealed)
                    if fresh is None:
                        result.unreadable += 1
                        continue
                    changed: Any = await connection.execute(
                        update(table)
                        .where(table.c.id == row_id, column == sealed)
                        .values({column_name: fresh})
                    )
                    result.rotated += int(changed.rowcount or 0)
                await session.commit()
            last = rows[-1][0]
        done.append(result)
    return done
