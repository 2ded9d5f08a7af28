"""``python -m bot content translate``: Apertium drafts for empty Nynorsk entries, always fuzzy.

Each test works on a copy of the shipped catalogs with a few msgstr emptied. The tests that run
the real Apertium are skipped where it is not installed, except under CI (``CI`` set), where
they fail: ``make test`` installs it (``make system-deps``).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner

from bot.cli import main
from bot.content import translate
from bot.content.translate import (
    INSTALL_HINT,
    draft_catalog,
    draft_texts,
    protect,
    restore,
    strip_marks,
    translate_batch,
)
from bot.i18n import Catalogs

REPO = Path(__file__).resolve().parents[1]
CONTENT_PO = Path("nn/LC_MESSAGES/content.po")
MESSAGES_PO = Path("nn/LC_MESSAGES/messages.po")
# Content entries emptied for the tests: (msgctxt, a word the Nynorsk draft must contain).
EMPTIED_CONTENT = {
    "advice/fever-child:summary": "Dei fleste",
    "advice/head-injury:self_care[0]": "ein annan",
    "reflection/systemperspektiv:roles[unit-leader].title": "",
}
SMS = "Advice from the legevakt after your call: {link} The page is open for {hours} hours."
TAGGED = "<b>What you can do here</b>"
CHECKIN = "We will ask you how it is going {when}."
EMPTIED_MESSAGES = (SMS, TAGGED, CHECKIN)


def _has_apertium() -> bool:
    program = shutil.which("apertium")
    if program is None:
        return False
    listed = subprocess.run([program, "-l"], capture_output=True, text=True, check=False)
    return "nob-nno" in listed.stdout.split()


HAVE_APERTIUM = _has_apertium()


@pytest.fixture
def apertium() -> None:
    """Skip without Apertium, except in CI, which must have it."""
    if HAVE_APERTIUM:
        return
    if os.environ.get("CI"):
        pytest.fail("Apertium's nob-nno pair is not installed; CI must run `make system-deps`")
    pytest.skip("Apertium is not installed (make system-deps, or: " + INSTALL_HINT + ")")


def read(path: Path) -> Catalog:
    with path.open("rb") as fp:
        return read_po(fp, locale="nn")


def empty_entries(path: Path, keep: set[tuple[str, str | None]]) -> None:
    """Blank the msgstr of the entries in ``keep`` by editing the file's lines (no rewrite)."""
    lines = path.read_text("utf-8").splitlines(keepends=True)
    context: str | None = None
    msgid: str | None = None
    found = 0
    for index, line in enumerate(lines):
        if line.startswith("msgctxt "):
            context = _unquote(line[8:])
        elif line.startswith("msgid "):
            msgid = _unquote(line[6:])
        elif line.startswith("msgstr ") and msgid:
            if (msgid, context) in keep or (None, context) in keep:
                lines[index] = 'msgstr ""\n'
                found += 1
            context = msgid = None
    assert found == len(keep), f"only {found} of {len(keep)} entries found in {path}"
    path.write_text("".join(lines), "utf-8")


def _unquote(text: str) -> str:
    return text.strip()[1:-1].replace('\\"', '"').replace("\\\\", "\\")


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    """A copy of the catalogs with three content and three UI entries of nn emptied."""
    root = tmp_path / "locales"
    shutil.copytree(REPO / "locales", root)
    empty_entries(root / CONTENT_PO, {(None, ctx) for ctx in EMPTIED_CONTENT})
    empty_entries(root / MESSAGES_PO, {(msgid, None) for msgid in EMPTIED_MESSAGES})
    return root


def run(locales: Path, *args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["content", "translate", *args], env={"LOCALES_DIR": str(locales), **env}
    )
    return result.exit_code, result.output


def compile_catalogs(locales: Path) -> None:
    """As ``pybabel compile`` (without --use-fuzzy) does."""
    for po in locales.glob("*/LC_MESSAGES/*.po"):
        with po.open("rb") as fp:
            catalog = read_po(fp, locale=po.parts[-3], domain=po.stem)
        with po.with_suffix(".mo").open("wb") as fp:
            write_mo(fp, catalog, use_fuzzy=False)


def fake_apertium(texts: Sequence[str]) -> list[str]:
    """A stand-in for ``apertium nob-nno``: a few words, and a mark on a word it does not know."""
    words = {"ikke": "ikkje", "Jeg": "Eg", "hva": "kva", "en": "ein", "legevakten": "legevakta"}
    out = []
    for text in texts:
        text = re.sub(r"\b\w+\b", lambda m: words.get(m.group(), m.group()), text)
        out.append(text.replace("Sikkerhetsnett", "*Sikkerhetsnett") + "\n")
    return out


# --- the real thing ----------------------------------------------------------------------------


@pytest.mark.usefixtures("apertium")
def test_drafts_fill_only_the_empty_entries_marked_fuzzy(locales: Path) -> None:
    path = locales / CONTENT_PO
    before_text = path.read_text("utf-8")
    before = {(m.id, m.context): (m.string, set(m.flags)) for m in read(path)}

    code, output = run(locales, "--to", "nn")

    assert code == 0, output
    assert (
        f"3 drafts written to {path}, marked fuzzy: review them in a PO editor and remove the "
        "fuzzy flag" in output
    )
    after = read(path)
    for message in after:
        if message.context in EMPTIED_CONTENT:
            assert message.fuzzy, message.context
            assert message.string.strip(), message.context
            assert EMPTIED_CONTENT[message.context] in message.string
            assert not re.search(r"(?<!\w)[*#@]\w", message.string), message.string
            assert translate.placeholders(message.string) == translate.placeholders(message.id)
        else:
            assert before[(message.id, message.context)] == (message.string, set(message.flags))
    # Same order, same unwrapped lines: the only change is the three drafts and their flags. The
    # header is left out: Babel writes its own version into it ("Generated-By: Babel 2.19.0").
    changed = [
        line
        for line in difflib.ndiff(_body(before_text), _body(path.read_text("utf-8")))
        if line[:1] in "+-"
    ]
    # The fever summary holds a {threshold}, so its entry already had a flag line, which now
    # carries fuzzy too.
    assert sorted(line for line in changed if line.startswith("-")) == [
        "- #, python-brace-format",
        *['- msgstr ""'] * 3,
    ]
    added = [line for line in changed if line.startswith("+")]
    assert sorted(line for line in added if line.startswith("+ #,")) == [
        "+ #, fuzzy",
        "+ #, fuzzy",
        "+ #, fuzzy, python-brace-format",
    ]
    assert len(added) == 6
    assert [(m.id, m.context) for m in after] == list(before)


def _body(po_text: str) -> list[str]:
    """The lines of a PO file after its header entry (which ends at the first blank line)."""
    return po_text.split("\n\n", 1)[1].splitlines()


@pytest.mark.usefixtures("apertium")
def test_placeholders_and_tags_come_through_unchanged(locales: Path) -> None:
    code, output = run(locales, "--to", "nn", "--domain", "messages")

    assert code == 0, output
    assert "3 drafts written to" in output
    drafts = {m.id: m for m in read(locales / MESSAGES_PO) if m.id in EMPTIED_MESSAGES}
    sms = drafts[SMS].string
    assert "{link}" in sms and "{hours}" in sms and "legevakta" in sms and "tima" in sms
    assert drafts[TAGGED].string.startswith("<b>") and drafts[TAGGED].string.endswith("</b>")
    assert "{when}" in drafts[CHECKIN].string
    for message in drafts.values():
        assert message.fuzzy
        assert translate.placeholders(message.string) == translate.placeholders(message.id)
        assert "ZXPH" not in message.string and "*" not in message.string


@pytest.mark.usefixtures("apertium")
def test_the_compiled_catalog_leaves_the_drafts_out(locales: Path) -> None:
    assert run(locales, "--to", "nn")[0] == 0
    assert run(locales, "--to", "nn", "--domain", "messages")[0] == 0
    compile_catalogs(locales)

    catalogs = Catalogs(locales)
    lookup = catalogs.content_lookup("nn")
    for message in read(locales / CONTENT_PO):
        if not message.id:
            continue
        found = lookup(message.context, message.id)
        if message.context in EMPTIED_CONTENT:
            assert message.fuzzy and found is None, message.context
        elif message.string != message.id:
            assert found == message.string
    gettext = catalogs.gettext("nn")
    for msgid in EMPTIED_MESSAGES:
        assert (
            gettext(msgid) == msgid
        )  # the draft is not used: the English msgid, as if untranslated
    assert gettext("I am getting worse") == "Eg blir verre"


@pytest.mark.usefixtures("apertium")
def test_dry_run_prints_the_drafts_and_writes_nothing(locales: Path) -> None:
    before = {p: p.read_bytes() for p in locales.rglob("*.po")}

    code, output = run(locales, "--to", "nn", "--dry-run")

    assert code == 0, output
    assert {p: p.read_bytes() for p in locales.rglob("*.po")} == before
    assert "advice/fever-child:summary\n  nb: Feber er {fever} °C eller mer" in output
    assert "  nn: " in output and "Dei fleste" in output
    assert "3 drafts would be written to" in output and "nothing was written" in output


@pytest.mark.usefixtures("apertium")
def test_a_second_run_finds_nothing_to_do(locales: Path) -> None:
    assert run(locales, "--to", "nn")[0] == 0
    before = (locales / CONTENT_PO).read_bytes()

    code, output = run(locales, "--to", "nn")

    assert code == 0
    assert "No empty entries in" in output and "nothing to translate" in output
    assert (locales / CONTENT_PO).read_bytes() == before


@pytest.mark.usefixtures("apertium")
def test_many_texts_go_through_one_process_per_batch() -> None:
    sources = [f"Jeg kommer ikke i dag, sa barn nummer {n}." for n in range(7)]
    sources[3] = "Første linje.\n\nAndre avsnitt, med {hours} timer."
    calls: list[int] = []
    real = translate.apertium_translator()

    def counting(texts: Sequence[str]) -> list[str]:
        calls.append(len(texts))
        return real(texts)

    drafts = draft_texts(sources, counting, batch_size=4)

    assert calls == [1, 1]  # two batches, one apertium run each: no one-by-one fallback
    assert drafts[0] == "Eg kjem ikkje i dag, sa barn nummer 0."
    assert drafts[6] == "Eg kjem ikkje i dag, sa barn nummer 6."
    assert drafts[3] is not None
    assert "\n\n" in drafts[3] and "{hours} timar" in drafts[3]


# --- without Apertium ------------------------------------------------------------------------


def test_without_apertium_it_says_how_to_install_it(locales: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    before = (locales / CONTENT_PO).read_bytes()

    code, output = run(locales, "--to", "nn", PATH=str(bin_dir))

    assert code == 1
    assert "Apertium is not installed" in output
    assert "sudo apt-get install apertium apertium-nno-nob" in output
    assert "Traceback" not in output
    assert (locales / CONTENT_PO).read_bytes() == before


def test_drafts_with_a_stand_in_translator(locales: Path) -> None:
    path = locales / MESSAGES_PO
    before = read(path)

    report = draft_catalog(locales, "messages", translate=fake_apertium)

    assert report.written and len(report.drafts) == 3 and not report.failed
    after = {m.id: m for m in read(path)}
    # The Bokmål catalog is the source of UI texts, whose msgids are English.
    assert (
        after[SMS].string
        == "Råd fra legevakta etter samtalen: {link} Siden er åpen i {hours} timer."
    )
    assert after[TAGGED].string == "<b>Dette kan du gjøre her</b>"
    assert all(after[msgid].fuzzy for msgid in EMPTIED_MESSAGES)
    for message in before:
        if message.id not in EMPTIED_MESSAGES:
            assert after[message.id].string == message.string
            assert after[message.id].fuzzy == message.fuzzy


def test_a_draft_that_loses_a_placeholder_is_not_written(locales: Path) -> None:
    def loses_tokens(texts: Sequence[str]) -> list[str]:
        return [re.sub(r"ZXPH0ZX", "", text) for text in texts]

    report = draft_catalog(locales, "messages", translate=loses_tokens)

    # The tag-only text keeps its tags outside what Apertium sees; the other two lose one.
    assert sorted(report.failed) == sorted([SMS, CHECKIN])
    assert [d.msgid for d in report.drafts] == [TAGGED] and report.written
    after = {m.id: m.string for m in read(locales / MESSAGES_PO)}
    assert after[SMS] == after[CHECKIN] == ""


def test_nothing_empty_needs_no_apertium(tmp_path: Path) -> None:
    shutil.copytree(REPO / "locales", tmp_path / "locales")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    code, output = run(tmp_path / "locales", "--to", "nn", PATH=str(bin_dir))

    assert code == 0, output
    assert "No empty entries in" in output


def test_protect_and_restore_placeholders_tags_and_entities() -> None:
    text = "<b>Hvorfor:</b> {name}s råd &amp; %(count)s svar i {hours} timer.<br>"
    protected = protect(text)

    assert protected.prefix == "<b>" and protected.suffix == "<br>"
    assert "{" not in protected.text and "<" not in protected.text and "&" not in protected.text
    assert restore(protected.text, protected) == text
    # A token glued to a word gets a space, which Apertium may keep or not.
    assert restore(protected.text.replace(" s råd", "s råd"), protected) == text
    assert restore(protected.text.replace("ZXPH1ZX", ""), protected) is None
    assert restore(protected.text + " ZXPH1ZX", protected) is None


def test_strip_marks_removes_apertiums_marks_but_not_the_sources() -> None:
    assert strip_marks("Ta *paracet og #gå til @legevakta.", "Ta paracet") == (
        "Ta paracet og gå til legevakta."
    )
    assert strip_marks("Svar på e-post a@b.no og *stjerne*", "a@b.no og *stjerne*") == (
        "Svar på e-post a@b.no og *stjerne*"
    )
    assert strip_marks("blir sterkare  dei første", "blir sterkere i løpet av de første") == (
        "blir sterkare dei første"
    )


def test_a_batch_that_does_not_come_back_whole_is_translated_one_by_one() -> None:
    seen: list[str] = []

    def run_once(text: str) -> str:
        seen.append(text)
        return text.replace("ZXSEP1ZX", "ZXSEP 1ZX").upper()  # a separator mangled

    assert translate_batch(["en", " to\n", "tre"], run_once) == ["EN", " TO\n", "TRE"]
    assert len(seen) == 4  # the batch, then each text on its own
