"""The gRPC server: the Nexy service, standard health checking and reflection.

Calls pass through the interceptors (log line, metrics, request id; exception → INTERNAL;
optional bearer tokens for the Nexy service only — health and reflection stay open). With a
certificate and key configured the port speaks TLS.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from nexy.config import AuthSettings, LimitsSettings, ServerSettings, TLSSettings
from nexy.metrics import Metrics
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc
from nexy.transport.grpc.decode_guard import DecodeGuardInterceptor
from nexy.transport.grpc.interceptors import (
    BearerAuthInterceptor,
    ExceptionInterceptor,
    LoggingInterceptor,
)
from nexy.transport.grpc.servicer import StreamingServicer

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["StreamingService"].full_name
# Calls in flight beyond the turn limit by default: the short calls of the turns being served
# (COLLECT, InterruptSession, ReportUsage, greetings), health checks, and refusals on their way.
RPC_HEADROOM = 32


def rpc_limit(limits: LimitsSettings) -> int:
    """The replica's cap on calls in flight (``limits.max_concurrent_rpcs``, 0 = automatic).

    Beyond it grpc.aio answers ``RESOURCE_EXHAUSTED`` ("Concurrent RPC limit exceeded!") as soon
    as it accepts the call, without running the handler (so no log line or metric either): the
    cheapest refusal there is. Admission's STREAM_LIMIT_EXCEEDED, with its text, comes first;
    this cap answers only when calls pile up faster than their handlers finish (docs/SCALING.md).
    """
    return limits.max_concurrent_rpcs or limits.max_concurrent_turns + RPC_HEADROOM


def _options(settings: ServerSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.max_inbound_message_bytes),
        # The desktop client sends keepalive pings; accept them without a call in flight.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
        # gRPC turns SO_REUSEPORT on by default: a second server on a busy port would start
        # fine and silently take half the connections.
        ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
    ]


def server_credentials(tls: TLSSettings) -> Any:
    """``grpc.ssl_server_credentials`` for the configured files, or None when TLS is off."""
    if tls.cert_file is None and tls.key_file is None:
        return None
    if tls.cert_file is None or tls.key_file is None:
        raise ValueError("tls.cert_file and tls.key_file must be set together")
    try:
        chain, key = tls.cert_file.read_bytes(), tls.key_file.read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials([(key, chain)])


def _interceptors(metrics: Metrics, auth: AuthSettings | None) -> list[Any]:
    # Outermost first: the log line and metrics must see what the inner two decide.
    chain: list[Any] = [LoggingInterceptor(metrics), ExceptionInterceptor()]
    if auth is not None and auth.enabled:
        chain.append(auth_interceptor(auth))
    chain.append(DecodeGuardInterceptor())  # innermost: refused only after authentication
    return chain


def auth_interceptor(auth: AuthSettings) -> BearerAuthInterceptor:
    """The bearer-token check for the configured tokens (the playground reuses it)."""
    tokens = [token.get_secret_value() for token in auth.tokens]
    bound = {client.token.get_secret_value(): client.hardware_ids for client in auth.clients}
    if not any(tokens) and not any(bound):
        log.warning("auth is enabled but no token is configured: every call is refused")
    return BearerAuthInterceptor(tokens, {SERVICE_NAME}, bound)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve to any interface


class GrpcServer:
    """Owns the grpc.aio server and its health status.

    ``metrics`` should be the application's (a private registry is used without it, which
    /metrics does not show); ``auth`` and ``tls`` are off when omitted, and so is the cap on
    calls in flight without ``max_concurrent_rpcs`` (see ``rpc_limit``).
    """

    def __init__(
        self,
        settings: ServerSettings,
        servicer: StreamingServicer,
        *,
        metrics: Metrics | None = None,
        auth: AuthSettings | None = None,
        tls: TLSSettings | None = None,
        max_concurrent_rpcs: int | None = None,
    ) -> None:
        self._settings = settings
        self._open = auth is None or not auth.enabled
        self.metrics = metrics or Metrics()
        # Read the files now: a bad path fails at construction, before anything is started.
        self._credentials = server_credentials(tls) if tls is not None else None
        self.server = grpc.aio.server(
            options=_options(settings),
            interceptors=_interceptors(self.metrics, auth),
            maximum_concurrent_rpcs=max_concurrent_rpcs,
        )
        pb_grpc.add_StreamingServiceServicer_to_server(servicer, self.server)  # type: ignore[no-untyped-call]
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self.server,
        )
        self.port = 0

    @property
    def tls(self) -> bool:
        return self._credentials is not None

    async def start(self, host: str, port: int) -> int:
        """Bind and start; returns the bound port (useful with port 0 in tests)."""
        address = f"{host}:{port}"
        try:
            if self._credentials is not None:
                self.port = self.server.add_secure_port(address, self._credentials)
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError:  # newer grpcio raises where older ones returned 0
            self.port = 0
        if self.port == 0:
            raise OSError(
                f"cannot bind gRPC to {address}: the port is in use (another server?) or the "
                "address is not on this machine; set server.reuse_port only to share it on purpose"
            )
        if self._open and not is_loopback(host):
            log.warning(
                "gRPC listens on %s without authentication: anyone who reaches the port can "
                "read and erase any device's memory by sending its hardware_id; enable auth "
                "(auth.enabled, auth.clients) and TLS, see docs/OPERATIONS.md, Threat model",
                address,
            )
        await self.server.start()
        await self.set_serving(True)
        return self.port

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)
