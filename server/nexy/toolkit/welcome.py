"""``test_welcome_audio.py``: GenerateWelcomeAudio's format, metadata, budget and cache.

The desktop client waits about 5 s for the greeting before falling back to the OS voice, and
uses the same RPC to voice any reply that came without audio, so both the default greeting
(empty text) and an arbitrary text are checked, and a repeat must be served from the cache.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from nexy.toolkit.calls import WIRE_RATE, audio_problems, stub_for
from nexy.toolkit.connection import Target, http_get
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, failed, verdict
from nexy.transport.grpc import streaming_pb2 as pb

CLIENT_BUDGET_S = 5.0
_HITS = re.compile(r'^nexy_welcome_requests_total\{cache="hit"\}\s+([0-9.e+]+)$', re.M)


@dataclass
class WelcomeResult:
    """One GenerateWelcomeAudio stream and how long it took (first message, whole stream)."""

    responses: list[pb.WelcomeResponse] = field(default_factory=list)
    first_s: float = 0.0
    total_s: float = 0.0

    @property
    def kinds(self) -> list[str]:
        return [r.WhichOneof("content") or "" for r in self.responses]

    @property
    def audio(self) -> list[pb.AudioChunk]:
        return [r.audio_chunk for r in self.responses if r.HasField("audio_chunk")]


async def speak(
    stub: Any, text: str, deadline: float, metadata: Sequence[tuple[str, str]] = ()
) -> WelcomeResult:
    """Call GenerateWelcomeAudio as the client does (session_id ``welcome_<timestamp>``)."""
    result = WelcomeResult()
    request = pb.WelcomeRequest(text=text, session_id=f"welcome_{int(time.time())}")
    started = time.perf_counter()
    stream = stub.GenerateWelcomeAudio(request, timeout=deadline, metadata=tuple(metadata))
    async for response in stream:
        if not result.responses:
            result.first_s = time.perf_counter() - started
        result.responses.append(response)
    result.total_s = time.perf_counter() - started
    return result


def _label(key: str) -> str:
    """The printed tag of a welcome case; ``key`` stays in the (language-free) check names."""
    return {"greeting": say("greeting", "приветствие"), "text": say("text", "текст")}[key]


def format_checks(key: str, result: WelcomeResult) -> list[Check]:
    """Metadata first with the wire format and real duration, then audio, then end_message."""
    label = _label(key)
    kinds = result.kinds
    shape_ok = (
        kinds[:1] == ["metadata"]
        and kinds[-1:] == ["end_message"]
        and len(kinds) > 2
        and set(kinds[1:-1]) == {"audio_chunk"}
    )
    meta = result.responses[0].metadata if kinds[:1] == ["metadata"] else pb.WelcomeMetadata()
    samples = sum(len(chunk.audio_data) // 2 for chunk in result.audio)
    problems = sorted({p for chunk in result.audio for p in audio_problems(chunk)})
    meta_format = (meta.sample_rate, meta.channels, meta.dtype) == (WIRE_RATE, 1, "int16")
    # Duration must describe the audio that follows, to within one sample.
    duration_ok = samples > 0 and abs(meta.duration_sec - samples / WIRE_RATE) <= 1 / WIRE_RATE
    return [
        verdict(
            f"welcome.{key}.order",
            shape_ok,
            say(
                f"[{label}] Order: metadata → audio_chunk×{len(result.audio)} → end_message",
                f"[{label}] Порядок: metadata → audio_chunk×{len(result.audio)} → end_message",
            ),
            say(
                f"[{label}] Order broken: {kinds[:3]}…{kinds[-2:]}",
                f"[{label}] Порядок нарушен: {kinds[:3]}…{kinds[-2:]}",
            ),
        ),
        verdict(
            f"welcome.{key}.metadata",
            meta_format and bool(meta.method),
            say(f"[{label}] Metadata: ", f"[{label}] Метаданные: ")
            + f"method={meta.method}, sample_rate={meta.sample_rate}, "
            f"channels={meta.channels}, dtype={meta.dtype}",
            say(
                f"[{label}] Metadata off contract: method={meta.method!r}, "
                f"{meta.sample_rate}/{meta.channels}/{meta.dtype!r} (need 48000/1/int16)",
                f"[{label}] Метаданные не по контракту: method={meta.method!r}, "
                f"{meta.sample_rate}/{meta.channels}/{meta.dtype!r} (нужно 48000/1/int16)",
            ),
        ),
        verdict(
            f"welcome.{key}.duration",
            duration_ok,
            say(
                f"[{label}] Duration: duration_sec={meta.duration_sec:.3f} = "
                f"{samples} samples / 48000",
                f"[{label}] Длительность: duration_sec={meta.duration_sec:.3f} = "
                f"{samples} сэмплов / 48000",
            ),
            say(
                f"[{label}] duration_sec={meta.duration_sec:.3f}, but the audio is "
                f"{samples / WIRE_RATE:.3f} s",
                f"[{label}] duration_sec={meta.duration_sec:.3f}, а аудио "
                f"{samples / WIRE_RATE:.3f} с",
            ),
        ),
        verdict(
            f"welcome.{key}.audio",
            bool(result.audio) and not problems,
            say(
                f"[{label}] Audio format: {len(result.audio)} chunks, even lengths, not silence",
                f"[{label}] Формат аудио: {len(result.audio)} чанков, чётные длины, не тишина",
            ),
            say(f"[{label}] Audio format: ", f"[{label}] Формат аудио: ")
            + ("; ".join(problems) or say("no audio", "аудио нет")),
        ),
        verdict(
            f"welcome.{key}.budget",
            result.total_s < CLIENT_BUDGET_S,
            say(
                f"[{label}] Time: first reply {result.first_s * 1000:.0f} ms, "
                f"whole stream {result.total_s * 1000:.0f} ms (client budget 5 s)",
                f"[{label}] Время: первый ответ {result.first_s * 1000:.0f} мс, "
                f"весь поток {result.total_s * 1000:.0f} мс (бюджет клиента 5 с)",
            ),
            say(
                f"[{label}] {result.total_s:.1f} s — over 5 s, the client already switched to "
                "the system voice",
                f"[{label}] {result.total_s:.1f} с — дольше 5 с, клиент уже переключился на "
                "голос ОС",
            ),
        ),
    ]


async def _cache_hits(http: Target | None) -> float | None:
    if http is None:
        return None
    try:
        reply = await http_get(http, "/metrics")
    except Exception:  # metrics are optional evidence; timing still decides
        return None
    match = _HITS.search(reply.text) if reply.status == 200 else None
    return float(match.group(1)) if match else None


async def _cache_check(stub: Any, http: Target | None, deadline: float) -> list[Check]:
    # A text nobody asked for before, so the first call is a real synthesis.
    text = f"Welcome check number {uuid.uuid4().int % 10000}."
    cold = await speak(stub, text, deadline)
    hits_before = await _cache_hits(http)
    warm = await speak(stub, text, deadline)
    hits_after = await _cache_hits(http)
    same = [r.SerializeToString() for r in cold.responses] == [
        r.SerializeToString() for r in warm.responses
    ]
    first, repeat = f"{cold.total_s * 1000:.1f}", f"{warm.total_s * 1000:.1f}"
    timing = say(f"first {first} ms, repeat {repeat} ms", f"первый {first} мс, повтор {repeat} мс")
    if hits_before is not None and hits_after is not None:
        ok = hits_after > hits_before
        evidence = say("metric cache=hit grew", "метрика cache=hit выросла")
    else:
        # Without /metrics, the repeat must not be slower (small jitter allowed).
        ok, evidence = warm.total_s <= cold.total_s * 1.2 + 0.005, say("by timing", "по времени")
    checks = format_checks("text", cold)
    checks.append(
        verdict(
            "welcome.cache",
            ok and same,
            say(
                f"Cache: the repeat came from the cache ({evidence}); {timing}",
                f"Кэш: повтор отдан из кэша ({evidence}); {timing}",
            ),
            say(
                f"Cache: the repeat was not cached or differs (identical={same}); {timing}",
                f"Кэш: повтор не из кэша или отличается (одинаковые={same}); {timing}",
            ),
        )
    )
    return checks


async def run_welcome(grpc_target: Target, report: Report, http: Target | None = None) -> Report:
    """Default greeting and an arbitrary text; ``http`` (optional) confirms cache hits."""
    channel = grpc_target.channel()
    stub = stub_for(channel)
    try:
        report.step(
            say(
                "Testing the default greeting (empty text)",
                "Тестирование приветствия по умолчанию (пустой text)",
            )
        )
        try:
            greeting = await speak(stub, "", grpc_target.timeout)
        except grpc.aio.AioRpcError as exc:
            report.add(failed("welcome.greeting", f"GenerateWelcomeAudio: {exc.code().name}"))
        else:
            report.add(*format_checks("greeting", greeting))
        report.step(
            say("Testing any text and the cache", "Тестирование произвольного текста и кэша")
        )
        await report.run("welcome.cache", _cache_check(stub, http, grpc_target.timeout))
    finally:
        await channel.close()
    return report
