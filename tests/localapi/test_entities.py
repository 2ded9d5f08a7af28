"""Telegram's HTML subset: what parses, to which plain text and entities, and what is refused."""

from __future__ import annotations

import pytest

from devkit.localapi.entities import EntityParseError, parse_html, utf16_len


def test_tags_become_entities_on_the_unescaped_plain_text() -> None:
    text, entities = parse_html(
        'Ring <b>116 117</b> &amp; <a href="https://x.no/?a=1&amp;b=2">les</a>'
    )

    assert text == "Ring 116 117 & les"
    assert entities == [
        {"type": "bold", "offset": 5, "length": 7},
        {"type": "text_link", "url": "https://x.no/?a=1&b=2", "offset": 15, "length": 3},
    ]


def test_offsets_count_utf16_code_units_like_telegram() -> None:
    text, entities = parse_html("🚑 <i>æøå</i>")

    assert utf16_len("🚑 ") == 3
    assert entities == [{"type": "italic", "offset": 3, "length": 3}]
    assert text == "🚑 æøå"


def test_nested_synonyms_spoilers_quotes_and_pre_with_language() -> None:
    source = (
        "<strong><em>x</em></strong><ins>u</ins><del>s</del><tg-spoiler>p</tg-spoiler>"
        '<span class="tg-spoiler">q</span><blockquote expandable>b</blockquote>'
        '<pre><code class="language-python">1 &lt; 2</code></pre>'
    )
    text, entities = parse_html(source)

    assert text == "xuspqb1 < 2"
    assert [e["type"] for e in entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "spoiler",
        "expandable_blockquote",
        "pre",
    ]
    assert entities[-1] == {"type": "pre", "language": "python", "offset": 6, "length": 5}


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("<br>linje", 'Unsupported start tag "br" at byte offset 0'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<b>fet", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ('<span class="red">x</span>', 'Tag "span" must have class "tg-spoiler"'),
        ("<b", "Unclosed start tag at byte offset 0"),
    ],
)
def test_invalid_markup_is_refused_with_telegrams_wording(source: str, error: str) -> None:
    with pytest.raises(EntityParseError, match=r"^" + error.replace("(", r"\(")):
        parse_html(source)


def test_a_bare_ampersand_and_unknown_entities_stay_as_text() -> None:
    assert parse_html("A & B &nbsp; &#229;") == ("A & B &nbsp; å", [])
