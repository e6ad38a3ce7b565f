"""Where the checks connect: gRPC channels and HTTP URLs, plaintext locally, TLS on 443.

Production runs behind TLS on port 443 (gRPC and HTTPS share it); a local server speaks plain
h2c on 50051 and HTTP on 8080. :func:`target` encodes that rule once so every script agrees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import grpc

from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, failed, passed

TLS_PORT = 443
DEFAULT_GRPC_PORT = 50051
DEFAULT_HTTP_PORT = 8080
DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint: host, port, whether it speaks TLS, and the per-call timeout in seconds."""

    host: str
    port: int
    tls: bool
    timeout: float = DEFAULT_TIMEOUT

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def with_port(self, port: int) -> Target:
        return replace(self, port=port)

    def channel(self, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
        """A new gRPC channel (the caller closes it); TLS uses the system's root certificates."""
        if self.tls:
            credentials = grpc.ssl_channel_credentials()
            return grpc.aio.secure_channel(self.address, credentials, options=list(options))
        return grpc.aio.insecure_channel(self.address, options=list(options))

    def url(self, path: str) -> str:
        scheme = "https" if self.tls else "http"
        default = TLS_PORT if self.tls else 80
        netloc = self.host if self.port == default else self.address
        return f"{scheme}://{netloc}{path}"


def target(
    host: str, port: int, tls: bool | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Target:
    """The endpoint at ``host:port``: TLS when asked, or by default when the port is 443."""
    return Target(host, port, port == TLS_PORT if tls is None else tls, timeout)


def http_target(grpc_target: Target, http_port: int | None = None) -> Target:
    """The HTTP side of a gRPC target: behind TLS both share 443, locally HTTP is on 8080."""
    if http_port is None:
        http_port = TLS_PORT if grpc_target.tls else DEFAULT_HTTP_PORT
    return grpc_target.with_port(http_port)


async def wait_connected(grpc_target: Target, wait_s: float | None = None) -> str | None:
    """None once a channel to the target is READY, else why not (for the exit-code-2 path).

    Connecting gets at most 10 s even with a long call timeout: a closed port or a wrong host
    should be reported quickly, not after a full turn's worth of waiting.
    """
    limit = wait_s or min(grpc_target.timeout, CONNECT_TIMEOUT)
    refused = await port_open(grpc_target.host, grpc_target.port, limit)
    if refused is not None:
        return refused  # nothing listens: no point letting gRPC retry until the timeout
    channel = grpc_target.channel()
    try:
        await asyncio.wait_for(channel.channel_ready(), limit)
        return None
    except TimeoutError:
        return say(f"no answer within {limit:.0f} s", f"нет ответа за {limit:.0f} с")
    finally:
        await channel.close()


async def connect_check(grpc_target: Target) -> Check:
    """``✅ Connected to host:port`` (or why not)."""
    reason = await wait_connected(grpc_target)
    address = grpc_target.address
    if reason is None:
        return passed(
            "connect", say(f"Connected to {address}", f"Подключение к {address} установлено")
        )
    return failed(
        "connect",
        say(
            f"Cannot connect to {address}: {reason}",
            f"Не удалось подключиться к {address}: {reason}",
        ),
    )


async def port_open(host: str, port: int, wait_s: float = 3.0) -> str | None:
    """None when a TCP connection to host:port succeeds, else the reason."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait_s)
    except (OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}".rstrip(": ")
    writer.close()
    with contextlib.suppress(OSError):  # the connection worked; how it closes does not matter
        await writer.wait_closed()
    return None


def closed_port(host: str) -> int:
    """A port nothing listens on: a just-released ephemeral port locally, else port 1.

    Port 1 (tcpmux) is almost never served; a firewall that drops instead of refusing turns
    the expected UNAVAILABLE into a timeout, which the caller reports as such.
    """
    if host not in ("localhost", "127.0.0.1", "::1"):
        return 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class HttpReply:
    """Status and body of one GET; ``data`` is the parsed JSON or None."""

    status: int
    text: str
    data: Any = None

    @property
    def is_json(self) -> bool:
        return self.data is not None


async def http_get(http: Target, path: str) -> HttpReply:
    """GET a path; network errors propagate (callers turn them into failed checks)."""
    timeout = aiohttp.ClientTimeout(total=http.timeout)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(http.url(path)) as response,
    ):
        text = await response.text()
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = None
        return HttpReply(response.status, text, data)


def new_device() -> str:
    """A fresh device id shaped like the desktop client's (upper-case UUID).

    Every check uses its own device so per-device limits from one check never bleed into
    another (a burst test would otherwise rate-limit the next script's turns).
    """
    return str(uuid.uuid4()).upper()


def new_session() -> str:
    return str(uuid.uuid4())
