"""``test_backpressure.py``: concurrent-turn limits, the rate limit, the idle timeout, recovery.

The limits are read from ``/status`` (``limits``) and each is provoked for real: one more slow
turn than a device may run, one more quick COMMIT than the burst allows, a stream whose reader
stops for longer than the idle timeout. A limit the server does not advertise is skipped with
a clear line. Every probe uses its own device id, so the probes do not trip each other, and a
final turn from a fresh device shows the server recovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

import grpc

from nexy.toolkit.calls import (
    QUICK_PROMPT,
    commit,
    finish_call,
    first_message,
    read_rest,
    run_turn,
    slow_prompt,
    stub_for,
)
from nexy.toolkit.connection import Target, http_get, new_device
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, failed, passed, skipped, verdict

LIMIT_KEYS = (
    "max_concurrent_turns",
    "max_turns_per_device",
    "device_burst",
    "device_requests_per_minute",
    "idle_timeout_seconds",
)
GLOBAL_PROBE_MAX = 16  # more parallel slow turns than this is a load test, not a check
RATE_PROBE_MAX = 30
IDLE_SLOW_S = 60.0
# Without BDP probing the HTTP/2 window stays small, so a reader that stops really does stop
# the server's writes instead of letting megabytes pile up in client buffers. The limit probes
# need that too: a held turn whose whole reply fits in a grown window ends at once (the
# embedded model's short replies did), and the limit is then never full when the extra comes.
NO_BDP = (("grpc.http2.bdp_probe", 0),)


async def read_limits(http: Target) -> dict[str, float] | None:
    """The ``limits`` object of ``/status`` (None when /status has none)."""
    reply = await http_get(http, "/status")
    limits = reply.data.get("limits") if isinstance(reply.data, dict) else None
    if reply.status != 200 or not isinstance(limits, dict):
        return None
    return {k: float(v) for k, v in limits.items() if isinstance(v, int | float)}


def _not_advertised(name: str, key: str) -> Check:
    return skipped(
        name,
        say(
            f"{key}: the limit is not advertised in /status limits — check skipped",
            f"{key}: лимит не объявлен в /status limits — проверка пропущена",
        ),
    )


async def _hold_turns(stub: Any, devices: list[str], deadline: float) -> list[Any]:
    """Start one slow turn per entry and wait until each has produced its first message."""
    calls = [
        stub.StreamAudio(commit(slow_prompt(), hardware_id=device), timeout=deadline)
        for device in devices
    ]
    firsts = await asyncio.gather(*(first_message(call, deadline) for call in calls))
    if any(first is None for first in firsts):
        codes = [await finish_call(call) for call in calls]
        await _release(calls)
        names = [c.name for c, _ in codes]
        raise RuntimeError(
            say(f"the slow turns never started: {names}", f"медленные ходы не начались: {names}")
        )
    return calls


async def _release(calls: list[Any]) -> None:
    for call in calls:
        await finish_call(call)


async def _active_turns(http: Target | None) -> int | None:
    """The server's running turns from /status (None when it cannot be read)."""
    if http is None:
        return None
    try:
        reply = await http_get(http, "/status")
    except Exception:  # the probe then relies on the call states alone
        return None
    value = reply.data.get("active_turns") if isinstance(reply.data, dict) else None
    return value if isinstance(value, int) else None


async def _limit_probe(
    stub: Any,
    name: str,
    devices: list[str],
    extra_device: str,
    marker: str,
    deadline: float,
    http: Target | None = None,
) -> Check:
    """Fill a limit with slow turns, then one more must get RESOURCE_EXHAUSTED.

    ``marker`` must appear in the refusal; a refusal that names the rate limit instead means
    the burst ran out first, which proves nothing about the concurrency limit.
    """
    calls = await _hold_turns(stub, devices, deadline)
    try:
        # A server that runs turns one after another (the embedded model) or faster than the
        # client reads may already have finished a held turn: then the limit is not full and
        # the probe proves nothing either way.
        running = await _active_turns(http)
        extra = await run_turn(stub, commit(QUICK_PROMPT, hardware_id=extra_device), deadline)
        finished_early = any(call.done() for call in calls) or (
            running is not None and running < len(devices)
        )
    finally:
        await _release(calls)
    text = f"{extra.error_message} {extra.details}"
    if extra.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        ok = marker.lower() in text.lower() and "rate" not in text.lower()
        return verdict(
            name,
            ok,
            say(
                f"{len(devices)} slow turns + 1 → RESOURCE_EXHAUSTED ({extra.details})",
                f"{len(devices)} медленных ходов + 1 → RESOURCE_EXHAUSTED ({extra.details})",
            ),
            say(
                f"RESOURCE_EXHAUSTED, but not for the turn limit: {extra.details}",
                f"RESOURCE_EXHAUSTED, но не из-за лимита ходов: {extra.details}",
            ),
        )
    if finished_early:
        return skipped(
            name,
            say(
                f"{name}: the server was too fast — a turn ended before the check",
                f"{name}: сервер ответил слишком быстро — ход закончился раньше проверки",
            ),
        )
    return failed(
        name,
        say(
            f"{len(devices)} turns + 1: expected RESOURCE_EXHAUSTED, got {extra.status()}",
            f"{len(devices)} ходов + 1: ожидался RESOURCE_EXHAUSTED, получено {extra.status()}",
        ),
    )


async def _rate_probe(stub: Any, burst: int, per_minute: float, deadline: float) -> Check:
    device = new_device()
    started = time.monotonic()
    attempts = 0
    # Tokens refill during the probe; allow for them so a slow network does not fail it.
    while attempts < burst + 1 + math.floor((time.monotonic() - started) * per_minute / 60):
        attempts += 1
        result = await run_turn(stub, commit(QUICK_PROMPT, hardware_id=device), deadline)
        if result.code == grpc.StatusCode.OK:
            continue
        text = f"{result.error_message} {result.details}".lower()
        return verdict(
            "backpressure.rate",
            result.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "rate" in text,
            say(
                f"Rate limit: request #{attempts} (burst {burst}) → RESOURCE_EXHAUSTED "
                f"({result.details})",
                f"Rate limit: запрос №{attempts} (burst {burst}) → RESOURCE_EXHAUSTED "
                f"({result.details})",
            ),
            say(
                f"Rate limit: request #{attempts} → {result.status()}, expected "
                "RESOURCE_EXHAUSTED mentioning rate",
                f"Rate limit: запрос №{attempts} → {result.status()}, ожидался "
                "RESOURCE_EXHAUSTED с упоминанием rate",
            ),
        )
    return failed(
        "backpressure.rate",
        say(
            f"Rate limit: {attempts} fast COMMITs, none refused",
            f"Rate limit: {attempts} быстрых COMMIT без отказа",
        ),
    )


async def _idle_probe(grpc_target: Target, idle_s: float, deadline: float) -> Check:
    """Stop reading mid-turn for longer than the idle timeout: DEADLINE_EXCEEDED."""
    margin = max(1.0, idle_s * 0.25)
    channel = grpc_target.channel(NO_BDP)
    try:
        stub = stub_for(channel)
        call = stub.StreamAudio(
            commit(slow_prompt(), hardware_id=new_device()), timeout=idle_s + margin + deadline
        )
        if await first_message(call, deadline) is None:
            code, details = await finish_call(call)
            return failed(
                "backpressure.idle",
                say(
                    f"Idle: the turn never started: {code.name} {details}",
                    f"Idle: ход не начался: {code.name} {details}",
                ),
            )
        await asyncio.sleep(idle_s + margin)  # the client "stops reading"
        with contextlib.suppress(TimeoutError):  # a server that never stops is judged below
            await asyncio.wait_for(read_rest(call), 10)
        code, details = await finish_call(call)
    finally:
        await channel.close()
    return verdict(
        "backpressure.idle",
        code == grpc.StatusCode.DEADLINE_EXCEEDED,
        say(
            f"Idle timeout: the client did not read for {idle_s + margin:.0f} s → "
            f"DEADLINE_EXCEEDED ({details})",
            f"Idle timeout: клиент не читал {idle_s + margin:.0f} с → DEADLINE_EXCEEDED "
            f"({details})",
        ),
        say(
            f"Idle timeout: after {idle_s + margin:.0f} s without reading got {code.name} "
            f"({details}), expected DEADLINE_EXCEEDED",
            f"Idle timeout: после {idle_s + margin:.0f} с без чтения получено {code.name} "
            f"({details}), ожидался DEADLINE_EXCEEDED",
        ),
    )


async def run_backpressure(
    grpc_target: Target, http: Target, report: Report, *, slow: bool = False
) -> Report:
    """Every backpressure probe the advertised limits allow; ``slow`` allows idle > 60 s."""
    report.step(say("Reading the limits from /status", "Чтение лимитов из /status"))
    try:
        limits = await read_limits(http)
    except Exception as exc:  # without /status nothing can be provoked on purpose
        limits = None
        error = f"{type(exc).__name__}: {exc}"
        report.note(say(f"/status unreachable: {error}", f"/status недоступен: {error}"))
    if limits is None:
        url = http.url("/status")
        detail = say(f"No limits object in {url}", f"Нет объекта limits в {url}")
        report.add(failed("backpressure.limits", detail))
        limits = {}
    else:
        shown = ", ".join(f"{k}={limits[k]:g}" for k in LIMIT_KEYS if k in limits)
        shown = shown or say("none advertised", "не объявлены")
        detail = say(f"Server limits: {shown}", f"Лимиты сервера: {shown}")
        report.add(passed("backpressure.limits", detail))
    channel = grpc_target.channel(NO_BDP)
    stub = stub_for(channel)
    deadline = grpc_target.timeout
    try:
        await _device_and_global(stub, report, limits, deadline, http)
        report.step(say("Testing rate limiting", "Тестирование rate limiting"))
        burst, per_minute = limits.get("device_burst"), limits.get("device_requests_per_minute")
        if burst is None or per_minute is None:
            report.add(_not_advertised("backpressure.rate", "device_burst"))
        elif burst > RATE_PROBE_MAX and not slow:
            detail = say(
                f"Rate limit: burst {burst:g} — needs --slow",
                f"Rate limit: burst {burst:g} — нужен --slow",
            )
            report.add(skipped("backpressure.rate", detail))
        else:
            await report.run(
                "backpressure.rate", _rate_probe(stub, int(burst), per_minute, deadline)
            )
        report.step(say("Testing idle timeout", "Тестирование idle timeout"))
        idle = limits.get("idle_timeout_seconds")
        if idle is None:
            report.add(_not_advertised("backpressure.idle", "idle_timeout_seconds"))
        elif idle > IDLE_SLOW_S and not slow:
            detail = say(
                f"Idle timeout {idle:g} s > {IDLE_SLOW_S:g} s — skipped (needs --slow)",
                f"Idle timeout {idle:g} с > {IDLE_SLOW_S:g} с — пропущено (нужен --slow)",
            )
            report.add(skipped("backpressure.idle", detail))
        else:
            await report.run("backpressure.idle", _idle_probe(grpc_target, idle, deadline))
        report.step(say("Testing recovery", "Тестирование восстановления"))
        result = await run_turn(stub, commit(QUICK_PROMPT), deadline)
        report.add(
            verdict(
                "backpressure.recovery",
                result.ended,
                say(
                    "After all checks a normal turn of another device succeeds",
                    "После всех проверок обычный ход другого устройства успешен",
                ),
                say(
                    f"A normal turn after the checks: {result.status()}; stream {result.shape()}",
                    f"После проверок обычный ход: {result.status()}; поток {result.shape()}",
                ),
            )
        )
    finally:
        await channel.close()
    return report


async def _device_and_global(
    stub: Any, report: Report, limits: dict[str, float], deadline: float, http: Target
) -> None:
    report.step(
        say(
            "Testing the per-device concurrent turn limit",
            "Тестирование лимита одновременных ходов устройства",
        )
    )
    too_many = say("too many to probe (skipped)", "слишком много для проверки (пропущено)")
    per_device = limits.get("max_turns_per_device")
    if per_device is None:
        report.add(_not_advertised("backpressure.device_streams", "max_turns_per_device"))
    elif per_device > GLOBAL_PROBE_MAX:
        detail = f"max_turns_per_device={per_device:g} — " + too_many
        report.add(skipped("backpressure.device_streams", detail))
    elif limits.get("device_burst", per_device + 1) < per_device + 1:
        detail = say(
            "max_turns_per_device: device_burst is smaller, the rate limit fires first (skipped)",
            "max_turns_per_device: device_burst меньше, rate limit сработает раньше (пропущено)",
        )
        report.add(skipped("backpressure.device_streams", detail))
    else:
        device = new_device()
        probe = _limit_probe(
            stub,
            "backpressure.device_streams",
            [device] * int(per_device),
            device,
            "",
            deadline,
            http,
        )
        await report.run("backpressure.device_streams", probe)
    report.step(
        say(
            "Testing the global stream limit (max_concurrent_turns)",
            "Тестирование общего лимита стримов (max_concurrent_turns)",
        )
    )
    total = limits.get("max_concurrent_turns")
    if total is None:
        report.add(_not_advertised("backpressure.global_streams", "max_concurrent_turns"))
    elif total > GLOBAL_PROBE_MAX:
        detail = f"max_concurrent_turns={total:g} — " + too_many
        report.add(skipped("backpressure.global_streams", detail))
    else:
        devices = [new_device() for _ in range(int(total))]
        probe = _limit_probe(
            stub,
            "backpressure.global_streams",
            devices,
            new_device(),
            "STREAM_LIMIT_EXCEEDED",
            deadline,
            http,
        )
        await report.run("backpressure.global_streams", probe)
