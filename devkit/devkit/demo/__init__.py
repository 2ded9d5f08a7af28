"""The local demo page: try the whole bot in a browser, without a Telegram account.

Only in demo mode (no ``TELEGRAM_BOT_TOKEN``) does ``bot.web`` call `add_demo_routes`, which serves
a page at ``/`` (plain HTML, CSS and JavaScript from ``static/``, no build step, nothing fetched
from other hosts) and the few demo-only endpoints under ``/demo/`` that the page needs. The real
bot does all the work; the page only plays the people (nurse, caller, leader, admin) through the
clinic's API and the local Bot API's user side.
"""

from devkit.demo.routes import add_demo_routes

__all__ = ["add_demo_routes"]
