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
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456789:" + "A" * 35)
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("ADMIN_USER_IDS", "111, 222")
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:pw@localhost/bot")
    settings = load_settings()
    assert not settings.demo
    assert settings.admin_user_ids == [111, 222]
    assert settings.async_database_url == "postgresql+psycopg://bot:pw@localhost/bot"
    assert settings.bind_host == "0.0.0.0"


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
