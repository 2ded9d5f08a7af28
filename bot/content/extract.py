"""Babel extractor for content YAML, registered as ``sikkerhetsnett_content`` (babel.extractors).

Yields every user-visible string (Bokmål source) with ``kind/id:field`` as msgctxt and the
file:line as a translator comment, so translators see exactly where a string lives.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path as FsPath
from typing import IO, Any

from bot.content.loader import FILES, KINDS, ContentErrors, msgctxt, parse_file
from bot.content.schema import translatable_strings


def extract_content(
    fileobj: IO[bytes],
    keywords: Collection[str],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str, tuple[str, str], list[str]]]:
    """Babel extraction method: ``(lineno, "pgettext", (msgctxt, text), [comment])`` per string."""
    name = getattr(fileobj, "name", "") or ""
    display = os.path.relpath(name) if name else "<content>"
    kind = options.get("kind") or FsPath(name).parent.name
    models: dict[str, Any] = {**KINDS, **{k: model for k, (_file, model) in FILES.items()}}
    if kind not in models:
        raise ValueError(
            f"{display}: content files must be under content/advice/ or content/reflection/, "
            "or be one of " + ", ".join(f"content/{file}" for file, _model in FILES.values())
        )
    text = fileobj.read().decode("utf-8")
    try:
        model, lines = parse_file(text, display, models[kind])
    except ContentErrors as exc:
        # A catalog built from broken content would silently lose strings: stop instead.
        raise SystemExit(f"cannot extract strings, the content has errors:\n{exc}") from None
    for ref in translatable_strings(model):
        line = lines.get(ref.path, 1)
        yield line, "pgettext", (msgctxt(kind, model.id, ref.key), ref.text), [f"{display}:{line}"]
