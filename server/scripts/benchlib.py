"""Shared pieces of the benchmark scripts: a real server process, percentiles, report files."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def running_server(env: dict[str, str], ready_timeout: float = 60) -> AsyncIterator[int]:
    """A `nexy-server serve` child process; yields its gRPC port once /ready answers 200."""
    grpc_port, http_port = _free_port(), _free_port()
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
    data = tempfile.mkdtemp(prefix="nexy-bench-")  # the benchmark's own database and outbox
    full_env = {
        **os.environ,
        "NEXY_LOGGING__LEVEL": "WARNING",
        "NEXY_STORAGE__URL": f"sqlite+aiosqlite:///{data}/nexy.db",
        "NEXY_STORAGE__OUTBOX_PATH": f"{data}/outbox.db",
        **env,
    }
    process = subprocess.Popen(command, env=full_env, cwd=ROOT)  # noqa: ASYNC220 - start-up only
    try:
        await _wait_ready(http_port, process, ready_timeout)
        yield grpc_port
    finally:
        process.terminate()
        process.wait(timeout=15)
        shutil.rmtree(data, ignore_errors=True)


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
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
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
