#!/usr/bin/env python3
"""Benchmark: what the server adds on the way to the first audio byte, and what pipelining buys.

    python server/scripts/bench_turn.py [--duration 8] [--write docs/BENCHMARKS.md]

Starts a real server process on loopback with the scripted providers at set latencies, drives it
over gRPC, and prints:
  1. server-added latency to the first audio byte (client-measured time to first audio minus
     the scripted LLM's first-token delay and the scripted TTS's first-chunk delay), p50/p95/p99,
     at 1 and at 50 concurrent turns;
  2. the total time of a 6-sentence turn where LLM and TTS take about as long as each other,
     pipelined (the server as it is) versus one after the other (LLM to the end, then TTS of
     every sentence), and their ratio.
Traffic goes to 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
import grpc
from benchlib import Tally, percentile, run_turn, running_server, write_section

from nexy.config import ScriptedLLMSettings, ScriptedTTSSettings
from nexy.providers.llm.base import LLMRequest
from nexy.providers.llm.scripted import ScriptedLLM
from nexy.providers.tts.base import Voice
from nexy.providers.tts.scripted import ScriptedTTS, scripted_duration
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc
from nexy.turn.segment import SentenceSegmenter

FIRST_TOKEN_MS = 50.0
FIRST_CHUNK_MS = 20.0
SIX_SENTENCES = (
    "The weather today is mild and sunny. "
    "A light breeze comes from the west. "
    "Temperatures stay near twenty degrees. "
    "Clouds may gather in the late evening. "
    "There is little chance of any rain. "
    "Tomorrow looks much the same as today."
)


async def added_latency(concurrency: int, duration: float, tally: Tally) -> list[float]:
    """Closed loop: `concurrency` clients issue turns back to back for `duration` seconds.

    Failed turns are counted in ``tally`` and left out of the latencies."""
    env = {
        "NEXY_LLM__PROVIDER": "scripted",
        "NEXY_TTS__PROVIDER": "scripted",
        "NEXY_LLM__SCRIPTED__REPLY": '{"text": "Sure. It is forty two."}',
        "NEXY_LLM__SCRIPTED__FIRST_TOKEN_MS": str(FIRST_TOKEN_MS),
        "NEXY_LLM__SCRIPTED__CHUNK_CHARS": "1000",
        "NEXY_TTS__SCRIPTED__FIRST_CHUNK_MS": str(FIRST_CHUNK_MS),
        # Audio is produced in real time, as a streaming engine does, so 50 concurrent turns are
        # 50 users listening at once (not 50 back-to-back bursts).
        "NEXY_TTS__SCRIPTED__REALTIME_FACTOR": "1.0",
    }
    floor = (FIRST_TOKEN_MS + FIRST_CHUNK_MS) / 1000
    added: list[float] = []
    async with running_server(env) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = pb_grpc.StreamingServiceStub(ch)
        tally.add(await run_turn(stub, "warm up"))
        stop_at = time.monotonic() + duration

        async def client() -> None:
            await asyncio.sleep(random.uniform(0, 0.5))
            for _ in range(10_000):  # bounded; the deadline ends it first
                if time.monotonic() >= stop_at:
                    return
                timing = await run_turn(stub, "what is the answer?")
                if tally.add(timing) and timing.first_audio is not None:
                    added.append(timing.first_audio - floor)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return added


async def pipelining(rounds: int, tally: Tally) -> tuple[float, float, float, float]:
    """(pipelined total, LLM alone, TTS alone, sequential total) in seconds, medians."""
    llm_settings = ScriptedLLMSettings(
        reply=f'{{"text": "{SIX_SENTENCES}"}}',
        first_token_ms=50,
        tokens_per_second=100,
        chunk_chars=4,
    )
    llm_alone, sentences = await _llm_alone(llm_settings)
    # Calibrate the TTS so that speaking the six sentences takes as long as generating them.
    audio_seconds = sum(scripted_duration(s) for s in sentences)
    first_chunk_ms = 20.0
    factor = (llm_alone - len(sentences) * first_chunk_ms / 1000) / audio_seconds
    tts_settings = ScriptedTTSSettings(first_chunk_ms=first_chunk_ms, realtime_factor=factor)
    env = {
        "NEXY_LLM__PROVIDER": "scripted",
        "NEXY_TTS__PROVIDER": "scripted",
        "NEXY_LLM__SCRIPTED__REPLY": llm_settings.reply,
        "NEXY_LLM__SCRIPTED__FIRST_TOKEN_MS": str(llm_settings.first_token_ms),
        "NEXY_LLM__SCRIPTED__TOKENS_PER_SECOND": str(llm_settings.tokens_per_second),
        "NEXY_LLM__SCRIPTED__CHUNK_CHARS": str(llm_settings.chunk_chars),
        "NEXY_TTS__SCRIPTED__FIRST_CHUNK_MS": str(tts_settings.first_chunk_ms),
        "NEXY_TTS__SCRIPTED__REALTIME_FACTOR": str(tts_settings.realtime_factor),
    }
    pipelined: list[float] = []
    async with running_server(env) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = pb_grpc.StreamingServiceStub(ch)
        tally.add(await run_turn(stub, "warm up"))
        for _ in range(rounds):
            turn = await run_turn(stub, "weather?")
            if tally.add(turn):
                pipelined.append(turn.total)
    llm_times, tts_times = [], []
    for _ in range(rounds):
        llm_times.append((await _llm_alone(llm_settings))[0])
        tts_times.append(await _tts_alone(tts_settings, sentences))
    llm, tts = statistics.median(llm_times), statistics.median(tts_times)
    return statistics.median(pipelined), llm, tts, llm + tts


async def _llm_alone(settings: ScriptedLLMSettings) -> tuple[float, list[str]]:
    llm = ScriptedLLM(settings)
    segmenter = SentenceSegmenter(target_chars=1)
    started = time.perf_counter()
    sentences: list[str] = []
    async for fragment in llm.stream(LLMRequest(system="", user="", prompt="")):
        sentences += segmenter.push(fragment)
    sentences += segmenter.flush()
    return time.perf_counter() - started, sentences


async def _tts_alone(settings: ScriptedTTSSettings, sentences: list[str]) -> float:
    tts = ScriptedTTS(settings)
    started = time.perf_counter()
    for sentence in sentences:
        async for _ in tts.synthesize(sentence, Voice()):
            pass
    return time.perf_counter() - started


def report(lat1: list[float], lat50: list[float], pipe: tuple[float, float, float, float]) -> str:
    def row(name: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return (
            f"| {name} | {len(ms)} | {percentile(ms, 50):.2f} | {percentile(ms, 95):.2f} | "
            f"{percentile(ms, 99):.2f} |"
        )

    pipelined, llm, tts, sequential = pipe
    return "\n".join(
        [
            "### Server-added latency to the first audio byte",
            "",
            f"Scripted LLM first token {FIRST_TOKEN_MS:.0f} ms, scripted TTS first chunk "
            f"{FIRST_CHUNK_MS:.0f} ms; added = client-measured time to first audio minus both.",
            "",
            "| concurrent turns | turns | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|---|",
            row("1", lat1),
            row("50", lat50),
            "",
            "### Pipelining: a 6-sentence reply, LLM and TTS of similar duration",
            "",
            "| measure | seconds |",
            "|---|---|",
            f"| LLM alone (full stream) | {llm:.3f} |",
            f"| TTS alone (6 sentences, one after another) | {tts:.3f} |",
            f"| one after the other (LLM + TTS) | {sequential:.3f} |",
            f"| pipelined turn through the server | {pipelined:.3f} |",
            f"| ratio pipelined / one after the other | {pipelined / sequential:.3f} |",
        ]
    )


async def main_async(args: argparse.Namespace, tally: Tally) -> str:
    lat1 = await added_latency(1, args.duration, tally)
    lat50 = await added_latency(50, args.duration, tally)
    pipe = await pipelining(args.rounds, tally)
    return report(lat1, lat50, pipe)


def main() -> int:
    parser = argparse.ArgumentParser(description="Nexy turn latency and pipelining benchmark")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per latency scenario")
    parser.add_argument("--rounds", type=int, default=5, help="turns for the pipelining median")
    parser.add_argument("--write", type=Path, help="replace the bench_turn section of this file")
    args = parser.parse_args()
    tally = Tally()
    text = asyncio.run(main_async(args, tally))
    print(text)
    if args.write:
        write_section(args.write, text)
    return tally.exit_code()


if __name__ == "__main__":
    sys.exit(main())
