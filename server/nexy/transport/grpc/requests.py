"""Validation of incoming requests, before any work (SPEC §3.1)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from nexy.config import LimitsSettings
from nexy.ids import canonical_device_id, canonical_session_id
from nexy.providers.llm.base import Image
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.usage import UsageRecord

COLLECT = pb.REQUEST_PHASE_COLLECT
COMMIT_PHASES = (pb.REQUEST_PHASE_UNSPECIFIED, pb.REQUEST_PHASE_COMMIT)

MAX_ID_CHARS = 128  # hardware_id, and ReportUsage's session_id, model and source
MAX_NAME_CHARS = 64  # welcome voice and language
MAX_TOKENS = 2**31 - 1  # token_usage columns are 32-bit INTEGER on PostgreSQL
# C0, DEL and C1 controls. PostgreSQL refuses NUL in text, and none belongs in an identifier;
# free text (a prompt) may keep tab and line breaks. Format characters (RTL marks) stay allowed.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NAME = re.compile(r"[A-Za-z0-9_.+\-]*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


class RequestError(ValueError):
    """An invalid request; the message is safe to show the client."""


@dataclass(frozen=True, slots=True)
class WelcomeCall:
    """A GenerateWelcomeAudio request that passed validation (empty fields: the defaults)."""

    text: str
    voice: str
    language: str


@dataclass(frozen=True, slots=True)
class StreamCall:
    """A StreamAudio request that passed validation."""

    hardware_id: str
    session_id: str
    phase: int
    prompt: str
    chunk_text: str
    chunk_seq: int
    screenshot: Image | None


def check_text(name: str, value: str, max_chars: int, *, free_text: bool = False) -> str:
    """``value`` unchanged if it fits ``max_chars`` and holds no control character.

    Only ``free_text`` (prompts, transcripts, welcome text) may contain tab and line breaks.
    """
    if len(value) > max_chars:
        raise RequestError(f"{name} is too long (at most {max_chars} characters)")
    if (_CONTROL_IN_TEXT if free_text else _CONTROL).search(value):
        raise RequestError(f"{name} contains a control character")
    return value


def check_hardware_id(hardware_id: str) -> str:
    value = canonical_device_id(hardware_id)
    if not value or value.lower() == "unknown":
        raise RequestError("hardware_id is required (a non-empty device identifier)")
    return check_text("hardware_id", value, MAX_ID_CHARS)


def check_session_id(session_id: str) -> str:
    """The canonical form, so that every spelling of one session is one session."""
    value = canonical_session_id(session_id)
    if not _UUID.fullmatch(value):
        raise RequestError("session_id is required (a UUID)")
    return value


def check_tokens(name: str, count: int) -> int:
    if not 0 <= count <= MAX_TOKENS:
        raise RequestError(f"{name} must be between 0 and {MAX_TOKENS}")
    return count


def _check_name(name: str, value: str) -> str:
    if len(value) > MAX_NAME_CHARS or not _NAME.fullmatch(value):
        raise RequestError(
            f"{name} must be at most {MAX_NAME_CHARS} letters, digits or the characters _ . + -"
        )
    return value


def parse_welcome_request(request: pb.WelcomeRequest, limits: LimitsSettings) -> WelcomeCall:
    """Check text, voice and language; the session_id is the client's free label, never used."""
    return WelcomeCall(
        text=check_text("text", request.text, limits.max_welcome_chars, free_text=True),
        voice=_check_name("voice", request.voice),
        language=_check_name("language", request.language),
    )


def parse_usage_request(request: pb.UsageRequest) -> UsageRecord:
    """A ReportUsage request as the record to store; every field fits its column."""
    hardware_id = check_hardware_id(request.hardware_id)
    # Optional here, and not always a UUID: bounded and canonical only.
    session_id = check_text("session_id", canonical_session_id(request.session_id), MAX_ID_CHARS)
    return UsageRecord(
        hardware_id=hardware_id,
        session_id=session_id,
        source=check_text("source", request.source, MAX_ID_CHARS),
        input_tokens=check_tokens("input_tokens", request.input_tokens),
        output_tokens=check_tokens("output_tokens", request.output_tokens),
        model=check_text("model", request.model, MAX_ID_CHARS),
    )


def parse_stream_request(request: pb.StreamRequest, limits: LimitsSettings) -> StreamCall:
    """Check a StreamRequest in SPEC order: hardware_id, session_id, phase, sizes."""
    hardware_id = check_hardware_id(request.hardware_id)
    session_id = check_session_id(request.session_id)
    if request.phase != COLLECT and request.phase not in COMMIT_PHASES:
        raise RequestError(f"unknown phase {request.phase} (expected COLLECT or COMMIT)")
    for name, text in (("prompt", request.prompt), ("chunk_text", request.chunk_text)):
        check_text(name, text, limits.max_prompt_chars, free_text=True)
    # Present-but-empty is how the real client says "no screenshot".
    screenshot = None
    if request.HasField("screenshot") and request.screenshot:
        screenshot = decode_screenshot(
            request.screenshot,
            limits.max_screenshot_bytes,
            request.screen_width if request.HasField("screen_width") else None,
            request.screen_height if request.HasField("screen_height") else None,
        )
    return StreamCall(
        hardware_id=hardware_id,
        session_id=session_id,
        phase=request.phase,
        prompt=request.prompt,
        chunk_text=request.chunk_text if request.HasField("chunk_text") else "",
        chunk_seq=request.chunk_seq,
        screenshot=screenshot,
    )


def decode_screenshot(
    data: str, max_bytes: int, width: int | None = None, height: int | None = None
) -> Image:
    """Base64 (no ``data:`` prefix) → an Image, refusing oversized or non-image payloads."""
    # Reject by the encoded length first so an oversized payload is never decoded.
    if len(data) // 4 * 3 > max_bytes + 3:
        raise RequestError(f"screenshot is too large (at most {max_bytes} bytes decoded)")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("screenshot is not valid base64") from None
    if len(raw) > max_bytes:
        raise RequestError(f"screenshot is too large (at most {max_bytes} bytes decoded)")
    return Image(data=raw, mime_type=_sniff(raw), width=width, height=height)


def _sniff(raw: bytes) -> str:
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MAGIC:
        if raw.startswith(magic):
            return mime
    raise RequestError("screenshot is not a PNG, JPEG or WebP image")
