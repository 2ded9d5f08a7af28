"""``python -m devkit.localapi``: run the local Bot API as its own process.

Only argument parsing lives here; the server is `devkit.localapi.server.run_forever`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from devkit.localapi.server import DEFAULT_TOKEN, DEFAULT_USERNAME, run_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.localapi",
        description="A local Telegram Bot API with a user side, for tests, benchmarks and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="port (0 picks a free one)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bot token to accept")
    parser.add_argument("--username", default=DEFAULT_USERNAME, help="the bot's @username")
    parser.add_argument(
        "--flood-limits", action="store_true", help="answer 429 when sends go over the limits"
    )
    parser.add_argument("--overall-per-second", type=int, default=30)
    parser.add_argument("--per-chat-per-second", type=int, default=1)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_forever(
                args.host,
                args.port,
                token=args.token,
                username=args.username,
                flood_limits=args.flood_limits,
                overall_per_second=args.overall_per_second,
                per_chat_per_second=args.per_chat_per_second,
            )
        )


if __name__ == "__main__":
    main()
