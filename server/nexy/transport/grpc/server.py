"""The gRPC server: the Nexy service, standard health checking and reflection."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from nexy.config import ServerSettings
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc
from nexy.transport.grpc.servicer import StreamingServicer

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["StreamingService"].full_name


def _options(settings: ServerSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.max_inbound_message_bytes),
        # The desktop client sends keepalive pings; accept them without a call in flight.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


class GrpcServer:
    """Owns the grpc.aio server and its health status."""

    def __init__(self, settings: ServerSettings, servicer: StreamingServicer) -> None:
        self._settings = settings
        self.server = grpc.aio.server(options=_options(settings))
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

    async def start(self, host: str, port: int) -> int:
        """Bind and start; returns the bound port (useful with port 0 in tests)."""
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {host}:{port}")
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
