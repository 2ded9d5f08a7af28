"""Logging set-up that keeps personal data out of the logs.

The rule is to log internal ids and events only; the filter here is a second line of defence
that masks bot tokens, phone numbers and long digit runs (chat ids) if one slips through, in the
message and in exception texts and tracebacks alike. Database errors carry no values to begin
with (``hide_parameters`` in ``bot.db``); the filter also drops the parts of a database error
that quote values (PostgreSQL's ``DETAIL: Key (…)=(…)``) and pydantic's ``input_value=…``.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"\b\d{5,20}:[A-Za-z0-9_-]{20,}")
_PHONE = re.compile(r"(?<![\w])\+?\d[\d \-]{6,}\d(?![\w])")
# Parts of exception texts that quote the values of a statement or a model.
_VALUES = [
    # SQLAlchemy without hide_parameters (an engine made elsewhere): "[parameters: (…)]".
    (re.compile(r"\[parameters: .*?\](?=\s*(?:\(Background|\n|$))", re.DOTALL), "[parameters: …]"),
    # PostgreSQL: 'DETAIL:  Key (telegram_user_id)=(61016101) already exists.' and the like.
    (re.compile(r"(DETAIL:|Key \().*?$", re.MULTILINE), r"\1 …"),
    # pydantic: "[type=string_too_long, input_value='…', input_type=str]".
    (re.compile(r"input_value=.*?, input_type="), "input_value=…, input_type="),
]
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


def redact(text: str) -> str:
    """``text`` with tokens, long digit runs and quoted values masked."""
    for pattern, replacement in _VALUES:
        text = pattern.sub(replacement, text)
    return _PHONE.sub("[number]", _TOKEN.sub("[token]", text))


class RedactingFilter(logging.Filter):
    """Mask tokens, numbers that could be phone numbers or chat ids, and quoted values, in the
    message and in the exception's text and traceback."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters use exc_text when it is set: the traceback is written only as cleaned.
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
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
