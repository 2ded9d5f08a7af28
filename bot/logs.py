"""Logging set-up that keeps personal data out of the logs.

The rule is to log internal ids and events only; the filter here is a second line of defence
that masks bot tokens, phone numbers and long digit runs (chat ids) if one slips through.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"\b\d{5,20}:[A-Za-z0-9_-]{20,}")
_PHONE = re.compile(r"(?<![\w])\+?\d[\d \-]{6,}\d(?![\w])")
_NOISY = ("httpx", "httpcore", "aiohttp.access", "apscheduler", "telegram.ext.ExtBot")


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
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _NOISY:
        # httpx logs every request URL, and Telegram URLs contain the bot token.
        logging.getLogger(name).setLevel(logging.WARNING)
