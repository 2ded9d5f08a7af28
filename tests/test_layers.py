"""The layers hold by construction, not by hope: services know nothing of Telegram, nothing
parses a queued message's key, and the production package never imports the devkit.

The import rules are import-linter's contracts in pyproject.toml (``make lint`` runs them too);
what an import rule cannot see (a Bot API parameter written as a string) is looked for here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint)], cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 kept, 0 broken" in done.stdout


def test_no_service_writes_a_bot_api_payload() -> None:
    offenders = [
        f"{path.relative_to(PROJECT)}:{number}"
        for path in sorted((PROJECT / "bot" / "services").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        # The channel's name as a value (``via="telegram"``) is domain data, not a payload.
        if re.search(r"parse_mode|reply_markup|inline_keyboard|(?<![\"'])\btelegram\b", line)
    ]
    assert offenders == [], "services must return domain data, not Telegram payloads"


def test_no_code_reads_a_queued_messages_key() -> None:
    """``dedupe_key`` only makes enqueueing exactly-once; what a row is, is its kind and its
    references. (The migration that converted the old keys, once, is the one exception.)"""
    readers = [
        f"{path.relative_to(PROJECT)}:{number}"
        for folder in ("bot", "handlers", "devkit")
        for path in sorted((PROJECT / folder).rglob("*.py"))
        if "migrations" not in path.parts and path.name not in ("models.py", "outbox.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.dedupe_key|idempotency_key\b.*(startswith|split|removeprefix)", line)
    ]
    assert readers == []
