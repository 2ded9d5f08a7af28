"""The admin's view on the demo page: every advice topic and every weekly question, in Bokmål and
Nynorsk side by side, with the content check's findings next to each.

The texts are made by the same functions the bot uses (``localize`` with the live catalogs,
``bot.render``, ``weekly.prompt_text``), as Telegram HTML, so the page shows them as people will
see them. Pure functions of the runtime's content and a check report; no database, no network.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from bot import render, urgency
from bot.content.check import Report
from bot.content.loader import ContentError, localize
from bot.content.preview import EXAMPLE_DISPATCH, example_link
from bot.content.schema import AdviceTopic, Programme
from bot.i18n import LANGUAGE_NAMES, LOCALES
from bot.runtime import Runtime

_QUESTION = re.compile(r"questions\[([^\]]+)\]")


def finding_json(finding: ContentError) -> dict[str, Any]:
    return {
        "file": finding.file,
        "line": finding.line,
        "field": finding.field,
        "severity": finding.severity,
        "message": finding.message,
        "where": f"{finding.file}:{finding.line}",
    }


def content_view(rt: Runtime, report: Report, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Topics and programmes as the page shows them; findings not tied to one item are general."""
    now = now or dt.datetime.now(dt.UTC)
    bundle = rt.content
    by_file: dict[str, list[ContentError]] = {}
    for finding in report.findings:
        by_file.setdefault(finding.file, []).append(finding)
    used: set[int] = set()

    topics = []
    for topic in sorted(bundle.advice.values(), key=lambda t: t.id):
        file = bundle.source("advice", topic.id).display
        found = by_file.get(file, [])
        used.update(id(f) for f in found)
        topics.append(_topic(rt, topic, file, found, now))

    programmes = []
    for programme in sorted(bundle.programmes.values(), key=lambda p: p.id):
        file = bundle.source("reflection", programme.id).display
        found = by_file.get(file, [])
        used.update(id(f) for f in found)
        programmes.append(_programme(rt, programme, file, found))

    return {
        "digest": bundle.digest,
        "languages": [{"id": locale, "name": LANGUAGE_NAMES[locale]} for locale in LOCALES],
        "summary": report.summary(),
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "general": [finding_json(f) for f in report.findings if id(f) not in used],
        "topics": topics,
        "programmes": programmes,
    }


def _topic(
    rt: Runtime, topic: AdviceTopic, file: str, findings: list[ContentError], now: dt.datetime
) -> dict[str, Any]:
    groups = [group.id for group in topic.tailoring.risk_groups]
    hours = topic.tailoring.checkin_hours[0] if topic.tailoring.checkin_hours else None
    texts = {}
    for locale in LOCALES:
        localized = localize(topic, "advice", rt.catalogs.content_lookup(locale), rt.content.values)
        _ = rt.catalogs.gettext(locale)
        when = None
        if hours:
            due = now + dt.timedelta(hours=hours)
            when = render.when_text(_, due, now, locale, rt.settings.zone)
        sections = render.advice_sections(
            localized, _, note=None, risk_groups=groups, checkin_when=when
        )
        texts[locale] = {
            "messages": render.split_messages(sections),
            "buttons": [
                button.label
                for row in render.advice_buttons(_, EXAMPLE_DISPATCH, locale, localized.audience)
                for button in row
            ],
            "worse": render.worse_text(localized, _, groups),
            "sms": render.sms_text(
                _, example_link(rt.public_url or rt.settings.page_base), rt.settings.link_ttl_hours
            ),
        }
    return {
        "id": topic.id,
        "title": topic.title,
        "status": topic.status,
        "example": topic.example,
        "file": file,
        "risk_groups": groups,
        "checkin_hours": hours,
        **topic.provenance_json(),
        "tiers": {tier: len(signs) for tier, signs in urgency.signs_by_tier(topic, groups).items()},
        "findings": [finding_json(f) for f in findings],
        "texts": texts,
    }


def _programme(
    rt: Runtime, programme: Programme, file: str, findings: list[ContentError]
) -> dict[str, Any]:
    from bot.render import prompt_text
    from bot.services.weekly import _first_of_theme

    by_question: dict[str, list[ContentError]] = {}
    rest = []
    for finding in findings:
        match = _QUESTION.search(finding.field)
        if match:
            by_question.setdefault(match.group(1), []).append(finding)
        else:
            rest.append(finding)
    localized = {
        locale: localize(programme, "reflection", rt.catalogs.content_lookup(locale))
        for locale in LOCALES
    }
    roles = []
    for role in programme.roles:
        questions = []
        per_locale = {locale: localized[locale].questions_for(role.id) for locale in LOCALES}
        for index, (theme, question) in enumerate(programme.questions_for(role.id)):
            texts = {}
            for locale in LOCALES:
                items = per_locale[locale]
                l_theme, l_question = items[index]
                texts[locale] = prompt_text(
                    l_theme,
                    l_question,
                    rt.catalogs.gettext(locale),
                    first_of_theme=_first_of_theme(items, index),
                )
            questions.append(
                {
                    "id": question.id,
                    "theme": theme.id,
                    "number": index + 1,
                    "findings": [finding_json(f) for f in by_question.get(question.id, [])],
                    "texts": texts,
                }
            )
        roles.append(
            {
                "id": role.id,
                "titles": {
                    locale: next(r.title for r in localized[locale].roles if r.id == role.id)
                    for locale in LOCALES
                },
                "questions": questions,
            }
        )
    return {
        "id": programme.id,
        "title": programme.title,
        "status": programme.status,
        "file": file,
        "findings": [finding_json(f) for f in rest],
        "roles": roles,
    }
