"""Configuration from environment variables and an optional ``.env`` file.

``load_settings()`` is the only entry point; a missing or malformed value becomes a
``ConfigError`` with one plain sentence naming the variable, never a traceback.
"""

from __future__ import annotations

import hmac
import re
import secrets
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot import paths

TELEGRAM_API_BASE_URL = "https://api.telegram.org/bot"
# The demo bot's username (the local Bot API's), for links made and previewed without a token.
DEMO_BOT_USERNAME = "sikkerhetsnett_local_bot"
TOKEN_PATTERN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")


class ConfigError(Exception):
    """A configuration problem, worded for the person starting the bot."""


class Settings(BaseSettings):
    """Every setting, with its environment variable name in upper case."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str | None = None
    database_url: str | None = None
    default_locale: Literal["nb", "nn"] = "nb"
    timezone: str = "Europe/Oslo"
    admin_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    secret_key: SecretStr | None = None  # keys the HMAC of phone numbers and other secrets
    # Former SECRET_KEYs, newest first, while ``python -m bot keys rotate`` moves data off them:
    # encrypted data made with them stays readable, and phone hashes made with them still match.
    secret_key_fallbacks: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Production (README, "Webhook mode, health and metrics"). A webhook URL replaces long polling;
    # its secret, if not given, is derived from SECRET_KEY (``Settings.webhook_token``).
    webhook_url: str | None = None  # e.g. https://bot.example.no/telegram/webhook
    webhook_secret: SecretStr | None = None  # ≥ 32 of A-Z a-z 0-9 _ -
    metrics_token: SecretStr | None = None  # Bearer token for /metrics; unset: only in the demo
    health_cache_seconds: float = Field(default=5.0, ge=0, le=300)  # reuse getMe's answer
    start_link_attempts: int = Field(default=5, ge=1, le=1000)  # bad /start links per window…
    start_link_window_minutes: float = Field(default=10.0, gt=0, le=24 * 60)  # …then a pause

    host: str | None = None
    port: int = Field(default=8080, ge=1, le=65535)
    local_bot_api_port: int = Field(default=8081, ge=1, le=65535)
    # A checkout's var/, content/ and locales/; installed, see bot/paths.py.
    var_dir: Path = Field(default_factory=paths.default_var_dir)
    content_dir: Path = Field(default_factory=paths.default_content_dir)
    locales_dir: Path = Field(default_factory=paths.default_locales_dir)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    retention_days: int = Field(default=30, ge=1, le=3650)  # caller data and sent messages
    outbox_tick_seconds: float = Field(default=1.0, gt=0, le=60)
    # A failed send is retried until the message's own expiry, waiting 1, 2, 4 … s up to this
    # between tries (and pausing its channel as long): a channel that comes back after an
    # outage is sent to again within about a minute.
    send_max_backoff_seconds: float = Field(default=60.0, ge=1, le=3600)
    outbox_rate_per_second: float = Field(default=30.0, gt=0, le=1000)
    outbox_chat_rate_per_second: float = Field(default=1.0, gt=0, le=100)
    outbox_in_flight: int = Field(default=16, ge=1, le=256)

    # Advice after a call.
    bot_username: str | None = None  # for deep links made by the CLI without asking Telegram
    link_ttl_hours: int = Field(default=72, ge=1, le=720)  # how long an advice link can be opened
    checkin_window_hours: float = Field(default=2.0, gt=0, le=48)  # late check-ins are dropped
    recontact_hours: int = Field(default=72, ge=1, le=720)  # default look-back for re-contacts
    # Draft (not clinically approved) advice may be sent: default yes in the demo, no with a token.
    allow_draft_advice: bool | None = None
    # The advice page (``PUBLIC_URL/r/<token>``, the link in the SMS): the address callers'
    # browsers reach this server on. Required with a token; the demo uses its own local server.
    public_url: str | None = None
    # Unknown page links per client address and window before the address is paused (a carrier's
    # NAT puts many phones behind one address: only links that do not work count).
    page_link_attempts: int = Field(default=20, ge=1, le=10_000)
    page_link_window_minutes: float = Field(default=10.0, gt=0, le=24 * 60)
    # How many proxies in front of the bot append to X-Forwarded-For (a load balancer: 1). The
    # client's address is taken that many hops from the right; 0 trusts no header.
    forwarded_hops: int = Field(default=0, ge=0, le=5)

    # Weekly reflection for leaders.
    reminder_after_hours: float = Field(default=48.0, ge=0, le=24 * 6)  # 0: no reminders
    prompt_late_hours: float = Field(default=12.0, gt=0, le=24 * 6)  # later than this: missed
    report_min_group: int = Field(default=5, ge=1, le=100)  # smaller groups' counts are hidden
    invite_days: int = Field(default=30, ge=1, le=365)  # default lifetime of an invite link

    # Content checks.
    lix_limit: float = Field(default=40.0, gt=0, le=100)  # advice sections above: a warning

    # SMS gateway: "http" posts it to the clinic's gateway; "none": the call system sends the SMS
    # itself (send_sms is refused); "console" prints it, link masked, and sends nothing (the
    # demo's default; staging only with a token, where it must be chosen explicitly).
    sms_provider: Literal["console", "http", "none"] | None = None
    # Countries (ISO 3166 codes) whose mobile numbers may get an SMS; landlines, toll-free and
    # shared-cost numbers never do (SMS pumping). The default is not validated (settings validate
    # defaults): checking "NO" against phonenumbers' regions is ~30 ms of import every start.
    sms_countries: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["NO"], validate_default=False
    )
    sms_http_url: str | None = None
    sms_http_auth_header: SecretStr | None = None  # e.g. "Authorization: Bearer abc123"
    # JSON body; the strings "{to}" and "{text}" are replaced by the number and the message.
    sms_http_body: str = '{"to": "{to}", "text": "{text}"}'
    sms_http_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    sms_window_hours: float = Field(default=6.0, gt=0, le=72)  # an SMS not sent by then is dropped

    # The clinic's API, per key (token buckets, per process). The busiest legevakt in Norway (Oslo)
    # answers 900-1,100 calls a day at its busiest, under 3 a minute even in an hour three times
    # the average: 10 SMS a minute is four times that, and stops a leaked key from pumping SMS;
    # 120 requests leave room for status polls and look-ups (README, "Security").
    api_rate_per_minute: float = Field(default=120.0, gt=0, le=60_000)
    api_burst: int = Field(default=60, ge=1, le=10_000)
    api_sms_rate_per_minute: float = Field(default=10.0, gt=0, le=6_000)
    api_sms_burst: int = Field(default=20, ge=1, le=1_000)
    audit_retention_days: int = Field(default=365, ge=30, le=3650)  # re-contact look-up log

    # Clinics' webhooks (README, "Webhooks"). They go only to public addresses; networks listed
    # here (CIDR, comma-separated, e.g. an on-premise call system's 10.20.0.0/16) are allowed
    # too. The demo also allows this machine (http to loopback).
    webhook_allowed_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=30)  # connect + answer, total

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not TOKEN_PATTERN.match(value.get_secret_value().strip()):
            raise ValueError("it does not look like a bot token from @BotFather (digits:letters)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("telegram_api_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError("it must be an http(s) URL such as http://127.0.0.1:8081/bot")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        value = value.strip()
        match = re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value)
        if not match:
            raise ValueError("it must be an http(s) URL such as https://bot.example.no/telegram")
        path = match.group(1) or "/"
        if path == "/" or path.startswith(("/api/", "/healthz", "/metrics", "/demo/")):
            raise ValueError(
                "its path must be the bot's own, not / or /api/, /healthz, /metrics "
                "(e.g. https://bot.example.no/telegram/webhook)"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not re.fullmatch(
            r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|http://\[::1\](:[0-9]{1,5})?", value
        ):
            raise ValueError(
                "it must be the address callers reach this server on, scheme and host only, "
                "e.g. https://rad.legevakt.no"
            )
        if len(value) > PUBLIC_URL_MAX:
            raise ValueError(
                f"it must be at most {PUBLIC_URL_MAX} characters, so the SMS with the link fits "
                "two segments"
            )
        host = urlsplit(value).hostname or ""
        if value.startswith("http://") and not _is_loopback(host):
            raise ValueError("it must start with https:// (only this machine may use http://)")
        return value

    @field_validator("webhook_secret", "metrics_token")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{32,256}", value.get_secret_value().strip()):
            raise ValueError(
                "it must be 32 to 256 letters, digits, _ or - (try: openssl rand -hex 32)"
            )
        return SecretStr(value.get_secret_value().strip())

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^(sqlite|postgres|postgresql)(\+\w+)?://", value):
            raise ValueError(
                "it must start with sqlite:/// or postgresql:// "
                "(e.g. postgresql://user:password@localhost/sikkerhetsnett)"
            )
        return value

    @field_validator("bot_username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.strip().removeprefix("@")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{3,31}", value):
            raise ValueError("it must be the bot's Telegram username, e.g. SikkerhetsnettBot")
        return value

    @field_validator("sms_http_url")
    @classmethod
    def _sms_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError("it must be an http(s) URL such as https://sms.example.no/send")
        return value

    @field_validator("sms_http_auth_header")
    @classmethod
    def _sms_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        name, sep, rest = value.get_secret_value().partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9-]+", name.strip()) or not rest.strip():
            raise ValueError("it must be one header line, e.g. 'Authorization: Bearer abc123'")
        return value

    @field_validator("sms_http_body")
    @classmethod
    def _sms_body(cls, value: str) -> str:
        import json

        try:
            json.loads(value)
        except ValueError:
            raise ValueError('it must be JSON, e.g. {"to": "{to}", "text": "{text}"}') from None
        if '"{to}"' not in value or '"{text}"' not in value:
            raise ValueError('it must contain the strings "{to}" and "{text}"')
        return value

    @field_validator("secret_key_fallbacks", mode="before")
    @classmethod
    def _fallbacks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for part in value:
                secret = part.get_secret_value() if isinstance(part, SecretStr) else str(part)
                if len(secret) < 32:
                    raise ValueError(
                        "it must be former SECRET_KEY values of at least 32 characters, "
                        "separated by commas"
                    )
        return value

    @field_validator("sms_countries", mode="before")
    @classmethod
    def _countries(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip().upper() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            import phonenumbers

            value = [str(part).strip().upper() for part in value]
            unknown = [part for part in value if part not in phonenumbers.SUPPORTED_REGIONS]
            if unknown or not value:
                raise ValueError(
                    "it must be country codes separated by commas, e.g. NO or NO,SE,DK"
                )
        return value

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            try:
                return [ip_network(str(part).strip(), strict=True) for part in value]
            except ValueError:
                raise ValueError(
                    "it must be networks in CIDR form separated by commas, e.g. 10.20.0.0/16"
                ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("it must be a time zone name such as Europe/Oslo") from None
        return value

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            if not all(re.fullmatch(r"\d{1,20}", p) for p in parts):
                raise ValueError(
                    "it must be numeric Telegram user ids separated by commas, e.g. 12345,67890"
                )
            return [int(p) for p in parts]
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 32:
            raise ValueError("it must be at least 32 characters (try: openssl rand -hex 32)")
        return value

    # --- derived -------------------------------------------------------------------------

    @property
    def demo(self) -> bool:
        """No token: run the embedded demo against the local Bot API."""
        return self.telegram_bot_token is None

    @property
    def draft_advice_allowed(self) -> bool:
        """Whether advice awaiting clinical approval may be sent to callers."""
        return self.demo if self.allow_draft_advice is None else self.allow_draft_advice

    @property
    def sms_mode(self) -> Literal["console", "http", "none"]:
        """The SMS provider: as set; the demo prints (``console``) when none is set."""
        if self.sms_provider is not None:
            return self.sms_provider
        if not self.demo:
            raise ConfigError(SMS_PROVIDER_MISSING)
        return "console"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bind_host(self) -> str:
        # The demo listens on loopback only; a deployment behind a load balancer on all interfaces.
        return self.host or ("127.0.0.1" if self.demo else "0.0.0.0")

    @property
    def page_base(self) -> str:
        """Where advice pages are: PUBLIC_URL, or in the demo this machine's server."""
        if self.public_url is not None:
            return self.public_url
        if not self.demo:
            raise ConfigError(PUBLIC_URL_MISSING)
        return f"http://127.0.0.1:{self.port}"

    @property
    def async_database_url(self) -> str:
        """The database URL with the async driver SQLAlchemy needs."""
        url = self.database_url or f"sqlite:///{self.var_dir / 'sikkerhetsnett.db'}"
        return to_async_url(url)

    @property
    def webhook_path(self) -> str | None:
        """The path the bot's web server answers the webhook on (the path of WEBHOOK_URL)."""
        if self.webhook_url is None:
            return None
        return urlsplit(self.webhook_url).path

    def webhook_token(self) -> str:
        """The webhook's secret token: WEBHOOK_SECRET, or else derived from SECRET_KEY.

        Every instance with the same SECRET_KEY derives the same token, so nothing more needs to
        be shared; setting WEBHOOK_SECRET lets it be changed without touching SECRET_KEY.
        """
        if self.webhook_secret is not None:
            return self.webhook_secret.get_secret_value()
        return hmac.new(self.secret(), b"sikkerhetsnett:telegram-webhook", "sha256").hexdigest()

    def secrets(self) -> list[bytes]:
        """SECRET_KEY, then SECRET_KEY_FALLBACKS: the first makes, every one reads."""
        return [self.secret()] + [
            old.get_secret_value().encode() for old in self.secret_key_fallbacks
        ]

    def secret(self) -> bytes:
        """The key for HMACs; in the demo a random one kept under var/."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()


SMS_PROVIDER_MISSING = (
    "The environment variable SMS_PROVIDER is missing: with TELEGRAM_BOT_TOKEN set, say how the "
    "caller gets the SMS with the link: http (your SMS gateway, at SMS_HTTP_URL), none (the call "
    "system sends the SMS itself; requests with send_sms are refused) or console (staging only: "
    "nothing is sent)."
)
PUBLIC_URL_MISSING = (
    "The environment variable PUBLIC_URL is missing: with TELEGRAM_BOT_TOKEN set, give the "
    "https address callers' phones reach this server on (e.g. https://rad.legevakt.no): the "
    "SMS links to the advice page there."
)
# The longest PUBLIC_URL the SMS has room for (two segments, with a 32-character clinic name).
PUBLIC_URL_MAX = 100
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def to_async_url(url: str) -> str:
    """Map sqlite:// and postgresql:// URLs to their asyncio drivers (aiosqlite, psycopg)."""
    scheme, _, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    return f"postgresql+psycopg://{rest}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings; raise ConfigError with one sentence naming the first bad variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "configuration"
        reason = _reason(err)
        raise ConfigError(f"The environment variable {name} is not valid: {reason}.") from None
    if not settings.demo and settings.secret_key is None:
        raise ConfigError(
            "The environment variable SECRET_KEY is missing: with TELEGRAM_BOT_TOKEN set, give "
            "it a random value of at least 32 characters (try: openssl rand -hex 32)."
        )
    if (
        settings.webhook_url is not None
        and not settings.webhook_url.startswith("https://")
        and not (settings.demo or settings.telegram_api_base_url)
    ):
        raise ConfigError(
            "The environment variable WEBHOOK_URL is not valid: Telegram delivers updates only "
            "to https:// addresses (e.g. https://bot.example.no/telegram/webhook)."
        )
    if settings.sms_provider == "http" and not settings.sms_http_url:
        raise ConfigError(
            "The environment variable SMS_HTTP_URL is missing: with SMS_PROVIDER=http, give the "
            "address of the SMS gateway (e.g. https://sms.example.no/send)."
        )
    if not settings.demo and settings.database_url is None:
        # Not a silent SQLite file under var/: on most hosts that folder does not outlive a
        # deploy, and every instance would get a database of its own.
        raise ConfigError(
            "The environment variable DATABASE_URL is missing: with TELEGRAM_BOT_TOKEN set, give "
            "the database (postgresql://user:password@host/sikkerhetsnett, or for one instance "
            "an explicit sqlite:////srv/sikkerhetsnett/bot.db)."
        )
    if not settings.demo and settings.sms_provider is None:
        raise ConfigError(SMS_PROVIDER_MISSING)
    if not settings.demo and settings.public_url is None:
        raise ConfigError(PUBLIC_URL_MISSING)
    if settings.demo and settings.host is not None and not _is_loopback(settings.host):
        raise ConfigError(
            f"The environment variable HOST is not valid for the demo: {settings.host} would "
            "open the demo (its page hands out API keys, and nothing in it is real) to the "
            "network. Without TELEGRAM_BOT_TOKEN the bot listens on 127.0.0.1 only: unset HOST."
        )
    return settings


def startup_warnings(settings: Settings) -> list[str]:
    """Settings that are allowed but deserve a loud line in the log at start."""
    warnings = []
    if not settings.demo and settings.sms_provider == "console":
        warnings.append(
            "SMS_PROVIDER=console: NO SMS IS SENT. Advice links are only written to this "
            "process's output (masked), and each dispatch says sms: not_sent. For staging only; "
            "use http (your gateway) or none (the call system sends the SMS) in production."
        )
    if not settings.demo and not settings.admin_user_ids:
        warnings.append(
            "ADMIN_USER_IDS is empty: nobody can use /status, /stats or /reload, and content "
            "reloads are reported to no one."
        )
    if settings.demo and settings.async_database_url.startswith("postgresql"):
        warnings.append(
            "DEMO MODE on a PostgreSQL database: TELEGRAM_BOT_TOKEN is not set. If this is a "
            "production database, stop now and set the token."
        )
    for name, url in (
        ("TELEGRAM_API_BASE_URL", settings.telegram_api_base_url),
        ("SMS_HTTP_URL", settings.sms_http_url if settings.sms_provider == "http" else None),
    ):
        host = urlsplit(url).hostname if url else None
        if url and url.startswith("http://") and host and not _is_loopback(host):
            warnings.append(
                f"{name} is plain http to another machine ({host}): what it carries travels "
                "unencrypted. Use https, or a relay on this machine."
            )
    return warnings


def _reason(err: Any) -> str:
    if err["type"] == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if err["type"] == "literal_error":
        return f"it must be one of {err['ctx']['expected']}"
    if err["type"] in ("int_parsing", "int_type"):
        return "it must be a whole number"
    if err["type"] in ("float_parsing", "float_type"):
        return "it must be a number"
    if err["type"] in ("greater_than_equal", "less_than_equal", "greater_than"):
        return str(err["msg"]).lower()
    return str(err["msg"])
