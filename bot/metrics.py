"""``/metrics`` in Prometheus' text format, written by hand (a few counters and gauges do not
need a dependency).

Counters are this process's since it started (Prometheus handles restarts); gauges read the
database, so every instance reports the same queue. Only counts and ages: no ids, no text.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from bot.models import OutboxMessage, OutboxStatus, SmsMessage, utcnow
from bot.runtime import Runtime

PREFIX = "sikkerhetsnett"
WAITING = (OutboxStatus.PENDING, OutboxStatus.SENDING)
TABLES = (("outbox", OutboxMessage), ("sms", SmsMessage))

log = logging.getLogger(__name__)


@dataclass
class Queue:
    """Rows waiting in a queue table: all of them, those due now, and the oldest due time."""

    waiting: int
    due: int
    oldest_due: dt.datetime | None

    def lag_seconds(self, now: dt.datetime) -> float:
        """How long the oldest due row has waited past its time (0 when nothing is due)."""
        if self.oldest_due is None:
            return 0.0
        return max(0.0, (now - self.oldest_due).total_seconds())


async def queue(rt: Runtime, table: Any, now: dt.datetime) -> Queue:
    async with rt.sessions() as session:
        due = table.due_at <= now
        connection = await session.connection()
        row = (
            await connection.execute(
                select(
                    func.count(),
                    func.count().filter(due),
                    func.min(table.due_at).filter(due),
                ).where(table.status.in_(WAITING))
            )
        ).one()
    oldest = row[2]
    if isinstance(oldest, dt.datetime) and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return Queue(int(row[0]), int(row[1]), oldest)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(
        self, name: str, kind: str, help_text: str, samples: Mapping[str, float] | float
    ) -> None:
        """One metric; ``samples`` maps a label value to a number (label given as 'key=value')."""
        full = f"{PREFIX}_{name}"
        self.lines.append(f"# HELP {full} {help_text}")
        self.lines.append(f"# TYPE {full} {kind}")
        if isinstance(samples, Mapping):
            for label, value in sorted(samples.items()):
                key, _, val = label.partition("=")
                self.lines.append(f'{full}{{{key}="{_escape(val)}"}} {_number(value)}')
        else:
            self.lines.append(f"{full} {_number(samples)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}"


def _age(now: dt.datetime, then: dt.datetime | None) -> float:
    return -1.0 if then is None else max(0.0, (now - then).total_seconds())


async def render(
    rt: Runtime,
    *,
    updates: Mapping[str, int],
    webhook: Mapping[str, int] | None = None,
) -> str:
    """The whole /metrics page."""
    now = utcnow()
    out = _Writer()
    out.metric(
        "updates_handled_total",
        "counter",
        "Telegram updates handled by this process, by type.",
        {f"type={kind}": count for kind, count in updates.items()},
    )
    if webhook is not None:
        out.metric(
            "webhook_requests_total",
            "counter",
            "Requests to the webhook path, by outcome (accepted, duplicate, forbidden, …).",
            {f"outcome={outcome}": count for outcome, count in webhook.items()},
        )
    sender = rt.sender
    if sender is not None:
        stats = sender.stats
        out.metric(
            "outbox_messages_total",
            "counter",
            "Outbox messages by outcome in this process (retried counts attempts).",
            {
                "outcome=sent": stats.sent,
                "outcome=retried": stats.retried,
                "outcome=failed": stats.failed,
                "outcome=expired": stats.expired,
            },
        )
        out.metric(
            "outbox_flood_waits_total",
            "counter",
            "Times Telegram answered 429 and all sending paused.",
            stats.flood_waits,
        )
        out.metric(
            "outbox_last_tick_age_seconds",
            "gauge",
            "Seconds since the outbox sender last looked for due rows (-1: never).",
            _age(now, stats.last_tick),
        )
    sms = rt.sms_sender
    if sms is not None:
        out.metric(
            "sms_total",
            "counter",
            "SMS by outcome in this process (retried counts attempts).",
            {
                "outcome=sent": sms.stats.sent,
                "outcome=retried": sms.stats.retried,
                "outcome=failed": sms.stats.failed,
                "outcome=expired": sms.stats.expired,
            },
        )
        out.metric(
            "sms_last_tick_age_seconds",
            "gauge",
            "Seconds since the SMS sender last looked for due rows (-1: never).",
            _age(now, sms.stats.last_tick),
        )
    try:
        queues = [(name, await queue(rt, table, now)) for name, table in TABLES]
    except Exception:  # the counters above are still worth having; /healthz says more
        log.warning("metrics: could not read the queue tables")
        queues = []
    out.metric(
        "database_up",
        "gauge",
        "Whether the queue tables could be read just now.",
        int(bool(queues)),
    )
    for name, waiting in queues:
        out.metric(
            f"{name}_depth",
            "gauge",
            f"Rows waiting in the {name} table (pending or being sent), due now or later.",
            waiting.waiting,
        )
        out.metric(f"{name}_due", "gauge", f"Rows in the {name} table due now.", waiting.due)
        out.metric(
            f"{name}_due_lag_seconds",
            "gauge",
            f"Age of the oldest due row in the {name} table past its due time (0: none due).",
            waiting.lag_seconds(now),
        )
    return out.text()
