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
    localized = localize(topic, "advice", CATALOGS.content_lookup(locale), CONTENT.values)
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
    localized = localize(topic, "advice", CATALOGS.content_lookup(locale), CONTENT.values)
    for sign in localized.worsening_signs:
        assert sign.sign in text
    for group in localized.tailoring.risk_groups:
        for sign in group.signs:
            assert sign.sign in text


def test_nynorsk_advice_is_nynorsk_all_through() -> None:
    [message] = rendered(CONTENT.advice["fever-child"], "nn")
    text = visible(message)
    assert "Dette kan du gjere sjølv" in text and "Ring 113 no viss" in text
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
    [with_113] = [m for m in messages if "Ring 113 nå hvis" in m]
    assert "Barnet får kramper" in with_113


def test_one_section_longer_than_a_message_is_split_between_lines() -> None:
    lines = [f"• punkt {n} " + "x" * 90 for n in range(100)]
    messages = render.split_messages(["\n".join(lines)])
    assert all(len(m) <= render.TELEGRAM_LIMIT for m in messages)
    assert "\n".join(messages).split("\n") == lines


def test_worse_says_116_117_when_no_sign_calls_for_113() -> None:
    topic = CONTENT.advice["urinary-tract-infection"]
    calm = topic.model_copy(
        update={"worsening_signs": [s for s in topic.worsening_signs if s.tier == "urgent"]}
    )
    text = visible(render.worse_text(calm, CATALOGS.gettext("nb")))
    assert text.startswith("Ring legevakten på 116 117 nå hvis du ser noe av dette:")
    assert "Ring 113 nå hvis" not in text
    assert text.endswith("Ved fare for liv: ring 113.")  # the emergency number is still named


@pytest.mark.parametrize("locale", LOCALES)
def test_the_sms_fits_two_gsm7_segments_with_the_longest_link_and_clinic(locale: Locale) -> None:
    link = "https://" + "p" * 92 + "/r/" + "x" * 23  # the longest PUBLIC_URL: 100 characters
    for clinic in ("C" * 32, None):
        text = render.sms_text(CATALOGS.gettext(locale), link, 720, clinic)
        assert link in text and (clinic is None or clinic in text)
        assert text.endswith(" Ved fare for liv: ring 113.")
        assert is_gsm7(text)
        assert gsm7_septets(text) <= 306


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


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("topic_id", sorted(CONTENT.advice))
def test_113_is_in_the_first_lines_of_every_advice(topic_id: str, locale: Locale) -> None:
    [message] = rendered(CONTENT.advice[topic_id], locale)
    lines = visible(message).splitlines()
    assert lines[1] == "Ved fare for liv: ring 113."  # right under the title, both languages
    assert "<b>Ved fare for liv: ring 113.</b>" in message
    heading = {"nb": "Ring 113 nå hvis", "nn": "Ring 113 no viss"}[locale]
    self_care = {"nb": "Dette kan du gjøre selv", "nn": "Dette kan du gjere sjølv"}[locale]
    text = visible(message)
    assert text.index(heading) < text.index(self_care)  # the 113 signs before self-care


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("topic_id", sorted(CONTENT.advice))
def test_the_tiers_come_most_urgent_first(topic_id: str, locale: Locale) -> None:
    headings = {
        "nb": ["Ring 113 nå hvis", "Ring legevakten på 116 117 nå hvis"],
        "nn": ["Ring 113 no viss", "Ring legevakta på 116 117 no viss"],
    }[locale]
    text = visible(rendered(CONTENT.advice[topic_id], locale)[0])
    assert text.index(headings[0]) < text.index(headings[1])


def test_a_risk_groups_signs_join_their_tier_with_the_groups_name() -> None:
    topic = CONTENT.advice["breathing-cough-adult"]
    [message] = rendered(topic, "nb", risk_groups=["asthma-copd"])
    text = visible(message)
    emergency = text[text.index("Ring 113 nå hvis") : text.index("Ring legevakten på 116 117")]
    assert "• Astma eller kols: Du har tatt medisinen du bruker ved anfall" in emergency
    assert "<i>Astma eller kols:</i>" in message
    [plain] = rendered(topic, "nb")
    assert "Astma eller kols" not in visible(plain)  # not chosen, not shown


def test_worse_uses_the_tiers_and_the_chosen_risk_groups() -> None:
    topic = localize(
        CONTENT.advice["breathing-cough-adult"],
        "advice",
        CATALOGS.content_lookup("nb"),
        CONTENT.values,
    )
    text = visible(render.worse_text(topic, CATALOGS.gettext("nb"), ["pregnancy"]))
    first, second, rest = text.split("\n\n")
    assert first.startswith("Ring 113 nå hvis du ser noe av dette:\n• Du puster 30 ganger")
    assert second.startswith("Ring legevakten på 116 117 nå hvis du ser noe av dette:")
    assert "• Gravid: Du har 38 °C eller mer." in second
    assert rest.startswith("Ingen av disse, men blir det verre? Ring legevakten på 116 117 nå.")
    assert "Feberen har vart i mer enn 3 døgn" not in text  # "soon" is not for now


def test_the_worse_button_names_the_child_in_child_topics() -> None:
    nb, nn = CATALOGS.gettext("nb"), CATALOGS.gettext("nn")
    assert render.advice_buttons(nb, "x", "nb", "children")[0][0].label == "Barnet blir verre"
    assert render.advice_buttons(nn, "x", "nn", "children")[0][0].label == "Barnet blir verre"
    assert render.advice_buttons(nn, "x", "nn", "adults")[0][0].label == "Eg blir verre"
    [message] = rendered(CONTENT.advice["fever-child"], "nb")
    assert "Blir barnet verre, trykk «Barnet blir verre»" in visible(message)
    assert "Jeg blir verre" not in visible(message)
