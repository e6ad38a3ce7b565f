"""A deadline for HTTP request headers: slow clients cannot hold connections open for ever.

aiohttp has a keep-alive timeout for idle connections but none for a request in progress, so a
client sending its headers one byte at a time (slowloris) would keep a connection, and its
file descriptor, as long as it likes. Each connection here is wrapped in a protocol that
closes it when a request's headers have not fully arrived within the deadline, counted from
the connection's start and then from the first byte of each further request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)

_END_OF_HEADERS = b"\r\n\r\n"
# An idle keep-alive connection (no request in progress) is closed after this many seconds;
# aiohttp's own default is an hour.
KEEPALIVE_SECONDS = 75.0


class HeaderDeadline(asyncio.Protocol):
    """Forwards to aiohttp's protocol; closes the connection if headers arrive too slowly."""

    def __init__(
        self, inner: asyncio.Protocol, timeout: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._inner = inner
        self._timeout = timeout
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, to find a header end split across reads
        self._upgraded = False  # a WebSocket now: its frames are not requests

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._arm()
        self._inner.connection_made(transport)

    def upgraded(self) -> None:
        """Stop watching: the connection now carries WebSocket frames, which its handler bounds."""
        self._upgraded = True
        self._disarm()

    def data_received(self, data: bytes) -> None:
        if self._upgraded:
            self._inner.data_received(data)
            return
        if self._timer is None:
            self._arm()  # the first byte of the next request on a kept-alive connection
        seen = self._tail + data
        if _END_OF_HEADERS in seen:
            self._disarm()
            # Bytes after the header end belong to the next request (or a body).
            rest = seen.rsplit(_END_OF_HEADERS, 1)[1]
            if rest:
                self._arm()
            self._tail = rest[-3:]
        else:
            self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _arm(self) -> None:
        self._tail = b""
        self._timer = self._loop.call_later(self._timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            log.debug("closing an HTTP connection whose request did not arrive in time")
            self._transport.abort()


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections must deliver each request's headers within ``timeout``."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        timeout: float,
        ssl_context: object | None = None,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)  # type: ignore[arg-type]
        self._header_timeout = timeout

    async def start(self) -> None:
        """Listen like TCPSite, with each connection's protocol wrapped in a HeaderDeadline."""
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            self._factory(server, loop),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port

    def _factory(
        self, server: Callable[[], asyncio.Protocol], loop: asyncio.AbstractEventLoop
    ) -> Callable[[], asyncio.Protocol]:
        return lambda: HeaderDeadline(server(), self._header_timeout, loop)
