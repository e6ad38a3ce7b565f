"""Where the load test sends its turns: a checked loopback target or a spawned server.

A load generator must never be aimed at someone else's machine by accident, so every address
goes through ``require_loopback``. A spawned server runs the scripted providers with the pacing
given on the command line and with limits that keep admission control out of the measurement.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from scripts.benchlib import running_server_process

from nexy.providers.tts.scripted import scripted_duration

from .samplers import find_listener_pid

LOOPBACK_NAMES = frozenset({"localhost"})


def require_loopback(host: str) -> str:
    """Return ``host`` if it is loopback (127.0.0.0/8, ::1, localhost); raise otherwise.

    Names other than ``localhost`` are refused without resolving them: a DNS answer can point
    anywhere, and a load generator must never be aimed at someone else's machine by accident.
    """
    bare = host.strip().strip("[]")
    if bare.lower() in LOOPBACK_NAMES:
        return bare
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        raise ValueError(f"refusing non-loopback target host {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"refusing non-loopback target host {host!r}")
    return bare


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[::1]:PORT`` into a checked loopback host and a port."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"target must be HOST:PORT, got {text!r}")
    return require_loopback(host), int(port_text)


def grpc_address(host: str, port: int) -> str:
    """The address string grpc expects (IPv6 literals in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Pacing:
    """The scripted providers' knobs for a spawned server."""

    reply: str
    llm_first_token_ms: float
    llm_chunks_per_second: float
    llm_chunk_chars: int
    tts_first_chunk_ms: float
    tts_realtime_factor: float

    def audio_seconds(self) -> float:
        # Approximate: the server splits the reply into segments roughly at sentence ends.
        sentences = [s for s in self.reply.replace("?", ".").replace("!", ".").split(".") if s]
        return sum(scripted_duration(s + ".") for s in sentences)


@dataclass(slots=True)
class Target:
    """Where the load goes, and what the samplers may look at."""

    host: str
    grpc_port: int
    http_port: int | None
    pid: int | None
    spawned: bool


def pacing_of(args: argparse.Namespace) -> Pacing:
    return Pacing(
        reply=args.reply,
        llm_first_token_ms=args.llm_first_token_ms,
        llm_chunks_per_second=args.llm_chunks_per_second,
        llm_chunk_chars=args.llm_chunk_chars,
        tts_first_chunk_ms=args.tts_first_chunk_ms,
        tts_realtime_factor=args.tts_realtime_factor,
    )


def spawn_env(args: argparse.Namespace, pacing: Pacing) -> dict[str, str]:
    """Settings of the spawned server: scripted providers, limits out of the test's way."""
    return {
        "NEXY_LLM__PROVIDER": "scripted",
        "NEXY_TTS__PROVIDER": "scripted",
        "NEXY_LLM__SCRIPTED__REPLY": json.dumps({"text": pacing.reply}),
        "NEXY_LLM__SCRIPTED__FIRST_TOKEN_MS": str(pacing.llm_first_token_ms),
        "NEXY_LLM__SCRIPTED__TOKENS_PER_SECOND": str(pacing.llm_chunks_per_second),
        "NEXY_LLM__SCRIPTED__CHUNK_CHARS": str(pacing.llm_chunk_chars),
        "NEXY_TTS__SCRIPTED__FIRST_CHUNK_MS": str(pacing.tts_first_chunk_ms),
        "NEXY_TTS__SCRIPTED__REALTIME_FACTOR": str(pacing.tts_realtime_factor),
        # Local intents would answer some prompts without the LLM; every turn must take one path.
        "NEXY_LLM__INTENTS__ENABLED": "false",
        "NEXY_LOGGING__LEVEL": "WARNING",
        # The test measures the pipeline, not admission control: no limit may refuse its turns.
        "NEXY_LIMITS__MAX_CONCURRENT_TURNS": str(max(300, 2 * args.concurrency + 10)),
        "NEXY_LIMITS__MAX_TURNS_PER_DEVICE": "4",
        "NEXY_LIMITS__DEVICE_BURST": "100000",
        "NEXY_LIMITS__DEVICE_REQUESTS_PER_MINUTE": "1000000",
        "NEXY_LIMITS__IDLE_TIMEOUT_SECONDS": "300",
        # Every simulated client comes from this one address, like streams behind a proxy.
        "NEXY_LIMITS__MAX_TURNS_PER_ADDRESS": "0",
        # Experiments (e.g. another wire sample rate) override the defaults above.
        **dict(item.split("=", 1) for item in args.server_env),
    }


@asynccontextmanager
async def acquire_target(args: argparse.Namespace, pacing: Pacing) -> AsyncIterator[Target]:
    """A spawned server (default) or the checked ``--target``."""
    if args.target is None:
        async with running_server_process(spawn_env(args, pacing)) as server:
            yield Target("127.0.0.1", server.grpc_port, server.http_port, server.pid, True)
        return
    host, port = parse_target(args.target)
    pid = args.pid if args.pid is not None else find_listener_pid(port)
    yield Target(require_loopback(host), port, args.http_port, pid, False)
