"""Logging set-up that keeps personal data out of the logs.

The rule is to log internal ids and events only; the filter here is a second line of defence
that masks bot tokens, phone numbers and long digit runs (chat ids) if one slips through.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"\b\d{5,20}:[A-Za-z0-9_-]{20,}")
_PHONE = re.compile(r"(?<![\w])\+?\d[\d \-]{6,}\d(?![\w])")
# Loggers that would write personal data or the token at DEBUG/INFO, with the most they may say:
# httpx logs request URLs (the token); python-telegram-bot logs whole updates and API parameters
# (names, chat ids, message text) at DEBUG; aiosqlite and SQLAlchemy log statements and values.
_FLOORS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiohttp.access": logging.WARNING,
    "apscheduler": logging.WARNING,
    "telegram": logging.INFO,
    "aiosqlite": logging.WARNING,
    "sqlalchemy.engine": logging.WARNING,
    "psycopg": logging.WARNING,
    "alembic.runtime.plugins": logging.WARNING,  # one line per plugin on every migration run
}
_OURS = "_sikkerhetsnett_handler"


class RedactingFilter(logging.Filter):
    """Mask tokens and number sequences that could be phone numbers or chat ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _PHONE.sub("[number]", _TOKEN.sub("[token]", message))
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts from libraries can carry URLs with the token.
            exc = record.exc_info[1]
            text = str(exc)
            if _TOKEN.search(text):
                record.exc_info = None
                record.msg = f"{record.msg} ({type(exc).__name__}, details withheld)"
        return True


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr through the redacting filter; library loggers never go below their floor."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, _OURS, False)] + [handler]
    root.setLevel(level)
    numeric = logging.getLevelName(level)
    for name, floor in _FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, numeric if isinstance(numeric, int) else 0))
