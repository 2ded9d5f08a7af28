"""``python -m bot content check``: the rules beyond the schema, each on a broken copy of the
shipped content and catalogs, with the exact file:line an admin is sent to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po
from click.testing import CliRunner

from bot.cli import main
from bot.content.check import (
    LONGEST_LINK,
    _PoFiles,
    check_content,
    is_concrete,
    lix,
    longest_advice,
    placeholders,
)
from bot.content.loader import ContentError, load_content, localize
from bot.render import TELEGRAM_LIMIT

REPO = Path(__file__).resolve().parents[1]
SMS_MSGID = "Advice from the legevakt after your call: {link} The page is open for {hours} hours."
CLINIC_SMS_MSGID = (
    "Advice from {clinic} after your call: {link} The page is open for {hours} hours."
)
NB_SMS = "Råd fra legevakten etter samtalen: {link} Siden er åpen i {hours} timer."
NN_SMS = "Råd frå legevakta etter samtalen: {link} Sida er open i {hours} timar."
CHECKIN_MSGID = "We will ask you how it is going {when}."
NEW_KINDS = ("placeholder", "not concrete", "characters", "SMS", "LIX", "cannot be put together")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the shipped content and catalogs to break."""
    shutil.copytree(REPO / "content", tmp_path / "content")
    shutil.copytree(REPO / "locales", tmp_path / "locales")
    return tmp_path


def run_check(root: Path, **kwargs: float) -> list[ContentError]:
    return check_content(root / "content", root / "locales", **kwargs).findings


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` containing ``needle``."""
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), "utf-8")


def po_path(root: Path, locale: str, domain: str) -> Path:
    return root / "locales" / locale / "LC_MESSAGES" / f"{domain}.po"


def set_translation(root: Path, domain: str, locale: str, msgid: str, context: str | None, new):
    """Give one message a new msgstr: ``new(old_msgstr)``."""
    path = po_path(root, locale, domain)
    with path.open("rb") as fp:
        catalog = read_po(fp, locale=locale, domain=domain)
    message = catalog.get(msgid, context=context)
    assert message is not None and message.string, (msgid, context)
    message.string = new(message.string)
    with path.open("wb") as fp:
        write_po(fp, catalog, width=100)


def only(findings: list[ContentError], phrase: str) -> ContentError:
    [finding] = [f for f in findings if phrase in f.message]
    return finding


def invoke(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.chdir(root)
    env = {"CONTENT_DIR": str(root / "content"), "LOCALES_DIR": str(root / "locales")}
    return CliRunner().invoke(main, ["content", "check", *args], env=env)


# --- the shipped content -------------------------------------------------------------------


def test_shipped_content_passes_without_errors_or_new_warnings() -> None:
    report = check_content(REPO / "content", REPO / "locales")
    assert report.errors == []
    new = [f for f in report.warnings if any(kind in f.message for kind in NEW_KINDS)]
    assert new == []


def test_every_shipped_worsening_sign_is_concrete() -> None:
    bundle = load_content(REPO / "content")
    vague = [s.sign for t in bundle.advice.values() for s in t.worsening_signs]
    assert [sign for sign in vague if not is_concrete(sign)] == []


# --- 2. placeholders -----------------------------------------------------------------------


def test_placeholders_are_found() -> None:
    assert placeholders("{when} and {when:>5} and {n!r} {{not}} %(name)s %s %d 50 % av") == {
        "{when}": 1,
        "{n}": 1,
        "%(name)s": 1,
        "%s": 2,
    }


def test_content_translation_with_an_extra_placeholder(root: Path) -> None:
    yaml = root / "content" / "advice" / "fever-child.yaml"
    text = (
        "Mål temperaturen i endetarmen med et digitalt termometer. Termometer i øret kan vise "
        "feil hos barn. Skriv ned klokkeslett og temperatur."
    )
    set_translation(
        root, "content", "nn", text, "advice/fever-child:self_care[2]", lambda s: s + " {hours}"
    )
    finding = only(run_check(root), "placeholder")
    assert (finding.file, finding.line) == ("content/advice/fever-child.yaml", line_of(yaml, text))
    assert finding.field == "self_care[2]"
    assert finding.severity == "error"
    assert finding.message.startswith(
        "the Nynorsk translation of self_care[2] has placeholder {hours} "
        "that the Bokmål text does not have"
    )


def test_ui_translation_with_a_wrong_placeholder(root: Path) -> None:
    po = po_path(root, "nn", "messages")
    replace_in(po, "det går {when}.", "det går {kva}.")
    findings = run_check(root)
    placeholder = [f for f in findings if "placeholder" in f.message]
    line = line_of(po, f'msgid "{CHECKIN_MSGID}"')
    assert [(f.file, f.line, f.severity) for f in placeholder] == [
        ("locales/nn/LC_MESSAGES/messages.po", line, "error")
    ] * 2
    assert "has placeholder {kva} that the English text does not have" in placeholder[0].message
    assert "lacks placeholder {when}" in placeholder[1].message
    # The broken translation is left out of the rendering, so the other rules still run.
    assert not [f for f in findings if "cannot be put together" in f.message]


def test_po_file_line_of_a_bokmal_ui_translation(root: Path) -> None:
    po = po_path(root, "nb", "messages")
    replace_in(po, NB_SMS, NB_SMS.replace("{hours} timer", "{timer} timer"))
    finding = only(run_check(root), "has placeholder {timer}")
    assert (finding.file, finding.line) == (
        "locales/nb/LC_MESSAGES/messages.po",
        line_of(po, f'msgid "{SMS_MSGID}"'),
    )
    assert finding.message.startswith("the Bokmål translation of “Advice from the legevakt")


# --- 3. concrete worsening signs -----------------------------------------------------------


def test_is_concrete() -> None:
    assert not is_concrete("Du føler deg dårlig.")
    assert not is_concrete("Barnet blir verre, og du er bekymret.")
    assert is_concrete("Feberen har vart i mer enn 3 døgn.")
    assert is_concrete("Du har vondt i mange timer.")
    assert is_concrete("Barnet får kramper.")
    assert is_concrete("Du puster tungt.")


def test_vague_worsening_sign_is_a_warning(root: Path) -> None:
    yaml = root / "content" / "advice" / "fever-child.yaml"
    replace_in(yaml, '"Feberen har vart i mer enn 3 døgn."', '"Barnet blir verre."')
    finding = only(run_check(root), "not concrete")
    assert (finding.file, finding.line) == (
        "content/advice/fever-child.yaml",
        line_of(yaml, "Barnet blir verre."),
    )
    assert finding.field == "worsening_signs[10].sign"
    assert finding.severity == "warning"
    assert finding.message == (
        "worsening sign “Barnet blir verre.” is not concrete (“blir verre” can mean anything): "
        "say what the caller can see, count or measure (a number, a time, a colour)"
    )


# --- 4. one Telegram message ---------------------------------------------------------------


def nn_advice_length(root: Path, topic_id: str) -> int:
    po = _PoFiles(root / "locales")
    bundle = load_content(root / "content")
    localised = localize(bundle.advice[topic_id], "advice", po.content_lookup("nn"), bundle.values)
    return len(longest_advice(localised, po.gettext("nn"), "nn"))


def test_longest_advice_has_all_the_tailoring() -> None:
    po = _PoFiles(REPO / "locales")
    topic = load_content(REPO / "content").advice["fever-child"]
    text = longest_advice(topic, po.gettext("nb"), "nb")
    assert "n" * 500 in text
    assert all(
        group.label in text and group.advice in text for group in topic.tailoring.risk_groups
    )
    assert "Vi spør deg hvordan det går" in text and " kl. " in text


@pytest.mark.parametrize("over", [0, 1])
def test_advice_longer_than_one_message_in_nynorsk(root: Path, over: int) -> None:
    yaml = root / "content" / "advice" / "fever-child.yaml"
    summary = load_content(root / "content").advice["fever-child"].summary
    pad = TELEGRAM_LIMIT + over - nn_advice_length(root, "fever-child")
    context = "advice/fever-child:summary"
    set_translation(root, "content", "nn", summary, context, lambda s: s + " " + "j" * (pad - 1))
    assert nn_advice_length(root, "fever-child") == TELEGRAM_LIMIT + over
    findings = [f for f in run_check(root) if "Telegram shows" in f.message]
    if not over:
        assert findings == []
        return
    [finding] = findings
    assert (finding.file, finding.line, finding.field, finding.severity) == (
        "content/advice/fever-child.yaml",
        line_of(yaml, "title:"),
        "title",
        "error",
    )
    assert finding.message.startswith("the advice “Feber hos barn” is 4097 characters in Nynorsk")
    assert "with the longest tailoring" in finding.message
    assert finding.message.endswith("Telegram shows at most 4096 in one message — shorten it")


# --- 5. the link SMS -----------------------------------------------------------------------


def test_longest_link() -> None:
    """The longest PUBLIC_URL the settings take, /r/ and a 23-character token."""
    from bot.config import PUBLIC_URL_MAX

    base, token = LONGEST_LINK.rsplit("/r/", 1)
    assert len(base) == PUBLIC_URL_MAX and len(token) == 23


def test_the_shipped_sms_fits_two_segments_with_a_32_character_clinic() -> None:
    """Both languages, with a clinic's longest name and the longest link: within two GSM-7
    segments (306 septets), naming the clinic and 113."""
    from bot.i18n import Catalogs
    from bot.render import sms_text
    from bot.sms import gsm7_septets, is_gsm7

    catalogs = Catalogs(REPO / "locales")
    clinic = "Legevakten i Nordre Follo og Ås!"
    assert len(clinic) == 32
    for locale, starts in (("nb", "Råd fra "), ("nn", "Råd frå ")):
        text = sms_text(catalogs.gettext(locale), LONGEST_LINK, 720, clinic)
        assert text.startswith(starts + clinic + " etter samtalen: " + LONGEST_LINK)
        assert text.endswith(" Ved fare for liv: ring 113.")
        assert is_gsm7(text) and 153 < gsm7_septets(text) <= 306, (locale, gsm7_septets(text))


def test_link_sms_longer_than_two_segments(root: Path) -> None:
    po = po_path(root, "nn", "messages")
    longer = NN_SMS.replace("etter samtalen", "etter samtalen du nettopp hadde med oss " * 4)
    replace_in(po, f'msgstr "{NN_SMS}"', f'msgstr "{longer}"')
    finding = only(run_check(root), "SMS")
    assert (finding.file, finding.line, finding.severity) == (
        "locales/nn/LC_MESSAGES/messages.po",
        line_of(po, f'msgid "{SMS_MSGID}"'),
        "error",
    )
    assert finding.message == (
        "the Nynorsk link SMS is 360 characters without a clinic name and the longest link; "
        "two SMS segments hold at most 306 — shorten the translation"
    )


def test_link_sms_with_characters_outside_gsm7(root: Path) -> None:
    po = po_path(root, "nb", "messages")
    replace_in(po, NB_SMS, NB_SMS.replace("Råd fra legevakten etter", "Råd fra legevakten – etter"))
    finding = only(run_check(root), "SMS")
    assert (finding.file, finding.line) == (
        "locales/nb/LC_MESSAGES/messages.po",
        line_of(po, f'msgid "{SMS_MSGID}"'),
    )
    assert finding.message.startswith(
        "the Bokmål link SMS has characters an ordinary SMS cannot carry (–)"
    )


# --- 6. readability ------------------------------------------------------------------------


def test_lix() -> None:
    # 9 words, 2 sentences, 2 words longer than 6 letters: 9/2 + 100*2/9
    assert lix("Dette er en setning. Her er en annen setning.") == pytest.approx(4.5 + 200 / 9)
    # each list item is at least one sentence; ":" ends one; digits are not words
    assert lix("Drikk godt\nHvil: sov 8 timer") == pytest.approx(5 / 3)
    assert lix("Blåbærsyltetøy!") == pytest.approx(1 + 100)
    assert lix("") == 0.0


def test_hard_summary_is_a_warning(root: Path) -> None:
    yaml = root / "content" / "advice" / "fever-child.yaml"
    hard = (
        "Feberreaksjoner representerer kroppens immunologiske forsvarsmekanismer mot "
        "infeksjonssykdommer forårsaket av mikroorganismer, hvilket innebærer at temperaturen "
        "midlertidig forhøyes uten nødvendigvis betydelige komplikasjoner."
    )
    text = yaml.read_text("utf-8")
    old = next(line for line in text.splitlines() if line.startswith("summary:"))
    replace_in(yaml, old, f'summary: "{hard}"')
    score = lix(hard)
    assert score > 40
    found = [f for f in run_check(root) if "LIX" in f.message]
    # No Nynorsk translation of the new text: Nynorsk readers see the Bokmål text, so both.
    assert [(f.file, f.line, f.field, f.severity) for f in found] == [
        ("content/advice/fever-child.yaml", line_of(yaml, "summary:"), "summary", "warning")
    ] * 2
    assert found[0].message == (
        f"the summary has LIX {score:.0f} in Bokmål (limit 40): "
        "use shorter sentences and shorter words"
    )
    assert "in Nynorsk (limit 40)" in found[1].message


def test_lix_limit_is_a_parameter(root: Path) -> None:
    assert not [f for f in run_check(root) if "LIX" in f.message]
    strict = [f for f in run_check(root, lix_limit=20) if "LIX" in f.message]
    assert strict and all(f.severity == "warning" for f in strict)


# --- 7. the command ------------------------------------------------------------------------


def test_json_lists_an_error_and_exits_1(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    po = po_path(root, "nn", "messages")
    replace_in(po, NN_SMS, NN_SMS.replace("{hours} timar", "{timar} timar"))
    result = invoke(root, monkeypatch, "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert {
        "file": "locales/nn/LC_MESSAGES/messages.po",
        "line": line_of(po, f'msgid "{SMS_MSGID}"'),
        "field": "",
        "severity": "error",
        "message": "the Nynorsk translation of “Advice from the legevakt after your call: {link…” "
        "has placeholder {timar} that the English text does not have; the bot cannot fill it in",
    } in report["findings"]


def test_warnings_alone_exit_0(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml = root / "content" / "advice" / "fever-child.yaml"
    replace_in(yaml, '"Feberen har vart i mer enn 3 døgn."', '"Barnet blir verre."')
    result = invoke(root, monkeypatch, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["errors"] == 0
    [finding] = [f for f in report["findings"] if "not concrete" in f["message"]]
    assert finding["file"] == "content/advice/fever-child.yaml"
    assert finding["line"] == line_of(yaml, "Barnet blir verre.")
    assert finding["severity"] == "warning"


def test_lix_limit_option(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke(root, monkeypatch, "--lix-limit", "20")
    assert result.exit_code == 0, result.output
    assert "(limit 20): use shorter sentences and shorter words" in result.stdout
    assert invoke(root, monkeypatch, "--lix-limit", "0").exit_code == 2
