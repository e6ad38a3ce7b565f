"""A real ``nexy-server serve`` child process on free loopback ports, for the smoke level.

The process gets its own temporary data folder (database, outbox, update feed), its log goes
to a file the interceptor check can read, and it is stopped with SIGTERM like in production.
``SMOKE_ENV`` makes it deterministic and quick to probe: scripted providers (the LLM echoes the
prompt at a fixed pace, so a long prompt is a slow turn) and short, small limits.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nexy.toolkit.lang import say

SMOKE_ENV: dict[str, str] = {
    "NEXY_LLM__PROVIDER": "scripted",
    "NEXY_LLM__SCRIPTED__MODE": "echo",
    # 8 characters 40 times a second: a 2400-character prompt keeps a turn busy for ~7 s,
    # "Hello" and other intents are answered at once.
    "NEXY_LLM__SCRIPTED__TOKENS_PER_SECOND": "40",
    "NEXY_LLM__SCRIPTED__CHUNK_CHARS": "8",
    "NEXY_LLM__INTENTS__ENABLED": "true",
    "NEXY_TTS__PROVIDER": "scripted",
    "NEXY_LIMITS__MAX_CONCURRENT_TURNS": "8",
    "NEXY_LIMITS__MAX_TURNS_PER_DEVICE": "2",
    "NEXY_LIMITS__DEVICE_BURST": "4",
    "NEXY_LIMITS__DEVICE_REQUESTS_PER_MINUTE": "30",
    "NEXY_LIMITS__IDLE_TIMEOUT_SECONDS": "2",
    "NEXY_LOGGING__LEVEL": "INFO",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class LocalServer:
    """A started child server: its ports, data folder and log file."""

    grpc_port: int
    http_port: int
    data: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _ready(http_port: int) -> bool:
    try:
        url = f"http://127.0.0.1:{http_port}/ready"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200 and json.load(response).get("ready"))
    except (OSError, urllib.error.URLError, ValueError):
        return False


def wait_ready(server: LocalServer, limit_s: float) -> None:
    """Return once /ready answers 200; RuntimeError (with the log's tail) if it never does."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                say("the server exited during start-up", "сервер завершился при запуске")
                + f":\n{server.log_tail()}"
            )
        if _ready(server.http_port):
            return
        time.sleep(0.1)
    raise RuntimeError(
        say(
            f"the server was not ready within {limit_s:.0f} s",
            f"сервер не стал готов за {limit_s:.0f} с",
        )
        + f":\n{server.log_tail()}"
    )


def spawn(
    data: Path,
    env: Mapping[str, str] | None = None,
    *,
    ports: tuple[int, int] | None = None,
    cwd: Path | None = None,
) -> LocalServer:
    """Start ``nexy-server serve`` on the data folder (SMOKE_ENV, then ``env``); not awaited.

    ``ports`` (gRPC, HTTP) lets a restarted server come back where clients expect it. The log
    file is appended to, so one file tells the story of every restart.
    """
    log_path = data / "server.log"
    grpc_port, http_port = ports or (free_port(), free_port())
    command = [sys.executable, "-m", "nexy.cli", "serve", "--host", "127.0.0.1"]
    command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    full_env = {
        **os.environ,
        **SMOKE_ENV,
        "NEXY_STORAGE__URL": f"sqlite+aiosqlite:///{data}/nexy.db",
        "NEXY_STORAGE__OUTBOX_PATH": str(data / "outbox.db"),
        "NEXY_UPDATES__FOLDER": str(data / "updates"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command, env=full_env, cwd=cwd or data, stdout=log_file, stderr=subprocess.STDOUT
        )
    return LocalServer(grpc_port, http_port, data, log_path, process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, the graceful path production uses; SIGKILL if it has not ended in 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def local_server(
    env: Mapping[str, str] | None = None,
    *,
    ready_timeout: float = 120.0,
    cwd: Path | None = None,
) -> Iterator[LocalServer]:
    """Start ``nexy-server serve`` (SMOKE_ENV, then ``env``), yield it once /ready, stop it."""
    data = Path(tempfile.mkdtemp(prefix="nexy-smoke-"))
    server = spawn(data, env, cwd=cwd)
    try:
        wait_ready(server, ready_timeout)
        yield server
    finally:
        stop(server.process)
        shutil.rmtree(data, ignore_errors=True)
