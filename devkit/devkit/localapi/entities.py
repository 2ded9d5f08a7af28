"""Telegram's HTML subset for the local Bot API: parse it to plain text plus message entities.

Strict like Telegram (unknown tags and unbalanced tags are errors) so the bot's escaping bugs show
up locally; it must not grow features Telegram's parser does not have.
"""

from __future__ import annotations

import html
import re
from typing import Any

#: Tag name → entity type. ``span`` is only allowed with ``class="tg-spoiler"``.
_TAG_ENTITY: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
}

_START_TAG = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9-]*)"
    r"((?:\s+[^\s=>/]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)"
    r"\s*>"
)
_END_TAG = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)?\s*>")
_ATTRIBUTE = re.compile(r"([^\s=>/]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")
_CHAR_REF = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; the message is Telegram's own wording."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _unescape(fragment: str) -> str:
    """Replace the character references Telegram knows; leave any other ``&`` as it is."""

    def replace(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref in _NAMED:
            return _NAMED[ref]
        code = int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:])
        try:
            return chr(code)
        except (ValueError, OverflowError):
            return match.group(0)

    return _CHAR_REF.sub(replace, fragment)


def _attributes(raw: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, value in _ATTRIBUTE.findall(raw):
        if value[:1] in ("'", '"'):
            value = value[1:-1]
        attrs[name.lower()] = _unescape(value)
    return attrs


class _Open:
    __slots__ = ("attrs", "entity", "order", "start", "tag")

    def __init__(self, tag: str, entity: dict[str, Any] | None, start: int, order: int) -> None:
        self.tag = tag
        self.entity = entity
        self.start = start
        self.order = order  # outer entities before inner ones at the same offset
        self.attrs: dict[str, str] = {}


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Return ``(plain_text, entities)`` for Telegram-HTML ``source``.

    Raises :class:`EntityParseError` with Telegram's description (without the
    ``Bad Request: can't parse entities:`` prefix) when the markup is invalid.
    """
    pieces: list[str] = []
    position = 0  # UTF-16 offset in the plain text produced so far
    stack: list[_Open] = []
    entities: list[tuple[int, dict[str, Any]]] = []
    opened_count = 0
    i = 0
    n = len(source)
    while i < n:
        lt = source.find("<", i)
        chunk_end = n if lt < 0 else lt
        if chunk_end > i:
            text = _unescape(source[i:chunk_end])
            pieces.append(text)
            position += utf16_len(text)
            i = chunk_end
            continue
        # source[i] == "<"
        if source.startswith("</", i):
            match = _END_TAG.match(source, i)
            if match is None:
                raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(source, i)}")
            name = (match.group(1) or "").lower()
            if not stack:
                raise EntityParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(source, i)}"
                )
            top = stack[-1]
            if name and name != top.tag:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(source, i)}, "
                    f'expected "</{top.tag}>", found "</{name}>"'
                )
            stack.pop()
            _close(top, position, stack, entities)
            i = match.end()
            continue
        match = _START_TAG.match(source, i)
        if match is None:
            name_match = re.match(r"<([a-zA-Z][a-zA-Z0-9-]*)", source[i:])
            if name_match is None:
                raise EntityParseError(
                    f'Unsupported start tag "" at byte offset {_byte_offset(source, i)}'
                )
            if name_match.group(1).lower() not in _TAG_ENTITY:
                raise EntityParseError(
                    f'Unsupported start tag "{name_match.group(1).lower()}" '
                    f"at byte offset {_byte_offset(source, i)}"
                )
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(source, i)}")
        tag = match.group(1).lower()
        attrs = _attributes(match.group(2))
        if tag not in _TAG_ENTITY:
            raise EntityParseError(
                f'Unsupported start tag "{tag}" at byte offset {_byte_offset(source, i)}'
            )
        if tag == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(source, i)}'
            )
        if tag == "tg-emoji" and not attrs.get("emoji-id"):
            raise EntityParseError(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset '
                f"{_byte_offset(source, i)}"
            )
        opened_count += 1
        opened = _Open(tag, _entity_for(tag, attrs), position, opened_count)
        opened.attrs = attrs
        stack.append(opened)
        i = match.end()
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda item: (item[1]["offset"], -item[1]["length"], item[0]))
    return "".join(pieces), [entity for _, entity in entities]


def _entity_for(tag: str, attrs: dict[str, str]) -> dict[str, Any] | None:
    kind = _TAG_ENTITY[tag]
    if kind == "text_link":
        url = attrs.get("href", "")
        if not url:
            return None  # Telegram keeps the text and drops a link without a target
        if url.startswith("tg://user?id="):
            user_id = url.removeprefix("tg://user?id=")
            if user_id.isdigit():
                return {
                    "type": "text_mention",
                    "user": {"id": int(user_id), "is_bot": False, "first_name": ""},
                }
        return {"type": "text_link", "url": url}
    if kind == "blockquote" and "expandable" in attrs:
        return {"type": "expandable_blockquote"}
    if kind == "custom_emoji":
        return {"type": "custom_emoji", "custom_emoji_id": attrs["emoji-id"]}
    return {"type": kind}


def _close(
    opened: _Open, end: int, stack: list[_Open], entities: list[tuple[int, dict[str, Any]]]
) -> None:
    entity = opened.entity
    if entity is None:
        return
    # <pre><code class="language-x"> is one pre entity with a language, not two entities.
    if opened.tag == "code" and stack and stack[-1].tag == "pre":
        css = opened.attrs.get("class", "")
        parent = stack[-1].entity
        if parent is not None and css.startswith("language-") and opened.start == stack[-1].start:
            parent["language"] = css.removeprefix("language-")
            return
    length = end - opened.start
    if length <= 0:
        return  # Telegram drops empty entities
    entities.append((opened.order, {**entity, "offset": opened.start, "length": length}))


def escape(text: str) -> str:
    """Escape plain text for Telegram HTML (what a bot must do with user-supplied text)."""
    return html.escape(text, quote=False)
