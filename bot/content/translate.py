"""Nynorsk drafts from Bokmål with Apertium (``apertium nob-nno``), for empty catalog entries.

Only EMPTY ``msgstr`` entries of ``locales/nn/LC_MESSAGES/<domain>.po`` are filled, and every
draft is marked fuzzy: compiled catalogs leave fuzzy entries out, so a draft is never shown to
anyone until a person has read it and removed the flag. Existing translations are never touched,
and the file keeps its order and its unwrapped lines.

The Bokmål source is the msgid for the ``content`` domain, and the Bokmål catalog's msgstr for
``messages`` (whose msgids are English).

How a text goes through Apertium:

- Placeholders (``{hours}``, ``%(name)s``), HTML tags and entities are swapped for tokens such as
  ``ZXPH0ZX``, which Apertium leaves alone, and swapped back afterwards; a draft whose tokens do
  not all come back exactly once is not written.
- Apertium's marks for words it could not handle (``*unknown``, ``#generation``, ``@transfer``)
  are removed, unless the same mark was in the source.
- Many texts go through one ``apertium`` process, each batch joined by lines holding only
  ``ZXSEP<n>ZX`` between blank lines; Apertium passes those through unchanged and treats the
  blank lines as sentence ends. If a batch does not come back whole, its texts are translated
  one by one.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po, write_po

APERTIUM = "apertium"
PAIRS = {"nn": "nob-nno"}
INSTALL_HINT = "sudo apt-get install apertium apertium-nno-nob"
BATCH_SIZE = 100  # texts per apertium process (each process takes about a second to start)
TIMEOUT_SECONDS = 300

# What Apertium must not translate: format fields, printf-style fields, HTML tags and entities.
PROTECTED = re.compile(
    r"\{[^{}\s]*\}"
    r"|%\([A-Za-z_]\w*\)[sdifr]|%[sdif]"
    r"|</?[A-Za-z][^<>]*>"
    r"|&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);"
)
TOKEN = "ZXPH{}ZX"
SEPARATOR = "ZXSEP{}ZX"
_SEPARATOR_LINE = re.compile(r"\s*^ZXSEP(\d+)ZX$\s*", re.MULTILINE)
# A mark Apertium puts before a word it could not analyse (*), generate (#) or transfer (@).
_MARKED_WORD = re.compile(r"(?<![\w*#@])[*#@](\w+)")

Translator = Callable[[Sequence[str]], list[str]]
Progress = Callable[[int], None]


class TranslateError(Exception):
    """Apertium is missing or failed; the message is one plain sentence."""


# --- one text --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protected:
    """A text with its placeholders swapped for tokens, and what to put back."""

    text: str  # what Apertium gets
    originals: tuple[str, ...]
    spaced: tuple[tuple[bool, bool], ...]  # a space was added before / after the token
    prefix: str = ""  # placeholders, tags and whitespace before the first word, kept as they are
    suffix: str = ""


_EDGE = f"(?:\\s*(?:{PROTECTED.pattern}))*\\s*"
_LEADING = re.compile(_EDGE)
_TRAILING = re.compile(_EDGE + r"\Z")


def protect(text: str) -> Protected:
    """Swap placeholders, tags and entities for ``ZXPH<n>ZX`` tokens Apertium leaves alone.

    Those at the very start or end are not sent at all (a token before the first word keeps
    Apertium from seeing that the sentence starts there). A token glued to a word would make
    Apertium see one unknown word, so a space is put between them, and taken out by ``restore``.
    """
    lead = _LEADING.match(text)
    start = lead.end() if lead else 0
    trail = _TRAILING.search(text, start)
    end = trail.start() if trail else len(text)
    body = text[start:end]
    originals: list[str] = []
    spaced: list[tuple[bool, bool]] = []
    out: list[str] = []
    last = 0
    for match in PROTECTED.finditer(body):
        first, after_end = match.span()
        before = first > 0 and _wordish(body[first - 1])
        after = after_end < len(body) and _wordish(body[after_end])
        out.append(body[last:first])
        token = TOKEN.format(len(originals))
        out.append((" " if before else "") + token + (" " if after else ""))
        originals.append(match.group())
        spaced.append((before, after))
        last = after_end
    out.append(body[last:])
    return Protected("".join(out), tuple(originals), tuple(spaced), text[:start], text[end:])


def _wordish(char: str) -> bool:
    return char.isalnum() or char == "_"


def restore(translated: str, protected: Protected) -> str | None:
    """Put the placeholders back; None if any token is lost, doubled or left over."""
    text = translated
    for index, (original, (before, after)) in enumerate(
        zip(protected.originals, protected.spaced, strict=True)
    ):
        token = re.escape(TOKEN.format(index))
        pattern = ("[ ]?" if before else "") + token + ("[ ]?" if after else "")
        text, count = re.subn(pattern, original.replace("\\", "\\\\"), text)
        if count != 1:
            return None
    if "ZXPH" in text or "ZXSEP" in text:
        return None
    return protected.prefix + text + protected.suffix


def strip_marks(translated: str, source: str) -> str:
    """Remove Apertium's ``*word``, ``#word`` and ``@word`` marks (kept if the source had them).

    Also closes up the double spaces Apertium leaves where it dropped a word.
    """

    def unmark(match: re.Match[str]) -> str:
        return match.group() if match.group() in source else match.group(1)

    text = _MARKED_WORD.sub(unmark, translated)
    if "  " not in source:
        text = re.sub(r"(?<=\S) {2,}(?=\S)", " ", text)
    return text


def placeholders(text: str) -> list[str]:
    """The text's placeholders, tags and entities, sorted (to compare source and draft)."""
    return sorted(PROTECTED.findall(text))


# --- Apertium ----------------------------------------------------------------------------------


def apertium_path() -> str:
    """The ``apertium`` program, or TranslateError saying how to install it."""
    found = shutil.which(APERTIUM)
    if found is None:
        raise TranslateError(
            f"Apertium is not installed, so no drafts can be made. Install it with: {INSTALL_HINT}"
        )
    return found


def _run(program: str, args: Sequence[str], text: str) -> str:
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C.UTF-8")  # Apertium reads and writes UTF-8 whatever the locale
    try:
        done = subprocess.run(
            [program, *args],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TranslateError(f"Apertium could not be run: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TranslateError(
            f"Apertium failed ({detail[-1] if detail else f'exit code {done.returncode}'}); "
            f"check the installation with: {INSTALL_HINT}"
        )
    return done.stdout.decode("utf-8", "replace")


def apertium_translator(pair: str = "nob-nno") -> Translator:
    """A function translating texts with ``apertium <pair>``, one process per call.

    Raises TranslateError at once if Apertium or the language pair is not installed.
    """
    program = apertium_path()
    directions = _run(program, ["-l"], "").split()
    if pair not in directions:
        raise TranslateError(
            f"Apertium is installed but its {pair} language pair is not. Install it with: "
            f"{INSTALL_HINT}"
        )

    def translate(texts: Sequence[str]) -> list[str]:
        return [_run(program, ["-f", "txt", pair], text) for text in texts]

    return translate


def translate_batch(texts: Sequence[str], run: Callable[[str], str]) -> list[str]:
    """Translate many texts with one call of ``run``; one by one if the batch comes back wrong.

    Texts are joined by ``ZXSEP<n>ZX`` lines between blank lines. Surrounding whitespace is kept
    from the source.
    """
    if not texts:
        return []
    joined = "".join(
        (f"\n\n{SEPARATOR.format(index)}\n\n" if index else "") + text.strip()
        for index, text in enumerate(texts)
    )
    pieces = _split(run(joined + "\n"), len(texts))
    if pieces is None:
        pieces = [run(text.strip() + "\n").strip() for text in texts]
    return [_keep_edges(source, piece) for source, piece in zip(texts, pieces, strict=True)]


def _split(output: str, expected: int) -> list[str] | None:
    parts = _SEPARATOR_LINE.split(output)
    # [text0, "1", text1, "2", text2, ...]
    texts, numbers = parts[0::2], parts[1::2]
    if len(texts) != expected or numbers != [str(n) for n in range(1, expected)]:
        return None
    return [text.strip() for text in texts]


def _keep_edges(source: str, translated: str) -> str:
    lead = source[: len(source) - len(source.lstrip())]
    trail = source[len(source.rstrip()) :]
    return lead + translated.strip() + trail if translated.strip() else translated


def draft_texts(
    sources: Sequence[str],
    translate: Translator,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> list[str | None]:
    """Nynorsk drafts for Bokmål texts; None where placeholders did not survive."""
    protected = [protect(text) for text in sources]
    drafts: list[str | None] = []
    for start in range(0, len(protected), batch_size):
        chunk = protected[start : start + batch_size]

        def run(text: str) -> str:
            return translate([text])[0]

        translated = translate_batch([p.text for p in chunk], run)
        for source, item, raw in zip(
            sources[start : start + batch_size], chunk, translated, strict=True
        ):
            draft = restore(strip_marks(raw, item.text), item)
            if draft is not None and (
                not draft.strip() or placeholders(draft) != placeholders(source)
            ):
                draft = None
            drafts.append(draft)
        if progress is not None:
            progress(len(chunk))
    return drafts


# --- catalogs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """One entry that got a draft: where it is, the Bokmål source and the Nynorsk draft."""

    context: str | None
    msgid: str
    source: str
    draft: str


@dataclass
class DraftReport:
    """What ``draft_catalog`` did (or, with ``dry_run``, would do)."""

    po_path: Path
    empty: int = 0  # empty entries found
    drafts: list[Draft] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # entries whose placeholders did not survive
    no_source: list[str] = field(default_factory=list)  # no Bokmål text to translate from
    written: bool = False


def po_path(locales_dir: Path, locale: str, domain: str) -> Path:
    return locales_dir / locale / "LC_MESSAGES" / f"{domain}.po"


def read_catalog(path: Path, locale: str, domain: str) -> Catalog:
    if not path.is_file():
        raise TranslateError(f"There is no catalog {path}; run `make catalogs` first.")
    with path.open("rb") as fp:
        return read_po(fp, locale=locale, domain=domain)


def _is_empty(message: Message) -> bool:
    strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
    return not any(strings)


def _label(message: Message) -> str:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return message.context or msgid


def _bokmal_sources(
    catalog: Catalog, locales_dir: Path, domain: str
) -> Callable[[Message], list[str] | None]:
    """Where each entry's Bokmål text comes from: the msgid, or the nb catalog for UI texts."""
    if domain == "content":
        return lambda m: [m.id] if isinstance(m.id, str) else list(m.id)
    nb = read_catalog(po_path(locales_dir, "nb", domain), "nb", domain)
    plurals = catalog.num_plurals

    def source(message: Message) -> list[str] | None:
        found = nb.get(message.id, message.context)
        if found is None or found.fuzzy or _is_empty(found):
            return None
        if isinstance(found.string, str):
            return [found.string]
        given = tuple(found.string or ())
        forms = [s for s in given if s]
        if len(forms) != len(given):
            return None
        return [forms[min(i, len(forms) - 1)] for i in range(plurals)]

    return source


def draft_catalog(
    locales_dir: Path,
    domain: str = "content",
    *,
    locale: str = "nn",
    dry_run: bool = False,
    translate: Translator | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> DraftReport:
    """Fill the empty entries of ``<locale>/<domain>.po`` with fuzzy Apertium drafts.

    ``translate`` defaults to Apertium (TranslateError if it is missing). ``on_start`` is told
    how many texts will be translated, ``progress`` how many more are done after each batch.
    """
    if locale not in PAIRS:
        raise TranslateError(f"Drafts can be made for {', '.join(PAIRS)} only, not '{locale}'.")
    path = po_path(locales_dir, locale, domain)
    catalog = read_catalog(path, locale, domain)
    report = DraftReport(path)
    source_of = _bokmal_sources(catalog, locales_dir, domain)
    todo: list[tuple[Message, list[str]]] = []
    for message in catalog:
        if not message.id or not _is_empty(message):
            continue
        report.empty += 1
        sources = source_of(message)
        if not sources:
            report.no_source.append(_label(message))
            continue
        todo.append((message, sources))
    if not todo:
        return report
    if translate is None:
        translate = apertium_translator(PAIRS[locale])
    flat = [text for _message, sources in todo for text in sources]
    if on_start is not None:
        on_start(len(flat))
    drafted = iter(draft_texts(flat, translate, batch_size=batch_size, progress=progress))
    for message, sources in todo:
        forms = [next(drafted) for _ in sources]
        if any(form is None for form in forms):
            report.failed.append(_label(message))
            continue
        texts = [form for form in forms if form is not None]
        message.string = texts[0] if isinstance(message.id, str) else tuple(texts)
        message.flags.add("fuzzy")
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        report.drafts.append(Draft(message.context, msgid, " | ".join(sources), " | ".join(texts)))
    if report.drafts and not dry_run:
        write_catalog(path, catalog)
        report.written = True
    return report


def write_catalog(path: Path, catalog: Catalog) -> None:
    """Write the catalog in place, unwrapped (as ``--no-wrap``) and in its own order."""
    buffer = io.BytesIO()
    previous = any(m.previous_id for m in catalog)
    write_po(buffer, catalog, width=0, include_previous=previous)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
