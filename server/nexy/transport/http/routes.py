"""HTTP surface: liveness, readiness, status and Prometheus metrics (SPEC §7)."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from nexy.components import Registry, State
from nexy.metrics import Metrics, ProviderSource
from nexy.transport.grpc.interceptors import token_matches
from nexy.transport.http.updates import update_routes
from nexy.turn.tracker import TurnTracker
from nexy.updates import UpdateFeed
from nexy.version import version_info

SERVICE = "nexy-server"
REDACTED = "<redacted>"
# Where a component's reason may name the infrastructure (database, Redis, provider hosts):
# URLs and DSNs, ('host', port) from socket errors, [v6]:port, IPv4[:port], host:port, "port N".
_ADDRESS = re.compile(
    r"[a-z][a-z0-9+.-]*://\S+"
    r"|\(\s*'[^']*'\s*,\s*\d+\s*\)"
    r"|\[[0-9a-f:.]+\](?::\d+)?"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
    r"|\b[\w.-]+:\d{2,5}\b"
    r"|\bport \d+",
    re.IGNORECASE,
)


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
    # Bearer tokens that may see unredacted reasons on /status; None: auth is off.
    operator_tokens: tuple[bytes, ...] | None = None
    hidden_names: tuple[str, ...] = field(default=())  # configured hosts, redacted by name
    playground: bool = False  # the web playground's routes are mounted (listed below)


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
    async def status(request: web.Request) -> web.Response:
        return web.json_response(_status(ctx, _operator(ctx, request)))

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
    """Why this replica cannot serve a turn now; empty when it can.

    A turn needs a model, a voice and a local queue for its records. Anything else (the
    database behind the outbox, Redis, memory, the update feed, open circuit breakers that
    close again by themselves) only degrades turns: it shows in /status and /metrics, as a
    503 here would take every replica out of the load balancer at once.
    """
    reasons = [] if ctx.accepting else ["shutting down"]
    chains = ctx.providers() if ctx.providers else {}
    statuses = ctx.registry.status()
    for kind in ("llm", "tts"):
        members = chains.get(kind)
        if members is not None:
            if all(member.state == State.DOWN.value for member in members):
                reasons.append(f"{kind}: no provider is usable")
        elif kind in statuses and statuses[kind].state is State.DOWN:
            reasons.append(f"{kind}: {statuses[kind].reason or 'down'}")
    outbox = statuses.get("outbox")
    if outbox is not None and outbox.state is State.DOWN:
        reasons.append(f"outbox: {outbox.reason or 'down'}")
    return [_redact(ctx, reason) for reason in reasons]


def _operator(ctx: HttpContext, request: web.Request) -> bool:
    """Whether the caller proved to be an operator (auth on and an unbound token given)."""
    if not ctx.operator_tokens:
        return False
    header = request.headers.get("Authorization")
    return any(token_matches(header, ctx.operator_tokens))


def _redact(ctx: HttpContext, text: str) -> str:
    """``text`` without addresses: unauthenticated callers learn states, not the network."""
    for name in ctx.hidden_names:
        text = text.replace(name, REDACTED)
    return _ADDRESS.sub(REDACTED, text)


def _status(ctx: HttpContext, details: bool) -> dict[str, object]:
    info = version_info()

    def shown(text: str) -> str:
        return text if details else _redact(ctx, text)

    components = {
        name: {"state": state.state.value, "reason": shown(state.reason)}
        for name, state in ctx.registry.status().items()
    }
    degraded = any(c["state"] != State.READY.value for c in components.values())
    providers = ctx.providers() if ctx.providers else {}
    return {
        "service": SERVICE,
        "status": "degraded" if degraded else "ok",
        "version": info.version,
        "build": info.build,
        "uptime_seconds": round(time.monotonic() - ctx.started, 3),
        "active_turns": ctx.tracker.active,
        "limits": ctx.limits or {"max_concurrent_turns": ctx.tracker.capacity},
        "components": components,
        "details_redacted": not details,
        "providers": {
            kind: [{**asdict(s), "last_error": shown(s.last_error)} for s in members]
            for kind, members in providers.items()
        },
        "endpoints": {
            "grpc_port": ctx.grpc_port,
            "http_port": ctx.http_port,
            "http": ["/health", "/ready", "/status", "/metrics"]
            + (["/updates/health", "/updates/appcast.xml"] if ctx.updates else [])
            + (["/playground"] if ctx.playground else []),
        },
    }
