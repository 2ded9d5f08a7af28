"""Plain words: which Bokmål words in the advice are long and rare, unless the text explains them.

Word frequencies come from ``wordfreq`` (Robyn Speer et al.): its Norwegian Bokmål list is built
from Wikipedia, subtitles (OpenSubtitles), news, books and web text, and ships inside the package,
so the check works offline. A word counts as *hard* when it has at least ``MIN_LETTERS`` letters
and a Zipf frequency below ``MAX_ZIPF`` (Zipf 2 = 1 use in ten million words: words like
"pakningsvedlegget", "anfallsmedisin", "væskeerstatning"; "fødeavdelingen" at 2.2 passes).
Compounds are common in Norwegian and many long ones are easy ("temperaturen", "blodsukker"),
so length alone is not enough.

A word is *explained* when it is in the topic's title (the summary under it says what it is),
or when it stands next to an explanation somewhere in the same topic: in
brackets ("pupillene (de svarte prikkene midt i øynene)", "de svarte prikkene (pupillene)"), or
followed by " – ", ", det vil si" or ", altså". An explained word also covers its inflected forms.

Only Bokmål is checked: wordfreq has no Nynorsk list, and the Nynorsk text translates the Bokmål
one sentence for sentence, explanations included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

MIN_LETTERS = 12
MAX_ZIPF = 2.0
LANGUAGE = "nb"

_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
# "word (explanation)", "(word)", "word – explanation", "word, det vil si …", "word, altså …"
_EXPLAINED = re.compile(
    r"([^\W\d_]+)(?=\s*\()|\(\s*([^\W\d_]+)\s*\)|([^\W\d_]+)(?=\s+–\s)"
    r"|([^\W\d_]+)(?=,\s+(?:det vil si|altså))",
    re.IGNORECASE,
)


@lru_cache(maxsize=4096)
def zipf(word: str) -> float:
    """How common a word is, on the Zipf scale (log10 of uses per billion words); 0 if unknown."""
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word.lower(), LANGUAGE))


def hard_words(text: str) -> list[str]:
    """The long, rare words of ``text``, in order, each once."""
    out: list[str] = []
    for word in _WORD.findall(text):
        letters = word.replace("-", "")
        if len(letters) < MIN_LETTERS or word in out:
            continue
        if zipf(word) < MAX_ZIPF:
            out.append(word)
    return out


def explained_words(texts: Iterable[str]) -> set[str]:
    """Words that stand next to an explanation in any of ``texts`` (lowercase)."""
    found: set[str] = set()
    for text in texts:
        for match in _EXPLAINED.finditer(text):
            found.update(group.lower() for group in match.groups() if group)
    return found


def is_explained(word: str, explained: set[str]) -> bool:
    """``word`` or a form of it (a shared stem, endings of up to 3 letters) is explained."""
    word = word.lower()
    for other in explained:
        short, long = sorted((word, other), key=len)
        if long.startswith(short[: max(len(short) - 1, 1)]) and len(long) - len(short) <= 3:
            return True
    return False


def describe(word: str) -> str:
    """How rare ``word`` is, for a person: "Zipf 1.9 in wordfreq's Bokmål list"."""
    score = zipf(word)
    if score == 0:
        return "not in wordfreq's Bokmål word list"
    return f"Zipf {score:.2f} in wordfreq's Bokmål list, under {MAX_ZIPF:g}"
