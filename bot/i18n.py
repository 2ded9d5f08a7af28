"""Languages: gettext catalogs for UI strings and content, and Babel formatting of dates.

A person's locale is always passed in explicitly (never a global "current language").
UI msgids are English; content msgids are the Bokmål source, translated in the ``content`` domain.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Literal, cast

from babel.dates import format_date, format_datetime, format_time
from babel.support import NullTranslations, Translations

Locale = Literal["nb", "nn"]
LOCALES: tuple[Locale, ...] = ("nb", "nn")
DOMAINS = ("messages", "content")
LANGUAGE_NAMES: dict[Locale, str] = {"nb": "Bokmål", "nn": "Nynorsk"}


class CatalogError(Exception):
    """The compiled catalogs are missing or unreadable."""


def guess_locale(language_code: str | None, default: Locale = "nb") -> Locale:
    """A first guess from Telegram's language_code: Nynorsk for ``nn``, Bokmål for ``nb``/``no``."""
    code = (language_code or "").lower().replace("_", "-").split("-")[0]
    if code == "nn":
        return "nn"
    if code in ("nb", "no"):
        return "nb"
    return default


def as_locale(value: str | None, default: Locale = "nb") -> Locale:
    return cast(Locale, value) if value in LOCALES else default


class Catalogs:
    """Compiled catalogs for every locale and domain, loaded once and swapped whole on reload."""

    def __init__(self, locales_dir: Path) -> None:
        self.locales_dir = locales_dir
        self._ui: dict[Locale, NullTranslations] = {}
        self._content: dict[Locale, NullTranslations] = {}
        missing = []
        for locale in LOCALES:
            for domain, table in (("messages", self._ui), ("content", self._content)):
                if locale == "nb" and domain == "content":
                    # Bokmål is the content's source language: no catalog needed.
                    table[locale] = NullTranslations()
                    continue
                folder = locales_dir / locale / "LC_MESSAGES"
                compiled = _read_catalog(folder / f"{domain}.po", folder / f"{domain}.mo", domain)
                if compiled is None:
                    missing.append(str(folder / f"{domain}.po"))
                    continue
                table[locale] = compiled
        if missing:
            raise CatalogError(
                "The translations are missing (" + ", ".join(missing) + "); set LOCALES_DIR to "
                "the folder that holds nb/ and nn/, or run: make catalogs"
            )

    def ui(self, locale: Locale) -> NullTranslations:
        """The UI translations for a locale: ``catalogs.ui(locale).gettext("Hello")``."""
        return self._ui[locale]

    def gettext(self, locale: Locale) -> Callable[[str], str]:
        return self._ui[locale].gettext

    def content_lookup(self, locale: Locale) -> Callable[[str, str], str | None]:
        """A lookup for ``bot.content.loader.localize``: the translation, or None if there is none.

        Fuzzy entries are left out when catalogs are compiled, so a draft translation is
        never returned.
        """
        translations = self._content[locale]

        def lookup(context: str, text: str) -> str | None:
            translated = translations.pgettext(context, text)
            return translated if isinstance(translated, str) and translated != text else None

        return lookup


def _read_catalog(po: Path, mo: Path, domain: str) -> Translations | None:
    """The compiled ``.mo`` if it is as new as its ``.po``, else the ``.po`` compiled in memory.

    An installed wheel may carry only the ``.po`` files, and an admin's edited ``.po`` must win
    over a stale ``.mo``; either way fuzzy entries are left out, as ``pybabel compile`` does.
    """
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain=domain)
    if not po.exists():
        return None
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as fp:
        catalog = read_po(fp, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


def format_day(value: dt.date, locale: Locale) -> str:
    """ "måndag 1. desember" — weekday and date in the person's language."""
    return format_date(value, "EEEE d. MMMM", locale=locale)


def format_full_day(value: dt.date, locale: Locale) -> str:
    """ "måndag 1. desember 2026" — with the year, for what is kept beyond this year (exports)."""
    return format_date(value, "EEEE d. MMMM y", locale=locale)


def format_when(value: dt.datetime, locale: Locale, zone: dt.tzinfo) -> str:
    """ "måndag 1. desember kl. 09:00" in the person's time zone."""
    local = value.astimezone(zone)
    return f"{format_day(local.date(), locale)} kl. {format_time(local, 'HH:mm', locale=locale)}"


def format_timestamp(value: dt.datetime, locale: Locale, zone: dt.tzinfo) -> str:
    """ "1. des. 2026, 09:00" — compact, for lists and history."""
    return format_datetime(value.astimezone(zone), "d. MMM y, HH:mm", locale=locale)


def weekday_names(locale: Locale) -> list[str]:
    """Monday first, in the person's language: ["måndag", "tysdag", …] for Nynorsk."""
    monday = dt.date(2024, 1, 1)
    return [format_date(monday + dt.timedelta(days=i), "EEEE", locale=locale) for i in range(7)]


def format_date_with_year(value: dt.date, locale: Locale) -> str:
    """ "1. desember 2026" — a date that may lie in another year (earlier answers, stories)."""
    return format_date(value, "d. MMMM y", locale=locale)


def format_month(first: dt.date, locale: Locale) -> str:
    """ "april 2026" — a month, as a digest's heading says it."""
    return format_date(first, "LLLL y", locale=locale)
