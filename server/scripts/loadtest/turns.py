"""One turn timed chunk by chunk, and the statistics over many such turns.

Other scripts can reuse ``timed_turn`` to see a turn the way a desktop client hears it: time to
first text and audio, the largest gap between audio chunks, and the playback stall a player
with a small jitter buffer would suffer.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
from scripts.benchlib import percentile

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc

# --------------------------------------------------------------------------------------------
# One turn, timed chunk by chunk
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TurnResult:
    """What the client saw of one COMMIT. Times are seconds; ``started`` is from the run start."""

    client: int
    started: float
    status: str  # OK, a gRPC status code name, ERROR_MESSAGE, NO_AUDIO, STREAM_ENDED, ...
    total: float
    first_text: float | None = None
    first_audio: float | None = None
    max_gap: float | None = None  # largest interval between consecutive audio chunks
    max_gap_at: float | None = None  # seconds of audio received before that gap: which segment
    stall: float = 0.0  # playback underrun time with the configured jitter buffer
    chunks: int = 0
    audio_seconds: float = 0.0  # the sum of the chunks' playback lengths
    detail: str = ""
    # (when it ended, seconds from the run start; its length) for every gap over the limit:
    # gaps that line up across many streams at once are pauses of the whole server.
    late_gaps: list[tuple[float, float]] = field(default_factory=list)
    audio_bytes: int = 0  # bytes of audio data received, over ``chunks`` messages

    @property
    def ok(self) -> bool:
        return self.status == "OK"


REFUSED = "RESOURCE_EXHAUSTED"  # the status of a turn the server had no room for


def _chunk_seconds(chunk: pb.AudioChunk) -> float:
    """Playback length of one audio chunk (16-bit PCM, as the server sends)."""
    # The proto carries the dtype; anything else than int16 would be a contract change, so only
    # the sample width is derived from it and everything unknown is read as 2 bytes.
    width = 4 if chunk.dtype in ("float32", "int32") else 2
    rate = chunk.sample_rate or 48000
    return len(chunk.audio_data) / (width * rate * max(1, chunk.channels))


def playback_stall(arrivals: list[float], durations: list[float], prebuffer: float) -> float:
    """Seconds a player would sit silent, starting ``prebuffer`` s after the first chunk arrives.

    The gap alone overstates trouble when a burst of queued audio precedes it, and understates it
    when many slightly late chunks add up; a player's clock is the honest judge of starvation.
    """
    if not arrivals:
        return 0.0
    play_until = arrivals[0] + prebuffer  # playback position (wall time) the buffer reaches
    stalled = 0.0
    for arrival, duration in zip(arrivals, durations, strict=True):
        if arrival > play_until:
            stalled += arrival - play_until
            play_until = arrival
        play_until += duration
    return stalled


async def timed_turn(
    stub: pb_grpc.StreamingServiceStub,
    prompt: str,
    hardware_id: str,
    *,
    client: int,
    run_start: float,
    deadline_s: float,
    prebuffer: float,
    gap_limit: float,
) -> TurnResult:
    """One COMMIT as the desktop client sends it; every response is timestamped on arrival."""
    request = pb.StreamRequest(
        prompt=prompt,
        hardware_id=hardware_id,
        session_id=str(uuid.uuid4()),
        phase=pb.REQUEST_PHASE_COMMIT,
    )
    started = time.perf_counter()
    first_text: float | None = None
    arrivals: list[float] = []
    durations: list[float] = []
    audio_bytes = 0
    status, detail = "STREAM_ENDED", ""
    try:
        async for response in stub.StreamAudio(request, timeout=deadline_s):
            now = time.perf_counter()
            kind = response.WhichOneof("content")
            if kind == "audio_chunk":
                arrivals.append(now)
                durations.append(_chunk_seconds(response.audio_chunk))
                audio_bytes += len(response.audio_chunk.audio_data)
            elif kind == "text_chunk" and first_text is None:
                first_text = now - started
            elif kind == "end_message":
                status = "OK"
                break
            elif kind == "error_message":
                # Read on to the status that follows: it says why (RESOURCE_EXHAUSTED = refused).
                status, detail = "ERROR_MESSAGE", response.error_message[:200]
    except grpc.aio.AioRpcError as exc:
        status, detail = exc.code().name, (exc.details() or detail)[:200]
    except asyncio.CancelledError:
        # The drain deadline cancelled this turn: record it so that nothing silently vanishes.
        status = "CANCELLED_BY_TEST"
    total = time.perf_counter() - started
    if status == "OK" and not arrivals:
        status = "NO_AUDIO"
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    worst = max(range(len(gaps)), key=gaps.__getitem__) if gaps else None
    late = [
        (round(arrivals[i + 1] - run_start, 4), round(gap, 4))
        for i, gap in enumerate(gaps)
        if gap > gap_limit
    ]
    return TurnResult(
        client=client,
        started=started - run_start,
        status=status,
        total=total,
        first_text=first_text,
        first_audio=arrivals[0] - started if arrivals else None,
        max_gap=gaps[worst] if worst is not None else None,
        max_gap_at=sum(durations[: worst + 1]) if worst is not None else None,
        stall=playback_stall(arrivals, durations, prebuffer),
        chunks=len(arrivals),
        audio_seconds=sum(durations),
        detail=detail,
        late_gaps=late,
        audio_bytes=audio_bytes,
    )


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    """``benchlib.percentile`` (nearest rank), but None for an empty list: JSON has no NaN."""
    return percentile(values, q) if values else None


def distribution_ms(values: list[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99 and max in milliseconds."""
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50": pct(ms, 50),
        "p95": pct(ms, 95),
        "p99": pct(ms, 99),
        "max": max(ms) if ms else None,
    }


def summarize_turns(results: list[TurnResult], gap_limit: float) -> dict[str, Any]:
    """Latency distributions over successful turns, and every outcome by status."""
    ok = [r for r in results if r.ok]
    gaps = [r.max_gap for r in ok if r.max_gap is not None]
    return {
        "turns": len(results),
        "ok": len(ok),
        "by_status": dict(Counter(r.status for r in results).most_common()),
        "first_text_ms": distribution_ms([r.first_text for r in ok if r.first_text is not None]),
        "first_audio_ms": distribution_ms([r.first_audio for r in ok if r.first_audio is not None]),
        "max_gap_ms": distribution_ms(gaps),
        "turns_gap_over_limit": sum(1 for g in gaps if g > gap_limit),
        "stall_ms": distribution_ms([r.stall for r in ok]),
        "turns_with_stall": sum(1 for r in ok if r.stall > 0.0005),
        "turn_total_ms": distribution_ms([r.total for r in ok]),
        # Refused turns: how long a caller beyond capacity waited for its RESOURCE_EXHAUSTED.
        "refused_ms": distribution_ms([r.total for r in results if r.status == REFUSED]),
        "refused_by_detail": dict(
            Counter(r.detail.split(":")[0] for r in results if r.status == REFUSED).most_common()
        ),
        "audio_seconds_mean": (sum(r.audio_seconds for r in ok) / len(ok)) if ok else None,
        "chunks_mean": (sum(r.chunks for r in ok) / len(ok)) if ok else None,
        "audio_bytes_per_chunk_mean": (
            sum(r.audio_bytes for r in ok) / sum(r.chunks for r in ok)
            if any(r.chunks for r in ok)
            else None
        ),
        # Every turn, failed ones too: the server's CPU over the run went to all of them.
        "audio_seconds_total": sum(r.audio_seconds for r in results),
        "chunks_total": sum(r.chunks for r in results),
    }


def pause_windows(
    results: list[TurnResult], window: float = 0.25, top: int = 5
) -> list[dict[str, float]]:
    """The moments when the most streams had an over-limit gap end at once.

    One stream's late chunk is scheduling noise; dozens ending their gaps in the same quarter
    second mean the whole server (its event loop) stopped for that long.

    ``streams`` counts streams (turns), not gaps: a stream with several over-limit gaps ending
    in one window counts once there. ``median_gap_ms`` is likewise taken over one value per
    stream, its largest gap ending in that window.
    """
    buckets: dict[int, dict[int, float]] = {}  # window -> {turn's position: its largest gap}
    for position, r in enumerate(results):
        for when, gap in r.late_gaps:
            worst = buckets.setdefault(int(when / window), {})
            worst[position] = max(gap, worst.get(position, gap))
    ranked = sorted(buckets.items(), key=lambda item: -len(item[1]))[:top]
    return [
        {
            "t": round(index * window, 2),
            "streams": len(gaps),
            "median_gap_ms": round(statistics.median(gaps.values()) * 1000, 1),
        }
        for index, gaps in sorted(ranked)
    ]


def per_second_latency(results: list[TurnResult], seconds: int) -> dict[str, list[float | None]]:
    """p95 first audio by the second the first audio arrived; p99 max gap by completion second."""
    first: list[list[float]] = [[] for _ in range(seconds)]
    gaps: list[list[float]] = [[] for _ in range(seconds)]
    for r in results:
        if r.first_audio is not None:
            second = int(r.started + r.first_audio)
            if 0 <= second < seconds:
                first[second].append(r.first_audio * 1000)
        if r.max_gap is not None:
            second = int(r.started + r.total)
            if 0 <= second < seconds:
                gaps[second].append(r.max_gap * 1000)
    return {
        "first_audio_p95_ms": [pct(v, 95) for v in first],
        "max_gap_p99_ms": [pct(v, 99) for v in gaps],
    }


def turn_records(results: list[TurnResult]) -> list[dict[str, Any]]:
    """Per-turn rows for the JSON file, rounded so that 10,000 turns stay a few MB."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 5)
        if isinstance(value, list | tuple):
            return [rounded(v) for v in value]
        return value

    return [{k: rounded(v) for k, v in asdict(r).items() if v not in ("", [])} for r in results]
