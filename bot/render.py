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
from dataclasses import dataclass
from typing import Literal

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


# --- the advice as plain parts, for every channel ------------------------------------------
#
# What the caller reads is decided once, here, as plain text in sections; the Telegram message
# (below) and the advice page (``bot.advicepage``) only lay it out.

SectionKind = Literal["emergency", "urgent", "soon", "note", "self_care", "normal", "risk_group"]


@dataclass(frozen=True)
class Bullet:
    text: str
    group: str | None = None  # the risk group a sign comes from ("Gravid"), said before it


@dataclass(frozen=True)
class Section:
    """One part of the advice under its heading: bullets, or a paragraph; ``footnote`` after."""

    kind: SectionKind
    heading: str
    bullets: tuple[Bullet, ...] = ()
    text: str | None = None
    footnote: str | None = None


@dataclass(frozen=True)
class AdviceContent:
    """The advice in reading order: the title and at once the 113 line, who it is for and what
    it is; the signs by tier; the nurse's words, self-care, what is normal, the risk groups'
    advice; then the closing lines (how to say "worse", when the check-in comes)."""

    title: str
    emergency: str
    example: str | None
    who: str | None
    summary: str
    sections: tuple[Section, ...]
    closing: tuple[str, ...]


def advice_content(
    topic: AdviceTopic,
    _: Gettext,
    *,
    note: str | None,
    risk_groups: Sequence[str],
    checkin_when: str | None,
) -> AdviceContent:
    """The advice of one dispatch, as plain text in sections (see ``AdviceContent``)."""
    sections = list(tier_parts(topic, _, risk_groups))
    if note:
        sections.append(Section("note", _("From the nurse you spoke to"), text=note))
    sections.append(
        Section("self_care", _("What you can do yourself"), tuple(map(Bullet, topic.self_care)))
    )
    sections.append(Section("normal", _("What is normal"), tuple(map(Bullet, topic.normal))))
    chosen = set(risk_groups)
    for group in topic.tailoring.risk_groups:
        if group.id in chosen and group.advice:
            sections.append(Section("risk_group", group.label, text=group.advice))
    closing = [urgency.worse_hint(_, topic.audience)]
    if checkin_when:
        closing.append(_("We will ask you how it is going {when}.").format(when=checkin_when))
    return AdviceContent(
        title=topic.title,
        emergency=urgency.emergency_line(_),
        example=_("Example text: not yet approved by a doctor.") if topic.example else None,
        who=topic.scope.who if topic.scope is not None else None,
        summary=topic.summary,
        sections=tuple(sections),
        closing=tuple(closing),
    )


def tier_parts(topic: AdviceTopic, _: Gettext, risk_groups: Sequence[str] = ()) -> list[Section]:
    """One section per urgency tier that has signs, most urgent first; "soon" says where to
    call when the GP is closed."""
    sections = []
    for tier, signs in urgency.signs_by_tier(topic, risk_groups).items():
        if not signs:
            continue
        sections.append(
            Section(
                tier,
                _(urgency.TIER_HEADINGS[tier]),
                tuple(Bullet(s.text, s.group) for s in signs),
                footnote=_(urgency.SOON_NOTE) if tier == "soon" else None,
            )
        )
    return sections


@dataclass(frozen=True)
class WorseContent:
    """What to do now, for whoever says they are getting worse: the 113 signs, the 116 117
    signs (each with its heading said as an action), then 116 117 for anything else, and the
    113 line where no sign of the advice calls for 113."""

    tiers: tuple[Section, ...]
    otherwise: str
    say: str
    emergency: str | None


def worse_content(topic: AdviceTopic, _: Gettext, risk_groups: Sequence[str] = ()) -> WorseContent:
    """The "soon" signs are left out: whoever presses "worse" needs to act now."""
    tiers = urgency.signs_by_tier(topic, risk_groups)
    parts = [
        Section(
            tier,
            _(urgency.WORSE_HEADINGS[tier]),
            tuple(Bullet(s.text, s.group) for s in tiers[tier]),
        )
        for tier in ("emergency", "urgent")
        if tiers[tier]
    ]
    return WorseContent(
        tiers=tuple(parts),
        otherwise=_(urgency.WORSE_OTHERWISE),
        say=_("Say that you have had written advice about: {topic}.").format(topic=topic.title),
        emergency=None if tiers["emergency"] else urgency.emergency_line(_),
    )


# --- the same, as Telegram HTML --------------------------------------------------------------


def _telegram_bullets(bullets: Sequence[Bullet]) -> str:
    """Bullets; a risk group's sign says whose it is: "• <i>Gravid:</i> …"."""
    return "\n".join(
        f"• <i>{esc(b.group)}:</i> {esc(b.text)}" if b.group else f"• {esc(b.text)}"
        for b in bullets
    )


def _telegram_section(section: Section) -> str:
    body = _telegram_bullets(section.bullets) if section.bullets else esc(section.text or "")
    out = _heading(section.heading) + body
    if section.footnote:
        out += "\n" + esc(section.footnote)
    return out


def advice_sections(
    topic: AdviceTopic,
    _: Gettext,
    *,
    note: str | None,
    risk_groups: Sequence[str],
    checkin_when: str | None,
) -> list[str]:
    """The advice as Telegram HTML sections in reading order (``advice_content``); a message
    boundary may fall between any two."""
    advice = advice_content(topic, _, note=note, risk_groups=risk_groups, checkin_when=checkin_when)
    head = f"<b>{esc(advice.title)}</b>\n<b>{esc(advice.emergency)}</b>"
    if advice.example:
        head += "\n<i>" + esc(advice.example) + "</i>"
    if advice.who:
        head += "\n" + esc(advice.who)
    sections = [head + "\n" + esc(advice.summary)]
    sections.extend(_telegram_section(section) for section in advice.sections)
    sections.append("\n".join(esc(line) for line in advice.closing))
    return sections


def tier_sections(topic: AdviceTopic, _: Gettext, risk_groups: Sequence[str] = ()) -> list[str]:
    """One section per urgency tier that has signs: its heading, then its signs as bullets."""
    return [_telegram_section(section) for section in tier_parts(topic, _, risk_groups)]


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
    """What to do now, by tier (``worse_content``), as Telegram HTML."""
    worse = worse_content(topic, _, risk_groups)
    parts = [
        f"<b>{esc(section.heading)}</b>\n" + _telegram_bullets(section.bullets)
        for section in worse.tiers
    ]
    parts.append(f"<b>{esc(worse.otherwise)}</b> {esc(worse.say)}")
    if worse.emergency:
        parts.append(esc(worse.emergency))
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


def sms_text(_: Gettext, link: str, hours: int, clinic: str | None = None) -> str:
    """The SMS that carries the advice page's link: who it is from, the link, how long the page
    is open, and the 113 line. Two GSM-7 segments at most (the content check holds every
    translation to it, with a 32-character clinic name and the longest PUBLIC_URL)."""
    if clinic:
        text = _(
            "Advice from {clinic} after your call: {link} The page is open for {hours} hours."
        ).format(clinic=clinic, link=link, hours=hours)
    else:
        text = _(
            "Advice from the legevakt after your call: {link} The page is open for {hours} hours."
        ).format(link=link, hours=hours)
    return text + " " + urgency.emergency_line(_)


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
