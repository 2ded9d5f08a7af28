"""``/metrics`` in Prometheus' text format, written by hand (a few counters and gauges do not
need a dependency).

Counters are this process's since it started (Prometheus handles restarts); gauges read the
database, so every instance reports the same queue. Only counts and ages: no ids, no text.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from bot import outbox
from bot.models import Channel, utcnow
from bot.runtime import Runtime

PREFIX = "sikkerhetsnett"
# Each channel's metrics keep the names they had when each had its own table and sender.
NAMES = {Channel.TELEGRAM: "outbox", Channel.SMS: "sms", Channel.WEBHOOK: "clinic_webhook"}
COUNTER_NAMES = {
    Channel.TELEGRAM: "outbox_messages_total",
    Channel.SMS: "sms_total",
    Channel.WEBHOOK: "clinic_webhook_deliveries_total",
}

log = logging.getLogger(__name__)


def lag_seconds(depth: outbox.Depth, now: dt.datetime) -> float:
    """How long the oldest due row has waited past its time (0 when nothing is due)."""
    if depth.oldest_due is None or depth.due == 0:
        return 0.0
    return max(0.0, (now - depth.oldest_due).total_seconds())


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
        for channel, counter in COUNTER_NAMES.items():
            if channel not in sender.channels:
                continue
            stats = sender.stats(channel)
            out.metric(
                counter,
                "counter",
                f"Queued {channel} messages by outcome in this process (retried counts attempts).",
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
            "Times Telegram answered 429 and all sending to it paused.",
            sender.stats(Channel.TELEGRAM).throttled,
        )
        for name in NAMES.values():
            out.metric(
                f"{name}_last_tick_age_seconds",
                "gauge",
                "Seconds since the sender last looked for due rows (-1: never).",
                _age(now, sender.last_tick),
            )
    try:
        depths = [(NAMES[c], await outbox.depth(rt.sessions, c, now)) for c in NAMES]
    except Exception:  # the counters above are still worth having; /healthz says more
        log.warning("metrics: could not read the queue")
        depths = []
    out.metric(
        "database_up",
        "gauge",
        "Whether the queue could be read just now.",
        int(bool(depths)),
    )
    for name, depth in depths:
        out.metric(
            f"{name}_depth",
            "gauge",
            f"Queued {name} messages waiting (pending or being sent), due now or later.",
            depth.waiting,
        )
        out.metric(f"{name}_due", "gauge", f"Queued {name} messages due now.", depth.due)
        out.metric(
            f"{name}_due_lag_seconds",
            "gauge",
            f"Age of the oldest due {name} message past its due time (0: none due).",
            lag_seconds(depth, now),
        )
    return out.text()
