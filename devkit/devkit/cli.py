"""``python -m devkit chat | localapi``: talk to the demo bot in a terminal, or run the local
Bot API on its own. Errors are one plain sentence and a non-zero exit code.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, NoReturn

import click

from bot.config import ConfigError, Settings, load_settings


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        _fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Sikkerhetsnett's development kit: the local Bot API and the demo."""


@main.command()
@click.option(
    "--url",
    default=None,
    help="The local Bot API's root  [default: http://127.0.0.1:<LOCAL_BOT_API_PORT>]",
)
@click.option("--user-id", default=1001, show_default=True, help="Your Telegram user id.")
@click.option("--name", default="Kari", show_default=True, help="Your first name.")
@click.option("--language", default="nb", show_default=True, help="Your Telegram language.")
def chat(url: str | None, user_id: int, name: str, language: str) -> None:
    """Chat with the demo bot in the terminal, as a person on the local Bot API.

    Start the demo first (`make run`); type text or /commands, a number presses a button,
    and a pasted https://t.me/…?start=… link opens it as tapping it would.

    \b
    Example:
        python -m devkit chat
        python -m devkit chat --user-id 1002 --name Ola --language nn
    """
    import aiohttp

    from devkit.localapi import LocalUser

    if url is None:
        url = f"http://127.0.0.1:{_settings().local_bot_api_port}"

    async def talk() -> None:
        buttons: dict[int, list[Any]] = {}  # message_id -> its buttons, flat

        def show(replies: list[Any]) -> None:
            for message in replies:
                prefix = "(edited) " if message.edited else ""
                click.echo(f"bot> {prefix}{message.text or message.caption or '<file>'}")
                flat = [button for row in message.buttons for button in row]
                buttons[message.message_id] = flat
                if flat:
                    click.echo("".join(f"   [{n}] {b.text}" for n, b in enumerate(flat, 1)))

        async with LocalUser(url, user_id, name, language) as user:
            click.echo("Type text or /commands, a number presses a button, /quit ends.")
            while True:
                try:
                    line = (await asyncio.to_thread(input, "you> ")).strip()
                except EOFError:
                    break
                if line == "/quit":
                    break
                if not line:
                    continue
                if line.startswith("https://t.me/") and "?start=" in line:
                    line = "/start " + line.split("?start=", 1)[1]  # a link from an SMS
                try:
                    if line.isdigit():
                        with_buttons = [m for m, flat in buttons.items() if flat]
                        if not with_buttons:
                            click.echo("bot> (no buttons to press)")
                            continue
                        message_id = max(with_buttons)
                        flat = buttons[message_id]
                        number = int(line)
                        if not 1 <= number <= len(flat):
                            click.echo(f"bot> (no button {number}; there are {len(flat)})")
                            continue
                        button = flat[number - 1]
                        if button.callback_data is None:
                            click.echo(f"bot> (that button opens {button.url})")
                            continue
                        replies = await user.presses(
                            callback_data=button.callback_data, message_id=message_id
                        )
                    else:
                        replies = await user.says(line)
                except AssertionError:
                    click.echo("bot> (no answer)")
                    continue
                show(replies)

    try:
        asyncio.run(talk())
    except aiohttp.ClientConnectorError:
        _fail(f"No demo bot answers at {url}; start it first with `make run`.")
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=int,
    default=None,
    help="Port to listen on  [default: LOCAL_BOT_API_PORT]",
)
@click.option(
    "--flood-limits/--no-flood-limits",
    default=False,
    show_default=True,
    help="Answer too many sends with 429, as Telegram does.",
)
def localapi(host: str, port: int | None, flood_limits: bool) -> None:
    """Run the local Bot API (a stand-in for Telegram) on its own, until Ctrl-C.

    \b
    Example:
        python -m devkit localapi --port 8081 --flood-limits
    """
    from devkit.localapi.server import run_forever

    if port is None:
        port = _settings().local_bot_api_port
    try:
        asyncio.run(run_forever(host, port, flood_limits=flood_limits))
    except OSError as exc:
        _fail(f"The local Bot API cannot start: {exc.strerror or exc}", 1)
