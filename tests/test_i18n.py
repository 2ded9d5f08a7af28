"""Languages: Telegram's language is only a first guess; dates and weekdays follow the
person's language through Babel (Nynorsk says måndag, tysdag, laurdag)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import format_day, format_when, guess_locale, weekday_names


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("nn", "nn"),
        ("nn-NO", "nn"),
        ("nb", "nb"),
        ("no", "nb"),
        ("en", "nb"),
        (None, "nb"),
        ("", "nb"),
    ],
)
def test_first_guess_from_telegram_language(code: str | None, expected: str) -> None:
    assert guess_locale(code) == expected


def test_unknown_language_falls_back_to_the_configured_default() -> None:
    assert guess_locale("de", default="nn") == "nn"


def test_nynorsk_weekdays() -> None:
    assert weekday_names("nn") == [
        "måndag",
        "tysdag",
        "onsdag",
        "torsdag",
        "fredag",
        "laurdag",
        "søndag",
    ]
    assert weekday_names("nb")[:2] == ["mandag", "tirsdag"]
    assert weekday_names("nb")[5] == "lørdag"


def test_dates_in_each_language() -> None:
    assert format_day(dt.date(2026, 11, 30), "nn") == "måndag 30. november"
    assert format_day(dt.date(2026, 12, 5), "nn") == "laurdag 5. desember"
    assert format_day(dt.date(2026, 12, 5), "nb") == "lørdag 5. desember"


def test_time_is_shown_in_oslo_across_daylight_saving() -> None:
    oslo = ZoneInfo("Europe/Oslo")
    winter = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    summer = dt.datetime(2026, 6, 2, 7, 0, tzinfo=dt.UTC)
    assert format_when(winter, "nn", oslo) == "tysdag 1. desember kl. 09:00"
    assert format_when(summer, "nb", oslo) == "tirsdag 2. juni kl. 09:00"
