"""gRPC server interceptors: per-call log line, metrics and request id; exception → status;
bearer-token authentication and token → device binding.

Each interceptor rebuilds the method handler around the original behaviour instead of only
looking at the call details, so the final status and the duration of streaming calls are
known. Install them outermost first — logging, exceptions, auth — so the log line and metrics
see the statuses the other two produce.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc

from nexy.ids import canonical_device_id
from nexy.metrics import Metrics

log = logging.getLogger(__name__)

REQUEST_ID_KEY = "x-request-id"
INTERNAL_TEXT = "internal server error"
UNAUTHENTICATED_TEXT = "missing or invalid bearer token"
PERMISSION_DENIED_TEXT = "This token may not act for that device."
HEALTH_PREFIX = "grpc.health.v1.Health/"
# What a client may choose as its request id; anything else is replaced, so an id can neither
# break the log line nor smuggle data into it.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_SERIOUS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}

Metadata = Iterable[tuple[str, str | bytes]] | None
Around = Callable[[Any, grpc.aio.ServicerContext], AbstractAsyncContextManager[None]]

_FACTORIES: dict[tuple[bool, bool], Callable[..., Any]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


@dataclass(slots=True)
class CallInfo:
    """What the log line says about the call in progress (one per RPC task)."""

    method: str
    request_id: str
    device: str = "-"
    error: str | None = None  # exception type only: messages can carry prompts or paths


# Every RPC runs in its own task, so a value set here belongs to that call alone.
_CURRENT: ContextVar[CallInfo | None] = ContextVar("nexy_grpc_call", default=None)


def current_call() -> CallInfo | None:
    """The call being served by this task, for log lines elsewhere that want its request id."""
    return _CURRENT.get()


def hash_device(hardware_id: str) -> str:
    """A stable pseudonym: operators can find a known device's lines; logs never hold its id."""
    value = hardware_id.strip()
    if not value:
        return "-"
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def metadata_value(metadata: Metadata, key: str) -> str | None:
    for name, value in metadata or ():
        if name.lower() == key and isinstance(value, str):
            return value
    return None


def wrap_handler(handler: Any, around: Around) -> Any:
    """The same kind of method handler, with ``around(request, context)`` around its behaviour."""
    behavior = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    if handler.response_streaming and inspect.isasyncgenfunction(behavior):
        wrapped = _around_generator(behavior, around)
    elif inspect.iscoroutinefunction(behavior):
        # Unary handlers, and streaming ones using the reader/writer API (they return None).
        wrapped = _around_coroutine(behavior, around)
    else:
        return handler  # synchronous handlers run in an executor; none are registered here
    factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _around_coroutine(behavior: Callable[..., Any], around: Around) -> Callable[..., Any]:
    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with around(request, context):
            return await behavior(request, context)

    return call


def _around_generator(behavior: Callable[..., Any], around: Around) -> Callable[..., Any]:
    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async with around(request, context):
            async for response in behavior(request, context):
                yield response

    return stream


class LoggingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """One log line and the request metrics per call; the request id taken or made, echoed."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None  # unknown method: gRPC answers UNIMPLEMENTED itself
        method = str(details.method).lstrip("/")
        given = metadata_value(details.invocation_metadata, REQUEST_ID_KEY)
        request_id = given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        return wrap_handler(handler, partial(self._observe, method, request_id))

    @asynccontextmanager
    async def _observe(
        self, method: str, request_id: str, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[None]:
        hardware_id = getattr(request, "hardware_id", "")
        info = CallInfo(
            method, request_id, hash_device(hardware_id if isinstance(hardware_id, str) else "")
        )
        _CURRENT.set(info)
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        try:
            await context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
            yield
            code = context.code() or grpc.StatusCode.OK
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except (asyncio.CancelledError, GeneratorExit):
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:  # reached only without ExceptionInterceptor: gRPC sends UNKNOWN
            info.error = info.error or type(exc).__name__
            raise
        finally:
            self._finish(info, code, time.perf_counter() - started)

    def _finish(self, info: CallInfo, code: grpc.StatusCode, seconds: float) -> None:
        self._metrics.grpc_requests.labels(info.method, code.name).inc()
        self._metrics.grpc_seconds.labels(info.method).observe(seconds)
        if code in _SERIOUS:
            level = logging.ERROR
        elif info.method.startswith(HEALTH_PREFIX) and code == grpc.StatusCode.OK:
            level = logging.DEBUG  # probes every few seconds would drown the real traffic
        else:
            level = logging.INFO
        duration_ms = round(seconds * 1000, 1)
        log.log(
            level,
            "rpc method=%s code=%s duration_ms=%.1f request_id=%s device=%s%s",
            info.method,
            code.name,
            duration_ms,
            info.request_id,
            info.device,
            f" error={info.error}" if info.error else "",
            extra={
                "rpc_method": info.method,
                "rpc_code": code.name,
                "duration_ms": duration_ms,
                "request_id": info.request_id,
                "device_hash": info.device,
                "error_type": info.error,
            },
        )


class ExceptionInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """An exception escaping a handler ends the call INTERNAL with a generic message."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        return None if handler is None else wrap_handler(handler, _map_exceptions)


@asynccontextmanager
async def _map_exceptions(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    try:
        yield
    except grpc.aio.AbortError:
        raise  # a deliberate status from the handler (or the auth interceptor)
    except Exception as exc:  # the RPC boundary: without this gRPC sends UNKNOWN plus the text
        info = _CURRENT.get()
        if info is not None:
            info.error = type(exc).__name__
        else:
            log.error("unhandled %s in a gRPC handler", type(exc).__name__)
        await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_TEXT)


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Requires ``authorization: Bearer <token>`` on the given services; others stay open.

    ``tokens`` may act for any device. A token in ``bound`` may act only for its hardware ids
    (an empty list: any device): a call naming another device ends PERMISSION_DENIED, so a
    token taken from one device cannot read or erase another device's memory.
    """

    def __init__(
        self,
        tokens: Iterable[str],
        services: Collection[str],
        bound: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        grants: list[tuple[bytes, frozenset[str] | None]] = [
            (token.encode("utf-8"), None) for token in tokens if token
        ]
        for token, devices in (bound or {}).items():
            allowed = frozenset(canonical_device_id(device) for device in devices)
            if token:
                grants.append((token.encode("utf-8"), allowed or None))
        self._grants = grants
        self._services = frozenset(services)

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        service = str(details.method).lstrip("/").partition("/")[0]
        if handler is None or service not in self._services:
            return handler
        authorized, allowed = self.access(details.invocation_metadata)
        if not authorized:
            return _rejecting(handler)
        if allowed is None:
            return handler
        return wrap_handler(handler, partial(_only_devices, allowed))

    def authorized(self, metadata: Metadata) -> bool:
        """Whether the metadata carries any accepted token (bound or not)."""
        return bool(self._matching(metadata))

    def access(self, metadata: Metadata) -> tuple[bool, frozenset[str] | None]:
        """Whether a token was accepted, and the devices it may act for (None: any device).

        Public so that other transports (the web playground) decide exactly as gRPC does.
        """
        grants = self._matching(metadata)
        if not grants:
            return False, frozenset()
        if any(devices is None for devices in grants):
            return True, None
        return True, frozenset[str]().union(*(devices for devices in grants if devices))

    def _matching(self, metadata: Metadata) -> list[frozenset[str] | None]:
        """The device sets of the configured tokens equal to the given one (None: any device)."""
        header = metadata_value(metadata, "authorization")
        matches = token_matches(header, [token for token, _ in self._grants])
        return [devices for (_, devices), match in zip(self._grants, matches, strict=True) if match]


def token_matches(header: str | None, expected: Sequence[bytes]) -> list[bool]:
    """For each expected token, whether ``header`` is ``Bearer <that token>``."""
    scheme, _, token = (header or "").partition(" ")
    given = token.strip().encode("utf-8")
    if scheme.lower() != "bearer" or not given:
        return [False] * len(expected)
    # Compare with every token, not stopping at a match: the time taken says nothing.
    return [hmac.compare_digest(given, token) for token in expected]


@asynccontextmanager
async def _only_devices(
    allowed: frozenset[str], request: Any, context: grpc.aio.ServicerContext
) -> AsyncIterator[None]:
    hardware_id = getattr(request, "hardware_id", "")
    if isinstance(hardware_id, str) and not may_act_for(allowed, hardware_id):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, PERMISSION_DENIED_TEXT)
    yield


def may_act_for(allowed: frozenset[str] | None, hardware_id: str) -> bool:
    """Whether a token allowed ``allowed`` devices (None: any) may name ``hardware_id``."""
    # An empty id is left to the handler's validation (INVALID_ARGUMENT, as without auth).
    if allowed is None or not hardware_id.strip():
        return True
    return canonical_device_id(hardware_id) in allowed


def _rejecting(handler: Any) -> Any:
    async def reject(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_TEXT)

    factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(
        reject,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
