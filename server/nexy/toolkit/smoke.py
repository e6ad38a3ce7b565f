"""``grpc_smoke.py``: the critical path in a few seconds (connect, interrupt, one turn, validation).

The turn uses "Hello", which the local intent path answers without a model call, so the smoke
test is fast and its outcome does not depend on which LLM the server runs.
"""

from __future__ import annotations

from typing import Any

import grpc

from nexy.toolkit.calls import QUICK_PROMPT, commit, run_turn, stub_for
from nexy.toolkit.connection import Target, new_device
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, failed, passed, verdict
from nexy.transport.grpc import streaming_pb2 as pb


async def _interrupt(stub: Any, report: Report, deadline: float) -> Check:
    report.step(say("Testing InterruptSession", "Тестирование InterruptSession"))
    request = pb.InterruptRequest(hardware_id=new_device())
    response = await stub.InterruptSession(request, timeout=deadline)
    return verdict(
        "smoke.interrupt",
        response.success,
        say(
            f"InterruptSession succeeded: success={response.success}",
            f"InterruptSession успешен: success={response.success}",
        ),
        say(
            f"InterruptSession returned success=False: {response.message}",
            f"InterruptSession вернул success=False: {response.message}",
        ),
    )


async def _stream_audio(stub: Any, report: Report, deadline: float) -> Check:
    report.step(say("Testing StreamAudio", "Тестирование StreamAudio"))
    result = await run_turn(stub, commit(QUICK_PROMPT), deadline)
    seen: list[str] = []
    for kind in result.kinds:
        if kind not in seen:
            seen.append(kind)
            report.note(say(f"Got: {kind}", f"Получен ответ: {kind}"))
    missing = [k for k in ("text_chunk", "audio_chunk") if k not in seen]
    if result.ended and not missing:
        count = len(result.responses)
        return passed(
            "smoke.stream_audio",
            say(
                f"StreamAudio succeeded: {count} responses",
                f"StreamAudio успешен: получено {count} ответов",
            ),
        )
    lacking, status = ", ".join(missing), result.status()
    problem = (
        say(f"no {lacking}", f"нет {lacking}")
        if missing
        else say(f"status {status}", f"статус {status}")
    )
    return failed(
        "smoke.stream_audio",
        say(
            f"StreamAudio: {problem}; stream: {result.shape()}",
            f"StreamAudio: {problem}; поток: {result.shape()}",
        ),
    )


async def _validation(
    stub: Any, name: str, request: pb.StreamRequest, marker: str, deadline: float
) -> Check:
    result = await run_turn(stub, request, deadline)
    text = f"{result.error_message} {result.details}"
    ok = result.code == grpc.StatusCode.INVALID_ARGUMENT and marker in text
    return verdict(
        name,
        ok,
        say(f"Validation: {marker} → INVALID_ARGUMENT", f"Валидация: {marker} → INVALID_ARGUMENT"),
        say(
            f"Validation '{marker}': got {result.status()}, stream: {result.shape()}",
            f"Валидация «{marker}»: получено {result.status()}, поток: {result.shape()}",
        ),
    )


async def run_smoke(grpc_target: Target, report: Report) -> Report:
    """The smoke checks against a running server; the report gets one check per item."""
    channel = grpc_target.channel()
    stub = stub_for(channel)
    timeout = grpc_target.timeout
    try:
        await report.run("smoke.interrupt", _interrupt(stub, report, timeout))
        await report.run("smoke.stream_audio", _stream_audio(stub, report, timeout))
        report.step(say("Testing request validation", "Тестирование валидации запросов"))
        no_session = commit(QUICK_PROMPT, session_id="")
        await report.run(
            "smoke.missing_session",
            _validation(stub, "smoke.missing_session", no_session, "session_id is required", 10),
        )
        unknown = commit(QUICK_PROMPT, hardware_id="unknown")
        await report.run(
            "smoke.unknown_hardware",
            _validation(stub, "smoke.unknown_hardware", unknown, "hardware_id is required", 10),
        )
    finally:
        await channel.close()
    return report
