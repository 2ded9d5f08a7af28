"""The shipped content under ``content/`` and its Nynorsk catalog.

These tests guard the content itself, not the loader: the reflection questions must stay word for
word as in Ukom's learning decks (seeds 001 and 002), the advice topics must keep concrete worsening
signs with both kinds of action, and every content string must have a real Nynorsk translation.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.content import load_content
from bot.content.loader import localize, msgctxt
from bot.content.schema import translatable_strings

REPO = Path(__file__).parents[1]
CONTENT = REPO / "content"
SEEDS = REPO.parent / "shared" / "seeds"
NN_PO = REPO / "locales" / "nn" / "LC_MESSAGES" / "content.po"

SEED_FILES = {
    "systemperspektiv": "001_6de90e69cfb9398c.txt",
    "gjentatte-henvendelser": "002_a0edc58a2fa09541.txt",
}

EXAMPLE_HEADER = (
    "# EKSEMPELINNHOLD – venter på klinisk godkjenning. Ikke bruk overfor pasienter før en lege "
    "har godkjent teksten."
)

# Words that make a worsening sign observable without a number: what you see, hear or feel.
OBSERVABLE_WORDS = (
    "blå",
    "grå",
    "kramper",
    "prikker",
    "flekk",
    "stiv",
    "forvirret",
    "våken",
    "vekke",
    "setning",
    "blod",
    "besvimer",
    "tårer",
    "tørre",
    "grønt",
    "kald",
    "nummen",
    "pupill",
    "hard som",
    "stikker",
    "høyre side",
    "væske",
    "huden",
    "lent fram",
    "stønner",
    "marmorert",
    "halvparten",
    "tiss",
    "pust",
    "i dag",
    "dobbelt",
    "hoven",
    "rød",
    "blemme",  # blisters after a burn: seen at a glance, as the content check also counts them
)

# Seed 001: in the deck each "Til deg som …" heading comes after its questions; this is the
# assignment read from the sense of each question (who "jeg" is).
SYSTEMPERSPEKTIV_ROLES = {
    "stotte-og-verktoy": "review-leader",
    "stotte-leder-av-gjennomgangen": "unit-leader",
    "kultur-og-strukturer": "top-leader",
    "involvere-de-rette": "review-leader",
    "forklare-hensikten": "review-leader",
    "kommunisere-viktigheten": "unit-leader",
    "laering-ikke-syndebukker": "unit-leader",
    "kultur-for-involvering": "top-leader",
    "informere-overordnet-ledelse": "review-leader",
    "innsikt-til-laering": "unit-leader",
    "innsikt-til-relevante-enheter": "top-leader",
}


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def bundle():
    return load_content(CONTENT)


def _seed_text(programme_id: str) -> str:
    path = SEEDS / SEED_FILES[programme_id]
    if not path.is_file():
        pytest.skip(f"seed deck not available at {path}")
    return _collapse(path.read_text(encoding="utf-8"))


def _deck_strings(programme) -> list[tuple[str, str]]:
    """Every string of a programme that must be a quote from its deck, in programme order."""
    out = [("title", programme.title)]
    if programme.intro:
        out.append(("intro", programme.intro))
    for theme in programme.themes:
        out.append((f"{theme.id}.title", theme.title))
        if theme.intro:
            out.append((f"{theme.id}.intro", theme.intro))
        if theme.prompt:
            out.append((f"{theme.id}.prompt", theme.prompt))
        for question in theme.questions:
            out.append((question.id, question.text))
            for follow_up in question.follow_ups:
                out.append((f"{question.id}/{follow_up.id}", follow_up.text))
    return out


def _question_texts(programme) -> list[tuple[str, str]]:
    out = []
    for theme in programme.themes:
        for question in theme.questions:
            out.append((question.id, question.text))
            out.extend((f"{question.id}/{f.id}", f.text) for f in question.follow_ups)
    return out


# --- reflection programmes -----------------------------------------------------------------


def test_both_programmes_are_shipped(bundle):
    assert set(SEED_FILES) <= set(bundle.programmes)


@pytest.mark.parametrize("programme_id", sorted(SEED_FILES))
def test_programme_text_is_word_for_word_from_the_deck(bundle, programme_id):
    seed = _seed_text(programme_id)
    programme = bundle.programmes[programme_id]
    missing = [
        f"{where}: {text}"
        for where, text in _deck_strings(programme)
        if _collapse(text) not in seed
    ]
    assert not missing, "not found word for word in the deck:\n" + "\n".join(missing)


@pytest.mark.parametrize("programme_id", sorted(SEED_FILES))
def test_questions_follow_the_deck_order(bundle, programme_id):
    seed = _seed_text(programme_id)
    positions = [
        (seed.find(_collapse(text)), where)
        for where, text in _question_texts(bundle.programmes[programme_id])
    ]
    assert positions == sorted(positions), "questions are not in the deck's order"


def test_systemperspektiv_role_descriptions_are_the_deck_headings(bundle):
    seed = _seed_text("systemperspektiv")
    programme = bundle.programmes["systemperspektiv"]
    assert [r.id for r in programme.roles] == ["review-leader", "unit-leader", "top-leader"]
    for role in programme.roles:
        assert _collapse(role.description) in seed, role.id


def test_role_descriptions_say_whose_words_they_are(bundle):
    """A description from the deck is in the deck; the two for 002 are ours and marked so."""
    for programme_id in SEED_FILES:
        seed = _seed_text(programme_id)
        for role in bundle.programmes[programme_id].roles:
            if role.description_source == "deck":
                assert _collapse(role.description) in seed, role.id
            else:
                assert _collapse(role.description) not in seed, role.id
    roles = bundle.programmes["gjentatte-henvendelser"].roles
    assert [r.description_source for r in roles] == ["ours", "ours"]


def test_question_counts(bundle):
    counts = {pid: len(_question_texts(bundle.programmes[pid])) for pid in SEED_FILES}
    assert counts == {"systemperspektiv": 11, "gjentatte-henvendelser": 21}
    assert sum(counts.values()) == 32


def test_systemperspektiv_questions_have_the_right_roles(bundle):
    programme = bundle.programmes["systemperspektiv"]
    assigned = {q.id: q.role for t in programme.themes for q in t.questions}
    assert assigned == SYSTEMPERSPEKTIV_ROLES
    first_theme = programme.themes[0]
    assert first_theme.title == "Ledelse av gjennomganger"
    assert [(q.id, q.role) for q in first_theme.questions] == [
        ("stotte-og-verktoy", "review-leader"),
        ("stotte-leder-av-gjennomgangen", "unit-leader"),
        ("kultur-og-strukturer", "top-leader"),
    ]
    assert [len(programme.questions_for(r.id)) for r in programme.roles] == [4, 4, 3]


def test_gjentatte_henvendelser_structure(bundle):
    programme = bundle.programmes["gjentatte-henvendelser"]
    assert [r.id for r in programme.roles] == ["municipal-leadership", "legevakt-leader"]
    assert [t.title for t in programme.themes] == [
        "Refleksjonsspørsmål for kommuneledelse",
        "Risiko og kvalitetsforbedring",
        "Klinisk kommunikasjon",
        "Beslutningsstøtte",
        "Læring og oppfølging etter alvorlige hendelser",
    ]
    municipal, *legevakt = programme.themes
    assert {q.role for q in municipal.questions} == {"municipal-leadership"}
    assert {q.role for t in legevakt for q in t.questions} == {"legevakt-leader"}
    # "❑" main questions with their "•" sub-questions.
    assert [len(q.follow_ups) for q in municipal.questions] == [3, 0, 0, 0]
    assert [len(q.follow_ups) for q in legevakt[0].questions] == [1, 0]
    assert programme.intro and programme.intro.startswith(
        "I rapporten gir Ukom anbefalinger på overordnet systemnivå."
    )


# --- advice topics -------------------------------------------------------------------------


def test_twelve_or_more_advice_topics(bundle):
    """The six first topics and the commonest reasons to call the legevakt (issue 16)."""
    expected = {
        "breathing-cough-adult",
        "fever-child",
        "vomiting-diarrhoea-child",
        "head-injury",
        "urinary-tract-infection",
        "abdominal-pain",
        "chest-pain",
        "sore-throat",
        "earache-child",
        "wounds-cuts",
        "ankle-sprain",
        "burns",
        "allergic-reaction",
        "back-pain",
    }
    assert expected <= set(bundle.advice)
    assert len(bundle.advice) >= 12


def test_chest_pain_says_113_first_and_plainly(bundle):
    """Chest pain is mostly "call 113 now": most of its signs are in that tier, and the text
    under the title tells the caller not to wait more than 5 minutes."""
    topic = _filled(bundle, bundle.advice["chest-pain"])
    tiers = [s.tier for s in topic.worsening_signs]
    assert tiers.count("emergency") > len(tiers) / 2
    assert tiers[0] == "emergency"
    assert "5 minutter" in topic.summary
    heart = next(g for g in topic.tailoring.risk_groups if g.id == "heart-disease")
    nitro = next(s for s in heart.signs if s.id == "nitro-no-help")
    assert nitro.tier == "emergency" and "5 minutter" in nitro.sign


def test_each_topic_has_signs_for_113_and_for_116_117(bundle):
    for topic in bundle.advice.values():
        tiers = [s.tier for s in topic.worsening_signs]
        assert tiers.count("emergency") >= 1, topic.id
        assert tiers.count("urgent") >= 1, topic.id


def _filled(bundle, topic):
    return localize(topic, "advice", lambda _c, _t: None, bundle.values)


def test_worsening_signs_are_concrete(bundle):
    signs = [
        (t.id, s)
        for topic in bundle.advice.values()
        for t in [_filled(bundle, topic)]
        for s in [*t.worsening_signs, *(g for r in t.tailoring.risk_groups for g in r.signs)]
    ]
    vague = [
        f"{topic_id}:{sign.id}: {sign.sign}"
        for topic_id, sign in signs
        if not re.search(r"\d", sign.sign)
        and not any(word in sign.sign.lower() for word in OBSERVABLE_WORDS)
    ]
    assert not vague, "signs with neither a number nor anything observable:\n" + "\n".join(vague)
    with_digit = sum(bool(re.search(r"\d", s.sign)) for _, s in signs)
    assert with_digit * 2 > len(signs), f"only {with_digit} of {len(signs)} signs have a number"


def test_unapproved_topics_say_they_are_examples(bundle):
    for topic in bundle.advice.values():
        if topic.status == "approved":
            continue
        assert topic.example, topic.id
        first_line = (CONTENT / "advice" / f"{topic.id}.yaml").read_text("utf-8").splitlines()[0]
        assert first_line == EXAMPLE_HEADER, topic.id


def test_topic_shape(bundle):
    for topic in bundle.advice.values():
        assert len(topic.title) <= 40, topic.id
        assert 3 <= len(topic.self_care) <= 6, topic.id
        assert 5 <= len(topic.worsening_signs) <= 11, topic.id
        assert 1 <= len(topic.tailoring.risk_groups) <= 3, topic.id
        assert topic.tailoring.checkin_hours, topic.id
    pregnancy = [r.id for r in bundle.advice["breathing-cough-adult"].tailoring.risk_groups]
    assert "pregnancy" in pregnancy


# --- Nynorsk catalog -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def nn_catalog():
    with NN_PO.open("rb") as f:
        return read_po(f, locale="nn")


def _all_strings(bundle):
    for kind, models in (("advice", bundle.advice), ("reflection", bundle.programmes)):
        for model in models.values():
            for ref in translatable_strings(model):
                yield msgctxt(kind, model.id, ref.key), ref.text


def test_nn_catalog_translates_every_content_string(bundle, nn_catalog):
    problems = []
    for context, text in _all_strings(bundle):
        message = nn_catalog.get(text, context=context)
        if message is None:
            problems.append(f"missing: {context}")
        elif not message.string or not message.string.strip():
            problems.append(f"empty: {context}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {context}")
    assert not problems, "\n".join(problems)


def test_nn_translations_keep_numbers(bundle, nn_catalog):
    def numbers(s: str) -> list[str]:
        return re.findall(r"\d+(?:[.,]\d+)?", s)

    for context, text in _all_strings(bundle):
        message = nn_catalog.get(text, context=context)
        if message is not None and message.string:
            assert numbers(message.string) == numbers(text), context


def test_advice_fits_one_telegram_message(bundle, nn_catalog):
    """Full topic text, every risk group and a 500-character note stay well under 4096."""
    for topic in bundle.advice.values():
        for lang in ("nb", "nn"):
            total = 500
            for ref in translatable_strings(topic):
                text = ref.text
                if lang == "nn":
                    message = nn_catalog.get(text, context=msgctxt("advice", topic.id, ref.key))
                    text = message.string if message is not None and message.string else text
                total += len(text) + 1
            assert total < 3500, f"{topic.id} ({lang}): {total} characters"


# --- scope, sources, tiers and thresholds --------------------------------------------------


def test_every_topic_says_who_it_is_for_and_where_it_comes_from(bundle):
    for topic in bundle.advice.values():
        assert topic.scope is not None and topic.scope.who, topic.id
        assert topic.sources, topic.id
        for source in topic.sources:
            assert source.url.startswith("https://"), (topic.id, source.id)
    ages = {
        t.id: (t.scope.audience, t.scope.min_age, t.scope.max_age) for t in bundle.advice.values()
    }
    assert ages["head-injury"] == ("adults", "16 years", None)
    assert ages["fever-child"][0] == "children"


def test_the_defects_of_the_review_are_gone(bundle):
    def nb(topic_id):
        return _filled(bundle, bundle.advice[topic_id])

    pregnancy = next(
        g for g in nb("breathing-cough-adult").tailoring.risk_groups if g.id == "pregnancy"
    )
    assert "mer tung" not in (pregnancy.advice or "") and "samme dag" not in (
        pregnancy.advice or ""
    )
    assert [s.tier for s in pregnancy.signs] == ["urgent", "urgent"]
    assert "Du har 38 °C eller mer." in [s.sign for s in pregnancy.signs]  # as for urine: 38
    uti_pregnancy = next(
        g for g in nb("urinary-tract-infection").tailoring.risk_groups if g.id == "pregnancy"
    )
    assert any("38 °C" in s.sign for s in uti_pregnancy.signs)
    fever = nb("fever-child")
    self_care = " ".join(fever.self_care)
    assert "i endetarmen" in self_care and "øret kan vise feil" in self_care
    assert "vekt" in self_care and "under 3 måneder" in self_care
    assert "pakningsvedlegget" not in self_care
    signs = " ".join(s.sign for s in fever.worsening_signs)
    for seen in (
        "60 ganger i minuttet",
        "50 eller mer",
        "40 eller mer",
        "blå eller grå",
        "stønner",
        "marmorert",
    ):
        assert seen in signs, seen
    infant = next(g for g in fever.tailoring.risk_groups if g.id == "infant-under-3-months")
    assert "38 °C eller mer igjen" not in " ".join(s.sign for s in infant.signs)
    asthma = next(
        g for g in nb("breathing-cough-adult").tailoring.risk_groups if g.id == "asthma-copd"
    )
    assert [s.tier for s in asthma.signs] == ["emergency", "urgent"]
    diabetes = next(
        g for g in nb("vomiting-diarrhoea-child").tailoring.risk_groups if g.id == "diabetes"
    )
    assert "1,5 mmol/l" in " ".join(s.sign for s in diabetes.signs)
    double = next(s for s in nb("head-injury").worsening_signs if s.id == "double-vision")
    assert "1 time" not in double.sign
    assert "voksne" in nb("head-injury").title
    assert "blærebetennelse" not in nb("urinary-tract-infection").summary.lower()


def test_breathing_rates_agree_across_topics(bundle):
    """The adult 113 line is the same number wherever it appears: one shared threshold."""
    numbers = set()
    for topic_id in ("breathing-cough-adult", "urinary-tract-infection"):
        for sign in _filled(bundle, bundle.advice[topic_id]).worsening_signs:
            if sign.tier == "emergency":
                numbers.update(re.findall(r"(\d+) ganger i minuttet", sign.sign))
    assert numbers == {"30"}


def test_no_advice_text_names_an_emergency_number_itself(bundle, nn_catalog):
    for context, text in _all_strings(bundle):
        if not context.startswith("advice/"):
            continue
        message = nn_catalog.get(text, context=context)
        for shown in (text, message.string if message is not None else ""):
            assert "113" not in shown and "116 117" not in shown, context
