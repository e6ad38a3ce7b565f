"""``chaos_smoke.py``: abuse the server the way real clients and networks do; it must stay up.

Bursts of concurrent turns, immediate cancels, interrupts mid-turn, malformed and oversized
requests, a COLLECT storm; afterwards ``/health`` is 200, ``/status`` shows no leaked turns and
the provider breakers, and a normal turn still succeeds. Provider failures and timeouts cannot
be injected into a remote server: what is checked is their visible effect (graceful answers,
never ``UNKNOWN``/``INTERNAL``, breaker states reported); the integration tests run this suite
against servers with failing providers.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import grpc

from nexy.toolkit.calls import (
    QUICK_PROMPT,
    TurnResult,
    collect,
    commit,
    finish_call,
    first_message,
    read_rest,
    run_turn,
    slow_prompt,
    stub_for,
)
from nexy.toolkit.connection import Target, http_get, new_device, new_session
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, failed, passed, skipped, verdict
from nexy.transport.grpc import streaming_pb2 as pb

GRACEFUL = {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
BURST = 12
CANCELS = 10
STORM_SESSIONS, STORM_CHUNKS = 20, 10
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _outcome(result: TurnResult) -> str:
    if result.ended:
        return "OK"
    return result.code.name if result.code is not None else say("no status", "нет статуса")


async def _burst(stub: Any, deadline: float) -> Check:
    prompts = [QUICK_PROMPT, "Open Safari", "Tell me a short joke."] * (BURST // 3)
    results = await asyncio.gather(*(run_turn(stub, commit(p), deadline) for p in prompts))
    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[_outcome(result)] = outcomes.get(_outcome(result), 0) + 1
    bad = [r for r in results if not r.ended and r.code not in GRACEFUL]
    return verdict(
        "chaos.burst",
        not bad,
        say(
            f"Burst of {len(prompts)} concurrent turns: {outcomes}",
            f"Всплеск из {len(prompts)} одновременных ходов: {outcomes}",
        ),
        say(f"Burst: unexpected outcomes {outcomes}", f"Всплеск: неожиданные исходы {outcomes}"),
    )


async def _cancels(stub: Any, deadline: float) -> Check:
    async def one() -> grpc.StatusCode:
        call = stub.StreamAudio(commit(slow_prompt(600)), timeout=deadline)
        await asyncio.sleep(random.uniform(0, 0.05))  # cancel before and after admission
        call.cancel()
        code, _ = await finish_call(call)
        return code

    codes = await asyncio.gather(*(one() for _ in range(CANCELS)))
    return verdict(
        "chaos.cancels",
        all(code == grpc.StatusCode.CANCELLED for code in codes),
        say(
            f"{CANCELS} immediate cancels → CANCELLED, the server is fine",
            f"{CANCELS} немедленных отмен → CANCELLED, сервер в порядке",
        ),
        say(
            f"Immediate cancels: {[code.name for code in codes]}",
            f"Немедленные отмены: {[code.name for code in codes]}",
        ),
    )


async def _interrupt(stub: Any, deadline: float) -> list[Check]:
    device = new_device()
    session = new_session()
    call = stub.StreamAudio(
        commit(slow_prompt(), hardware_id=device, session_id=session), timeout=deadline
    )
    if await first_message(call, deadline) is None:
        code, details = await finish_call(call)
        detail = say(
            f"Interrupt: the turn never started ({code.name} {details})",
            f"Прерывание: ход не начался ({code.name} {details})",
        )
        return [failed("chaos.interrupt", detail)]
    reply = await stub.InterruptSession(pb.InterruptRequest(hardware_id=device), timeout=deadline)
    rest = await asyncio.wait_for(read_rest(call), deadline)
    code, _ = await finish_call(call)
    said = [r.error_message for r in rest if r.HasField("error_message")]
    ok = reply.success and session in reply.interrupted_sessions
    ok = ok and code == grpc.StatusCode.CANCELLED and said == ["interrupted"]
    after = await run_turn(stub, commit(QUICK_PROMPT, hardware_id=device), deadline)
    sessions = list(reply.interrupted_sessions)
    return [
        verdict(
            "chaos.interrupt",
            ok,
            say(
                "InterruptSession mid-turn → error_message 'interrupted' and CANCELLED",
                "InterruptSession посреди хода → error_message «interrupted» и CANCELLED",
            ),
            say(
                f"Interrupt: success={reply.success}, sessions={sessions}, "
                f"the stream ended {code.name} {said}",
                f"Прерывание: success={reply.success}, sessions={sessions}, "
                f"поток закончился {code.name} {said}",
            ),
        ),
        verdict(
            "chaos.after_interrupt",
            after.ended,
            say(
                "The interrupted device's next request is served",
                "Следующий запрос прерванного устройства обслуживается",
            ),
            say(f"After the interrupt: {after.status()}", f"После прерывания: {after.status()}"),
        ),
    ]


async def _malformed(stub: Any, max_prompt: int, local: bool, deadline: float) -> Check:
    cases: dict[str, pb.StreamRequest] = {
        say("screenshot not base64", "screenshot не base64"): commit(
            QUICK_PROMPT, screenshot="%%% not base64 %%%"
        ),
        say("long prompt", "длинный prompt"): commit("x" * (max_prompt + 1)),
        say("unknown phase", "неизвестная phase"): commit(QUICK_PROMPT, phase=99),
        say("empty prompt", "пустой prompt"): commit(""),
        say("session_id not a UUID", "session_id не UUID"): commit(
            QUICK_PROMPT, session_id="not-a-uuid"
        ),
    }
    expected = {name: grpc.StatusCode.INVALID_ARGUMENT for name in cases}
    if local:  # 17 MiB is fine on loopback, not something to upload to production
        huge = say("message > 16 MiB", "сообщение > 16 МиБ")
        cases[huge] = commit(QUICK_PROMPT, screenshot="A" * (17 * 1024 * 1024))
        expected[huge] = grpc.StatusCode.RESOURCE_EXHAUSTED
    wrong = {}
    for name, request in cases.items():
        result = await run_turn(stub, request, deadline)
        if result.code != expected[name]:
            wrong[name] = result.status()
    return verdict(
        "chaos.malformed",
        not wrong,
        say(
            f"Malformed/huge requests ({len(cases)}) refused with the right codes",
            f"Некорректные/огромные запросы ({len(cases)}) отклонены с правильными кодами",
        ),
        say(f"Malformed requests: {wrong}", f"Некорректные запросы: {wrong}"),
    )


async def _storm(stub: Any) -> Check:
    async def session() -> list[float]:
        device, sid = new_device(), new_session()
        times = []
        for seq in range(1, STORM_CHUNKS + 1):
            started = time.perf_counter()
            text = " ".join(["word"] * seq)
            result = await run_turn(stub, collect(text, seq, hardware_id=device, session_id=sid), 3)
            if result.kinds != ["end_message"]:
                raise RuntimeError(f"COLLECT {seq}: {result.shape()} {result.status()}")
            times.append(time.perf_counter() - started)
        return times

    timings = [
        t for one in await asyncio.gather(*(session() for _ in range(STORM_SESSIONS))) for t in one
    ]
    slowest = max(timings)
    return verdict(
        "chaos.collect_storm",
        slowest < 3.0,
        say(
            f"COLLECT storm: {len(timings)} requests accepted, slowest {slowest * 1000:.0f} ms",
            f"Шторм COLLECT: {len(timings)} запросов приняты, самый медленный "
            f"{slowest * 1000:.0f} мс",
        ),
        say(
            f"COLLECT storm: slowest {slowest:.1f} s — over the client's 3-second deadline",
            f"Шторм COLLECT: самый медленный {slowest:.1f} с — дольше 3-секундного deadline "
            "клиента",
        ),
    )


async def _aftermath(http: Target) -> list[Check]:
    health = await http_get(http, "/health")
    checks = [
        verdict(
            "chaos.health",
            health.status == 200,
            say("After the chaos /health: HTTP 200", "После хаоса /health: HTTP 200"),
            say(
                f"After the chaos /health: HTTP {health.status}",
                f"После хаоса /health: HTTP {health.status}",
            ),
        )
    ]
    active: Any = None
    status: Any = {}
    for _ in range(50):  # cancelled turns are released within a moment; allow for it
        reply = await http_get(http, "/status")
        status = reply.data if isinstance(reply.data, dict) else {}
        active = status.get("active_turns")
        if active == 0:
            break
        await asyncio.sleep(0.2)
    checks.append(
        verdict(
            "chaos.active_turns",
            active == 0,
            say(
                "/status: active_turns is back to 0 (no leaked turns)",
                "/status: active_turns вернулся к 0 (утечек ходов нет)",
            ),
            say(
                f"/status: active_turns={active} 10 s after the chaos",
                f"/status: active_turns={active} через 10 с после хаоса",
            ),
        )
    )
    providers = status.get("providers")
    if not isinstance(providers, dict) or not providers:
        checks.append(
            skipped(
                "chaos.providers",
                say(
                    "/status reports no provider states",
                    "/status не сообщает состояния провайдеров",
                ),
            )
        )
    else:
        states = {
            f"{kind}/{p.get('name')}": f"{p.get('state')} ({p.get('failures', 0)} "
            + say("failures)", "сбоев)")
            for kind, members in providers.items()
            for p in members
            if isinstance(p, dict)
        }
        checks.append(
            passed(
                "chaos.providers",
                say(f"Providers (breakers): {states}", f"Провайдеры (breakers): {states}"),
            )
        )
    return checks


async def run_chaos(grpc_target: Target, http: Target, report: Report) -> Report:
    """The chaos probes, then whether the server is still healthy and serving."""
    max_prompt = 8000
    try:
        status = await http_get(http, "/status")
        limits = status.data.get("limits", {}) if isinstance(status.data, dict) else {}
        max_prompt = int(limits.get("max_prompt_chars", max_prompt))
    except Exception as exc:  # the default limit is good enough to build the probe
        error = type(exc).__name__
        report.note(say(f"/status unreachable: {error}", f"/status недоступен: {error}"))
    channel = grpc_target.channel()
    stub = stub_for(channel)
    deadline = grpc_target.timeout
    try:
        report.step(say("A burst of concurrent turns", "Всплеск одновременных ходов"))
        await report.run("chaos.burst", _burst(stub, deadline))
        report.step(say("Immediate cancels", "Немедленные отмены"))
        await report.run("chaos.cancels", _cancels(stub, deadline))
        report.step(say("Interrupt mid-turn", "Прерывание посреди хода"))
        await report.run("chaos.interrupt", _interrupt(stub, deadline))
        report.step(say("Malformed and huge requests", "Некорректные и огромные запросы"))
        local = grpc_target.host in LOOPBACK
        await report.run("chaos.malformed", _malformed(stub, max_prompt, local, deadline))
        report.step(say("COLLECT storm", "Шторм COLLECT"))
        await report.run("chaos.collect_storm", _storm(stub))
        report.step(say("Server state after the chaos", "Состояние сервера после хаоса"))
        await report.run("chaos.aftermath", _aftermath(http))
        result = await run_turn(stub, commit(QUICK_PROMPT), deadline)
        report.add(
            verdict(
                "chaos.recovery",
                result.ended,
                say("A normal turn after the chaos succeeds", "Обычный ход после хаоса успешен"),
                say(
                    f"A normal turn after the chaos: {result.status()}",
                    f"Обычный ход после хаоса: {result.status()}",
                ),
            )
        )
    finally:
        await channel.close()
    return report
