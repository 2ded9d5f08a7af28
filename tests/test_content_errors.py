"""Content errors name the file, the line and the field in one plain sentence, and loading
reports every broken file at once instead of stopping at the first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.content import ContentErrors, load_content

TOPIC = """\
id: cough
version: 1
status: draft
example: true
title: Hoste
summary: Hoste går som regel over av seg selv.
self_care:
  - Drikk godt.
  - Hvil.
normal:
  - Hosten kan vare i 3 uker.
worsening_signs:
  - id: fast-breathing
    sign: Du puster mer enn 30 ganger i minuttet.
    tier: emergency
  - id: fever-days
    sign: Feberen har vart i mer enn 3 døgn.
    tier: urgent
tailoring:
  note: true
  risk_groups:
    - id: pregnancy
      label: Gravid
      advice: Ring tidligere hvis du er gravid.
  checkin_hours: [6, 24]
scope:
  audience: adults
  who: Rådene gjelder voksne.
sources:
  - id: helsenorge
    publisher: Helsenorge
    title: Hoste
    url: https://www.helsenorge.no/
    covers: [self_care, normal, worsening_signs]
"""

PROGRAMME = """\
id: demo
version: 1
status: draft
title: Demo
source: Ukom
roles:
  - id: unit-leader
    title: Leder
    description: Til deg som er leder
themes:
  - id: theme-one
    title: Tema
    intro: Innledning.
    questions:
      - id: q1
        role: unit-leader
        text: Hvordan gjør vi det?
"""


def make_content(root: Path, topic: str = TOPIC, programme: str = PROGRAMME) -> Path:
    (root / "content" / "advice").mkdir(parents=True)
    (root / "content" / "reflection").mkdir(parents=True)
    (root / "content" / "advice" / "cough.yaml").write_text(topic, encoding="utf-8")
    (root / "content" / "reflection" / "demo.yaml").write_text(programme, encoding="utf-8")
    return root / "content"


def errors_for(tmp_path: Path, topic: str = TOPIC, programme: str = PROGRAMME) -> list[str]:
    with pytest.raises(ContentErrors) as caught:
        load_content(make_content(tmp_path, topic, programme))
    return [str(e) for e in caught.value.errors]


def test_valid_content_loads(tmp_path: Path) -> None:
    bundle = load_content(make_content(tmp_path))
    assert list(bundle.advice) == ["cough"]
    assert bundle.advice["cough"].worsening_signs[0].tier == "emergency"
    assert bundle.roles["unit-leader"][0].id == "demo"
    assert bundle.source("advice", "cough").line_of(("worsening_signs", 1, "sign")) == 17


def test_wrong_tier_names_file_line_field_and_choices(tmp_path: Path) -> None:
    broken = TOPIC.replace("tier: urgent", "tier: call_112")
    assert errors_for(tmp_path, broken) == [
        "content/advice/cough.yaml:18: worsening_signs[1].tier: must be one of 'emergency' "
        "(life-threatening: call 113 now), 'urgent' (call the legevakt on 116 117 now) or "
        "'soon' (a doctor today, or the GP on the next working day) (found 'call_112')"
    ]


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    broken = TOPIC.replace("    sign: Du puster mer enn 30 ganger i minuttet.\n", "")
    assert errors_for(tmp_path, broken) == [
        "content/advice/cough.yaml:13: worsening_signs[0].sign: this field is required but missing"
    ]


def test_misspelled_field(tmp_path: Path) -> None:
    broken = TOPIC.replace("summary:", "sumary:")
    found = errors_for(tmp_path, broken)
    assert (
        "content/advice/cough.yaml:6: sumary: "
        "this is not a known field; check the spelling or remove it" in found
    )
    assert "content/advice/cough.yaml:1: summary: this field is required but missing" in found


def test_empty_text_and_bad_id(tmp_path: Path) -> None:
    broken = TOPIC.replace("title: Hoste", 'title: ""').replace("id: fever-days", "id: Fever Days")
    found = errors_for(tmp_path, broken)
    assert "content/advice/cough.yaml:5: title: must not be empty" in found
    assert any(
        e.startswith(
            "content/advice/cough.yaml:16: worsening_signs[1].id: 'Fever Days' is not a valid id"
        )
        for e in found
    )


def test_duplicate_key_is_caught_with_both_lines(tmp_path: Path) -> None:
    broken = TOPIC.replace("summary: Hoste", "title: Igjen\nsummary: Hoste")
    assert errors_for(tmp_path, broken) == [
        "content/advice/cough.yaml:6: title: this field appears twice (first on line 5)"
    ]


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    broken = TOPIC.replace("  - Hvil.", "  - Hvil: dette: går ikke")
    [error] = errors_for(tmp_path, broken)
    assert error.startswith("content/advice/cough.yaml:9: this line cannot be read as YAML")


def test_question_for_unknown_role(tmp_path: Path) -> None:
    broken = PROGRAMME.replace("role: unit-leader", "role: top-leader")
    [error] = errors_for(tmp_path, programme=broken)
    assert error.startswith("content/reflection/demo.yaml:1: ")
    assert "names the role 'top-leader', which this programme does not define" in error


def test_duplicate_sign_ids(tmp_path: Path) -> None:
    broken = TOPIC.replace("id: fever-days", "id: fast-breathing")
    [error] = errors_for(tmp_path, broken)
    assert "the id 'fast-breathing' appears twice in worsening_signs" in error


def test_approved_needs_a_reviewer(tmp_path: Path) -> None:
    broken = TOPIC.replace("status: draft", "status: approved")
    [error] = errors_for(tmp_path, broken)
    assert "approved content needs both reviewed_by and reviewed_at" in error


def test_file_name_must_match_id_and_yml_is_refused(tmp_path: Path) -> None:
    content = make_content(tmp_path, TOPIC.replace("id: cough", "id: coughing"))
    (content / "advice" / "extra.yml").write_text("id: extra\n")
    with pytest.raises(ContentErrors) as caught:
        load_content(content)
    found = [str(e) for e in caught.value.errors]
    assert (
        "content/advice/cough.yaml:1: id: the id 'coughing' must match the file name 'cough.yaml'"
        in found
    )
    assert any("extra.yml:1: content files must end in .yaml" in e for e in found)


def test_every_broken_file_is_reported(tmp_path: Path) -> None:
    found = errors_for(
        tmp_path,
        TOPIC.replace("version: 1", "version: one"),
        PROGRAMME.replace("version: 1", "version: 0"),
    )
    assert found == [
        "content/advice/cough.yaml:2: version: must be a whole number (found 'one')",
        "content/reflection/demo.yaml:2: version: must be at least 1 (found 0)",
    ]


def _check(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, CONTENT_DIR=str(tmp_path / "content"), LOCALES_DIR=str(repo / "locales"))
    return subprocess.run(
        [sys.executable, "-m", "bot", "content", "check", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_command_fails_on_a_broken_copy_with_file_and_line(tmp_path: Path) -> None:
    make_content(tmp_path, TOPIC.replace("tier: emergency", "tier: ring"))
    result = _check(tmp_path)
    assert result.returncode == 1
    assert "content/advice/cough.yaml:15: worsening_signs[0].tier: must be one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_command_json(tmp_path: Path) -> None:
    make_content(tmp_path, TOPIC.replace("tier: emergency", "tier: ring"))
    result = _check(tmp_path, "--format", "json")
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["findings"][0] == {
        "file": "content/advice/cough.yaml",
        "line": 15,
        "field": "worsening_signs[0].tier",
        "severity": "error",
        "message": "must be one of 'emergency' (life-threatening: call 113 now), 'urgent' (call "
        "the legevakt on 116 117 now) or 'soon' (a doctor today, or the GP on the next working "
        "day) (found 'ring')",
    }


def test_approved_content_without_nynorsk_fails_the_check(tmp_path: Path) -> None:
    approved = TOPIC.replace(
        "status: draft", "status: approved\nreviewed_by: Dr. Lege\nreviewed_at: 2026-11-01"
    )
    make_content(tmp_path, approved)
    result = _check(tmp_path)
    assert result.returncode == 1
    assert "content/advice/cough.yaml:7: title: has no Nynorsk translation" in result.stderr


def test_shipped_content_passes_the_check() -> None:
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "content", "check"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error" in result.stdout or "no problems" in result.stdout


def test_cli_lists_content_as_json() -> None:
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "content", "list", "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    listing = json.loads(result.stdout)
    assert set(listing) == {"advice_topics", "roles", "programmes"}
    role_ids = {r["id"] for r in listing["roles"]}
    assert {
        "review-leader",
        "unit-leader",
        "top-leader",
        "municipal-leadership",
        "legevakt-leader",
    } <= role_ids
    topic_ids = {t["id"] for t in listing["advice_topics"]}
    assert {"breathing-cough-adult", "fever-child"} <= topic_ids
    assert len(topic_ids) >= 6
    # Each topic says who it is for and what it is taken from (as GET /api/v1/topics does).
    fever = next(t for t in listing["advice_topics"] if t["id"] == "fever-child")
    assert fever["scope"]["audience"] == "children" and fever["scope"]["max_age"] == "12 years"
    assert fever["scope"]["who"] == "Rådene gjelder barn opp til 12 år."
    assert "helsenorge-feber" in [s["id"] for s in fever["sources"]]
    for topic in listing["advice_topics"]:
        assert topic["scope"]["who"] and topic["sources"], topic["id"]
        assert all(s["url"].startswith("https://") and s["covers"] for s in topic["sources"])


def test_extractor_yields_context_and_file_line_comment(tmp_path: Path) -> None:
    from babel.messages.extract import extract_from_dir

    make_content(tmp_path)
    extracted = list(
        extract_from_dir(
            str(tmp_path),
            method_map=[("content/**.yaml", "sikkerhetsnett_content")],
        )
    )
    # (filename, lineno, message, comments, context)
    by_context = {item[4]: item for item in extracted}
    item = by_context["advice/cough:worsening_signs[fever-days].sign"]
    assert item[0].endswith("cough.yaml")
    assert item[1] == 17
    assert item[2] == "Feberen har vart i mer enn 3 døgn."
    assert item[3][0].endswith("cough.yaml:17")
    assert (
        by_context["reflection/demo:themes[theme-one].questions[q1].text"][2]
        == "Hvordan gjør vi det?"
    )
    # ids, actions and numbers are not user-visible text and are not extracted
    assert all(item[2] not in ("emergency", "cough", "pregnancy") for item in extracted)
    assert (
        len(extracted) == len(by_context) == 16
    )  # 10 in the topic (scope.who too), 6 in the programme


def test_content_strings_are_localised_through_the_catalog(tmp_path: Path) -> None:
    from bot.content.loader import localize

    bundle = load_content(make_content(tmp_path))
    translations = {"advice/cough:title": "Hoste (nynorsk)", "advice/cough:self_care[1]": "Kvil."}
    nn = localize(bundle.advice["cough"], "advice", lambda ctx, text: translations.get(ctx))
    assert nn.title == "Hoste (nynorsk)"
    assert nn.self_care == ["Drikk godt.", "Kvil."]
    assert nn.worsening_signs[0].tier == "emergency"


RAABRA = """\
id: raabra
version: 1
status: draft
title: "#Råbra"
source: Boks 1.5
intro: Fortell om noe som gikk bra.
guide:
  - Hva skjedde?
themes:
  - id: samarbeid
    title: Godt samarbeid
  - id: kollega
    title: En kollega som stilte opp
"""


def test_raabra_file_is_loaded_and_its_errors_have_file_and_line(tmp_path: Path) -> None:
    content = make_content(tmp_path)
    (content / "raabra.yaml").write_text(RAABRA, encoding="utf-8")
    bundle = load_content(content)
    assert bundle.raabra is not None
    assert [t.id for t in bundle.raabra.themes] == ["samarbeid", "kollega"]

    (content / "raabra.yaml").write_text(
        RAABRA.replace("id: kollega", "id: samarbeid").replace("id: raabra", "id: rabra"),
        encoding="utf-8",
    )
    with pytest.raises(ContentErrors) as caught:
        load_content(content)
    [error] = [str(e) for e in caught.value.errors]
    assert error.startswith("content/raabra.yaml:")
    assert "the id 'samarbeid' appears twice in themes" in error

    (content / "raabra.yaml").write_text(RAABRA.replace("id: raabra", "id: rabra"), "utf-8")
    with pytest.raises(ContentErrors) as caught:
        load_content(content)
    assert [str(e) for e in caught.value.errors] == [
        "content/raabra.yaml:1: id: the id must be 'raabra', as the file's name"
    ]
