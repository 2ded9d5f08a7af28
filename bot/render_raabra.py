"""What people read of #Råbra, as Telegram HTML: the monthly digest for leaders, a story as its
author sees it, and the sentences that say truthfully who reads a shared story.

Pure functions of (plain values, localised content, a gettext function); used by the digest's
renderer at send time and by ``handlers/raabra.py`` for replies, so both read the same.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.content.schema import Raabra
from bot.i18n import Locale, format_month
from bot.render import TELEGRAM_LIMIT, esc
from bot.services.raabra import Month, SharedStory, parse_month

Gettext = Callable[[str], str]

STORY_IN_DIGEST = 700  # characters of one story in the digest; the report has it whole
ROOM_FOR_THE_END = 500  # kept free for "and n more" and the footnote


def excerpt(text: str, limit: int) -> str:
    """``text`` cut at a word before ``limit`` characters, with " …" if cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip() + " …"


def theme_title(raabra: Raabra | None, theme_id: str | None, _: Gettext) -> str:
    """The theme's title in the reader's language (``raabra`` localised), or "No theme"."""
    theme = raabra.theme(theme_id) if raabra is not None and theme_id else None
    if theme is not None:
        return theme.title
    return _("No theme") if theme_id is None else theme_id


def anonymous_rule(_: Gettext, organisation: str, min_group: int) -> str:
    """The small-group rule in one sentence, the same whether any story was held back or not."""
    return _(
        "Stories told anonymously are shown only in a month when at least {min} people in "
        "{organisation} tell anonymously; otherwise they are neither shown nor counted, so no "
        "one can be recognised. Private stories are shown to no one."
    ).format(min=min_group, organisation=organisation)


def digest_text(month: Month, raabra: Raabra | None, _: Gettext, locale: Locale) -> str:
    """A leader's monthly digest: counts by theme, then the stories (named ones with the name),
    within one Telegram message; the rest, if any, is in the organisation's report."""
    organisation = esc(month.organisation)
    when = format_month(parse_month(month.month), locale)
    parts = [
        "<b>"
        + esc(_("#Råbra: what went well in {organisation}, {month}")).format(
            organisation=organisation, month=esc(when)
        )
        + "</b>\n"
        + esc(_("Stories shared: {count}")).format(count=len(month.shown))
        + "\n"
        + "\n".join(
            f"• {esc(theme_title(raabra, key, _))}: {count}" for key, count in month.counts(raabra)
        )
    ]
    end = "<i>" + esc(anonymous_rule(_, month.organisation, month.min_group)) + "</i>"
    left = len(month.shown)
    used = len(parts[0]) + len(end) + ROOM_FOR_THE_END
    for heading, stories in (
        (_("Told with a name"), month.named),
        (_("Told anonymously"), month.anonymous),
    ):
        if not stories:
            continue
        section = [f"<b>{esc(heading)}</b>"]
        for story in stories:
            block = _story_block(story, raabra, _)
            if used + len(block) + 2 > TELEGRAM_LIMIT:
                break
            section.append(block)
            used += len(block) + 2
            left -= 1
        if len(section) > 1:
            parts.append("\n\n".join(section))
    if left:
        parts.append(
            esc(
                _(
                    "{count} more stories did not fit in this message; the organisation's "
                    "#Råbra report has them all."
                )
            ).format(count=left)
        )
    parts.append(end)
    return "\n\n".join(parts)


def _story_block(story: SharedStory, raabra: Raabra | None, _: Gettext) -> str:
    head = "<i>" + esc(theme_title(raabra, story.theme_id, _)) + "</i>"
    if story.name is not None:
        head += " — " + esc(story.name)
    return head + "\n" + esc(excerpt(story.text, STORY_IN_DIGEST))
