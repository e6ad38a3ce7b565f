"""HTTP surface: liveness, readiness, status and Prometheus metrics (SPEC §7)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from nexy.components import Registry, State
from nexy.metrics import Metrics, ProviderSource
from nexy.transport.http.updates import update_routes
from nexy.turn.tracker import TurnTracker
from nexy.updates import UpdateFeed
from nexy.version import version_info

SERVICE = "nexy-server"


@dataclass(slots=True)
class HttpContext:
    """What the handlers read; built by the application."""

    registry: Registry
    tracker: TurnTracker
    metrics: Metrics
    started: float
    providers: ProviderSource | None = None
    limits: dict[str, float | int] | None = None  # advertised so clients and tools can adapt
    updates: UpdateFeed | None = None
    grpc_port: int = 0
    http_port: int = 0
    accepting: bool = True


def build_http_app(ctx: HttpContext) -> web.Application:
    app = web.Application()
    routes = web.RouteTableDef()

    @routes.get("/health")
    async def health(_: web.Request) -> web.Response:
        info = version_info()
        return web.json_response(
            {
                "status": "OK",
                "service": SERVICE,
                "latest_version": info.version,
                "latest_build": info.build,
            }
        )

    @routes.get("/ready")
    async def ready(_: web.Request) -> web.Response:
        reasons = _not_ready(ctx)
        body = {"ready": not reasons, "reasons": reasons}
        return web.json_response(body, status=503 if reasons else 200)

    @routes.get("/status")
    async def status(_: web.Request) -> web.Response:
        return web.json_response(_status(ctx))

    @routes.get("/metrics")
    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=ctx.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app.add_routes(routes)
    if ctx.updates is not None:
        app.add_routes(update_routes(ctx.updates))
    return app


def _not_ready(ctx: HttpContext) -> list[str]:
    reasons = [] if ctx.accepting else ["shutting down"]
    for name, state in ctx.registry.status().items():
        if state.state is State.DOWN and ctx.registry.is_required(name):
            reasons.append(f"{name}: {state.reason or 'down'}")
    return reasons


def _status(ctx: HttpContext) -> dict[str, object]:
    info = version_info()
    components = {
        name: {"state": state.state.value, "reason": state.reason}
        for name, state in ctx.registry.status().items()
    }
    degraded = any(c["state"] != State.READY.value for c in components.values())
    return {
        "service": SERVICE,
        "status": "degraded" if degraded else "ok",
        "version": info.version,
        "build": info.build,
        "uptime_seconds": round(time.monotonic() - ctx.started, 3),
        "active_turns": ctx.tracker.active,
        "limits": ctx.limits or {"max_concurrent_turns": ctx.tracker.capacity},
        "components": components,
        "providers": {
            kind: [asdict(stats) for stats in members]
            for kind, members in (ctx.providers() if ctx.providers else {}).items()
        },
        "endpoints": {
            "grpc_port": ctx.grpc_port,
            "http_port": ctx.http_port,
            "http": ["/health", "/ready", "/status", "/metrics"]
            + (["/updates/health", "/updates/appcast.xml"] if ctx.updates else []),
        },
    }
