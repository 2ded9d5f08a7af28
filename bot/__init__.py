"""Sikkerhetsnett: advice after a call to the legevakt, and weekly reflection for leaders.

The package holds the application (config, storage, services, outbox, web server, CLI);
Telegram handlers live in the top-level ``handlers`` package.
"""

__version__ = "0.1.0"
