"""Where the bot finds its content, its translations and a place to write, installed or not.

From a source checkout (``make install``, an editable install) these are the checkout's own
``content/``, ``locales/`` and ``var/``. From an installed wheel they are the copies the wheel
carries (``bot/_data``), and state goes to the user's state folder, never into site-packages.
``CONTENT_DIR``, ``LOCALES_DIR`` and ``VAR_DIR`` override each (``bot.config``).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent
PACKAGED_DATA = PACKAGE / "_data"


def from_checkout() -> bool:
    """True when the code runs from its source tree rather than from an installed wheel."""
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "content").is_dir()


def default_content_dir() -> Path:
    return CHECKOUT / "content" if from_checkout() else PACKAGED_DATA / "content"


def default_locales_dir() -> Path:
    return CHECKOUT / "locales" if from_checkout() else PACKAGED_DATA / "locales"


def default_var_dir() -> Path:
    """The checkout's ``var/``; installed, ``$XDG_STATE_HOME/sikkerhetsnett`` (~/.local/state)."""
    if from_checkout():
        return CHECKOUT / "var"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "sikkerhetsnett"
