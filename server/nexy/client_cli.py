"""``nexy-server ask`` and ``nexy-server welcome``: talk to a running server from a terminal.

``ask`` sends one COMMIT the way the desktop client does and prints the reply text as it
streams, the action, and the timings a user feels (first text, first audio, end); the audio
goes to a WAV file and, with ``--play``, to the first audio player found. ``welcome`` does the
same for GenerateWelcomeAudio. Both are thin: requests, timings and channels come from the
test toolkit, so the checks and this command agree on what a turn is.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import uuid
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from nexy.toolkit.calls import WIRE_RATE, audio_problems, commit, run_turn, stub_for
from nexy.toolkit.connection import DEFAULT_GRPC_PORT, DEFAULT_TIMEOUT, Target, target
from nexy.toolkit.welcome import speak
from nexy.transport.grpc import streaming_pb2 as pb

CLIENT_COMMANDS = ("ask", "welcome")
EXIT_OK, EXIT_SERVER, EXIT_USAGE = 0, 1, 2
DEVICE_FILE = Path(".config") / "nexy" / "device-id"  # under the user's home directory
# First found wins; ffplay needs flags to play without a window and to exit at the end.
PLAYERS: tuple[tuple[str, ...], ...] = (
    ("aplay", "-q"),
    ("paplay",),
    ("afplay",),
    ("ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"),
)


def add_client_commands(commands: Any) -> None:
    """Add ``ask`` and ``welcome`` to the nexy-server command parser."""
    ask = commands.add_parser("ask", help="ask a running server one question, print the reply")
    ask.add_argument("text", help="what the user said")
    ask.add_argument(
        "--device", help=f"hardware_id to ask as (default: a UUID kept in ~/{DEVICE_FILE})"
    )
    welcome = commands.add_parser("welcome", help="have a running server speak a text")
    welcome.add_argument("text", nargs="?", default="", help="text to speak (default: greeting)")
    for sub in (ask, welcome):
        sub.add_argument("--host", default="localhost", help="server host (default localhost)")
        sub.add_argument(
            "--port",
            type=int,
            default=DEFAULT_GRPC_PORT,
            help=f"gRPC port (default {DEFAULT_GRPC_PORT})",
        )
        sub.add_argument(
            "--tls",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="use TLS (default: only when the port is 443)",
        )
        sub.add_argument("--token", help="bearer token, when the server requires auth")
        sub.add_argument(
            "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per call (default 30)"
        )
        sub.add_argument("--wav", type=Path, help="write the audio to this WAV file")
        sub.add_argument("--play", action="store_true", help="play the audio when done")


def run_client_command(args: argparse.Namespace) -> int:
    """Run ``ask`` or ``welcome``: 0 on success, 1 on a server error, 2 on bad arguments."""
    if args.command == "ask" and not args.text.strip():
        return _usage(args.command, "the text is empty")
    if not 0 < args.port < 65536 or args.timeout <= 0:
        return _usage(args.command, "--port must be 1…65535 and --timeout positive")
    where = target(args.host, args.port, args.tls, args.timeout)
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else ()
    try:
        if args.command == "ask":
            device = args.device or stable_device_id(Path.home())
            audio = asyncio.run(_ask(where, args.text, device, metadata))
        else:
            audio = asyncio.run(_welcome(where, args.text, metadata))
    except grpc.aio.AioRpcError as exc:
        return _server_error(args.command, where, exc.code(), exc.details() or "")
    except _TurnFailed as failure:
        return _server_error(args.command, where, failure.code, failure.details)
    return _deliver_audio(args.command, audio, args.wav, args.play)


class _TurnFailed(Exception):
    """The stream ended with an error status (carried to the one place that reports it)."""

    def __init__(self, code: grpc.StatusCode | None, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


async def _ask(
    where: Target, text: str, device: str, metadata: Sequence[tuple[str, str]]
) -> list[pb.AudioChunk]:
    def show(response: pb.StreamResponse) -> None:
        if response.HasField("text_chunk"):
            print(response.text_chunk, end="", flush=True)  # as it arrives, not at the end

    channel = where.channel()
    try:
        request = commit(text, hardware_id=device, session_id=str(uuid.uuid4()))
        result = await run_turn(
            stub_for(channel), request, where.timeout, metadata=metadata, on_response=show
        )
    finally:
        await channel.close()
    if result.text:
        print()
    for action in result.actions:
        print(f"action: {action.action_json}")
    if result.responses:  # a call refused before any message has no timings worth showing
        print(_timings(result.first_text_s, result.first_audio_s, result.total_s))
    if not result.ended:
        raise _TurnFailed(result.code, result.error_message or result.details)
    return result.audio


async def _welcome(
    where: Target, text: str, metadata: Sequence[tuple[str, str]]
) -> list[pb.AudioChunk]:
    channel = where.channel()
    try:
        result = await speak(stub_for(channel), text, where.timeout, metadata)
    finally:
        await channel.close()
    for response in result.responses:
        if response.HasField("metadata"):
            meta = response.metadata
            print(f"method {meta.method}, duration {meta.duration_sec:.2f} s")
    print(f"first message {result.first_s * 1000:.0f} ms, end {result.total_s * 1000:.0f} ms")
    return result.audio


def _timings(first_text: float | None, first_audio: float | None, total: float) -> str:
    def ms(seconds: float | None) -> str:
        return "none" if seconds is None else f"{seconds * 1000:.0f} ms"

    return f"first text {ms(first_text)}, first audio {ms(first_audio)}, end {ms(total)}"


def stable_device_id(home: Path) -> str:
    """This user's device id: made once (upper-case UUID, as the desktop client sends) and kept.

    A stable id lets memory be tried across calls ("remember …", then "what do you remember").
    """
    path = home / DEVICE_FILE
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except OSError:
        stored = ""
    if stored:
        return stored
    device = str(uuid.uuid4()).upper()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(device + "\n", encoding="utf-8")
    except OSError as exc:  # a read-only home still gets an answer, just not a lasting id
        print(f"nexy-server: could not keep the device id in {path}: {exc}", file=sys.stderr)
    return device


def write_wav(path: Path, chunks: Sequence[pb.AudioChunk]) -> float:
    """Write the chunks as a 48 kHz mono 16-bit WAV; the audio's length in seconds."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WIRE_RATE)
        for chunk in chunks:
            out.writeframes(chunk.audio_data)  # int16 little-endian, as WAV wants it
    return sum(len(chunk.audio_data) for chunk in chunks) / 2 / WIRE_RATE


def player_command(wav: Path) -> list[str] | None:
    """The command that plays ``wav`` with the first installed player, or None."""
    for program, *flags in PLAYERS:
        found = shutil.which(program)
        if found is not None:
            return [found, *flags, str(wav)]
    return None


def _deliver_audio(command: str, chunks: list[pb.AudioChunk], wav: Path | None, play: bool) -> int:
    if not chunks:
        if wav is not None or play:
            print("nexy-server: no audio in the reply; nothing written", file=sys.stderr)
        return EXIT_OK
    problems = sorted({problem for chunk in chunks for problem in audio_problems(chunk)})
    if problems:  # still written: hearing the bad audio helps find out what went wrong
        print(f"nexy-server: audio off contract: {'; '.join(problems)}", file=sys.stderr)
    if wav is None and play:
        with tempfile.NamedTemporaryFile(prefix="nexy-", suffix=".wav", delete=False) as tmp:
            wav = Path(tmp.name)
    if wav is not None:
        try:
            seconds = write_wav(wav, chunks)
        except OSError as exc:
            return _usage(command, f"cannot write {wav}: {exc}")
        print(f"audio {seconds:.2f} s written to {wav} (48 kHz mono 16-bit)")
    if play and wav is not None:
        player = player_command(wav)
        if player is None:
            names = ", ".join(program for program, *_ in PLAYERS)
            print(f"nexy-server: no audio player found ({names}); kept {wav}", file=sys.stderr)
        else:
            subprocess.run(player, check=False)  # a player's failure is its own to report
    return EXIT_OK


def _server_error(command: str, where: Target, code: grpc.StatusCode | None, details: str) -> int:
    name = code.name if code is not None else "no status"
    print(f"nexy-server {command}: {where.address}: {name}: {details}", file=sys.stderr)
    return EXIT_SERVER


def _usage(command: str, message: str) -> int:
    print(f"nexy-server {command}: {message}", file=sys.stderr)
    return EXIT_USAGE
