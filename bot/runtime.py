"""What a running bot holds: settings, database sessions, catalogs and the live content.

Handlers reach it through ``runtime(context)``. Content and catalogs are swapped whole on reload,
so a handler reads them once per update and never sees half of an edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.content import ContentBundle
from bot.db import Sessions
from bot.i18n import Catalogs, Locale

if TYPE_CHECKING:
    from telegram.ext import CallbackContext

    from bot.budget import TelegramBudget
    from bot.privacy import Cipher
    from bot.sender import Sender


T = TypeVar("T", bound=BaseModel)  # a topic or programme


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: Sessions
    catalogs: Catalogs
    content: ContentBundle
    budget: TelegramBudget | None = None  # the one Telegram budget (replies and queued sends)
    sender: Sender | None = None  # the one sender, every channel
    bot_username: str = ""
    # Where advice pages are (PUBLIC_URL, or the demo's own server): see ``Settings.page_base``.
    public_url: str = ""
    # Start-payload prefix -> handler, filled by the audience modules' register() functions.
    start_routes: dict[str, Any] = field(default_factory=dict)
    # Prefix -> a handler that writes the person itself, in the link's own transaction.
    link_openers: dict[str, Any] = field(default_factory=dict)
    # Localised copies of the live content's topics and programmes (see ``localized``).
    _localized: dict[tuple[str, int, str], tuple[Any, Any]] = field(
        default_factory=dict, repr=False
    )
    _localized_for: tuple[Any, Any] = (None, None)  # the content and catalogs they came from

    def cipher(self, purpose: str) -> Cipher:
        """Fernet for ``purpose`` ("dispatch", "answer", "sms", "idempotency", "raabra"): SECRET_KEY
        encrypts, it and SECRET_KEY_FALLBACKS decrypt."""
        from bot.privacy import Cipher

        return Cipher(self.settings.secrets(), purpose)

    def localized(self, source: T, domain: str, locale: Locale) -> T:
        """``localize`` of a topic or programme of the live content, computed once per language.

        The copies are dropped when a reload swaps the content or catalogs. A weekly tick or a
        dispatch no longer re-translates a whole programme or topic for every message.
        """
        from bot.content.loader import localize

        content, catalogs = self._localized_for
        if content is not self.content or catalogs is not self.catalogs:
            self._localized.clear()
            self._localized_for = (self.content, self.catalogs)
        key = (domain, id(source), locale)
        hit = self._localized.get(key)
        if hit is None or hit[0] is not source:  # the id of an object no longer alive
            lookup = self.catalogs.content_lookup(locale)
            hit = (source, localize(source, domain, lookup, self.content.values))
            self._localized[key] = hit
        result: T = hit[1]
        return result


RUNTIME_KEY = "runtime"


def runtime(context: CallbackContext[Any, Any, Any, Any]) -> Runtime:
    rt = context.application.bot_data[RUNTIME_KEY]
    assert isinstance(rt, Runtime)
    return rt
