"""What a caller or a leader would read, as plain text, for ``python -m bot content preview``.

The same functions the bot uses do the work: ``localize`` with the compiled catalogs (so a fuzzy
draft is left out here exactly as it is in the bot), ``bot.render`` for the advice, its buttons
and the SMS, and ``bot.services.weekly.prompt_text`` for the weekly question, which needs no
database. Only the Telegram HTML is turned into plain text: tags removed, entities unescaped.

Pure functions returning strings; no printing, no database, no network.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence

from bot import render, urgency
from bot.content.loader import ContentBundle, localize
from bot.content.schema import AdviceTopic, Programme, Role
from bot.i18n import Catalogs, Locale
from bot.messages import Buttons

NEXT_MESSAGE = "──── next message ────"
SMS_SEPTETS = 306  # two GSM-7 segments (bot/services/dispatches.py, bot/content/check.py)
NOTE_MAX = 500  # as for a dispatch
_TAG = re.compile(r"<[^<>]+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
EXAMPLE_DISPATCH = "0" * 32  # a dispatch id, for the buttons' callback data


class PreviewError(Exception):
    """The preview cannot be made (unknown topic, role, risk group …): one plain sentence."""


def plain(text: str) -> str:
    """Telegram HTML as the reader sees it: tags removed, entities unescaped."""
    return html.unescape(_TAG.sub("", text))


def buttons_line(rows: Buttons) -> str:
    """ "[Jeg blir verre] [Vis på Nynorsk] [Slett dataene mine]" """
    return " ".join(f"[{button.label}]" for row in rows for button in row)


# --- advice ----------------------------------------------------------------------------------


def find_topic(bundle: ContentBundle, topic_id: str) -> AdviceTopic:
    topic = bundle.advice.get(topic_id)
    if topic is None:
        known = ", ".join(sorted(bundle.advice)) or "none"
        raise PreviewError(f"There is no advice topic '{topic_id}'. Topics: {known}.")
    return topic


def check_tailoring(
    topic: AdviceTopic,
    *,
    note: str | None,
    risk_groups: Sequence[str],
    checkin_hours: int | None,
) -> str | None:
    """The tailoring a nurse could send for this topic, as a dispatch is checked; the note."""
    from bot.privacy import contains_national_id

    note = (note or "").strip() or None
    if note is not None:
        if not topic.tailoring.note:
            raise PreviewError(f"Topic '{topic.id}' takes no note.")
        if len(note) > NOTE_MAX:
            raise PreviewError(f"The note must be at most {NOTE_MAX} characters.")
        if _CONTROL.search(note):
            raise PreviewError("The note must be plain text, without control characters.")
        if contains_national_id(note):
            raise PreviewError(
                "The note contains a national identity number (fødselsnummer); leave it out."
            )
    allowed = [group.id for group in topic.tailoring.risk_groups]
    for group in risk_groups:
        if group not in allowed:
            raise PreviewError(
                f"Topic '{topic.id}' has no risk group '{group}'. "
                + (f"Risk groups: {', '.join(allowed)}." if allowed else "It has none.")
            )
    offered = topic.tailoring.checkin_hours
    if checkin_hours is not None and checkin_hours not in offered:
        raise PreviewError(
            f"Topic '{topic.id}' offers a check-in after "
            + (", ".join(str(h) for h in offered) + " hours" if offered else "no hours")
            + f", not {checkin_hours}."
        )
    return note


def example_link(page_base: str) -> str:
    """An advice page's link as long as a real one (the token is 23 characters)."""
    from bot.privacy import new_token

    return f"{page_base}/r/{'x' * len(new_token())}"


def advice_preview(
    bundle: ContentBundle,
    catalogs: Catalogs,
    topic_id: str,
    locale: Locale,
    *,
    note: str | None = None,
    risk_groups: Sequence[str] = (),
    checkin_hours: int | None = None,
    page_base: str,
    link_hours: int,
    zone: dt.tzinfo,
    now: dt.datetime | None = None,
) -> str:
    """The advice as the caller reads it on opening the link right after the call.

    Messages are separated by ``NEXT_MESSAGE`` where the advice is split; then the buttons under
    the last message, then the SMS that carries the link.
    """
    from bot.sms import gsm7_septets, is_gsm7

    topic = find_topic(bundle, topic_id)
    note = check_tailoring(topic, note=note, risk_groups=risk_groups, checkin_hours=checkin_hours)
    now = now or dt.datetime.now(dt.UTC)
    localized = localize(topic, "advice", catalogs.content_lookup(locale), bundle.values)
    _ = catalogs.gettext(locale)
    when = None
    if checkin_hours:
        # Opened at once: the check-in comes N hours after the call.
        when = render.when_text(_, now + dt.timedelta(hours=checkin_hours), now, locale, zone)
    sections = render.advice_sections(
        localized,
        _,
        note=note,
        risk_groups=list(dict.fromkeys(risk_groups)),
        checkin_when=when,
    )
    messages = [plain(message) for message in render.split_messages(sections)]
    sms = render.sms_text(_, example_link(page_base), link_hours)
    fits = is_gsm7(sms) and gsm7_septets(sms) <= SMS_SEPTETS
    size = f"{gsm7_septets(sms)} of {SMS_SEPTETS} characters" if is_gsm7(sms) else "not GSM-7"
    lines = [f"\n{NEXT_MESSAGE}\n\n".join(messages), ""]
    lines.append(
        buttons_line(render.advice_buttons(_, EXAMPLE_DISPATCH, locale, localized.audience))
    )
    lines.append("")
    lines.append(f"SMS ({size}{'' if fits else ', DOES NOT FIT TWO SEGMENTS'}): {sms}")
    lines.append("")
    lines.append("After “" + urgency.worse_button(_, localized.audience) + "”:")
    lines.append(plain(render.worse_text(localized, _, list(dict.fromkeys(risk_groups)))))
    lines.append("")
    lines.append(tiers_summary(localized, risk_groups))
    return "\n".join(lines)


def tiers_summary(topic: AdviceTopic, risk_groups: Sequence[str] = ()) -> str:
    """For the admin: how many signs each urgency tier has, and the topic's scope and sources."""
    tiers = urgency.signs_by_tier(topic, risk_groups)
    lines = ["Urgency tiers: " + ", ".join(f"{tier} {len(signs)}" for tier, signs in tiers.items())]
    if topic.scope is not None:
        ages = f"{topic.scope.min_age or 'birth'} to {topic.scope.max_age or 'any age'}"
        lines.append(f"Scope: {topic.scope.audience}, {ages}. {topic.scope.who}")
        lines.extend(f"  not for: {item}" for item in topic.scope.not_for)
    for source in topic.sources:
        lines.append(
            f"Source {source.id}: {source.publisher}, “{source.title}”, {source.url} "
            f"(covers {', '.join(source.covers)})"
        )
    return "\n".join(lines)


# --- weekly questions --------------------------------------------------------------------------


def find_role(
    bundle: ContentBundle, programme_id: str | None, role_id: str | None
) -> tuple[Programme, Role]:
    """The programme and role to preview; the programme may be left out (role ids are unique)."""
    programme = None
    if programme_id is not None:
        programme = bundle.programmes.get(programme_id)
        if programme is None:
            known = ", ".join(sorted(bundle.programmes)) or "none"
            raise PreviewError(f"There is no programme '{programme_id}'. Programmes: {known}.")
    if role_id is None:
        roles = programme.roles if programme else [r for _p, r in bundle.roles.values()]
        raise PreviewError("Give a leader role with --role. Roles: " + _role_list(roles) + ".")
    if programme is None:
        found = bundle.roles.get(role_id)
        if found is None:
            roles = [r for _p, r in bundle.roles.values()]
            raise PreviewError(f"There is no role '{role_id}'. Roles: {_role_list(roles)}.")
        return found
    for role in programme.roles:
        if role.id == role_id:
            return programme, role
    raise PreviewError(
        f"Programme '{programme.id}' has no role '{role_id}'. Its roles: "
        + _role_list(programme.roles)
        + "."
    )


def _role_list(roles: Sequence[Role]) -> str:
    return ", ".join(role.id for role in roles) or "none"


def programme_preview(
    bundle: ContentBundle,
    catalogs: Catalogs,
    programme_id: str | None,
    role_id: str | None,
    locale: Locale,
) -> str:
    """Every weekly question the role gets, in order and numbered, each as the leader reads it.

    Each is ``render.prompt_text`` of the localised programme: the theme's title and
    introduction before the theme's first question for the role, then the question.
    """
    from bot.render import prompt_buttons, prompt_text
    from bot.services.weekly import _first_of_theme

    source, role = find_role(bundle, programme_id, role_id)
    programme = localize(source, "reflection", catalogs.content_lookup(locale))
    localized_role = next(r for r in programme.roles if r.id == role.id)
    questions = programme.questions_for(role.id)
    _ = catalogs.gettext(locale)
    count = len(questions)
    lines = [
        f"{count} weekly question{'s' * (count != 1)} for {localized_role.title} "
        f"({role.id}) in {programme.title} ({programme.id}), {locale}, one a week in this order.",
        "Each comes with the buttons: " + buttons_line(prompt_buttons(_, 0)),
    ]
    for index, (theme, question) in enumerate(questions):
        lines.append("")
        lines.append(f"──── {index + 1} of {count} ({theme.id} / {question.id}) ────")
        lines.append("")
        lines.append(
            plain(prompt_text(theme, question, _, first_of_theme=_first_of_theme(questions, index)))
        )
    lines.append("")
    lines.append(f"After question {count} the leader starts again from question 1.")
    return "\n".join(lines)
