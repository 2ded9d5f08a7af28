"""What flows between the queue, the renderers and the channel adapters, channel-neutral.

A renderer turns a queued row into a ``Message`` (text, and buttons as typed callback values);
a channel adapter sends it and classifies what happened into one ``Outcome`` of a closed set.
The sender (``bot.sender``) acts on the outcome; adapters never touch the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.callbacks import CallbackData
from bot.models import Channel, OutboxMessage


@dataclass(frozen=True)
class Button:
    """An inline button: what it says, and what pressing it sends back."""

    label: str
    data: CallbackData


Buttons = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class Message:
    """One message as people read it, whatever the channel.

    ``text`` is Telegram HTML when ``html`` (escaped by the renderer), plain text otherwise.
    ``recipient`` is for channels whose address is itself a secret (an SMS's number): the
    renderer takes it out of the row's encrypted ``secret``. ``signing`` holds what a channel
    signs the text with (a webhook's secrets), decrypted at send time, never shown in a repr.
    """

    text: str
    buttons: Buttons = ()
    html: bool = True
    recipient: str | None = None
    signing: tuple[str, ...] = field(default=(), repr=False)


def rows(*rows: Sequence[tuple[str, CallbackData]]) -> Buttons:
    """Buttons from rows of ``(label, callback value)``."""
    return tuple(tuple(Button(label, data) for label, data in row) for row in rows)


# --- outcomes: the closed set every adapter classifies into ----------------------------------


@dataclass(frozen=True)
class Sent:
    """Delivered; ``provider_id`` is the channel's id for it (Telegram's message_id).
    ``delivered`` is False for a channel that only pretends (the console SMS provider)."""

    provider_id: int | None = None
    delivered: bool = True


@dataclass(frozen=True)
class Throttled:
    """The channel asks us to wait ``retry_after`` seconds: pause it; not a failed attempt."""

    retry_after: float


@dataclass(frozen=True)
class Stopped:
    """The person stopped us (blocked the bot): mark them, drop their queued messages."""


@dataclass(frozen=True)
class Transient:
    """Worth trying again (network, 5xx, timeouts): back off, until the row's expiry.

    ``pause_channel``: the way to every message of the channel is likely down (a gateway, the
    Bot API), so the whole channel pauses. False where each row has its own destination (a
    clinic's webhook): only the row, and those queued behind it for the same address, wait.
    """

    reason: str
    pause_channel: bool = True


@dataclass(frozen=True)
class Permanent:
    """Trying again will not help (refused for good); give up with a reason.

    ``address_gone``: the address itself is gone for good (a webhook answered 410), so the
    rows queued behind this one for it are handed back, to be written again (and find it gone).
    """

    reason: str
    address_gone: bool = False


Outcome = Sent | Throttled | Stopped | Transient | Permanent


class ChannelAdapter(Protocol):
    """Sends one rendered message of its channel and says what happened. Never raises."""

    channel: Channel
    concurrency: int  # how many messages of this channel may be in flight at once

    async def ready(self, row: OutboxMessage) -> None:
        """Wait for the channel's go-ahead (a rate limit's slot). The sender may cancel this
        wait (stopping); nothing is sent before it returns."""
        ...

    async def send(self, row: OutboxMessage, message: Message) -> Outcome:
        """Send now (``ready`` has returned) and classify the outcome."""
        ...
