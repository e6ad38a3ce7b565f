"""The gRPC floor: what streaming audio messages costs a bare ``grpc.aio`` server and its reader.

One implementation for ``bench_grpc_floor.py`` (its command line) and ``load_test.py --floor``.
A bare ``grpc.aio`` server in a child process (``bench_grpc_floor.py --serve PORT``, started by
path, so it works from any directory) implements ``StreamAudio`` by writing the same pre-built
audio message of ``message_bytes`` every ``interval``; this process reads ``streams`` such streams
at once through one channel. Both sides' CPU time is read around the run. A second run with the
same streams and sleeps but no writes gives the cost of the sleeping alone; ``net_cost``
subtracts it, which leaves the price of one message on each side.

``per_audio_second`` is the pure arithmetic of ``load_test.py --floor``: the server's CPU per
second of audio it delivered next to the floor's for the same messages and for 100 ms messages.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil
from scripts.benchlib import free_port

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc

SCRIPT = Path(__file__).resolve().parents[1] / "bench_grpc_floor.py"  # the child's entry point
RATE = 48000  # the wire's sample rate; 16-bit mono
WIRE_BYTES = 9600  # 100 ms at 48 kHz: one full wire chunk, what bench_grpc_floor.py sends
WIRE_SECONDS = WIRE_BYTES / (2 * RATE)
MIN_BYTES, MAX_BYTES = 2, 1_000_000
CAP_STREAMS, CAP_MESSAGES = 2000, 10000
INTERVAL_S = 0.05  # bench_grpc_floor.py's default pause between writes


def audio_message(message_bytes: int) -> pb.StreamResponse:
    """One audio chunk of ``message_bytes`` (even) bytes of 16-bit mono PCM at 48 kHz."""
    samples = message_bytes // 2
    chunk = pb.AudioChunk(
        audio_data=b"\x01\x02" * samples,
        dtype="int16",
        shape=[samples],
        sample_rate=RATE,
        channels=1,
    )
    return pb.StreamResponse(audio_chunk=chunk)


def message_seconds(message_bytes: int) -> float:
    """Playback length of one floor message."""
    return message_bytes / (2 * RATE)


def even_bytes(mean: float) -> int:
    """A mean size in bytes as a floor message size: the nearest even number, within bounds."""
    return min(MAX_BYTES, max(MIN_BYTES, 2 * round(mean / 2)))


class _FloorServicer(pb_grpc.StreamingServiceServicer):
    def __init__(self, messages: int, interval: float, write: bool, message_bytes: int) -> None:
        self._messages, self._interval, self._write = messages, interval, write
        self._message = audio_message(message_bytes)

    async def StreamAudio(  # noqa: N802 - the generated base class fixes the name
        self, request: pb.StreamRequest, context: grpc.aio.ServicerContext
    ) -> None:
        for _ in range(self._messages):
            if self._write:
                await context.write(self._message)
            await asyncio.sleep(self._interval)
        await context.write(pb.StreamResponse(end_message="done"))


async def serve(port: int, messages: int, interval: float, write: bool, message_bytes: int) -> None:
    """The child server: says ``ready`` on stdout, then serves until it is killed."""
    server = grpc.aio.server()
    servicer = _FloorServicer(messages, interval, write, message_bytes)
    pb_grpc.add_StreamingServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def read_streams(port: int, streams: int) -> int:
    """Read ``streams`` streams at once through one channel; the audio messages delivered."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.StreamingServiceStub(channel)
        request = pb.StreamRequest(prompt="floor", hardware_id="bench-floor", session_id="s")

        async def one() -> int:
            # HasField: a message-typed field reads as truthy even when unset (the end message).
            stream = stub.StreamAudio(request)
            return sum([1 async for response in stream if response.HasField("audio_chunk")])

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


@dataclass(frozen=True)
class Run:
    messages: int
    seconds: float
    server_cpu: float
    client_cpu: float


def measure(
    streams: int, messages: int, interval: float, write: bool, message_bytes: int = WIRE_BYTES
) -> Run:
    """One run against a fresh child server; CPU seconds of each side for the whole run."""
    port = free_port()
    command = [sys.executable, str(SCRIPT), "--serve", str(port), "--messages", str(messages)]
    command += ["--interval-ms", str(interval * 1000), "--message-bytes", str(message_bytes)]
    command += [] if write else ["--no-write"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("the floor server did not start")
        server = psutil.Process(child.pid)
        server_before, client_before = server.cpu_times(), time.process_time()
        began = time.perf_counter()
        delivered = asyncio.run(read_streams(port, streams))
        seconds = time.perf_counter() - began
        server_after, client_after = server.cpu_times(), time.process_time()
    finally:
        child.kill()
        child.wait()
    server_cpu = (server_after.user + server_after.system) - (
        server_before.user + server_before.system
    )
    return Run(delivered, seconds, server_cpu, client_after - client_before)


@dataclass(frozen=True)
class Net:
    """CPU µs per delivered message on each side, the no-write run subtracted."""

    server_us: float
    reader_us: float


def net_cost(writes: Run, sleeps: Run) -> Net:
    sent = writes.messages or 1
    return Net(
        (writes.server_cpu - sleeps.server_cpu) / sent * 1e6,
        (writes.client_cpu - sleeps.client_cpu) / sent * 1e6,
    )


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom is not None and bottom > 0 else None


def per_audio_second(
    *,
    server_cpu_s: float | None,
    generator_cpu_s: float | None,
    audio_s: float,
    messages: int,
    same: Net,
    wire: Net,
) -> dict[str, float | None]:
    """CPU ms per second of audio delivered: the server's and generator's against the floor's.

    ``audio_s`` and ``messages`` are what the clients received over the run. A floor's message
    costs ``Net`` µs; the server sent ``messages / audio_s`` messages per second of audio, so the
    floor for the same messages costs that many times its per-message price, and the floor in
    100 ms messages ten times its price. A ratio is None when its floor is not positive (noise).
    """
    if audio_s <= 0:
        return {}
    rate = messages / audio_s
    wire_rate = 1 / WIRE_SECONDS
    server = server_cpu_s * 1000 / audio_s if server_cpu_s is not None else None
    generator = generator_cpu_s * 1000 / audio_s if generator_cpu_s is not None else None
    same_server, same_reader = same.server_us * rate / 1000, same.reader_us * rate / 1000
    wire_server, wire_reader = wire.server_us * wire_rate / 1000, wire.reader_us * wire_rate / 1000
    return {
        "messages_per_audio_s": rate,
        "server_ms": server,
        "generator_ms": generator,
        "floor_same_server_ms": same_server,
        "floor_same_reader_ms": same_reader,
        "ratio_same": _ratio(server, same_server),
        "floor_100ms_server_ms": wire_server,
        "floor_100ms_reader_ms": wire_reader,
        "ratio_100ms": _ratio(server, wire_server),
        "generator_to_reader_same": _ratio(generator, same_reader),
    }


def floor_for_run(
    summary: dict[str, Any], concurrency: int, interval: float = INTERVAL_S
) -> dict[str, Any]:
    """``load_test.py --floor``: both floors after a finished run, and the comparison.

    Streams are the run's concurrency; one floor sends the run's messages (its mean chunks per
    OK turn, each of its mean bytes per chunk), the other the same audio in 100 ms messages.
    """
    chunks, audio = summary["chunks_mean"], summary["audio_seconds_mean"]
    size = summary["audio_bytes_per_chunk_mean"]
    if not chunks or not audio or not size or not summary["audio_seconds_total"]:
        return {"skipped": "no OK turn with audio"}
    streams = min(CAP_STREAMS, max(1, concurrency))
    plans = {
        "same": (round(chunks), even_bytes(size)),
        "100ms": (round(audio / WIRE_SECONDS), WIRE_BYTES),
    }
    floors: dict[str, dict[str, float]] = {}
    nets: dict[str, Net] = {}
    for name, (messages, message_bytes) in plans.items():
        messages = min(CAP_MESSAGES, max(1, messages))
        writes = measure(streams, messages, interval, True, message_bytes)
        sleeps = measure(streams, messages, interval, False, message_bytes)
        nets[name] = net = net_cost(writes, sleeps)
        floors[name] = {
            "streams": streams,
            "messages": messages,
            "message_bytes": message_bytes,
            "expected": streams * messages,
            "delivered": writes.messages,
            "seconds": round(writes.seconds, 2),
            "server_us_per_message": net.server_us,
            "reader_us_per_message": net.reader_us,
            "no_write_server_cpu_s": sleeps.server_cpu,
            "no_write_reader_cpu_s": sleeps.client_cpu,
        }
    return {
        "interval_ms": interval * 1000,
        "audio_s": summary["audio_seconds_total"],
        "messages": summary["chunks_total"],
        "server_cpu_s": summary["server_cpu_s"],
        "generator_cpu_s": summary["generator_cpu_s"],
        "floors": floors,
        **per_audio_second(
            server_cpu_s=summary["server_cpu_s"],
            generator_cpu_s=summary["generator_cpu_s"],
            audio_s=summary["audio_seconds_total"],
            messages=summary["chunks_total"],
            same=nets["same"],
            wire=nets["100ms"],
        ),
    }


def floor_failures(floor: dict[str, Any]) -> tuple[int, int]:
    """(messages missing, messages expected) over both floors: a stream cut short fails."""
    runs = floor.get("floors", {}).values()
    expected = sum(int(f["expected"]) for f in runs)
    return expected - sum(int(f["delivered"]) for f in runs), expected
