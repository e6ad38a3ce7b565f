"""Requests built the way the desktop client builds them, and what a turn looked like on the wire.

Shared by every suite: the request builders, :func:`run_turn` (one COMMIT read to its end with
timings), and the format/order rules of SPEC §2–§3 as functions returning problem lists, so a
failed check can say exactly what was wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from nexy.toolkit.connection import new_device, new_session
from nexy.toolkit.lang import say
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc

WIRE_RATE = 48000
TERMINAL = ("end_message", "error_message")

# A prompt the local intent path answers at once (no model call): quick turns for rate tests.
QUICK_PROMPT = "Hello"

_STORY = (
    "Please tell me a long and detailed story about a lighthouse keeper on a lonely island, "
    "the storms he saw, the ships he saved and the letters he wrote to his family. "
)
_FILLER = "The sea was calm that night and the lamp kept turning slowly above the dark water. "


def slow_prompt(chars: int = 2400) -> str:
    """A prompt whose reply takes a while: a real model tells a story, an echo model repeats it.

    Backpressure checks need turns that are still running when the next request arrives.
    """
    text = _STORY
    while len(text) < chars:
        text += _FILLER
    return text[:chars].rstrip()


def stub_for(channel: grpc.aio.Channel) -> Any:
    """The StreamingService stub (untyped: the generated module has no type information)."""
    return pb_grpc.StreamingServiceStub(channel)  # type: ignore[no-untyped-call]


def commit(
    prompt: str,
    *,
    hardware_id: str | None = None,
    session_id: str | None = None,
    phase: int = pb.REQUEST_PHASE_COMMIT,
    screenshot: str = "",
) -> pb.StreamRequest:
    """A COMMIT as the client sends it: empty optional strings present, chunk_seq 0."""
    return pb.StreamRequest(
        prompt=prompt,
        screenshot=screenshot,
        hardware_id=new_device() if hardware_id is None else hardware_id,
        session_id=new_session() if session_id is None else session_id,
        phase=phase,  # type: ignore[arg-type]  # an int on purpose: tests send unknown phases
        chunk_seq=0,
        chunk_text="",
    )


def collect(text: str, seq: int, *, hardware_id: str, session_id: str) -> pb.StreamRequest:
    """A COLLECT: the cumulative interim transcript so far."""
    return pb.StreamRequest(
        prompt="",
        screenshot="",
        hardware_id=hardware_id,
        session_id=session_id,
        phase=pb.REQUEST_PHASE_COLLECT,
        chunk_seq=seq,
        chunk_text=text,
    )


@dataclass
class TurnResult:
    """Everything one StreamAudio call returned, with client-side timings in seconds."""

    responses: list[pb.StreamResponse] = field(default_factory=list)
    code: grpc.StatusCode | None = None
    details: str = ""
    first_text_s: float | None = None
    first_audio_s: float | None = None
    total_s: float = 0.0

    @property
    def kinds(self) -> list[str]:
        return [r.WhichOneof("content") or "" for r in self.responses]

    @property
    def text(self) -> str:
        return "".join(r.text_chunk for r in self.responses if r.HasField("text_chunk"))

    @property
    def audio(self) -> list[pb.AudioChunk]:
        return [r.audio_chunk for r in self.responses if r.HasField("audio_chunk")]

    @property
    def actions(self) -> list[pb.ActionMessage]:
        return [r.action_message for r in self.responses if r.HasField("action_message")]

    @property
    def error_message(self) -> str:
        found = [r.error_message for r in self.responses if r.HasField("error_message")]
        return found[-1] if found else ""

    @property
    def ended(self) -> bool:
        """The normal end: status OK and the last message is an end_message."""
        return self.code == grpc.StatusCode.OK and self.kinds[-1:] == ["end_message"]

    def collapsed(self) -> list[str]:
        """The event kinds with runs of the same kind folded: the turn's shape."""
        return [kind for i, kind in enumerate(self.kinds) if i == 0 or self.kinds[i - 1] != kind]

    def is_spoken_turn(self) -> bool:
        """text, its audio, text, its audio, …, then end_message: the shape of a spoken reply."""
        shape = self.collapsed()
        pairs = shape[:-1]
        return (
            shape[-1:] == ["end_message"]
            and len(pairs) >= 2
            and pairs == ["text_chunk", "audio_chunk"] * (len(pairs) // 2)
        )

    def shape(self) -> str:
        """The event sequence with runs folded, e.g. ``text_chunk → audio_chunk×12 → …``."""
        parts: list[list[Any]] = []
        for kind in self.kinds:
            if parts and parts[-1][0] == kind:
                parts[-1][1] += 1
            else:
                parts.append([kind, 1])
        return " → ".join(k if n == 1 else f"{k}×{n}" for k, n in parts) or say(
            "(empty)", "(пусто)"
        )

    def status(self) -> str:
        name = self.code.name if self.code is not None else say("no status", "нет статуса")
        return f"{name} ({self.details})" if self.details else name


async def run_turn(
    stub: Any,
    request: pb.StreamRequest,
    deadline: float = 30.0,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    on_response: Callable[[pb.StreamResponse], None] | None = None,
) -> TurnResult:
    """Send one StreamAudio request and read the stream to its end (or its error status).

    ``on_response`` sees each message as it arrives (``nexy-server ask`` prints text live).
    """
    result = TurnResult()
    started = time.perf_counter()
    call = stub.StreamAudio(request, timeout=deadline, metadata=tuple(metadata))
    try:
        async for response in call:
            elapsed = time.perf_counter() - started
            kind = response.WhichOneof("content")
            if kind == "text_chunk" and result.first_text_s is None:
                result.first_text_s = elapsed
            elif kind == "audio_chunk" and result.first_audio_s is None:
                result.first_audio_s = elapsed
            result.responses.append(response)
            if on_response is not None:
                on_response(response)
        result.code = await call.code()
        result.details = await call.details() or ""
    except grpc.aio.AioRpcError as exc:
        result.code, result.details = exc.code(), exc.details() or ""
    result.total_s = time.perf_counter() - started
    return result


async def first_message(call: Any, wait_s: float) -> pb.StreamResponse | None:
    """The first response of an open call, or None when the stream ended without one."""
    try:
        response = await asyncio.wait_for(call.read(), wait_s)
    except grpc.aio.AioRpcError:
        return None
    return None if response is grpc.aio.EOF else response


async def read_rest(call: Any) -> list[pb.StreamResponse]:
    """Read an open call to its end with ``read()`` (grpc forbids mixing it with ``async for``).

    The final status is left to ``call.code()``; an error status simply ends the list.
    """
    responses: list[pb.StreamResponse] = []
    while True:
        try:
            response = await call.read()
        except grpc.aio.AioRpcError:
            return responses
        if response is grpc.aio.EOF:
            return responses
        responses.append(response)


async def finish_call(call: Any) -> tuple[grpc.StatusCode, str]:
    """Cancel an open call if still running and return its final status."""
    if not call.done():
        call.cancel()
    try:
        return await call.code(), await call.details() or ""
    except asyncio.CancelledError:
        return grpc.StatusCode.CANCELLED, "cancelled"


def audio_problems(chunk: pb.AudioChunk, rate: int = WIRE_RATE) -> list[str]:
    """What makes one audio chunk unplayable for the desktop client (empty: nothing)."""
    problems = []
    size = len(chunk.audio_data)
    if chunk.sample_rate != rate:
        problems.append(
            say(
                f"sample_rate={chunk.sample_rate}, need {rate}",
                f"sample_rate={chunk.sample_rate}, нужно {rate}",
            )
        )
    if chunk.channels != 1:
        problems.append(
            say(f"channels={chunk.channels}, need 1", f"channels={chunk.channels}, нужно 1")
        )
    if chunk.dtype != "int16":
        problems.append(
            say(f"dtype={chunk.dtype!r}, need 'int16'", f"dtype={chunk.dtype!r}, нужно 'int16'")
        )
    if size == 0 or size % 2:
        problems.append(
            say(
                f"length {size} bytes (must be even and non-zero)",
                f"длина {size} байт (нужна чётная и ненулевая)",
            )
        )
    if list(chunk.shape) != [size // 2]:
        shape = list(chunk.shape)
        problems.append(
            say(f"shape={shape}, but {size // 2} samples", f"shape={shape}, а сэмплов {size // 2}")
        )
    if size and not chunk.audio_data.strip(b"\x00"):
        problems.append(say("silence (all zeros)", "тишина (все нули)"))
    return problems


def order_problems(result: TurnResult) -> list[str]:
    """Where the stream breaks the order text → its audio → … → [action] → terminal."""
    kinds = result.kinds
    problems = []
    terminals = [i for i, kind in enumerate(kinds) if kind in TERMINAL]
    if len(terminals) != 1 or terminals[0] != len(kinds) - 1:
        count = len(terminals)
        problems.append(
            say(
                f"{count} terminal messages, need exactly one at the end",
                f"терминальных сообщений {count}, нужно ровно одно в конце",
            )
        )
    body = kinds[: terminals[0]] if terminals else kinds
    if "audio_chunk" in body and "text_chunk" in body:
        if body.index("audio_chunk") < body.index("text_chunk"):
            problems.append(say("audio came before its text", "аудио пришло раньше своего текста"))
    elif "audio_chunk" in body:
        problems.append(say("audio without text", "аудио без текста"))
    actions = [i for i, kind in enumerate(body) if kind == "action_message"]
    if len(actions) > 1:
        problems.append(
            say(
                f"action_message: {len(actions)}, at most one allowed",
                f"action_message: {len(actions)}, допустимо не больше одного",
            )
        )
    if actions and any(k in ("text_chunk", "audio_chunk") for k in body[actions[0] + 1 :]):
        problems.append(
            say("text or audio after action_message", "после action_message пришли текст или аудио")
        )
    if kinds[-1:] == ["end_message"] and not body:
        problems.append(
            say(
                "end_message without text, audio or action",
                "end_message без текста, аудио и действия",
            )
        )
    return problems
