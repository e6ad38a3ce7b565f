"""``test_interceptor_errors.py``: error statuses end to end, and their metrics and log lines.

Provokes each error a client can meet — a deadline, an unreachable port, a cancel mid-stream,
an invalid request — and checks the status it sees; then checks the server counted them
(``/metrics``: ``nexy_grpc_requests_total`` by method and code, ``nexy_stream_errors_total``)
and, given the server's log file, wrote a line for the failed call, found by the request id
the check sends in ``x-request-id``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from nexy.toolkit.calls import (
    QUICK_PROMPT,
    commit,
    finish_call,
    first_message,
    run_turn,
    slow_prompt,
    stub_for,
)
from nexy.toolkit.connection import Target, closed_port, http_get, new_device
from nexy.toolkit.lang import say
from nexy.toolkit.promtext import by_label, total
from nexy.toolkit.results import Check, Report, failed, skipped, verdict
from nexy.transport.grpc import streaming_pb2 as pb

TINY_DEADLINE_S = 0.2
REQUESTS = "nexy_grpc_requests_total"
ERRORS = "nexy_stream_errors_total"
REQUEST_ID_KEY = "x-request-id"


async def _deadline(grpc_target: Target) -> Check:
    """A long answer with a tiny deadline: the client must see DEADLINE_EXCEEDED."""
    channel = grpc_target.channel()
    try:
        call = stub_for(channel).StreamAudio(commit(slow_prompt()), timeout=TINY_DEADLINE_S)
        try:
            async for _ in call:
                pass
            code = await call.code()
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
    finally:
        await channel.close()
    return verdict(
        "interceptor.deadline",
        code == grpc.StatusCode.DEADLINE_EXCEEDED,
        say(
            f"Deadline {TINY_DEADLINE_S * 1000:.0f} ms on a long reply → DEADLINE_EXCEEDED",
            f"Deadline {TINY_DEADLINE_S * 1000:.0f} мс на длинный ответ → DEADLINE_EXCEEDED",
        ),
        say(
            f"Deadline {TINY_DEADLINE_S * 1000:.0f} ms: got {code.name}",
            f"Deadline {TINY_DEADLINE_S * 1000:.0f} мс: получено {code.name}",
        ),
    )


async def _unavailable(grpc_target: Target, port: int | None) -> Check:
    """A port nothing listens on: UNAVAILABLE, not a hang and not UNKNOWN."""
    where = grpc_target.with_port(port or closed_port(grpc_target.host))
    channel = where.channel()
    try:
        request = pb.InterruptRequest(hardware_id=new_device())
        await stub_for(channel).InterruptSession(request, timeout=5.0)
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
    finally:
        await channel.close()
    return verdict(
        "interceptor.unavailable",
        code == grpc.StatusCode.UNAVAILABLE,
        say(
            f"Unreachable port ({where.address}) → UNAVAILABLE",
            f"Недоступный порт ({where.address}) → UNAVAILABLE",
        ),
        say(
            f"Unreachable port ({where.address}): got {code.name} (a firewall dropping "
            "packets? pass --closed-port)",
            f"Недоступный порт ({where.address}): получено {code.name} (firewall отбрасывает "
            "пакеты? укажите --closed-port)",
        ),
    )


async def _cancel(stub: Any, deadline: float) -> Check:
    """The client cancels mid-stream (barge-in): the call ends CANCELLED."""
    call = stub.StreamAudio(commit(slow_prompt()), timeout=deadline)
    if await first_message(call, deadline) is None:
        code, details = await finish_call(call)
        status = f"{code.name} {details}"
        return failed(
            "interceptor.cancel",
            say(f"Cancel: the turn never started ({status})", f"Отмена: ход не начался ({status})"),
        )
    call.cancel()
    code, _ = await finish_call(call)
    return verdict(
        "interceptor.cancel",
        code == grpc.StatusCode.CANCELLED,
        say("Client cancel mid-stream → CANCELLED", "Отмена клиентом посреди потока → CANCELLED"),
        say(f"Client cancel: got {code.name}", f"Отмена клиентом: получено {code.name}"),
    )


async def _invalid(stub: Any, request_id: str, deadline: float) -> Check:
    """An invalid request must map to INVALID_ARGUMENT with details (never UNKNOWN)."""
    request = commit(QUICK_PROMPT, hardware_id="unknown")
    metadata = ((REQUEST_ID_KEY, request_id),)
    call = stub.StreamAudio(request, timeout=deadline, metadata=metadata)
    try:
        async for _ in call:
            pass
        code, details = await call.code(), await call.details()
    except grpc.aio.AioRpcError as exc:
        code, details = exc.code(), exc.details()
    return verdict(
        "interceptor.status",
        code == grpc.StatusCode.INVALID_ARGUMENT and bool(details),
        say(
            f"Validation error → INVALID_ARGUMENT with details ({details})",
            f"Ошибка валидации → INVALID_ARGUMENT с details ({details})",
        ),
        say(
            f"Validation error: got {code.name} ({details})",
            f"Ошибка валидации: получено {code.name} ({details})",
        ),
    )


@dataclass(frozen=True, slots=True)
class _Scrape:
    requests: float | None
    errors: float | None
    text: str


async def _scrape(http: Target) -> _Scrape:
    reply = await http_get(http, "/metrics")
    if reply.status != 200:
        raise RuntimeError(f"/metrics: HTTP {reply.status}")
    text = reply.text
    return _Scrape(total(text, REQUESTS), total(text, ERRORS), text)


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{key}={value:g}" for key, value in values.items()) or "—"


def _absent(text: str, name: str) -> str:
    family = name.removesuffix("_total")
    if f"# TYPE {family} " in text or f"# TYPE {name} " in text:
        return say(
            f"/metrics: {name} is declared but has no values — calls are not counted",
            f"/metrics: {name} объявлена, но без значений — вызовы не считаются",
        )
    return say(f"/metrics: no metric {name}", f"/metrics: нет метрики {name}")


def _metric_checks(before: _Scrape, after: _Scrape, provoked: int) -> list[Check]:
    checks = []
    if after.requests is None:
        checks.append(failed("interceptor.metric_requests", _absent(after.text, REQUESTS)))
    else:
        grown = after.requests - (before.requests or 0)
        codes = by_label(after.text, REQUESTS, "code", {"method": "StreamAudio"})
        old = by_label(before.text, REQUESTS, "code", {"method": "StreamAudio"})
        delta = {k: v - old.get(k, 0) for k, v in codes.items() if v - old.get(k, 0) > 0}
        ok = grown >= provoked and delta.get("INVALID_ARGUMENT", 0) >= 1
        checks.append(
            verdict(
                "interceptor.metric_requests",
                ok,
                say(
                    f"Metrics: {REQUESTS} +{grown:g}, StreamAudio by code: {_fmt(delta)}",
                    f"Метрики: {REQUESTS} +{grown:g}, StreamAudio по кодам: {_fmt(delta)}",
                ),
                say(
                    f"Metrics: {REQUESTS} +{grown:g} (expected ≥ {provoked}), by code: "
                    f"{_fmt(delta)}",
                    f"Метрики: {REQUESTS} +{grown:g} (ожидалось ≥ {provoked}), по кодам: "
                    f"{_fmt(delta)}",
                ),
            )
        )
    if after.errors is None:
        checks.append(failed("interceptor.metric_errors", _absent(after.text, ERRORS)))
    else:
        grown = after.errors - (before.errors or 0)
        by_status = _fmt(by_label(after.text, ERRORS, "status"))
        checks.append(
            verdict(
                "interceptor.metric_errors",
                grown >= 1,
                say(
                    f"Metrics: {ERRORS} +{grown:g} (all by status: {by_status})",
                    f"Метрики: {ERRORS} +{grown:g} (всего по статусам: {by_status})",
                ),
                say(
                    f"Metrics: {ERRORS} did not grow after the validation error",
                    f"Метрики: {ERRORS} не вырос после ошибки валидации",
                ),
            )
        )
    return checks


async def _log_check(log_path: Path | None, request_id: str) -> Check:
    if log_path is None:
        return skipped(
            "interceptor.logs",
            say(
                "Logs: no server log file given (--server-log)",
                "Логи: файл лога сервера не указан (--server-log)",
            ),
        )
    for _ in range(20):  # the line is written when the call ends; give the logger a moment
        text = await asyncio.to_thread(log_path.read_text, encoding="utf-8", errors="replace")
        lines = [line for line in text.splitlines() if request_id in line]
        if lines:
            ok = any("INVALID_ARGUMENT" in line for line in lines)
            return verdict(
                "interceptor.logs",
                ok,
                say(
                    f"Logs: the call's line with request_id and code: {lines[-1][-120:]}",
                    f"Логи: строка вызова с request_id и кодом: {lines[-1][-120:]}",
                ),
                say(
                    f"Logs: the request_id line lacks INVALID_ARGUMENT: {lines[-1][-120:]}",
                    f"Логи: строка с request_id без INVALID_ARGUMENT: {lines[-1][-120:]}",
                ),
            )
        await asyncio.sleep(0.1)
    return failed(
        "interceptor.logs",
        say(
            f"Logs: no line with request_id={request_id} in {log_path}",
            f"Логи: нет строки с request_id={request_id} в {log_path}",
        ),
    )


async def run_interceptor_errors(
    grpc_target: Target,
    http: Target,
    report: Report,
    *,
    server_log: Path | None = None,
    unreachable_port: int | None = None,
) -> Report:
    """Deadline, unreachable, cancel and invalid request statuses, then metrics and logs."""
    try:
        before: _Scrape | None = await _scrape(http)
    except Exception as exc:  # metrics are judged below; the status checks still run
        error = f"{type(exc).__name__}: {exc}"
        report.note(
            say(
                f"/metrics unreachable before the checks: {error}",
                f"/metrics недоступен до проверок: {error}",
            )
        )
        before = None
    request_id = f"nexy-toolkit-{uuid.uuid4().hex[:12]}"
    report.step(
        say("Testing deadline → DEADLINE_EXCEEDED", "Тестирование deadline → DEADLINE_EXCEEDED")
    )
    await report.run("interceptor.deadline", _deadline(grpc_target))
    report.step(
        say(
            "Testing an unreachable server → UNAVAILABLE",
            "Тестирование недоступного сервера → UNAVAILABLE",
        )
    )
    await report.run("interceptor.unavailable", _unavailable(grpc_target, unreachable_port))
    channel = grpc_target.channel()
    stub = stub_for(channel)
    try:
        report.step(say("Testing cancel → CANCELLED", "Тестирование отмены → CANCELLED"))
        await report.run("interceptor.cancel", _cancel(stub, grpc_target.timeout))
        report.step(
            say("Testing errors mapped to statuses", "Тестирование маппинга ошибок в статусы")
        )
        await report.run("interceptor.status", _invalid(stub, request_id, grpc_target.timeout))
        # A normal call as well, so the request counter must move even if errors are not counted.
        await run_turn(stub, commit(QUICK_PROMPT), grpc_target.timeout)
    finally:
        await channel.close()
    report.step(say("Testing error metrics and logs", "Тестирование метрик и логов ошибок"))
    await asyncio.sleep(0.3)  # streaming calls are counted when they end on the server
    try:
        after = await _scrape(http)
    except Exception as exc:
        detail = say(f"/metrics unreachable: {exc}", f"/metrics недоступен: {exc}")
        report.add(failed("interceptor.metrics", detail))
    else:
        report.add(*_metric_checks(before or _Scrape(None, None, ""), after, provoked=4))
    await report.run("interceptor.logs", _log_check(server_log, request_id))
    return report
