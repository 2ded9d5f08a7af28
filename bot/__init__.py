"""Sikkerhetsnett: advice after a call to the legevakt, and weekly reflection for leaders.

The package holds the application (config, storage, services, the queue and its sender, web
server, CLI); Telegram handlers live in the top-level ``handlers`` package. The local Bot API
and the demo are not here: they are the ``sikkerhetsnett-devkit`` distribution (``devkit/``).
"""

import os

__version__ = "0.1.0"

# python-telegram-bot 22 gives time periods (RetryAfter.retry_after, …) as timedelta when this is
# set, and will always do so from its next major version; until then it warns on every int. The
# bot reads them through ``bot.channels.telegram.seconds``, which takes both.
os.environ.setdefault("PTB_TIMEDELTA", "true")
