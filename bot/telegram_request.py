"""python-telegram-bot's HTTP requests over aiohttp, with JSON bodies.

PTB's own ``HTTPXRequest`` posts every Bot API call as a url-encoded form: each parameter is
JSON-encoded on its own and then percent-encoded character by character (a long advice text in
Norwegian is mostly ``%C3%A5``-style escapes), and each call goes through httpx, httpcore, anyio
and h11. The Bot API takes ``application/json`` bodies as well (https://core.telegram.org/bots/api
#making-requests); this class posts the parameters as one JSON object, and multipart/form-data
only when a call uploads files, through aiohttp, which the bot already uses for its web server
and the clinics' webhooks.

What PTB expects of a request class is kept: ``do_request`` returns (status, body) and raises
``TimedOut`` for a timeout and ``NetworkError`` for a connection failure; PTB's
``BaseRequest._request_wrapper`` turns statuses into ``RetryAfter``, ``Forbidden``,
``BadRequest`` … as before.

Timeouts, as HTTPXRequest's: ``connect_timeout`` to open a connection, ``pool_timeout`` more to
wait for a free one in a full pool, ``read_timeout`` between bytes of the answer (None: no
limit). aiohttp has no timeout for writing a request on its own; the read timeout runs from the
moment the request is handed to the connection, so a write that stalls ends as ``TimedOut``
after ``read_timeout`` (after ``media_write_timeout``, if longer, for an upload).
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A Bot API connection pool of ``connection_pool_size`` connections (see module doc)."""

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_ssl",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    def _open(self) -> aiohttp.ClientSession:
        """The session, made in the running loop on first use (aiohttp wants a loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size,
                ssl=self._ssl if self._ssl is not None else True,
                keepalive_timeout=5.0,  # httpx's default keep-alive expiry
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                # Each call's own timeouts are passed with it.
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def initialize(self) -> None:
        self._open()

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See :meth:`BaseRequest.do_request`."""
        files = request_data is not None and request_data.contains_files
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        write = (
            (self._media_write_timeout if files else self._write_timeout)
            if isinstance(write_timeout, DefaultValue)
            else write_timeout
        )
        connect = (
            self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        )
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        if files and read is not None:
            read = None if write is None else max(read, write)
        timeout = aiohttp.ClientTimeout(
            total=None,
            # aiohttp's ``connect``: waiting for a free connection and opening one.
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        body: Any = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if files:
                body = _multipart(request_data)
            else:
                body = json.dumps(request_data.parameters).encode()
                headers = _JSON
        try:
            async with self._open().request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as err:
            raise TimedOut(
                "Timed out getting or opening a connection: the pool may be full. The request "
                "was *not* sent to Telegram."
            ) from err
        except TimeoutError as err:  # aiohttp.ServerTimeoutError is one too
            raise TimedOut from err
        except aiohttp.ClientConnectorError as err:
            # Names host and port only; the path, which holds the bot's token, is not in it.
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
        except aiohttp.ClientError as err:
            # The class's name only: some of aiohttp's errors quote the whole URL, and the
            # URL's path holds the bot's token (logs mask tokens too; this is the first line).
            raise NetworkError(f"aiohttp.{type(err).__name__}") from err


def _multipart(request_data: RequestData) -> aiohttp.FormData:
    """A call with files: each parameter as a form field (PTB's JSON encoding of each value,
    as Telegram expects in a form), each file as a part of its own."""
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (file_name, content, mime_type) in request_data.multipart_data.items():
        form.add_field(name, content, filename=file_name, content_type=mime_type)
    return form
