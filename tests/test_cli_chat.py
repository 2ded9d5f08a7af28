"""`python -m devkit chat`: a person chatting with the real bot over the local Bot API."""

from __future__ import annotations

import asyncio
import sys

from bot.app import RunningBot
from devkit.localapi import LocalBotApi


async def _run_chat(*args: str, lines: list[str], pause: float = 1.5) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devkit",
        "chat",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    await asyncio.sleep(pause)
    for line in lines:
        if process.returncode is not None:
            break
        process.stdin.write(f"{line}\n".encode())
        await process.stdin.drain()
        await asyncio.sleep(pause)
    if process.returncode is None:
        process.stdin.close()
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_chat_shows_buttons_and_presses_them_by_number(
    bot: RunningBot, local_api: LocalBotApi
) -> None:
    code, out, err = await _run_chat(
        "--url", local_api.url, "--user-id", "7001", lines=["/language", "1", "/quit"]
    )
    assert code == 0, err
    assert "bot> Hvilket språk vil du ha?" in out
    assert "[1] Bokmål   [2] Nynorsk" in out
    assert "bot> (edited) Fra nå av skriver jeg bokmål." in out


async def test_chat_without_a_local_api_says_to_start_it() -> None:
    code, _out, err = await _run_chat("--url", "http://127.0.0.1:9", lines=[], pause=0.5)
    assert code == 2
    assert "No demo bot answers at http://127.0.0.1:9; start it first with `make run`." in err
