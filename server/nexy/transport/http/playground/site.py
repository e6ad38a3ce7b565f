"""What the playground is built from, when it is on, and who may use it.

The checks are the gRPC ones: the same bearer tokens and device bindings (the auth
interceptor's own decision), the same validation of device ids. Two more guard the browser's
side: a page from another site must not drive the endpoints (Origin), and on a loopback server
a foreign host name pointing at 127.0.0.1 (DNS rebinding) must not reach them either (Host).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import grpc
from aiohttp import web

from nexy.config import Settings
from nexy.memory.service import MemoryService
from nexy.transport.grpc.interceptors import (
    PERMISSION_DENIED_TEXT,
    UNAUTHENTICATED_TEXT,
    BearerAuthInterceptor,
    may_act_for,
)
from nexy.transport.grpc.server import auth_interceptor, is_loopback
from nexy.transport.grpc.servicer import StreamingServicer

FOREIGN_PAGE_TEXT = "the playground answers only its own page (Origin and Host must match)"


class Refused(Exception):
    """A request the playground will not serve; ``code`` is the gRPC status it would get."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def playground_enabled(switch: str, host: str) -> bool:
    """``server.playground``: on, off, or auto (on only when the server binds a loopback host)."""
    if switch == "auto":
        return is_loopback(host)
    return switch == "on"


@dataclass(slots=True)
class Playground:
    """The application's pieces the playground uses; built once the bound host is known."""

    servicer: StreamingServicer
    memory: MemoryService
    settings: Settings
    host: str  # the address the server binds
    auth: BearerAuthInterceptor | None = field(init=False)

    def __post_init__(self) -> None:
        enabled = self.settings.auth.enabled
        self.auth = auth_interceptor(self.settings.auth) if enabled else None

    def check_page(self, request: web.Request) -> None:
        """Refuse requests made by another site's page, or through a rebinding host name."""
        origin = request.headers.get("Origin")
        # Browsers always send Origin on WebSocket and POST; tools (curl, aiohttp) do not.
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, FOREIGN_PAGE_TEXT)
        if is_loopback(self.host) and not is_loopback(_host_name(request.host)):
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, FOREIGN_PAGE_TEXT)

    def check_token(self, request: web.Request, token: object, hardware_id: str) -> None:
        """The gRPC auth decision for this device: an ``Authorization`` header or ``token``.

        Browsers cannot set headers on a WebSocket, so the turn's first message may carry the
        token instead; the header wins when both are given.
        """
        if self.auth is None:
            return
        header = request.headers.get("Authorization")
        if header is None and isinstance(token, str) and token:
            header = f"Bearer {token}"
        authorized, allowed = self.auth.access((("authorization", header or ""),))
        if not authorized:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_TEXT)
        if not may_act_for(allowed, hardware_id):
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, PERMISSION_DENIED_TEXT)


def _host_name(host_header: str) -> str:
    """ "localhost:8080" → "localhost", "[::1]:8080" → "::1"."""
    return urlsplit(f"//{host_header}").hostname or ""
