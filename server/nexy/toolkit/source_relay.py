"""A local TCP relay whose upstream sockets leave from another loopback address.

Servers with per-address caps (``limits.max_turns_per_address``) tell clients apart by their
source IP. gRPC Python cannot bind a client's source address, and a connection *to* 127.0.0.2
still leaves from 127.0.0.1 on Linux, so the abuse tools (``slow_readers.py`` for its slow
streams, ``fuzz_smoke.py`` for its canary) connect to this relay on 127.0.0.1 instead; it
opens the real connection bound to ``source``. Loopback IPv4 only: the whole 127.0.0.0/8 is
local on Linux, nothing needs configuring.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

from nexy.toolkit.connection import Target


def relay_possible(upstream_host: str, source: str) -> bool:
    """Whether a socket bound to ``source`` can reach the host (same address family)."""
    try:
        upstream = ipaddress.ip_address(upstream_host.strip("[]"))
    except ValueError:
        return upstream_host == "localhost"  # resolves to 127.0.0.1 as well as to ::1
    return upstream.version == ipaddress.ip_address(source).version


class SourceRelay:
    """Forwards 127.0.0.1:<port> to the server from sockets bound to ``source``."""

    def __init__(self, upstream: Target, source: str) -> None:
        self.upstream, self.source = upstream, source
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def target(self) -> Target:
        """Start the relay; the upstream target with the relay's port."""
        return self.upstream.with_port(await self.start())

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream.host, self.upstream.port, local_addr=(self.source, 0)
            )
        except OSError:
            writer.close()
            return
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()  # backpressure: a slow reader slows the server, as it would
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
