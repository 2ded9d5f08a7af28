"""``python -m bot content preview``: what a caller or a leader reads, from the bot's own
render functions, as plain text."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner

from bot import render
from bot.cli import main
from bot.config import Settings
from bot.content import load_content
from bot.content.loader import localize
from bot.content.preview import NEXT_MESSAGE, advice_preview, plain
from bot.i18n import Catalogs
from bot.models import Dispatch
from bot.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
NOTE = "Ring igjen i kveld hvis feberen stiger over 39 <grader> & barnet blir slapt."


@pytest.fixture(scope="module")
def locales(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped catalogs, compiled fresh (as ``pybabel compile``, fuzzy entries left out)."""
    root = tmp_path_factory.mktemp("preview") / "locales"
    shutil.copytree(REPO / "locales", root)
    for po in root.glob("*/LC_MESSAGES/*.po"):
        with po.open("rb") as fp:
            catalog = read_po(fp, locale=po.parts[-3], domain=po.stem)
        with po.with_suffix(".mo").open("wb") as fp:
            write_mo(fp, catalog, use_fuzzy=False)
    return root


def preview(locales: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["content", "preview", *args], env={"LOCALES_DIR": str(locales)}
    )
    return result.exit_code, result.stdout, result.stderr


def test_advice_in_nynorsk_as_the_caller_reads_it(locales: Path) -> None:
    code, out, _err = preview(
        locales,
        "fever-child",
        "--locale",
        "nn",
        "--note",
        NOTE,
        "--risk",
        "infant-under-3-months",
        "--checkin-hours",
        "6",
    )

    assert code == 0, out + _err
    assert out.startswith("Feber hos barn\n")
    assert "Frå sjukepleiaren du snakka med\n" + NOTE + "\n" in out  # unescaped, as shown
    assert out.startswith("Feber hos barn\nVed fare for liv: ring 113.\n")
    assert "Ring 113 no viss\n• Barnet har små mørkeraude" in out
    assert "Ring legevakta på 116 117 no viss\n" in out
    assert "• Barn under 3 månader: Barnet har 38 °C eller meir, målt i endetarmen." in out
    assert "Barn under 3 månader\nSmå barn kan bli alvorleg sjuke fort." in out
    assert "Nedsett immunforsvar" not in out and "Nedsatt immunforsvar" not in out
    assert re.search(r"Vi spør deg korleis det går (i dag|i morgon) kl\. \d\d:\d\d\.", out)
    assert "\n[Barnet blir verre] [Vis på Bokmål] [Slett dataa mine]\n" in out
    sms = re.search(r"^SMS \((\d+) of 306 characters\): (.*)$", out, re.MULTILINE)
    assert sms is not None
    assert sms.group(2).startswith("Råd frå legevakta etter samtalen: http://127.0.0.1:")
    assert sms.group(2).endswith(
        "/r/xxxxxxxxxxxxxxxxxxxxxxx Sida er open i 72 timar. Ved fare for liv: ring 113."
    )
    assert int(sms.group(1)) <= 306
    assert "<b>" not in out and "&lt;" not in out and "&amp;" not in out
    # What to do when it gets worse comes before the buttons, and the buttons before the SMS.
    assert out.index("Ring 113") < out.index("[Barnet blir verre]") < out.index("SMS (")
    # Then what "worse" answers, and the tiers, scope and sources for the admin.
    assert out.index("SMS (") < out.index("After “Barnet blir verre”:\nRing 113 no viss du ser")
    assert "Urgency tiers: emergency 6, urgent 6, soon 1" in out
    assert "Scope: children, birth to 12 years." in out
    assert "Source helsenorge-feber: Helsenorge, “Feber hos barn”, https://" in out


def test_advice_in_bokmal_shows_the_bokmal_buttons(locales: Path) -> None:
    code, out, err = preview(locales, "fever-child", "--locale", "nb")

    assert code == 0, out + err
    assert "\n[Barnet blir verre] [Vis på Nynorsk] [Slett dataene mine]\n" in out
    assert "Ring 113 nå hvis" in out
    assert "Fra sykepleieren" not in out and "Vi spør deg" not in out  # no note, no check-in
    assert "Barn under 3 måneder" not in out.split("\n\n[")[0]  # no risk group chosen
    assert "draft awaiting clinical approval" in err


def test_the_preview_is_what_the_bot_sends(locales: Path) -> None:
    """The same text as ``handlers.caller.advice_messages`` for a dispatch with that tailoring."""
    from bot.services.dispatches import Tailoring, seal_tailoring
    from handlers.caller import advice_messages

    settings = Settings(_env_file=None, locales_dir=locales, secret_key="p" * 32)  # type: ignore[call-arg]
    bundle = load_content(settings.content_dir)
    catalogs = Catalogs(locales)
    # The bot's own Runtime, without a database: the advice is rendered from content alone.
    rt = Runtime(settings=settings, engine=None, sessions=None, catalogs=catalogs, content=bundle)  # type: ignore[arg-type]
    dispatch = Dispatch(
        id="0" * 32,
        topic_id="fever-child",
        topic_version=bundle.advice["fever-child"].version,
        locale="nn",
        tailoring=seal_tailoring(rt, Tailoring(NOTE, ("weak-immune-system",))),
        token_hash="x",
    )
    sent = advice_messages(rt, dispatch, "nn")
    assert sent is not None

    text = advice_preview(
        bundle,
        catalogs,
        "fever-child",
        "nn",
        note=NOTE,
        risk_groups=["weak-immune-system"],
        page_base="https://rad.legevakt.example.no",
        link_hours=72,
        zone=settings.zone,
    )

    assert text.startswith(f"\n{NEXT_MESSAGE}\n\n".join(plain(m) for m in sent) + "\n\n[")


def test_long_advice_is_split_as_the_bot_splits_it(
    locales: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split = render.split_messages
    monkeypatch.setattr(render, "split_messages", lambda sections: split(sections, 700))

    code, out, _err = preview(locales, "head-injury", "--locale", "nn")

    assert code == 0, out
    body = out.split("\n\n[")[0]
    messages = body.split(f"\n{NEXT_MESSAGE}\n\n")
    assert len(messages) > 1
    assert all(len(message) <= 700 for message in messages)
    # The 113 line and the 113 signs come first, before what you can do yourself.
    assert messages[0].splitlines()[1] == "Ved fare for liv: ring 113."
    first_two = messages[0] + messages[1]
    assert "Ring 113 no viss" in first_two and "Dette kan du gjere sjølv" not in first_two


def test_unknown_topic_lists_the_topics(locales: Path) -> None:
    code, out, err = preview(locales, "fever", "--locale", "nn")

    assert code == 1
    assert "There is no advice topic 'fever'." in err
    assert "fever-child" in err and "head-injury" in err
    assert out == ""


def test_unknown_risk_group_and_check_in_time_are_refused(locales: Path) -> None:
    code, _out, err = preview(locales, "fever-child", "--risk", "pregnant")
    assert code == 1
    assert "no risk group 'pregnant'" in err and "infant-under-3-months" in err

    code, _out, err = preview(locales, "fever-child", "--checkin-hours", "5")
    assert code == 1
    assert "offers a check-in after 6, 12, 24 hours, not 5" in err


def test_a_note_with_a_national_identity_number_is_refused(locales: Path) -> None:
    code, _out, err = preview(locales, "fever-child", "--note", "Gjelder 15076500565 i kveld")
    assert code == 1
    assert "fødselsnummer" in err


def programme_questions(locales: Path, programme_id: str, role_id: str) -> list[tuple[Any, Any]]:
    bundle = load_content(REPO / "content")
    source = bundle.programmes[programme_id]
    programme = localize(source, "reflection", Catalogs(locales).content_lookup("nn"))
    return programme.questions_for(role_id)


def test_programme_preview_lists_the_roles_questions_in_order(locales: Path) -> None:
    code, out, err = preview(
        locales, "--programme", "systemperspektiv", "--role", "unit-leader", "--locale", "nn"
    )

    assert code == 0, out + err
    questions = programme_questions(locales, "systemperspektiv", "unit-leader")
    assert out.startswith(f"{len(questions)} weekly questions for ")
    assert "[Svar] [Hopp over]" in out
    positions = []
    for number, (theme, question) in enumerate(questions, 1):
        heading = f"──── {number} of {len(questions)} ({theme.id} / {question.id}) ────"
        assert out.count(heading) == 1
        block = out.split(heading)[1].split("────")[0]
        assert question.text in block
        assert "Skriv svaret ditt som ei melding her." in block
        first = number == 1 or questions[number - 2][0].id != theme.id
        # The theme's title and introduction come before its first question only.
        assert (theme.intro in block) is first
        if first:
            assert block.index(theme.title) < block.index(theme.intro) < block.index(question.text)
        positions.append(out.index(heading))
    assert positions == sorted(positions)
    assert "<b>" not in out and "<i>" not in out
    assert f"After question {len(questions)} the leader starts again" in out


def test_programme_preview_finds_the_programme_from_the_role(locales: Path) -> None:
    code, out, err = preview(locales, "--role", "legevakt-leader", "--locale", "nn")

    assert code == 0, out + err
    questions = programme_questions(locales, "gjentatte-henvendelser", "legevakt-leader")
    assert f"──── {len(questions)} of {len(questions)} (" in out
    texts = [out.index(question.text) for _theme, question in questions]
    assert texts == sorted(texts)
    assert "Kommuneledelse" not in out  # another role's theme


def test_programme_preview_without_a_role_lists_the_roles(locales: Path) -> None:
    code, _out, err = preview(locales, "--programme", "systemperspektiv")
    assert code == 1
    assert "--role" in err and "review-leader, unit-leader, top-leader" in err

    code, _out, err = preview(locales, "--programme", "systemperspektiv", "--role", "nobody")
    assert code == 1
    assert "has no role 'nobody'" in err


def test_topic_and_programme_do_not_mix(locales: Path) -> None:
    code, _out, err = preview(locales, "fever-child", "--role", "unit-leader")
    assert code == 2 and "not both" in err
    code, _out, err = preview(locales)
    assert code == 2 and "Give a TOPIC" in err


@pytest.mark.parametrize("command", ["preview", "translate"])
def test_help_shows_an_example(command: str) -> None:
    result = CliRunner().invoke(main, ["content", command, "--help"])
    assert result.exit_code == 0
    example = result.output.split("Example:\n", 1)[1]
    assert example.lstrip().startswith(f"python -m bot content {command} ")
