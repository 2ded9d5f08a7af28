"""Where the bot may send a clinic's webhook: the one policy, checked when a URL is set and
again when each request connects (``bot.channels.webhook`` resolves the name itself and
connects only to an address this allows, so a name that later resolves to an internal address
(DNS rebinding) gets nowhere).

Allowed: https to a public (globally routable, unicast) address. Private, loopback, link-local,
shared (100.64/10), multicast, reserved and unspecified addresses are refused unless a network
in ``WEBHOOK_ALLOWED_NETWORKS`` holds them (an on-premise call system). The demo and the tests
(no TELEGRAM_BOT_TOKEN) may also use http to this machine (loopback).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from bot.config import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
URL_MAX = 500  # ApiKey.webhook_url's column


class Refused(ValueError):
    """The URL or the address it resolves to is not allowed; the message says why (no secret
    in it: a URL is not one)."""


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (::ffff:10.0.0.1) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def allowed_networks(settings: Settings) -> list[Network]:
    """WEBHOOK_ALLOWED_NETWORKS, and in the demo (and tests) this machine."""
    networks: list[Network] = list(settings.webhook_allowed_networks)
    if settings.demo:
        networks += [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    return networks


def address_allowed(address: Address, networks: Sequence[Network]) -> bool:
    """Whether a webhook may connect to ``address``."""
    address = _plain(address)
    if any(address in network for network in networks if network.version == address.version):
        return True
    return address.is_global and not address.is_multicast and not address.is_reserved


def check_url(url: str, settings: Settings) -> tuple[str, int]:
    """The host and port of a webhook URL the settings allow (before DNS); raises ``Refused``."""
    url = url.strip()
    if len(url) > URL_MAX:
        raise Refused(f"it is longer than {URL_MAX} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise Refused("it must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise Refused("it must not carry a user name or password")
    if parts.fragment:
        raise Refused("it must not have a #fragment")
    host = parts.hostname
    if not host:
        raise Refused("it has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("its port is not a number from 1 to 65535") from None
    if parts.scheme == "http":
        loopback = _literal(host)
        if not (
            settings.demo
            and (host == "localhost" or (loopback is not None and _plain(loopback).is_loopback))
        ):
            raise Refused("it must be https:// (only the demo may use http:// to this machine)")
    literal = _literal(host)
    if literal is not None and not address_allowed(literal, allowed_networks(settings)):
        raise Refused(f"{literal} is not a public address (see WEBHOOK_ALLOWED_NETWORKS)")
    return host, port


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to now (an IP literal: itself)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Refused(f"the name {host} does not resolve") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_destination(url: str, settings: Settings) -> str:
    """Check a URL when it is set: its form, and every address its name resolves to now.
    The cleaned URL; raises ``Refused``."""
    host, port = check_url(url, settings)
    networks = allowed_networks(settings)
    addresses = await resolve(host, port)
    refused = [a for a in addresses if not address_allowed(a, networks)]
    if refused or not addresses:
        shown = ", ".join(str(a) for a in refused) or "nothing"
        raise Refused(
            f"{host} resolves to {shown}, not a public address (see WEBHOOK_ALLOWED_NETWORKS)"
        )
    return url.strip()
