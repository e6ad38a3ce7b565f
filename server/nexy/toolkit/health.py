"""``check_grpc_health.py``: the HTTP surface, version agreement and reachable ports.

``/updates/health`` answering 404 means this deployment serves no update feed (it is optional:
``updates.enabled: false``, or the feed lives elsewhere). That is reported as a skip, not a
failure, unless ``require_updates`` is set; any other non-200 answer is a failure.
"""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc

from nexy.toolkit.connection import HttpReply, Target, http_get, port_open
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, failed, passed, skipped, verdict

SERVICE = "streaming.StreamingService"
# Which keys carry the version and build on each surface (the feed names them server_*).
_VERSION_KEYS = ("latest_version", "server_version", "version")
_BUILD_KEYS = ("latest_build", "server_build", "build")


def _first(data: Any, keys: tuple[str, ...]) -> Any:
    if not isinstance(data, dict):
        return None
    return next((data[key] for key in keys if key in data), None)


def _versions(reply: HttpReply | None) -> tuple[Any, Any] | None:
    if reply is None or reply.status != 200:
        return None
    return _first(reply.data, _VERSION_KEYS), _first(reply.data, _BUILD_KEYS)


async def _get(report: Report, http: Target, path: str) -> HttpReply | None:
    """GET or record a failed check (the endpoint cannot be reached at all)."""
    try:
        return await http_get(http, path)
    except Exception as exc:  # network error: this endpoint fails, the others still run
        error = f"{type(exc).__name__}: {exc}"
        detail = say(f"{path} unreachable: {error}", f"{path} недоступен: {error}")
        report.add(failed(f"health.get{path}", detail))
        return None


def _health_checks(reply: HttpReply) -> list[Check]:
    checks = [
        verdict(
            "health.health_http",
            reply.status == 200,
            say("Health endpoint reachable: HTTP 200", "Health endpoint доступен: HTTP 200"),
            f"Health endpoint: HTTP {reply.status}",
        )
    ]
    version, build = _first(reply.data, _VERSION_KEYS[:1]), _first(reply.data, _BUILD_KEYS[:1])
    ok = isinstance(version, str) and isinstance(build, str) and bool(version and build)
    checks.append(
        verdict(
            "health.versions_present",
            ok,
            say(
                f"Health carries versions: {version} (build {build})",
                f"Health содержит версии: {version} (сборка {build})",
            ),
            say(
                f"Health: latest_version/latest_build must be strings, got {version!r}/{build!r}",
                "Health: latest_version/latest_build должны быть строками, получено "
                f"{version!r}/{build!r}",
            ),
        )
    )
    # The reference server's monitoring compares the two and alarms when they differ.
    checks.append(
        verdict(
            "health.build_is_version",
            ok and build == version,
            say(
                "Health: latest_build equals latest_version",
                "Health: latest_build совпадает с latest_version",
            ),
            say(
                f"Health: latest_build {build!r} differs from latest_version {version!r}",
                f"Health: latest_build {build!r} не совпадает с latest_version {version!r}",
            ),
        )
    )
    return checks


def _status_checks(reply: HttpReply) -> list[Check]:
    status_ok = verdict(
        "health.status_http",
        reply.status == 200,
        say("Status endpoint reachable: HTTP 200", "Status endpoint доступен: HTTP 200"),
        f"Status endpoint: HTTP {reply.status}",
    )
    data = reply.data
    missing = [k for k in ("service", "version", "active_turns") if k not in (data or {})]
    if not isinstance(data, dict):
        return [
            status_ok,
            failed(
                "health.status_json",
                say("Status returned no JSON object", "Status вернул не JSON-объект"),
            ),
        ]
    if missing:
        fields = ", ".join(missing)
        detail = say(f"Status JSON without fields: {fields}", f"Status JSON без полей: {fields}")
        return [status_ok, failed("health.status_json", detail)]
    return [
        status_ok,
        passed("health.status_json", say("Status returns JSON", "Status возвращает JSON")),
    ]


def _updates_check(reply: HttpReply | None, require: bool) -> Check:
    if reply is None:
        return failed(
            "health.updates",
            say("Updates health endpoint unreachable", "Updates health endpoint недоступен"),
        )
    if reply.status == 404 and not require:
        return skipped(
            "health.updates",
            say(
                "Updates health: HTTP 404 — no update feed deployed (skipped)",
                "Updates health: HTTP 404 — лента обновлений не развёрнута (пропущено)",
            ),
        )
    if reply.status != 200:
        return failed("health.updates", f"Updates health endpoint: HTTP {reply.status}")
    state = _first(reply.data, ("status",))
    suffix = f" (status={state})" if state not in (None, "ok", "OK") else ""
    return passed(
        "health.updates",
        say(
            f"Updates health endpoint reachable: HTTP 200{suffix}",
            f"Updates health endpoint доступен: HTTP 200{suffix}",
        ),
    )


def _agreement(sources: dict[str, tuple[Any, Any] | None]) -> Check:
    found = {name: pair for name, pair in sources.items() if pair is not None}
    if len(found) < 2:
        return failed(
            "health.versions_agree",
            say("No versions to compare: no replies", "Версии не с чем сравнить: нет ответов"),
        )
    distinct = {pair for pair in found.values()}
    if len(distinct) == 1:
        version, build = next(iter(distinct))
        where = ", ".join(found)
        return passed(
            "health.versions_agree",
            say(
                f"Versions agree: {version} ({build}); {where}",
                f"Версии согласованы: {version} ({build}); {where}",
            ),
        )
    listed = "; ".join(f"{name}={v}/{b}" for name, (v, b) in found.items())
    return failed(
        "health.versions_agree", say(f"Versions differ: {listed}", f"Версии расходятся: {listed}")
    )


async def _ports(http: Target, grpc_port: int) -> Check:
    problems = []
    for label, port in (("HTTP", http.port), ("gRPC", grpc_port)):
        reason = await port_open(http.host, port)
        if reason:
            problems.append(f"{label} {port}: {reason}")
    return verdict(
        "health.ports",
        not problems,
        say(
            f"Ports reachable: HTTP {http.port}, gRPC {grpc_port}",
            f"Порты доступны: HTTP {http.port}, gRPC {grpc_port}",
        ),
        say(
            f"Ports unreachable: {'; '.join(problems)}",
            f"Порты недоступны: {'; '.join(problems)}",
        ),
    )


async def _grpc_health(grpc_target: Target) -> Check:
    channel = grpc_target.channel()
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        states = {}
        for service in ("", SERVICE):
            request = health_pb2.HealthCheckRequest(service=service)
            response = await stub.Check(request, timeout=grpc_target.timeout)
            states[service or "(server)"] = health_pb2.HealthCheckResponse.ServingStatus.Name(
                response.status
            )
    finally:
        await channel.close()
    ok = all(state == "SERVING" for state in states.values())
    listed = ", ".join(f"{name}={state}" for name, state in states.items())
    return verdict("health.grpc_health", ok, f"gRPC health: {listed}", f"gRPC health: {listed}")


async def http_precheck(args: object, http: Target) -> Check | None:
    """Silent when the HTTP port answers TCP; else the failed check that means "unreachable"."""
    reason = await port_open(http.host, http.port)
    if reason is None:
        return None
    return failed(
        "connect",
        say(
            f"HTTP port {http.address} unreachable: {reason}",
            f"HTTP-порт {http.address} недоступен: {reason}",
        ),
    )


async def run_health(
    http: Target, report: Report, *, grpc_port: int, require_updates: bool = False
) -> Report:
    """Every health check against the HTTP endpoint ``http`` (and the gRPC port beside it)."""
    health = await _get(report, http, "/health")
    if health is not None:
        report.add(*_health_checks(health))
    status = await _get(report, http, "/status")
    if status is not None:
        report.add(*_status_checks(status))
    updates = await _get(report, http, "/updates/health")
    report.add(_updates_check(updates, require_updates))
    sources = {"/health": _versions(health), "/status": _versions(status)}
    if updates is not None and updates.status == 200:
        sources["/updates/health"] = _versions(updates)
    report.add(_agreement(sources))
    ready = await _get(report, http, "/ready")
    if ready is not None:
        reasons = _first(ready.data, ("reasons",)) or []
        report.add(
            verdict(
                "health.ready",
                ready.status == 200,
                say(
                    "Ready endpoint: HTTP 200 (the server accepts requests)",
                    "Ready endpoint: HTTP 200 (сервер готов принимать запросы)",
                ),
                f"Ready endpoint: HTTP {ready.status}: {', '.join(map(str, reasons))}",
            )
        )
    await report.run("health.ports", _ports(http, grpc_port))
    await report.run("health.grpc_health", _grpc_health(http.with_port(grpc_port)))
    return report
