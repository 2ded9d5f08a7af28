"""``python -m bot content check``: everything an admin must fix before people see it.

Schema errors come from the loader; this module adds the rules that need the catalogs or the
rendered text. Every finding carries file:line, the field and one plain sentence:

- translations: every string of approved content, and every UI string, translated and not fuzzy
  (a draft topic's missing translations are warnings);
- placeholders (``{hours}``, ``%(name)s``, ``%s``) the same in the source and in each
  translation, for content strings and UI strings;
- worsening signs, the topic's and each risk group's, concrete enough to act on, and risk-group
  advice that says to call someone also says when (warnings, see ``is_concrete``);
- shared thresholds: a number of a shared kind (°C, breaths a minute, hours without urine)
  written out instead of ``{id}`` is an error where it contradicts ``content/thresholds.yaml``
  and a warning where it agrees (``_threshold_literals``);
- one wording for the emergency numbers: UI strings name 113 and 116 117 only through
  ``bot.urgency``, and advice text never names them itself (the tiers do);
- plain words: long Bokmål words that are rare in ``wordfreq``'s Norwegian list and not
  explained in the topic (a warning, see ``bot.content.plainwords``);
- the advice, with the longest tailoring a nurse can choose, fits one Telegram message in both
  languages;
- the SMS that carries the link fits two GSM-7 segments in both languages, with a 32-character
  clinic name and the longest PUBLIC_URL;
- readability: the LIX of each advice section at most ``lix_limit`` (a warning, see ``lix``).

The catalogs are read from the ``.po`` files, so the check works before they are compiled.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from bot.config import PUBLIC_URL_MAX
from bot.content.loader import (
    ContentBundle,
    ContentError,
    ContentErrors,
    SourceFile,
    load_content,
    localize,
    msgctxt,
)
from bot.content.schema import AdviceTopic, translatable_strings
from bot.content.schema import Path as FieldPath
from bot.i18n import LANGUAGE_NAMES, LOCALES, Locale
from bot.models import DISPLAY_NAME_MAX

DEFAULT_LIX_LIMIT = 40.0
NOTE_MAX = 500  # the longest note a nurse may add (bot/services/dispatches.py)
LINK_HOURS = 720  # the longest lifetime of an advice page (LINK_TTL_HOURS's maximum)
# The longest link the SMS can carry: the longest PUBLIC_URL the settings allow, /r/ and a
# 23-character token (bot/privacy.py: 17 random bytes).
LONGEST_LINK = "https://" + "p" * (PUBLIC_URL_MAX - len("https://")) + "/r/" + "t" * 23
LONGEST_CLINIC = "C" * DISPLAY_NAME_MAX  # a clinic's display name, at its longest
SMS_SEPTETS = 306  # two GSM-7 segments of a concatenated SMS (153 septets each)


@dataclass
class Report:
    findings: list[ContentError] = field(default_factory=list)
    files: int = 0

    @property
    def errors(self) -> list[ContentError]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[ContentError]:
        return [f for f in self.findings if f.severity == "warning"]

    def summary(self) -> str:
        if not self.findings:
            return f"content check passed: {self.files} files, no problems"
        return (
            f"content check: {len(self.errors)} error(s), {len(self.warnings)} warning(s) "
            f"in {self.files} files"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": not self.errors,
            "files": self.files,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [
                {
                    "file": f.file,
                    "line": f.line,
                    "field": f.field,
                    "severity": f.severity,
                    "message": f.message,
                }
                for f in self.findings
            ],
        }


def check_content(
    content_dir: Path, locales_dir: Path, *, lix_limit: float = DEFAULT_LIX_LIMIT
) -> Report:
    report = Report()
    try:
        bundle = load_content(content_dir)
    except ContentErrors as exc:
        report.findings.extend(exc.errors)
        report.files = len({e.file for e in exc.errors})
        return report
    report.files = len(bundle.sources)
    po = _PoFiles(locales_dir)
    report.findings.extend(_content_translations(bundle, po))
    report.findings.extend(_ui_translations(po))
    report.findings.extend(_content_placeholders(bundle, po))
    report.findings.extend(_ui_placeholders(po))
    report.findings.extend(_worsening_signs(bundle))
    report.findings.extend(_risk_group_advice(bundle))
    report.findings.extend(_threshold_literals(bundle, po))
    report.findings.extend(_emergency_wording(bundle, po))
    report.findings.extend(_plain_words(bundle))
    report.findings.extend(_advice_length(bundle, po))
    report.findings.extend(_sms_length(po))
    report.findings.extend(_readability(bundle, po, lix_limit))
    return report


def filled(bundle: ContentBundle, topic: AdviceTopic) -> AdviceTopic:
    """The Bokmål topic as callers read it: every ``{threshold}`` replaced by its number."""
    return localize(topic, "advice", lambda _ctx, _text: None, bundle.values)


# --- reading the .po files -----------------------------------------------------------------


class _PoFiles:
    """The source catalogs (``.po``), read once; ``None`` for a file that does not exist."""

    def __init__(self, locales_dir: Path) -> None:
        self.locales_dir = locales_dir
        self.content_nn = self._read("nn", "content")
        self.messages: dict[Locale, Catalog | None] = {
            locale: self._read(locale, "messages") for locale in LOCALES
        }

    def path(self, locale: str, domain: str) -> Path:
        return self.locales_dir / locale / "LC_MESSAGES" / f"{domain}.po"

    def display(self, locale: str, domain: str) -> str:
        """The file as shown to admins: relative to the folder that holds ``locales/``."""
        path = self.path(locale, domain)
        try:
            return str(path.relative_to(self.locales_dir.parent))
        except ValueError:
            return str(path)

    def _read(self, locale: str, domain: str) -> Catalog | None:
        path = self.path(locale, domain)
        if not path.exists():
            return None
        with path.open("rb") as fp:
            return read_po(fp, locale=locale, domain=domain)

    def gettext(self, locale: Locale) -> Callable[[str], str]:
        """UI texts as the bot shows them: the translation, else the English msgid. Drafts and
        translations with the wrong placeholders are left out (they are reported on their own)."""
        table: dict[str, str] = {}
        for message in self.messages[locale] or ():
            if (pair := _usable_pair(message)) is not None:
                table[pair[0]] = pair[1]
        return lambda text: table.get(text, text)

    def content_lookup(self, locale: Locale) -> Callable[[str, str], str | None]:
        """Content texts as the bot would show them (for ``localize``); Bokmål is the source."""
        table: dict[tuple[str | None, str], str] = {}
        if locale == "nn":
            for message in self.content_nn or ():
                if (pair := _usable_pair(message)) is not None:
                    table[(message.context, pair[0])] = pair[1]
        return lambda context, text: table.get((context, text))


def _usable_pair(message: Message) -> tuple[str, str] | None:
    """(msgid, msgstr) of a translation the bot would show: singular, translated, not fuzzy,
    with the source's placeholders; None otherwise."""
    if (
        isinstance(message.id, str)
        and message.id
        and isinstance(message.string, str)
        and message.string.strip()
        and not message.fuzzy
        and placeholders(message.id) == placeholders(message.string)
    ):
        return message.id, message.string
    return None


def _short(text: str) -> str:
    return text if len(text) <= 50 else text[:47] + "…"


# --- 1. translations -----------------------------------------------------------------------


def _content_translations(bundle: ContentBundle, po: _PoFiles) -> list[ContentError]:
    findings: list[ContentError] = []
    catalog = po.content_nn
    po_display = po.display("nn", "content")
    if catalog is None:
        return [
            ContentError(
                po_display, 1, "", "the Nynorsk content catalog is missing; run: make catalogs"
            )
        ]
    for kind, model, source in _items(bundle):
        severity = "error" if model.status == "approved" else "warning"
        for ref in translatable_strings(model):
            message = catalog.get(ref.text, context=msgctxt(kind, model.id, ref.key))
            line = source.line_of(ref.path)
            if message is None or not message.string:
                findings.append(
                    ContentError(
                        source.display,
                        line,
                        ref.key,
                        "has no Nynorsk translation; run `make catalogs` and translate it in "
                        f"{po_display}",
                        severity,
                    )
                )
            elif message.fuzzy:
                findings.append(
                    ContentError(
                        source.display,
                        line,
                        ref.key,
                        "the Nynorsk translation is only a draft (marked fuzzy) and is not shown "
                        f"to anyone until a person approves it in {po_display}",
                        severity,
                    )
                )
    return findings


def _items(bundle: ContentBundle) -> Iterator[tuple[str, Any, SourceFile]]:
    for topic in bundle.advice.values():
        yield "advice", topic, bundle.source("advice", topic.id)
    for programme in bundle.programmes.values():
        yield "reflection", programme, bundle.source("reflection", programme.id)
    if bundle.raabra is not None:
        yield "raabra", bundle.raabra, bundle.source("raabra", bundle.raabra.id)


def _ui_translations(po: _PoFiles) -> list[ContentError]:
    findings: list[ContentError] = []
    for locale in LOCALES:
        catalog = po.messages[locale]
        display = po.display(locale, "messages")
        if catalog is None:
            findings.append(
                ContentError(display, 1, "", "the catalog for the bot's own texts is missing")
            )
            continue
        for message in catalog:
            if not message.id:
                continue
            text = message.id if isinstance(message.id, str) else message.id[0]
            short = _short(text)
            if not message.string or (
                isinstance(message.string, tuple) and not all(message.string)
            ):
                problem = f"the text “{short}” has no {LANGUAGE_NAMES[locale]} translation"
            elif message.fuzzy:
                problem = (
                    f"the {LANGUAGE_NAMES[locale]} translation of “{short}” is marked fuzzy "
                    "(a draft); check it and remove the fuzzy mark"
                )
            else:
                continue
            findings.append(ContentError(display, message.lineno or 1, "", problem))
    return findings


# --- 2. placeholders -----------------------------------------------------------------------

_BRACE = re.compile(r"\{([^{}]*)\}")
_PERCENT = re.compile(r"%(?:\((\w+)\))?[#0+-]*\d*(?:\.\d+)?[sdifrxXeEgGc]")


def placeholders(text: str) -> Counter[str]:
    """The placeholders a text is formatted with: ``{name}`` (format spec and conversion left
    out), ``%(name)s`` and positional ``%s``. Named ones count once however often they appear;
    positional ``%s`` are counted, because their number must match."""
    found: Counter[str] = Counter()
    for match in _BRACE.finditer(text.replace("{{", "").replace("}}", "")):
        name = re.split(r"[!:]", match.group(1), maxsplit=1)[0]
        found["{" + name + "}"] = 1
    for match in _PERCENT.finditer(text.replace("%%", "")):
        if match.group(1):
            found[f"%({match.group(1)})s"] = 1
        else:
            found["%s"] += 1
    return found


def _placeholder_problems(source: str, translation: str) -> Iterator[tuple[str, str]]:
    """("extra" | "missing", placeholder) for each difference."""
    want, have = placeholders(source), placeholders(translation)
    for name in sorted(have - want):
        yield "extra", name
    for name in sorted(want - have):
        yield "missing", name


def _content_placeholders(bundle: ContentBundle, po: _PoFiles) -> list[ContentError]:
    """Nynorsk content translations that would be shown (non-fuzzy) against their Bokmål text."""
    findings: list[ContentError] = []
    if po.content_nn is None:
        return findings
    for kind, model, source in _items(bundle):
        for ref in translatable_strings(model):
            message = po.content_nn.get(ref.text, context=msgctxt(kind, model.id, ref.key))
            if message is None or not isinstance(message.string, str) or message.fuzzy:
                continue
            for problem, name in _placeholder_problems(ref.text, message.string):
                if problem == "extra":
                    text = (
                        f"the Nynorsk translation of {ref.key} has placeholder {name} that the "
                        "Bokmål text does not have; remove it or add it to both"
                    )
                else:
                    text = (
                        f"the Nynorsk translation of {ref.key} lacks placeholder {name} that the "
                        "Bokmål text has; copy it into the translation exactly as written"
                    )
                findings.append(
                    ContentError(source.display, source.line_of(ref.path), ref.key, text)
                )
    return findings


def _ui_placeholders(po: _PoFiles) -> list[ContentError]:
    """Each UI translation (msgstr) against its English msgid, in both catalogs."""
    findings: list[ContentError] = []
    for locale in LOCALES:
        catalog = po.messages[locale]
        display = po.display(locale, "messages")
        language = LANGUAGE_NAMES[locale]
        for message in catalog or ():
            if not message.id or not message.string or message.fuzzy:
                continue
            ids = (message.id,) if isinstance(message.id, str) else tuple(message.id)
            strings = (
                (message.string,) if isinstance(message.string, str) else tuple(message.string)
            )
            short = _short(ids[0])
            for translation in strings:
                for problem, name in _placeholder_problems(ids[-1], translation):
                    if problem == "extra":
                        text = (
                            f"the {language} translation of “{short}” has placeholder {name} that "
                            "the English text does not have; the bot cannot fill it in"
                        )
                    else:
                        text = (
                            f"the {language} translation of “{short}” lacks placeholder {name}; "
                            "copy it from the English text exactly as written"
                        )
                    findings.append(ContentError(display, message.lineno or 1, "", text))
    return findings


# --- 3. concrete worsening signs -----------------------------------------------------------

# A sign is concrete when it holds a number, a unit or time word, or something the caller can
# observe. Words match at the start of a word, so "pust" also finds "puster" and "pusten".
UNIT_WORDS = (
    "°c",
    "grader",
    "time",  # time, timer, timene
    "døgn",
    "dag",  # dag, dager, dagen
    "natt",
    "minutt",
    "sekund",
    "uke",
    "veke",
    "gang",  # gang, ganger, gangen
    "liter",
    "dl",
    "ml",
    "kg",
    "halvparten",
)
OBSERVABLE_WORDS = (
    "pust",
    "blod",
    "farge",
    "blå",
    "grå",
    "blek",
    "gul",
    "prikker",
    "flekk",
    "utslett",
    "kramper",
    "rykker",
    "våk",  # våkne, våken
    "vekke",
    "tiss",  # tisse, tisset
    "urin",
    "bleie",
    "drikk",  # drikke, drikker
    "drukket",
    "oppkast",
    "kaster opp",
    "bevisst",
    "besvim",
    "forvirr",
    "stiv",
    "setning",
    "snakke",
    "tårer",
    "tørr",
    "grønt",
    "kald",
    "nummen",
    "lam",
    "pupill",
    "hard som",
    "stikker",
    "høyre side",
    "væske",
    "huden",
    "lent fram",
    "hoven",
    "hevelse",
    "ser dobbelt",
    "rører seg",
    "hovner",
    "rødme",
    "rød",
    "puss",
    "blemme",
    "svelg",
    "sikl",
    "avføring",
    "svart",
)
VAGUE_PHRASES = (
    "føler deg dårlig",
    "ikke bra",
    "blir verre",
    "verre",
    "dårligere",
    "bekymret",
    "forverring",
)
_CONCRETE = re.compile(
    r"\d|" + "|".join(r"(?<!\w)" + re.escape(w) for w in UNIT_WORDS + OBSERVABLE_WORDS),
    re.IGNORECASE,
)


def is_concrete(sign: str) -> bool:
    """Whether a worsening sign says something the caller can see, count or measure.

    Simple on purpose: the sign holds a digit, or a word starting with one of ``UNIT_WORDS``
    (timer, døgn, dager, minutter, °C, grader, ganger, liter, dl, …) or ``OBSERVABLE_WORDS``
    (pust, blod, farge, prikker, kramper, våkne, tisse, drikke, oppkast, bevisst, …). Signs such
    as "Du blir verre" or "Du føler deg dårlig" hold none of these.
    """
    return _CONCRETE.search(sign) is not None


def all_signs(topic: AdviceTopic) -> Iterator[tuple[FieldPath, str, str]]:
    """(path in the file, field name, text) of every worsening sign, the risk groups' too."""
    for index, sign in enumerate(topic.worsening_signs):
        yield ("worsening_signs", index, "sign"), f"worsening_signs[{index}].sign", sign.sign
    for g, group in enumerate(topic.tailoring.risk_groups):
        for index, sign in enumerate(group.signs):
            yield (
                ("tailoring", "risk_groups", g, "signs", index, "sign"),
                f"tailoring.risk_groups[{group.id}].signs[{index}].sign",
                sign.sign,
            )


def _worsening_signs(bundle: ContentBundle) -> list[ContentError]:
    findings: list[ContentError] = []
    for topic in bundle.advice.values():
        source = bundle.source("advice", topic.id)
        for path, key, text in all_signs(filled(bundle, topic)):
            if is_concrete(text):
                continue
            lower = text.lower()
            vague = next((p for p in VAGUE_PHRASES if p in lower), None)
            because = f" (“{vague}” can mean anything)" if vague else ""
            findings.append(
                ContentError(
                    source.display,
                    source.line_of(path),
                    key,
                    f"worsening sign “{_short(text)}” is not concrete{because}: say what the "
                    "caller can see, count or measure (a number, a time, a colour)",
                    "warning",
                )
            )
    return findings


# A sentence that sends the reader to someone; it must also say when.
_CONTACT = re.compile(
    r"(?<!\w)(ring|kontakt|ta kontakt|oppsøk|søk lege|time hos|få time|gå til lege)", re.IGNORECASE
)
_WHEN = re.compile(
    r"\d|(?<!\w)(med en gang|med ein gong|nå|no|straks|i dag|samme dag|same dag|i morgen|"
    r"innen|innan|neste virkedag|neste vyrkedag|i kveld|i natt|timer|timar|døgn|dager|dagar)(?!\w)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")


def _risk_group_advice(bundle: ContentBundle) -> list[ContentError]:
    """A risk group's advice that says to call or see someone must say when, concretely."""
    findings: list[ContentError] = []
    for topic in bundle.advice.values():
        source = bundle.source("advice", topic.id)
        for index, group in enumerate(filled(bundle, topic).tailoring.risk_groups):
            for sentence in _SENTENCE.findall(group.advice or ""):
                sentence = sentence.strip()
                if not sentence or not _CONTACT.search(sentence):
                    continue
                if _WHEN.search(sentence) and is_concrete(sentence):
                    continue
                problem = "when" if not _WHEN.search(sentence) else "on what sign"
                findings.append(
                    ContentError(
                        source.display,
                        source.line_of(("tailoring", "risk_groups", index, "advice")),
                        f"tailoring.risk_groups[{group.id}].advice",
                        f"“{_short(sentence)}” says to contact someone but not {problem}: give a "
                        "time (now, today, within 24 hours) and a concrete sign, or make it a "
                        "sign with a tier",
                        "warning",
                    )
                )
    return findings


# --- 3b. shared thresholds ------------------------------------------------------------------

# A number of each shared kind as written in Bokmål or Nynorsk: "38,5 °C", "30 ganger i
# minuttet" (in a text about breathing), "8 timer" (in a sentence about urine or nappies).
_LITERALS: dict[str, tuple[re.Pattern[str], re.Pattern[str] | None]] = {
    "temperature": (re.compile(r"(\d+(?:[.,]\d+)?)\s*°\s*C"), None),
    "breathing_rate": (
        re.compile(r"(\d+)\s+(?:ganger|gonger|pust|åndedrag)\s+(?:i|per|på)\s+minutt"),
        re.compile(r"(?<!\w)pust", re.IGNORECASE),
    ),
    "hours_without_urine": (
        re.compile(r"(\d+)\s+tim(?:er|ar|ene|ane)(?!\w)"),
        re.compile(r"(?<!\w)(tiss|urin|bleie|bleia)", re.IGNORECASE),
    ),
}
KIND_NAMES = {
    "temperature": "temperature",
    "breathing_rate": "breathing rate",
    "hours_without_urine": "hours without urine",
}


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _threshold_literals(bundle: ContentBundle, po: _PoFiles) -> list[ContentError]:
    """Numbers of a shared kind written out: an error where no shared threshold of that kind
    (for the topic's audience) has the value, a warning where one has it (write ``{id}``)."""
    from bot.content.loader import PLACEHOLDER, THRESHOLDS_FILE

    findings: list[ContentError] = []
    if not bundle.thresholds:
        return findings
    for topic in bundle.advice.values():
        source = bundle.source("advice", topic.id)
        audience = topic.audience
        relevant = [
            t
            for t in bundle.thresholds.values()
            if "everyone" in (t.audience, audience) or t.audience == audience
        ]
        for ref in translatable_strings(topic):
            texts = [("nb", ref.text)]
            message = (
                po.content_nn.get(ref.text, context=msgctxt("advice", topic.id, ref.key))
                if po.content_nn is not None
                else None
            )
            if message is not None and isinstance(message.string, str) and message.string:
                texts.append(("nn", message.string))
            for locale, text in texts:
                bare = PLACEHOLDER.sub("", text)
                for sentence in _SENTENCE.findall(bare):
                    for kind, (pattern, context) in _LITERALS.items():
                        if context is not None and not context.search(sentence):
                            continue
                        for match in pattern.finditer(sentence):
                            value = _number(match.group(1))
                            same_kind = [t for t in relevant if t.kind == kind]
                            if not same_kind:
                                continue
                            agreeing = [t for t in same_kind if t.value == value]
                            if locale == "nn" and message is not None:
                                where, line = po.display("nn", "content"), message.lineno or 1
                            else:
                                where, line = source.display, source.line_of(ref.path)
                            if agreeing:
                                findings.append(
                                    ContentError(
                                        where,
                                        line,
                                        ref.key,
                                        f"“{match.group(0)}” is the shared threshold "
                                        f"{agreeing[0].id}; write {{{agreeing[0].id}}} instead "
                                        f"of the number, so it follows content/{THRESHOLDS_FILE}",
                                        "warning",
                                    )
                                )
                            else:
                                shared = ", ".join(
                                    f"{t.id} = {t.text}" for t in sorted(same_kind, key=_by_value)
                                )
                                findings.append(
                                    ContentError(
                                        where,
                                        line,
                                        ref.key,
                                        f"“{match.group(0)}” contradicts the shared thresholds "
                                        f"for {KIND_NAMES[kind]} ({shared}) in "
                                        f"content/{THRESHOLDS_FILE}; write the {{id}} of the "
                                        "one that is meant, or add a threshold there with its "
                                        "source",
                                    )
                                )
    return findings


def _by_value(threshold: Any) -> tuple[float, str]:
    return threshold.value, threshold.id


# --- 3c. one wording for 113 and 116 117 ------------------------------------------------------

_NUMBERS = re.compile(r"113|116\s?117")
_URGENT_WORDS = re.compile(r"(?<!\w)(hast|urgent|emergency)", re.IGNORECASE)


def _emergency_wording(bundle: ContentBundle, po: _PoFiles) -> list[ContentError]:
    """113 and 116 117 are named only by ``bot.urgency``'s agreed texts, in both languages,
    and never with "urgent" next to 113; advice text leaves the numbers to its tiers."""
    from bot.urgency import AGREED, CALL_113

    findings: list[ContentError] = []
    for locale in LOCALES:
        catalog = po.messages[locale]
        display = po.display(locale, "messages")
        language = LANGUAGE_NAMES[locale]
        for message in catalog or ():
            if not message.id or not isinstance(message.id, str):
                continue
            translation = message.string if isinstance(message.string, str) else ""
            line = message.lineno or 1
            if _NUMBERS.search(message.id) and message.id not in AGREED:
                findings.append(
                    ContentError(
                        display,
                        line,
                        "",
                        f"“{_short(message.id)}” names an emergency number in its own words; "
                        "build the text from the agreed wordings in bot/urgency.py",
                    )
                )
                continue
            if message.id in AGREED and translation:
                if sorted(_NUMBERS.findall(translation)) != sorted(_NUMBERS.findall(message.id)):
                    findings.append(
                        ContentError(
                            display,
                            line,
                            "",
                            f"the {language} translation of “{_short(message.id)}” must name "
                            "the same numbers as the English text",
                        )
                    )
                if "113" in translation and _URGENT_WORDS.search(translation):
                    findings.append(
                        ContentError(
                            display,
                            line,
                            "",
                            f"the {language} translation of “{_short(message.id)}” sends "
                            "something urgent to 113; 113 is for danger to life, urgent goes "
                            "to 116 117",
                        )
                    )
            if message.id == CALL_113 and translation and "113" not in translation:
                findings.append(
                    ContentError(display, line, "", f"the {language} 113 line lacks 113")
                )
    for topic in bundle.advice.values():
        source = bundle.source("advice", topic.id)
        for ref in translatable_strings(topic):
            if _NUMBERS.search(ref.text):
                findings.append(
                    ContentError(
                        source.display,
                        source.line_of(ref.path),
                        ref.key,
                        "names 113 or 116 117 itself; put the sign in a tier (emergency, "
                        "urgent, soon) and let the advice say whom to call, in the one agreed "
                        "wording",
                    )
                )
    return findings


# --- 3d. plain words ------------------------------------------------------------------------


def _plain_words(bundle: ContentBundle) -> list[ContentError]:
    from bot.content import plainwords

    findings: list[ContentError] = []
    for topic in bundle.advice.values():
        source = bundle.source("advice", topic.id)
        refs = list(translatable_strings(filled(bundle, topic)))
        explained = plainwords.explained_words(ref.text for ref in refs)
        explained |= {word.lower() for word in re.findall(r"[^\W\d_]+", topic.title)}
        seen: set[str] = set()
        for ref in refs:
            for word in plainwords.hard_words(ref.text):
                key = word.lower()
                if key in seen or plainwords.is_explained(key, explained):
                    continue
                seen.add(key)
                findings.append(
                    ContentError(
                        source.display,
                        source.line_of(ref.path),
                        ref.key,
                        f"“{word}” is a long word few readers know ({plainwords.describe(word)}); "
                        "use plainer words, or explain it in brackets where it first appears, "
                        f"e.g. “{word} (…)”",
                        "warning",
                    )
                )
    return findings


# --- 4. one Telegram message ---------------------------------------------------------------


def longest_advice(topic: AdviceTopic, _: Callable[[str], str], locale: Locale) -> str:
    """The advice as one message with the longest tailoring a nurse can choose: a full note,
    every risk group and the longest check-in time."""
    from bot.render import advice_sections

    sections = advice_sections(
        topic,
        _,
        note="n" * NOTE_MAX,
        risk_groups=[group.id for group in topic.tailoring.risk_groups],
        checkin_when=_longest_when(_, locale),
    )
    return "\n\n".join(sections)


def _longest_when(_: Callable[[str], str], locale: Locale) -> str:
    from bot.render import when_text

    now = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    times = (now + dt.timedelta(days=days) for days in range(366))
    return max((when_text(_, when, now, locale, dt.UTC) for when in times), key=len)


def _advice_length(bundle: ContentBundle, po: _PoFiles) -> list[ContentError]:
    from bot.render import TELEGRAM_LIMIT

    findings: list[ContentError] = []
    for locale in LOCALES:
        _ = po.gettext(locale)
        lookup = po.content_lookup(locale)
        for topic in bundle.advice.values():
            source = bundle.source("advice", topic.id)
            try:
                text = longest_advice(localize(topic, "advice", lookup, bundle.values), _, locale)
            except (KeyError, IndexError, ValueError) as exc:
                findings.append(
                    ContentError(
                        source.display,
                        source.line_of(("title",)),
                        "title",
                        f"the advice cannot be put together in {LANGUAGE_NAMES[locale]} "
                        f"({type(exc).__name__}: {exc}); check the placeholders in the catalogs",
                    )
                )
                continue
            if len(text) > TELEGRAM_LIMIT:
                findings.append(
                    ContentError(
                        source.display,
                        source.line_of(("title",)),
                        "title",
                        f"the advice “{_short(topic.title)}” is {len(text)} characters in "
                        f"{LANGUAGE_NAMES[locale]} with the longest tailoring (a "
                        f"{NOTE_MAX}-character note, every risk group, a check-in time); "
                        f"Telegram shows at most {TELEGRAM_LIMIT} in one message — shorten it",
                    )
                )
    return findings


# --- 5. the link SMS -----------------------------------------------------------------------


def _sms_length(po: _PoFiles) -> list[ContentError]:
    """The link SMS, with and without a clinic's name, at its longest, in each language: only
    GSM-7 characters, and at most two segments."""
    from bot.render import sms_text
    from bot.sms import gsm7_septets, is_gsm7

    findings: list[ContentError] = []
    for locale in LOCALES:
        for clinic in (LONGEST_CLINIC, None):
            used: list[str] = []
            recording = _recording(po.gettext(locale), used)
            sms = sms_text(recording, LONGEST_LINK, LINK_HOURS, clinic)
            catalog = po.messages[locale]
            message = catalog.get(used[0]) if catalog is not None and used else None
            line = (message.lineno if message is not None else None) or 1
            display = po.display(locale, "messages")
            language = LANGUAGE_NAMES[locale]
            which = "with a 32-character clinic name" if clinic else "without a clinic name"
            if not is_gsm7(sms):
                odd = "".join(sorted({c for c in sms if not is_gsm7(c)}))
                findings.append(
                    ContentError(
                        display,
                        line,
                        "",
                        f"the {language} link SMS has characters an ordinary SMS cannot carry "
                        f"({odd}); it would be sent as Unicode, in up to three times as many "
                        "parts — use other characters",
                    )
                )
            elif (septets := gsm7_septets(sms)) > SMS_SEPTETS:
                findings.append(
                    ContentError(
                        display,
                        line,
                        "",
                        f"the {language} link SMS is {septets} characters {which} and the "
                        f"longest link; two SMS segments hold at most {SMS_SEPTETS} — shorten "
                        "the translation",
                    )
                )
    return findings


def _recording(gettext: Callable[[str], str], used: list[str]) -> Callable[[str], str]:
    """``gettext`` that also notes each msgid it was asked for (to find its line)."""

    def recording(text: str) -> str:
        used.append(text)
        return gettext(text)

    return recording


# --- 6. readability ------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+")
_SENTENCE_END = re.compile(r"[.!?:]+(?=\s|$)")


def lix(text: str) -> float:
    """LIX, the Scandinavian readability index: words per sentence + the percentage of long words
    (more than 6 letters). 20–30 is easy, 40 is plain newspaper prose, 50+ is hard.

    Words are runs of letters (æøå included, digits not). Sentences end at . ! ? or : followed by
    a space or the end (words after the last one are a sentence too); each line is a list item
    and counts as at least one sentence.
    """
    words = _WORD.findall(text)
    if not words:
        return 0.0
    sentences = sum(
        max(1, sum(1 for part in _SENTENCE_END.split(line) if _WORD.search(part)))
        for line in text.splitlines()
    )
    long_words = sum(1 for word in words if len(word) > 6)
    return len(words) / sentences + 100 * long_words / len(words)


def advice_sections_for_lix(topic: AdviceTopic) -> Iterator[tuple[str, FieldPath, str, str]]:
    """(field, path in the file, name for admins, text) of each section a caller reads; a list
    becomes one text with an item a line."""
    yield "summary", ("summary",), "the summary", topic.summary
    yield "self_care", ("self_care",), "the self-care list", "\n".join(topic.self_care)
    yield "normal", ("normal",), "the list of what is normal", "\n".join(topic.normal)
    signs = "\n".join(s.sign for s in topic.worsening_signs)
    yield "worsening_signs", ("worsening_signs",), "the list of worsening signs", signs
    for index, group in enumerate(topic.tailoring.risk_groups):
        text = "\n".join([group.advice or "", *(s.sign for s in group.signs)]).strip()
        yield (
            f"tailoring.risk_groups[{group.id}]",
            ("tailoring", "risk_groups", index),
            f"the advice and signs for “{group.label}”",
            text,
        )


def _readability(bundle: ContentBundle, po: _PoFiles, limit: float) -> list[ContentError]:
    findings: list[ContentError] = []
    for topic in bundle.advice.values():
        source = bundle.source("advice", topic.id)
        for locale in LOCALES:
            localised = localize(topic, "advice", po.content_lookup(locale), bundle.values)
            for key, path, name, text in advice_sections_for_lix(localised):
                score = lix(text)
                if score > limit:
                    # Whole numbers, unless rounding would make it look within the limit.
                    shown = f"{score:.0f}" if round(score) > limit else f"{score:.1f}"
                    findings.append(
                        ContentError(
                            source.display,
                            source.line_of(path),
                            key,
                            f"{name} has LIX {shown} in {LANGUAGE_NAMES[locale]} (limit "
                            f"{limit:g}): use shorter sentences and shorter words",
                            "warning",
                        )
                    )
    return findings
