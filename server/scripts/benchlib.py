"""Shared pieces of the benchmark scripts: a real server process, percentiles, report files."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from nexy.toolkit.local_server import stop as stop_server
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "server"))  # the nexy package
HARDWARE_ID = "BENCH-0000-0000-0000-000000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def running_server(env: dict[str, str], ready_timeout: float = 60) -> AsyncIterator[int]:
    """A `nexy-server serve` child process; yields its gRPC port once /ready answers 200."""
    async with running_server_process(env, ready_timeout) as server:
        yield server.grpc_port


async def _wait_ready(http_port: int, process: subprocess.Popen[bytes], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("server exited during start-up")
            try:
                async with http.get(f"http://127.0.0.1:{http_port}/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server did not become ready in {limit_s:.0f} s")


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank: the smallest measured value with at least ``pct`` % of them at or below it.

    That is rank ceil(pct / 100 * n), clamped to 1..n; never an interpolation. NaN when nothing
    was measured (all failed), so the report still prints.
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def write_section(path: Path, body: str, name: str = "bench_turn") -> None:
    """Replace the text between <!-- NAME:begin --> and <!-- NAME:end --> (or append it)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body}\n{end}"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current, encoding="utf-8")


@dataclass
class Turn:
    first_audio: float | None
    total: float
    text: str
    action: str
    ended: str


def turn_failed(turn: Turn) -> bool:
    """Whether a turn went wrong: it ended in an error, was cut off, or said nothing."""
    return turn.ended != "end_message" or turn.first_audio is None


def exit_code(failed: int, total: int, what: str = "turns") -> int:
    """The benchmark's exit status: 0 when nothing failed, else 1 with one line on stderr.

    Numbers measured over failed turns look fine and mean nothing, so a run with any failure
    must not pass for a good one in CI or a shell loop.
    """
    if not failed:
        return 0
    print(f"{failed} of {total} {what} failed", file=sys.stderr)
    return 1


@dataclass
class Tally:
    """How many turns a benchmark ran and how many failed: its exit status."""

    turns: int = 0
    failed: int = 0

    def add(self, turn: Turn) -> bool:
        """Count ``turn``; True when it went well (only such turns may be measured)."""
        bad = turn_failed(turn)
        self.turns += 1
        self.failed += bad
        return not bad

    def exit_code(self) -> int:
        return exit_code(self.failed, self.turns)


async def run_turn(
    stub: pb_grpc.StreamingServiceStub, prompt: str, hardware_id: str | None = None
) -> Turn:
    """One COMMIT as the desktop client sends it, timed from request to each milestone.

    Each turn comes from its own device unless told otherwise: a benchmark measures the server,
    not its per-device rate limits.
    """
    request = pb.StreamRequest(
        prompt=prompt,
        hardware_id=hardware_id or f"{HARDWARE_ID[:-12]}{uuid.uuid4().hex[:12].upper()}",
        session_id=str(uuid.uuid4()),
        phase=pb.REQUEST_PHASE_COMMIT,
    )
    started = time.perf_counter()
    first_audio, text, action, ended = None, "", "", ""
    async for response in stub.StreamAudio(request, timeout=60):
        kind = response.WhichOneof("content")
        if kind == "audio_chunk" and first_audio is None:
            first_audio = time.perf_counter() - started
        elif kind == "text_chunk":
            text += response.text_chunk
        elif kind == "action_message":
            action = response.action_message.action_json
        elif kind in ("end_message", "error_message"):
            ended = kind
            break
    return Turn(first_audio, time.perf_counter() - started, text, action, ended)


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """Where a spawned server listens, and its process id (for RSS and CPU sampling)."""

    grpc_port: int
    http_port: int
    pid: int


@asynccontextmanager
async def running_server_process(
    env: dict[str, str], ready_timeout: float = 60
) -> AsyncIterator[ServerProcess]:
    """A `nexy-server serve` child process with its own temp storage, once /ready answers 200.

    Yields both ports and the pid: load tests read ``/status`` and ``/metrics`` and the RSS.
    """
    grpc_port, http_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "nexy.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(http_port),
    ]
    data = tempfile.mkdtemp(prefix="nexy-bench-")  # the run's own database and outbox
    full_env = {
        **os.environ,
        "NEXY_LOGGING__LEVEL": "WARNING",
        # Benchmarks run their concurrent turns over one channel, i.e. one connection: the
        # per-connection cap (4) would refuse most of them and measure admission instead.
        "NEXY_LIMITS__MAX_TURNS_PER_CONNECTION": "0",
        "NEXY_STORAGE__URL": f"sqlite+aiosqlite:///{data}/nexy.db",
        "NEXY_STORAGE__OUTBOX_PATH": f"{data}/outbox.db",
        # This checkout's code, not whatever the venv's editable install points at: a benchmark
        # run from a second checkout (to compare two versions) must start its own server.
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "server"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        **env,
    }
    process = subprocess.Popen(command, env=full_env, cwd=ROOT)  # noqa: ASYNC220 - start-up only
    try:
        await _wait_ready(http_port, process, ready_timeout)
        yield ServerProcess(grpc_port, http_port, process.pid)
    finally:
        # A server stuck in shutdown must not outlive the test (it holds ports and memory).
        stop_server(process)
        shutil.rmtree(data, ignore_errors=True)
