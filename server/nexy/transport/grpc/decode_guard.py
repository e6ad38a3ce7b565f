"""A request the server cannot decode ends INVALID_ARGUMENT with a plain message.

gRPC decodes a request before any interceptor's behaviour runs. When the decoder raises (garbage
bytes, invalid UTF-8 in a string field) gRPC itself ends the call UNKNOWN, with the exception's
class name and text in the details, and the logging interceptor never sees the call. Here the
decoder returns a marker instead, and the handler refuses the marker: the client gets a plain
sentence, and the log line and metrics show INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from nexy.transport.grpc.interceptors import current_call, wrap_handler

UNDECODABLE_TEXT = "the request could not be decoded"


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Stands in for a request whose bytes did not decode."""

    error: str  # exception type only, for the log line


def guarded(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserializer`` that returns ``Undecodable`` rather than raising."""

    def decode(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception as exc:  # the wire boundary: whatever fails to decode is the client's
            return Undecodable(type(exc).__name__)

    return decode


class DecodeGuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Install innermost, after authentication: an unauthenticated caller learns nothing."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        # A request stream hands the handler an iterator, not one request: nothing to refuse
        # up front. Every Nexy RPC takes a single request.
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        safe = handler._replace(request_deserializer=guarded(handler.request_deserializer))
        wrapped = wrap_handler(safe, _refuse_undecodable)
        # wrap_handler leaves synchronous handlers as they are; those keep the original decoder.
        return handler if wrapped is safe else wrapped


@asynccontextmanager
async def _refuse_undecodable(
    request: Any, context: grpc.aio.ServicerContext
) -> AsyncIterator[None]:
    if isinstance(request, Undecodable):
        info = current_call()
        if info is not None:
            info.error = request.error
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE_TEXT)
    yield
