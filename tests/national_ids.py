"""A corpus of national identity numbers written the ways people (and their phones) write them,
in running text, and of numbers that must not be taken for one.

The numbers are made up; each passes the check digits. ``FNR``: ordinary fødselsnummer;
``D``: D-numbers (day + 40, for people without a fødselsnummer); ``H``: H-numbers (month + 40,
help numbers in health records).
"""

from __future__ import annotations

from collections.abc import Callable

FNR = ["01019000083", "15078512323", "22046031184"]
D = ["41019000077", "55127834538"]
H = ["01419000066", "15488512487"]

_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
_DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _split(sep: str) -> Callable[[str], str]:
    """Birth date, separator, personal number: 010190<sep>00083."""
    return lambda n: n[:6] + sep + n[6:]


def _between_all(char: str) -> Callable[[str], str]:
    return lambda n: char.join(n)


# How the eleven digits are written: (what it is, how).
SPELLINGS: list[tuple[str, Callable[[str], str]]] = [
    ("plain", lambda n: n),
    ("space", _split(" ")),
    ("hyphen", _split("-")),
    ("spaced hyphen", _split(" - ")),
    ("en dash (phones' autocorrect)", _split("–")),
    ("spaced en dash", _split(" – ")),
    ("em dash", _split("—")),
    ("tab", _split("\t")),
    ("newline", _split("\n")),
    ("CRLF", _split("\r\n")),
    ("newline and indent", _split("\n   ")),
    ("double space", _split("  ")),
    ("zero-width space", lambda n: n[:4] + "\u200b" + n[4:]),
    ("zero-width spaces everywhere", _between_all("\u200b")),
    ("zero-width joiners", _between_all("\u200d")),
    ("word joiner", _split("\u2060")),
    ("byte order mark", lambda n: n[:3] + "\ufeff" + n[3:]),
    ("soft hyphen", _split("\u00ad")),
    ("bidi marks around", lambda n: "\u200e" + n + "\u200f"),
    ("bidi embedding", lambda n: "\u202a" + n[:6] + "\u202c " + n[6:]),
    ("bidi isolates", lambda n: "\u2066" + n[:6] + "\u2069" + n[6:]),
    ("Arabic-Indic digits", lambda n: n.translate(_ARABIC_INDIC)),
    ("Persian digits", lambda n: n.translate(_PERSIAN)),
    ("Devanagari digits", lambda n: n.translate(_DEVANAGARI)),
    ("full-width digits", lambda n: n.translate(_FULL_WIDTH)),
    ("Arabic-Indic digits with an en dash", lambda n: _split("–")(n).translate(_ARABIC_INDIC)),
    ("no-break space", _split("\u00a0")),
    ("narrow no-break space", _split("\u202f")),
    ("thin space", _split("\u2009")),
    ("ideographic space", _split("\u3000")),
    ("line separator", _split("\u2028")),
    ("no-break spaces around an en dash", _split("\u00a0–\u00a0")),
    ("dotted date", lambda n: f"{n[:2]}.{n[2:4]}.{n[4:6]} {n[6:]}"),
    ("slashed date", lambda n: f"{n[:2]}/{n[2:4]}/{n[4:6]}-{n[6:]}"),
    ("pairs", lambda n: f"{n[:2]} {n[2:4]} {n[4:6]} {n[6:9]} {n[9:]}"),
    ("fours", lambda n: f"{n[:4]} {n[4:8]} {n[8:]}"),
    ("minus sign", _split("\u2212")),
    ("non-breaking hyphen", _split("\u2011")),
    ("hyphen (U+2010)", _split("\u2010")),
    ("figure dash", _split("\u2012")),
    ("horizontal bar", _split("\u2015")),
    ("full-width hyphen", _split("\uff0d")),
    ("small hyphen-minus", _split("\ufe63")),
]

# Sentences a nurse or a leader might write around it.
CONTEXTS = [
    "Pasienten (fnr {}) skal ringe igjen i kveld.",
    "Fødselsnummer: {}",
    "{} – mor ringte om feber.",
    "Gjelder barn med personnummer {}, 3 år.",
    "Jeg snakket med pasient {} om ventetiden på avdelingen.",
    "Hjelpenummer {} i journalen.",
]

_NUMBERS = FNR + D + H


def corpus() -> list[tuple[str, str]]:
    """(label, running text) for every spelling, each with one of the numbers, in turn."""
    cases = []
    for index, (label, spell) in enumerate(SPELLINGS):
        number = _NUMBERS[index % len(_NUMBERS)]
        text = CONTEXTS[index % len(CONTEXTS)].format(spell(number))
        kind = "fnr" if number in FNR else "D-number" if number in D else "H-number"
        cases.append((f"{label} ({kind} {number})", text))
    return cases


# Text with numbers that are not identity numbers: phone numbers, dates, times, amounts,
# order numbers, doses, and an 11-digit number with the wrong check digit.
NOT_IDS = [
    "Ring 116 117 om det blir verre, eller 113 ved fare for liv.",
    "Mors mobil er 912 34 567, fars er +47 915 55 555.",
    "Ring 0047 91234567 eller 22 12 34 56 etter kl. 16.",
    "Tlf. 91234567 / 22123456 / 41 23 45 67.",
    "Time hos fastlegen 01.01.2025 kl. 14:30, eller 12.03.2025.",
    "Født i 1990, innlagt 2019-2020 og 2023.",
    "Egenandel kr 1 250,50 og NOK 12 345 678 totalt; 1.234.567,89 kr.",
    "Ordrenr. 123456789012, referanse 2024-000123.",
    "Resept 12345678 hentes på apoteket, varenr. 0123 4567 890.",
    "Temperatur 38,5 og puls 120, blodtrykk 120/80 kl. 06.45.",
    "Paracetamol 500 mg, 2 tabletter 4 ganger i døgnet i 3 døgn.",
    "Nummeret 01019000084 har feil kontrollsiffer.",
    "Saksnummer 2025/123456 og 2025/654321.",
    "Uke 49, 2026-W49, romnummer 4012 i 3. etasje.",
]
