"""The one way the bot says when to call 113 and when 116 117, and the urgency tiers' words.

Every text that names an emergency number is built from the msgids here, so the wording is
agreed once: 113 only where life is in danger, 116 117 for what is urgent. Pure functions of a
gettext function and content; no Telegram, no database. The content check refuses a UI string
that names either number any other way (``AGREED``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.content.schema import TIERS, AdviceTopic, Audience, Tier

Gettext = Callable[[str], str]


def _(message: str) -> str:
    """Mark a string for extraction; it is translated later, per person."""
    return message


# The agreed wordings. Bokmål: "Ved fare for liv: ring 113." / "Haster det: ring legevakten på
# 116 117." Anything urgent but not life-threatening goes to 116 117, never to 113.
CALL_113 = _("If life is in danger: call 113.")
CALL_116117 = _("If it is urgent: call the legevakt on 116 117.")
# For a person who says they are worse and has no advice to look at (it was deleted).
CALL_116117_NOW = _("If you are getting worse: call the legevakt on 116 117 now.")

# The tiers as headings over their signs, most urgent first.
TIER_HEADINGS: dict[Tier, str] = {
    "emergency": _("Call 113 now if"),
    "urgent": _("Call the legevakt on 116 117 now if"),
    "soon": _("Contact a doctor today or on the next working day if"),
}
# Under the "soon" heading: where to call, so nobody waits for a GP who is not there.
SOON_NOTE = _(
    "Call your GP. If the GP's office is closed and it cannot wait, call the legevakt on 116 117."
)
# In the "worse" answer: the same tiers, said as what to do now.
WORSE_HEADINGS: dict[Tier, str] = {
    "emergency": _("Call 113 now if you see any of this:"),
    "urgent": _("Call the legevakt on 116 117 now if you see any of this:"),
    "soon": _("Contact a doctor today or on the next working day if:"),
}
WORSE_OTHERWISE = _("None of these, but getting worse? Call the legevakt on 116 117 now.")

# Every UI msgid that may name 113 or 116 117; the content check holds the catalogs to it.
AGREED: frozenset[str] = frozenset(
    {
        CALL_113,
        CALL_116117,
        CALL_116117_NOW,
        *TIER_HEADINGS.values(),
        SOON_NOTE,
        *WORSE_HEADINGS.values(),
        WORSE_OTHERWISE,
    }
)


def emergency_line(gettext: Gettext) -> str:
    """ "Ved fare for liv: ring 113." — first after the title of every advice."""
    return gettext(CALL_113)


def numbers_line(gettext: Gettext) -> str:
    """Both numbers, as every message a caller can reach ends: no dead end."""
    return gettext(CALL_116117) + " " + gettext(CALL_113)


def worse_numbers_line(gettext: Gettext) -> str:
    """For "I am getting worse" with no advice to show: 116 117 now, 113 if life is in danger."""
    return gettext(CALL_116117_NOW) + " " + gettext(CALL_113)


@dataclass(frozen=True)
class TieredSign:
    """One sign as the caller reads it: its text, and the risk group it came from, if any."""

    tier: Tier
    text: str
    group: str | None = None  # the risk group's label


def signs_by_tier(
    topic: AdviceTopic, risk_groups: Sequence[str] = ()
) -> dict[Tier, list[TieredSign]]:
    """The topic's signs and those of the chosen risk groups, by tier, most urgent first.

    Every tier is a key (an empty list where there is nothing); within a tier the topic's own
    signs come first, then each chosen risk group's, in the file's order.
    """
    chosen = set(risk_groups)
    out: dict[Tier, list[TieredSign]] = {tier: [] for tier in TIERS}
    for sign in topic.worsening_signs:
        out[sign.tier].append(TieredSign(sign.tier, sign.sign))
    for group in topic.tailoring.risk_groups:
        if group.id in chosen:
            for sign in group.signs:
                out[sign.tier].append(TieredSign(sign.tier, sign.sign, group.label))
    return out


# The "worse" button and the hint that points to it name whoever is ill.
WORSE_BUTTONS: dict[Audience, str] = {
    "adults": _("I am getting worse"),
    "children": _("My child is getting worse"),
    "everyone": _("It is getting worse"),
}
WORSE_HINTS: dict[Audience, str] = {
    "adults": _("If you are getting worse, press “{button}” and you will see what to do."),
    "children": _("If your child is getting worse, press “{button}” and you will see what to do."),
    "everyone": _("If it is getting worse, press “{button}” and you will see what to do."),
}


def worse_button(gettext: Gettext, audience: Audience) -> str:
    return gettext(WORSE_BUTTONS[audience])


def worse_hint(gettext: Gettext, audience: Audience) -> str:
    return gettext(WORSE_HINTS[audience]).format(button=worse_button(gettext, audience))
