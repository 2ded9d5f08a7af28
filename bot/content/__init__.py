"""Content edited by admins: advice topics and reflection programmes under ``content/``.

Schemas live in ``schema``, YAML parsing with line numbers in ``loader``, the Babel extractor in
``extract``. Nothing here knows about Telegram or the database.
"""

from bot.content.loader import ContentBundle, ContentError, ContentErrors, load_content

__all__ = ["ContentBundle", "ContentError", "ContentErrors", "load_content"]
