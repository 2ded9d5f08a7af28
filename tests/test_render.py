"""What a caller reads, rendered from every shipped topic in both languages: it fits Telegram's
limits, loses nothing when split, and the SMS fits one GSM-7 segment."""

from __future__ import annotations

import html
import re

import pytest

from bot import render
from bot.content import load_content
from bot.content.loader import localize
from bot.content.schema import AdviceTopic
from bot.i18n import LOCALES, Catalogs, Locale
from bot.paths import CHECKOUT as PROJECT_ROOT
from bot.sms import gsm7_septets, is_gsm7

CONTENT = load_content(PROJECT_ROOT / "content")
CATALOGS = Catalogs(PROJECT_ROOT / "locales")
LONGEST_NOTE = "Ta kontakt med fastlegen i morgen. " * 14  # 490 characters


def visible(html_text: str) -> str:
    return html.unescape(re.sub(r"</?[bi]>", "", html_text))


def rendered(topic: AdviceTopic, locale: Locale, **kwargs: object) -> list[str]:
    localized = localize(topic, "advice", CATALOGS.content_lookup(locale))
    sections = render.advice_sections(
        localized,
        CATALOGS.gettext(locale),
        note=kwargs.get("note"),  # type: ignore[arg-type]
        risk_groups=kwargs.get("risk_groups", []),  # type: ignore[arg-type]
        checkin_when=kwargs.get("checkin_when"),  # type: ignore[arg-type]
    )
    return render.split_messages(sections)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("topic_id", sorted(CONTENT.advice))
def test_every_topic_fits_one_message_even_fully_tailored(topic_id: str, locale: Locale) -> None:
    topic = CONTENT.advice[topic_id]
    messages = rendered(
        topic,
        locale,
        note=LONGEST_NOTE,
        risk_groups=[g.id for g in topic.tailoring.risk_groups],
        checkin_when="tysdag 1. desember kl. 09:00",
    )
    assert len(messages) == 1
    assert len(messages[0]) <= render.TELEGRAM_LIMIT
    text = visible(messages[0])
    for sign in localize(topic, "advice", CATALOGS.content_lookup(locale)).worsening_signs:
        assert sign.sign in text


def test_nynorsk_advice_is_nynorsk_all_through() -> None:
    [message] = rendered(CONTENT.advice["fever-child"], "nn")
    text = visible(message)
    assert "Dette kan du gjere sjølv" in text and "Ring 113 med ein gong viss" in text
    assert "Dette kan du gjøre selv" not in text


def test_a_long_advice_is_split_between_sections_and_nothing_is_lost() -> None:
    topic = CONTENT.advice["fever-child"]
    long_topic = topic.model_copy(
        update={
            "self_care": [f"Råd {n}: " + "drikk litt vann ofte, " * 8 + "ok." for n in range(40)]
        }
    )
    messages = rendered(long_topic, "nb", note="Kort notat.")
    assert len(messages) >= 2
    assert all(len(m) <= render.TELEGRAM_LIMIT for m in messages)
    joined = visible("\n".join(messages))
    for item in long_topic.self_care:
        assert item in joined  # no advice cut in half or dropped
    # The danger signs stay together in one message, with their heading.
    [with_113] = [m for m in messages if "Ring 113 med en gang hvis" in m]
    assert "Barnet får kramper" in with_113


def test_one_section_longer_than_a_message_is_split_between_lines() -> None:
    lines = [f"• punkt {n} " + "x" * 90 for n in range(100)]
    messages = render.split_messages(["\n".join(lines)])
    assert all(len(m) <= render.TELEGRAM_LIMIT for m in messages)
    assert "\n".join(messages).split("\n") == lines


def test_worse_says_116_117_when_no_sign_calls_for_113() -> None:
    topic = CONTENT.advice["urinary-tract-infection"]
    calm = topic.model_copy(
        update={"worsening_signs": [s for s in topic.worsening_signs if s.action == "call_116117"]}
    )
    text = visible(render.worse_text(calm, CATALOGS.gettext("nb")))
    assert text.startswith("Ring legevakten nå på 116 117.")
    assert "Ring 113 nå hvis" not in text
    assert "113" in text  # the emergency number is still named


@pytest.mark.parametrize("locale", LOCALES)
def test_the_sms_fits_one_gsm7_segment_with_the_longest_bot_name(locale: Locale) -> None:
    link = "https://t.me/" + "B" * 32 + "?start=a_" + "x" * 23
    text = render.sms_text(CATALOGS.gettext(locale), link, 72)
    assert link in text
    assert is_gsm7(text)
    assert gsm7_septets(text) <= 160


def test_the_checkin_time_reads_today_tomorrow_or_a_day_in_oslo_time() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    oslo = ZoneInfo("Europe/Oslo")
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)  # 11:00 in Oslo, a Monday
    nb, nn = CATALOGS.gettext("nb"), CATALOGS.gettext("nn")
    later = now + dt.timedelta(hours=6)
    assert render.when_text(nb, later, now, "nb", oslo) == "i dag kl. 17:00"
    assert render.when_text(nn, now + dt.timedelta(hours=24), now, "nn", oslo) == (
        "i morgon kl. 11:00"
    )
    assert render.when_text(nn, now + dt.timedelta(days=2), now, "nn", oslo) == (
        "onsdag 25. november kl. 11:00"
    )
