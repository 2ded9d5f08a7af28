"""A local Telegram Bot API (bot side over real HTTP) with a user side to act as a person.

Used by end-to-end tests, benchmarks and the demo mode; the bot reaches it through PTB's
``base_url``. Nothing here may be imported by the production bot's handlers or services.
"""

from devkit.localapi.client import (
    BotMessage,
    Button,
    CallbackAnswer,
    LocalGroup,
    LocalUser,
    UserActionError,
)
from devkit.localapi.entities import EntityParseError, parse_html
from devkit.localapi.records import ApiError, Call, FileRecord, SentMessage, UserSideError
from devkit.localapi.server import (
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    LocalBotApi,
    run_forever,
    serve_local_api,
)

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USERNAME",
    "ApiError",
    "BotMessage",
    "Button",
    "Call",
    "CallbackAnswer",
    "EntityParseError",
    "FileRecord",
    "LocalBotApi",
    "LocalGroup",
    "LocalUser",
    "SentMessage",
    "UserActionError",
    "UserSideError",
    "parse_html",
    "run_forever",
    "serve_local_api",
]
