"""What people read, as Telegram HTML: the advice, the "worse" answer, the check-in, the weekly
question, the SMS.

Pure functions of (localised content, a gettext function, plain values). Buttons come back as
typed ``bot.messages.Buttons`` (labels and callback values); the Telegram channel turns them
into inline keyboards, for direct replies and queued messages alike.

The UI strings here are English msgids; each function takes the person's ``_``.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Sequence

from bot import callbacks, urgency
from bot.content.schema import AdviceTopic, Audience, Question, Theme
from bot.i18n import Locale, format_day
from bot.messages import Buttons, rows

Gettext = Callable[[str], str]

TELEGRAM_LIMIT = 4096  # characters in one message, after entity parsing
# The split works on the HTML source, which is at least as long as what Telegram counts.

CHECKIN_ANSWERS = ("better", "same", "worse")


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def _heading(text: str) -> str:
    return f"<b>{esc(text)}</b>\n"


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"• {esc(item)}" for item in items)


def advice_sections(
    topic: AdviceTopic,
    _: Gettext,
    *,
    note: str | None,
    risk_groups: Sequence[str],
    checkin_when: str | None,
) -> list[str]:
    """The advice as sections in reading order; a message boundary may fall between any two.

    Order: the title and at once the 113 line, who the advice is for and what it is; then the
    signs by urgency tier (113, 116 117, a doctor soon), the chosen risk groups' signs among
    them; then the nurse's own words, what to do, what is normal, the risk groups' other
    advice, and what happens next.
    """
    head = f"<b>{esc(topic.title)}</b>\n<b>{esc(urgency.emergency_line(_))}</b>"
    if topic.example:
        head += "\n<i>" + esc(_("Example text: not yet approved by a doctor.")) + "</i>"
    if topic.scope is not None:
        head += "\n" + esc(topic.scope.who)
    sections = [head + "\n" + esc(topic.summary)]
    sections.extend(tier_sections(topic, _, risk_groups))
    if note:
        sections.append(_heading(_("From the nurse you spoke to")) + esc(note))
    sections.append(_heading(_("What you can do yourself")) + _bullets(topic.self_care))
    sections.append(_heading(_("What is normal")) + _bullets(topic.normal))
    chosen = set(risk_groups)
    for group in topic.tailoring.risk_groups:
        if group.id in chosen and group.advice:
            sections.append(_heading(group.label) + esc(group.advice))
    closing = esc(urgency.worse_hint(_, topic.audience))
    if checkin_when:
        closing += "\n" + esc(_("We will ask you how it is going {when}.")).format(
            when=esc(checkin_when)
        )
    sections.append(closing)
    return sections


def tier_sections(topic: AdviceTopic, _: Gettext, risk_groups: Sequence[str] = ()) -> list[str]:
    """One section per urgency tier that has signs: its heading, then its signs as bullets."""
    sections = []
    for tier, signs in urgency.signs_by_tier(topic, risk_groups).items():
        if not signs:
            continue
        section = _heading(_(urgency.TIER_HEADINGS[tier])) + _tiered_bullets(signs)
        if tier == "soon":
            section += "\n" + esc(_(urgency.SOON_NOTE))
        sections.append(section)
    return sections


def _tiered_bullets(signs: Sequence[urgency.TieredSign]) -> str:
    """Bullets; a risk group's sign says whose it is: "• <i>Gravid:</i> …"."""
    return "\n".join(
        f"• <i>{esc(s.group)}:</i> {esc(s.text)}" if s.group else f"• {esc(s.text)}" for s in signs
    )


def when_text(
    _: Gettext, when: dt.datetime, now: dt.datetime, locale: Locale, zone: dt.tzinfo
) -> str:
    """ "today at 18:00", "tomorrow at 09:00", or "on tysdag 1. desember at 09:00"."""
    local, today = when.astimezone(zone), now.astimezone(zone).date()
    time = local.strftime("%H:%M")
    if local.date() == today:
        return _("today at {time}").format(time=time)
    if local.date() == today + dt.timedelta(days=1):
        return _("tomorrow at {time}").format(time=time)
    return _("on {day} at {time}").format(day=format_day(local.date(), locale), time=time)


def split_messages(sections: Sequence[str], limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Join sections into as few messages as fit ``limit``, breaking only between sections.

    A single section longer than the limit is broken between lines (and, for one very long
    line, between words), so nothing is ever cut off.
    """
    pieces: list[str] = []
    for section in sections:
        pieces.extend(_fit(section, limit))
    messages: list[str] = []
    for piece in pieces:
        if messages and len(messages[-1]) + 2 + len(piece) <= limit:
            messages[-1] += "\n\n" + piece
        else:
            messages.append(piece)
    return messages


def _fit(section: str, limit: int) -> list[str]:
    if len(section) <= limit:
        return [section]
    out: list[str] = []
    for line in section.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            out.append(line[:cut])
            line = line[cut:].lstrip()
        if out and len(out[-1]) + 1 + len(line) <= limit:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def advice_buttons(
    _: Gettext, dispatch_id: str, locale: str, audience: Audience = "adults"
) -> Buttons:
    """Under the advice: "worse" first and alone, then the other language, then deletion.

    The "worse" button names whoever is ill: "Jeg blir verre", "Barnet blir verre".
    """
    other: callbacks.Locale
    other, label = ("nn", "Nynorsk") if locale == "nb" else ("nb", "Bokmål")
    return rows(
        [(urgency.worse_button(_, audience), callbacks.Worse(dispatch_id))],
        [
            (
                _("Show in {language}").format(language=label),
                callbacks.AdviceLanguage(dispatch_id, other),
            )
        ],
        [(_("Delete my data"), callbacks.DeleteData())],
    )


def worse_text(topic: AdviceTopic, _: Gettext, risk_groups: Sequence[str] = ()) -> str:
    """What to do now, by tier: 113 for the emergency signs, 116 117 now for the urgent ones
    (the chosen risk groups' among them), and 116 117 for anything else that is getting worse.
    The "soon" signs are left out: whoever presses "worse" needs to act now."""
    tiers = urgency.signs_by_tier(topic, risk_groups)
    parts = []
    for tier in ("emergency", "urgent"):
        if tiers[tier]:
            parts.append(
                "<b>"
                + esc(_(urgency.WORSE_HEADINGS[tier]))
                + "</b>\n"
                + _tiered_bullets(tiers[tier])
            )
    parts.append(
        "<b>"
        + esc(_(urgency.WORSE_OTHERWISE))
        + "</b> "
        + esc(_("Say that you have had written advice about: {topic}.")).format(
            topic=esc(topic.title)
        )
    )
    if not tiers["emergency"]:
        parts.append(esc(urgency.emergency_line(_)))
    return "\n\n".join(parts)


def worse_without_advice(_: Gettext) -> str:
    """ "Worse" on advice that is no longer stored (deleted, or past retention)."""
    return (
        esc(_("This advice is no longer stored here, so it cannot be shown again."))
        + "\n\n<b>"
        + esc(urgency.worse_numbers_line(_))
        + "</b>"
    )


def no_longer_stored(_: Gettext) -> str:
    """Any other button on advice that is no longer stored."""
    return (
        esc(_("This advice is no longer stored here, so this button no longer works."))
        + "\n\n"
        + esc(urgency.numbers_line(_))
    )


def checkin_question(topic: AdviceTopic, _: Gettext) -> str:
    return (
        esc(_("How is it going now? You got advice from the legevakt about: {topic}.")).format(
            topic=esc(topic.title)
        )
        + "\n"
        + esc(urgency.numbers_line(_))
    )


def checkin_buttons(_: Gettext, dispatch_id: str) -> Buttons:
    return rows(
        [
            (_("Better"), callbacks.Checkin(dispatch_id, "better")),
            (_("The same"), callbacks.Checkin(dispatch_id, "same")),
            (_("Worse"), callbacks.Checkin(dispatch_id, "worse")),
        ]
    )


def checkin_reply(answer: str, _: Gettext) -> str:
    """The line after a check-in answer of "better" or "the same" ("worse" gets ``worse_text``)."""
    if answer == "better":
        text = _("Good to hear. Thank you for answering. Get well soon!")
    else:
        text = _("Thank you. Keep following the advice above, and look out for the signs in it.")
    return esc(text) + "\n\n" + esc(urgency.numbers_line(_))


def sms_text(_: Gettext, link: str, hours: int) -> str:
    """The SMS that carries the link: one GSM-7 segment (checked by the caller)."""
    return _(
        "Advice from the legevakt after your call: {link} The link works for {hours} hours."
    ).format(link=link, hours=hours)


# --- the weekly question --------------------------------------------------------------------


def prompt_buttons(_: Gettext, prompt_id: int) -> Buttons:
    """Under a weekly question: answer, skip this week, remind me tomorrow; and, on a row of its
    own, #Råbra: something that went well."""
    return rows(
        [
            (_("Answer"), callbacks.PromptButton("ans", prompt_id)),
            (_("Skip this week"), callbacks.PromptButton("skip", prompt_id)),
            (_("Remind me tomorrow"), callbacks.PromptButton("later", prompt_id)),
        ],
        [(_("Something that went well?"), callbacks.RaabraNew())],
    )


def first_lines(text: str, lines: int = 3, limit: int = 300) -> str:
    """The first ``lines`` lines of ``text``, at most ``limit`` characters, " …" if cut."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    out = "\n".join(kept[:lines])
    cut = len(kept) > lines
    if len(out) > limit:
        out = out[:limit].rsplit(" ", 1)[0] or out[:limit]
        cut = True
    return out.rstrip() + (" …" if cut else "")


def prompt_text(
    theme: Theme,
    question: Question,
    _: Gettext,
    *,
    first_of_theme: bool,
    reminder: bool = False,
    restarted: bool = False,
    earlier: tuple[str, str] | None = None,
) -> str:
    """The weekly question as Telegram HTML, from localised content and the leader's ``_``.

    ``earlier``: (date, first lines) of the leader's answer the last time this question came,
    shown after the question with "what has changed since then?"."""
    parts: list[str] = []
    if reminder:
        parts.append(esc(_("A reminder: this week's question is still open.")))
    if restarted:
        parts.append(
            esc(_("You have been through all the questions; we start again from the first."))
        )
    if first_of_theme:
        head = f"<b>{esc(theme.title)}</b>"
        if theme.intro:
            head += "\n" + esc(theme.intro)
        parts.append(head)
    body = f"<b>{esc(question.text)}</b>"
    if question.follow_ups:
        body += "\n" + "\n".join(f"• {esc(f.text)}" for f in question.follow_ups)
    parts.append(body)
    if earlier is not None:
        day, lines = earlier
        parts.append(
            esc(_("Last time you answered this question ({date}):")).format(date=esc(day))
            + f"\n<i>{esc(lines)}</i>\n"
            + "<b>"
            + esc(_("What has changed since then?"))
            + "</b>"
        )
    if theme.prompt:
        parts.append(f"<i>{esc(theme.prompt)}</i>")
    parts.append(esc(_("Write your answer as a message here.")))
    return "\n\n".join(parts)
