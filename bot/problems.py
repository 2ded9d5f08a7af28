"""Messages about bad input, kept as English templates until they are shown to someone.

The API answers a call system's developer in English and a nurse in Norwegian (``Accept-Language:
nb`` or ``nn``); the stable part, the ``error`` code, is the same in every language. A service
raises ``Problem``s; whoever answers picks the language: ``problem.text(gettext)``.
Templates are marked with ``N_`` so ``make catalogs`` extracts them into the messages domain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Gettext = Callable[[str], str]


def N_(template: str) -> str:
    """Mark a template for extraction; it is translated when it is shown."""
    return template


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: an English template and what fills it."""

    template: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def text(self, gettext: Gettext | None = None) -> str:
        """The message in the language of ``gettext`` (English without one)."""
        template = gettext(self.template) if gettext is not None else self.template
        return template.format(**self.params)

    def __str__(self) -> str:
        return self.text()


def problem(template: str, **params: Any) -> Problem:
    return Problem(template, params)


def texts(problems: Mapping[str, Problem], gettext: Gettext | None = None) -> dict[str, str]:
    """``{field: message}`` in one language."""
    return {name: found.text(gettext) for name, found in problems.items()}
