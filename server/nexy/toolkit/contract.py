"""``grpc_contract_tests.py``: every response of every RPC against the proto contract.

Responses are read as raw bytes (no deserializer), so the check sees the wire itself: field
numbers, wire types, one oneof member per message. They are then parsed for the semantic rules
of SPEC §1–§4: required fields present, enum values known, JSON payloads well formed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import grpc

from nexy.toolkit.calls import QUICK_PROMPT, audio_problems, commit
from nexy.toolkit.connection import Target, new_device
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, verdict
from nexy.toolkit.schema import local_checks, reflection_checks
from nexy.toolkit.wire import oneof_members, wire_problems
from nexy.transport.grpc import streaming_pb2 as pb

PREFIX = "/streaming.StreamingService/"
BROWSER_EVENTS = set(pb.BrowserEventType.values())


class _Raw:
    """Calls whose responses are the bytes on the wire, bounded by the target's timeout."""

    def __init__(self, channel: grpc.aio.Channel, deadline: float) -> None:
        self.channel = channel
        self.deadline = deadline

    def stream(self, method: str, request: Any) -> Any:
        serializer = type(request).SerializeToString
        call = self.channel.unary_stream(PREFIX + method, request_serializer=serializer)
        return call(request, timeout=self.deadline)

    async def unary(self, method: str, request: Any) -> bytes:
        serializer = type(request).SerializeToString
        call = self.channel.unary_unary(PREFIX + method, request_serializer=serializer)
        return bytes(await call(request, timeout=self.deadline))


async def _collect(call: Any) -> tuple[list[bytes], grpc.StatusCode, str]:
    frames: list[bytes] = []
    try:
        async for frame in call:
            frames.append(frame)
    except grpc.aio.AioRpcError as exc:
        return frames, exc.code(), exc.details() or ""
    return frames, await call.code(), await call.details() or ""


def _stream_response_problems(message: pb.StreamResponse) -> list[str]:
    kind = message.WhichOneof("content")
    if kind in ("text_chunk", "end_message", "error_message"):
        return (
            []
            if getattr(message, kind)
            else [say(f"{kind}: empty string", f"{kind}: пустая строка")]
        )
    if kind == "audio_chunk":
        return audio_problems(message.audio_chunk)
    if kind == "action_message":
        action = message.action_message
        try:
            data = json.loads(action.action_json)
        except ValueError:
            return [
                say("action_message.action_json: not JSON", "action_message.action_json: не JSON")
            ]
        ok = isinstance(data, dict) and isinstance(data.get("command"), str)
        ok = ok and isinstance(data.get("args", {}), dict) and bool(action.session_id)
        if ok:
            return []
        raw = action.action_json
        return [
            say(
                f"action_message without command/args/session_id: {raw}",
                f"action_message без command/args/session_id: {raw}",
            )
        ]
    if kind == "browser_progress":
        event = message.browser_progress
        problems = [] if event.type in BROWSER_EVENTS else [f"browser_progress.type={event.type}"]
        try:
            datetime.fromisoformat(event.timestamp)
        except ValueError:
            stamp = event.timestamp
            problems.append(
                say(
                    f"browser_progress.timestamp is not ISO 8601: {stamp!r}",
                    f"browser_progress.timestamp не ISO 8601: {stamp!r}",
                )
            )
        empty_id = say("browser_progress.task_id is empty", "browser_progress.task_id пуст")
        return problems + ([] if event.task_id else [empty_id])
    return [say("message without a content field", "сообщение без поля content")]


def _frames_check(name: str, label: str, frames: list[bytes], message: Any) -> Check:
    descriptor = message.DESCRIPTOR
    problems: list[str] = []
    for index, frame in enumerate(frames):
        problems += [f"#{index}: {p}" for p in wire_problems(frame, descriptor)]
        for oneof in descriptor.oneofs:
            if oneof.name.startswith("_"):
                continue  # proto3 "optional" wraps a field in a synthetic oneof: not a choice
            members = oneof_members(frame, descriptor, oneof.name)
            if len(members) != 1:
                shown = members or say("empty", "пусто")
                problems.append(f"#{index}: oneof {oneof.name} = {shown}")
        if message is pb.StreamResponse:
            parsed = pb.StreamResponse.FromString(frame)
            problems += [f"#{index}: {p}" for p in _stream_response_problems(parsed)]
    return verdict(
        name,
        bool(frames) and not problems,
        say(
            f"{label}: {len(frames)} messages match the contract (types, fields, oneof)",
            f"{label}: {len(frames)} сообщений соответствуют контракту (типы, поля, oneof)",
        ),
        f"{label}: " + ("; ".join(problems[:6]) or say("no messages", "нет сообщений")),
    )


async def _stream_audio(raw: _Raw) -> list[Check]:
    checks = []
    cases = (
        (
            "contract.stream_action",
            say("StreamAudio (action)", "StreamAudio (действие)"),
            "Open Safari",
        ),
        ("contract.stream_audio", "StreamAudio", QUICK_PROMPT),
    )
    for name, label, prompt in cases:
        frames, code, details = await _collect(raw.stream("StreamAudio", commit(prompt)))
        check = _frames_check(name, label, frames, pb.StreamResponse)
        if code != grpc.StatusCode.OK:
            status = f"{code.name} ({details})"
            check = verdict(
                name, False, "", say(f"{label}: status {status}", f"{label}: статус {status}")
            )
        checks.append(check)
    return checks


async def _errors_and_enums(raw: _Raw) -> list[Check]:
    """An error is one error_message + a real status; RequestPhase values behave as specified."""
    frames, code, details = await _collect(
        raw.stream("StreamAudio", commit(QUICK_PROMPT, hardware_id="unknown"))
    )
    parsed = [pb.StreamResponse.FromString(f) for f in frames]
    error_ok = code == grpc.StatusCode.INVALID_ARGUMENT and bool(details)
    error_ok = error_ok and [m.WhichOneof("content") for m in parsed] == ["error_message"]
    checks = [
        verdict(
            "contract.error_shape",
            error_ok and not wire_problems(frames[0], pb.StreamResponse.DESCRIPTOR),
            say(
                "Error: exactly one error_message, then INVALID_ARGUMENT with details",
                "Ошибка: ровно одно error_message, затем INVALID_ARGUMENT с details",
            ),
            say(
                f"Error: {len(frames)} messages, status {code.name} ({details})",
                f"Ошибка: {len(frames)} сообщений, статус {code.name} ({details})",
            ),
        )
    ]
    results = {}
    for phase in (pb.REQUEST_PHASE_UNSPECIFIED, pb.REQUEST_PHASE_COLLECT, 7):
        request = commit(QUICK_PROMPT, phase=phase)
        if phase == pb.REQUEST_PHASE_COLLECT:
            request.chunk_text, request.chunk_seq = QUICK_PROMPT, 1
        frames, code, _ = await _collect(raw.stream("StreamAudio", request))
        last = pb.StreamResponse.FromString(frames[-1]) if frames else pb.StreamResponse()
        results[phase] = (code, last.WhichOneof("content"), last.end_message)
    ok = results[pb.REQUEST_PHASE_UNSPECIFIED][:2] == (grpc.StatusCode.OK, "end_message")
    ok = ok and results[pb.REQUEST_PHASE_COLLECT] == (
        grpc.StatusCode.OK,
        "end_message",
        "COLLECT_ACCEPTED",
    )
    ok = ok and results[7][0] == grpc.StatusCode.INVALID_ARGUMENT
    seen = {phase: (code.name, kind) for phase, (code, kind, _) in results.items()}
    checks.append(
        verdict(
            "contract.enum_phase",
            ok,
            say(
                "RequestPhase: 0 → COMMIT, 1 → COLLECT_ACCEPTED, unknown 7 → INVALID_ARGUMENT",
                "RequestPhase: 0 → COMMIT, 1 → COLLECT_ACCEPTED, неизвестное 7 → INVALID_ARGUMENT",
            ),
            say(f"RequestPhase: got {seen}", f"RequestPhase: получено {seen}"),
        )
    )
    return checks


async def _other_rpcs(raw: _Raw) -> list[Check]:
    welcome = pb.WelcomeRequest(text="", session_id="welcome_1700000000")
    frames, code, details = await _collect(raw.stream("GenerateWelcomeAudio", welcome))
    checks = [_frames_check("contract.welcome", "GenerateWelcomeAudio", frames, pb.WelcomeResponse)]
    if code != grpc.StatusCode.OK:
        checks[0] = verdict("contract.welcome", False, "", f"GenerateWelcomeAudio: {code.name}")
    fine = await raw.unary("InterruptSession", pb.InterruptRequest(hardware_id=new_device()))
    bad = await raw.unary("InterruptSession", pb.InterruptRequest(hardware_id=""))
    good, refused = pb.InterruptResponse.FromString(fine), pb.InterruptResponse.FromString(bad)
    problems = wire_problems(fine, pb.InterruptResponse.DESCRIPTOR)
    problems += wire_problems(bad, pb.InterruptResponse.DESCRIPTOR)
    checks.append(
        verdict(
            "contract.interrupt",
            not problems and good.success and not refused.success and bool(refused.message),
            say(
                "InterruptSession: success=true for a device, success=false with a message "
                "without hardware_id",
                "InterruptSession: success=true для устройства, success=false с message без "
                "hardware_id",
            ),
            f"InterruptSession: {problems or (good.success, refused.success, refused.message)}",
        )
    )
    # Only refusals: a contract test must not write usage rows into a production database.
    usage = [
        pb.UsageRequest(hardware_id="", session_id="contract", source="contract_test"),
        pb.UsageRequest(hardware_id=new_device(), input_tokens=-1, source="contract_test"),
    ]
    replies = [await raw.unary("ReportUsage", request) for request in usage]
    parsed = [pb.UsageResponse.FromString(r) for r in replies]
    problems = [p for r in replies for p in wire_problems(r, pb.UsageResponse.DESCRIPTOR)]
    checks.append(
        verdict(
            "contract.usage",
            not problems and all(not r.success and r.message for r in parsed),
            say(
                "ReportUsage: invalid requests → success=false with a message",
                "ReportUsage: неверные запросы → success=false с message",
            ),
            f"ReportUsage: {problems or [(r.success, r.message) for r in parsed]}",
        )
    )
    return checks


async def run_contract(grpc_target: Target, report: Report) -> Report:
    """Wire-level and semantic contract checks, reflection, stubs and versions."""
    channel = grpc_target.channel()
    raw = _Raw(channel, grpc_target.timeout)
    try:
        report.step(
            say(
                "Testing StreamAudio replies at the wire-format level",
                "Тестирование ответов StreamAudio на уровне wire-формата",
            )
        )
        await report.run("contract.stream", _stream_audio(raw))
        report.step(say("Testing errors and enum values", "Тестирование ошибок и значений enum"))
        await report.run("contract.errors", _errors_and_enums(raw))
        report.step(
            say(
                "Testing InterruptSession, GenerateWelcomeAudio, ReportUsage",
                "Тестирование InterruptSession, GenerateWelcomeAudio, ReportUsage",
            )
        )
        await report.run("contract.rpcs", _other_rpcs(raw))
    finally:
        await channel.close()
    report.step(
        say("Testing the server schema (reflection)", "Тестирование схемы сервера (reflection)")
    )
    await report.run("contract.reflection", reflection_checks(grpc_target))
    report.step(say("Testing stubs and protobuf versions", "Тестирование стабов и версий protobuf"))
    report.add(*local_checks())
    return report
