"""``python -m bot content check``: everything an admin must fix before people see it.

Schema errors come from the loader; this module adds the catalog rules (every string of approved
content, and every UI string, translated and not fuzzy). Findings carry file:line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.content.loader import ContentBundle, ContentError, ContentErrors, load_content, msgctxt
from bot.content.schema import translatable_strings
from bot.i18n import LANGUAGE_NAMES


@dataclass
class Report:
    findings: list[ContentError] = field(default_factory=list)
    files: int = 0

    @property
    def errors(self) -> list[ContentError]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[ContentError]:
        return [f for f in self.findings if f.severity == "warning"]

    def summary(self) -> str:
        if not self.findings:
            return f"content check passed: {self.files} files, no problems"
        return (
            f"content check: {len(self.errors)} error(s), {len(self.warnings)} warning(s) "
            f"in {self.files} files"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": not self.errors,
            "files": self.files,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [
                {
                    "file": f.file,
                    "line": f.line,
                    "field": f.field,
                    "severity": f.severity,
                    "message": f.message,
                }
                for f in self.findings
            ],
        }


def check_content(content_dir: Path, locales_dir: Path) -> Report:
    report = Report()
    try:
        bundle = load_content(content_dir)
    except ContentErrors as exc:
        report.findings.extend(exc.errors)
        report.files = len({e.file for e in exc.errors})
        return report
    report.files = len(bundle.sources)
    report.findings.extend(_content_translations(bundle, locales_dir))
    report.findings.extend(_ui_translations(locales_dir))
    return report


def _read_catalog(path: Path, locale: str) -> Catalog | None:
    if not path.exists():
        return None
    with path.open("rb") as fp:
        return read_po(fp, locale=locale)


def _content_translations(bundle: ContentBundle, locales_dir: Path) -> list[ContentError]:
    findings: list[ContentError] = []
    po_path = locales_dir / "nn" / "LC_MESSAGES" / "content.po"
    catalog = _read_catalog(po_path, "nn")
    if catalog is None:
        return [
            ContentError(
                _rel(po_path), 1, "", "the Nynorsk content catalog is missing; run: make catalogs"
            )
        ]
    items: list[tuple[str, Any]] = [("advice", t) for t in bundle.advice.values()]
    items += [("reflection", p) for p in bundle.programmes.values()]
    for kind, model in items:
        source = bundle.source(kind, model.id)
        severity = "error" if model.status == "approved" else "warning"
        for ref in translatable_strings(model):
            message = catalog.get(ref.text, context=msgctxt(kind, model.id, ref.key))
            line = source.line_of(ref.path)
            field_name = ref.key
            if message is None or not message.string:
                findings.append(
                    ContentError(
                        source.display,
                        line,
                        field_name,
                        "has no Nynorsk translation; run `make catalogs` and translate it in "
                        f"{_rel(po_path)}",
                        severity,
                    )
                )
            elif message.fuzzy:
                findings.append(
                    ContentError(
                        source.display,
                        line,
                        field_name,
                        "the Nynorsk translation is only a draft (marked fuzzy) and is not shown "
                        f"to anyone until a person approves it in {_rel(po_path)}",
                        severity,
                    )
                )
    return findings


def _ui_translations(locales_dir: Path) -> list[ContentError]:
    findings: list[ContentError] = []
    for locale in ("nb", "nn"):
        po_path = locales_dir / locale / "LC_MESSAGES" / "messages.po"
        catalog = _read_catalog(po_path, locale)
        if catalog is None:
            findings.append(
                ContentError(_rel(po_path), 1, "", "the catalog for the bot's own texts is missing")
            )
            continue
        for message in catalog:
            if not message.id:
                continue
            line = message.lineno or 1
            text = message.id if isinstance(message.id, str) else message.id[0]
            short = text if len(text) <= 50 else text[:47] + "…"
            if not message.string or (
                isinstance(message.string, tuple) and not all(message.string)
            ):
                problem = f"the text “{short}” has no {LANGUAGE_NAMES[locale]} translation"
            elif message.fuzzy:
                problem = (
                    f"the {LANGUAGE_NAMES[locale]} translation of “{short}” is marked fuzzy "
                    "(a draft); check it and remove the fuzzy mark"
                )
            else:
                continue
            findings.append(ContentError(_rel(po_path), line, "", problem))
    return findings


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
