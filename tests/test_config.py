"""Start-up configuration: a bad value stops start-up with one sentence naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_BASE_URL",
        "DATABASE_URL",
        "TIMEZONE",
        "ADMIN_USER_IDS",
        "SECRET_KEY",
        "DEFAULT_LOCALE",
        "PORT",
        "HOST",
        "SMS_PROVIDER",
        "SMS_HTTP_URL",
        "SMS_COUNTRIES",
        "SECRET_KEY_FALLBACKS",
        "PUBLIC_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_no_token_means_demo_on_sqlite_under_var() -> None:
    settings = load_settings()
    assert settings.demo
    assert settings.async_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.async_database_url.endswith("var/sikkerhetsnett.db")
    assert settings.timezone == "Europe/Oslo"
    assert settings.default_locale == "nb"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("TIMEZONE", "Oslo", "time zone name such as Europe/Oslo"),
        ("PORT", "eighty", "whole number"),
        ("ADMIN_USER_IDS", "123,kari", "numeric Telegram user ids"),
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "bot token"),
        ("DEFAULT_LOCALE", "en", "'nb' or 'nn'"),
        ("DATABASE_URL", "mysql://db/bot", "sqlite:/// or postgresql://"),
        ("TELEGRAM_API_BASE_URL", "localhost:8081", "http(s) URL"),
        ("SECRET_KEY", "short", "at least 32 characters"),
    ],
)
def test_malformed_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message
    assert words in message
    assert "\n" not in message
    if name in ("TELEGRAM_BOT_TOKEN", "SECRET_KEY"):
        assert value not in message  # secrets are never echoed


def test_token_without_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456789:" + "A" * 35)
    with pytest.raises(ConfigError, match="SECRET_KEY is missing"):
        load_settings()


def test_valid_production_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import startup_warnings

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456789:" + "A" * 35)
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("ADMIN_USER_IDS", "111, 222")
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:pw@localhost/bot")
    monkeypatch.setenv("SMS_PROVIDER", "http")
    monkeypatch.setenv("SMS_HTTP_URL", "https://sms.example.no/send")
    monkeypatch.setenv("PUBLIC_URL", "https://rad.legevakt.example.no/")
    settings = load_settings()
    assert not settings.demo
    assert settings.page_base == "https://rad.legevakt.example.no"
    assert settings.admin_user_ids == [111, 222]
    assert settings.async_database_url == "postgresql+psycopg://bot:pw@localhost/bot"
    assert settings.bind_host == "0.0.0.0"
    assert settings.sms_mode == "http"
    assert startup_warnings(settings) == []


PRODUCTION = {
    "TELEGRAM_BOT_TOKEN": "123456789:" + "A" * 35,
    "SECRET_KEY": "x" * 40,
    "DATABASE_URL": "postgresql://bot:pw@localhost/bot",
    "ADMIN_USER_IDS": "111",
    "PUBLIC_URL": "https://rad.legevakt.example.no",
}


def test_production_without_sms_provider_is_refused_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("The environment variable SMS_PROVIDER is missing")
    for choice in ("http", "none", "console"):
        assert f" {choice} (" in message


def test_production_without_database_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SMS_PROVIDER", "none")
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(ConfigError, match="DATABASE_URL is missing"):
        load_settings()
    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/bot/bot.db")  # explicit: allowed
    assert load_settings().database_url == "sqlite:////srv/bot/bot.db"


def test_console_sms_in_production_starts_with_a_loud_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.config import startup_warnings

    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SMS_PROVIDER", "console")
    settings = load_settings()
    assert settings.sms_mode == "console"
    [warning] = startup_warnings(settings)
    assert warning.startswith("SMS_PROVIDER=console: NO SMS IS SENT.")


def test_production_warns_about_no_admins_and_plain_http_to_other_machines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.config import startup_warnings

    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ADMIN_USER_IDS")
    monkeypatch.setenv("SMS_PROVIDER", "http")
    monkeypatch.setenv("SMS_HTTP_URL", "http://sms.example.no/send")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:8081/bot")  # this machine: fine
    warnings = startup_warnings(load_settings())
    assert [w.split(" ", 1)[0] for w in warnings] == ["ADMIN_USER_IDS", "SMS_HTTP_URL"]
    assert "(sms.example.no)" in warnings[1]


def test_the_demo_refuses_to_listen_beyond_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for host in ("0.0.0.0", "::", "192.168.1.20", "bot.example.no"):
        monkeypatch.setenv("HOST", host)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert "HOST" in str(caught.value) and "127.0.0.1" in str(caught.value)
    for host in ("127.0.0.1", "localhost", "::1"):
        monkeypatch.setenv("HOST", host)
        assert load_settings().bind_host == host
    for name, value in PRODUCTION.items():  # with a token, all interfaces is the deployment's
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SMS_PROVIDER", "none")
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert load_settings().bind_host == "0.0.0.0"


def test_the_demo_on_postgresql_warns_that_the_token_may_be_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.config import startup_warnings

    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:pw@db.example.no/bot")
    [warning] = startup_warnings(load_settings())
    assert "DEMO MODE on a PostgreSQL database" in warning


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("SMS_PROVIDER", "carrier-pigeon", "'console', 'http' or 'none'"),
        ("SMS_COUNTRIES", "NO,XX", "country codes"),
        ("SECRET_KEY_FALLBACKS", "short", "at least 32 characters"),
    ],
)
def test_new_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert name in str(caught.value) and words in str(caught.value)
    if name == "SECRET_KEY_FALLBACKS":
        assert value not in str(caught.value).split(":", 1)[1].replace("at least", "")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("rad.legevakt.no", "scheme and host only"),
        ("https://rad.legevakt.no/advice", "scheme and host only"),
        ("https://rad.legevakt.no/?x=1", "scheme and host only"),
        ("http://rad.legevakt.no", "must start with https://"),
        ("https://" + "r" * 93 + ".no", "at most 100 characters"),
    ],
)
def test_public_url_is_checked(monkeypatch: pytest.MonkeyPatch, value: str, words: str) -> None:
    monkeypatch.setenv("PUBLIC_URL", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "PUBLIC_URL" in str(caught.value) and words in str(caught.value)


def test_the_demo_serves_advice_pages_on_its_own_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8089")
    assert load_settings().page_base == "http://127.0.0.1:8089"
    monkeypatch.setenv("PUBLIC_URL", "http://localhost:8089/")  # this machine: http is fine
    assert load_settings().page_base == "http://localhost:8089"


def test_secret_key_fallbacks_read_after_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "n" * 40)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", "o" * 40 + ", " + "p" * 32)
    monkeypatch.setenv("SMS_COUNTRIES", "no, se")
    settings = load_settings()
    assert settings.secrets() == [b"n" * 40, b"o" * 40, b"p" * 32]
    assert settings.sms_countries == ["NO", "SE"]


def test_dotenv_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text("TIMEZONE=Europe/Berlin\nDEFAULT_LOCALE=nn\n")
    settings = load_settings()
    assert settings.timezone == "Europe/Berlin"
    assert settings.default_locale == "nn"


def test_cli_prints_one_sentence_and_no_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "db", "current"],
        env={"PATH": "/usr/bin:/bin", "TIMEZONE": "Mars/Olympus"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "The environment variable TIMEZONE is not valid: it must be a time zone name such as "
        "Europe/Oslo."
    ]
