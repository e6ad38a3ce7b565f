"""Validation of incoming requests, before any work (SPEC §3.1)."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

from nexy.config import LimitsSettings
from nexy.providers.llm.base import Image
from nexy.transport.grpc import streaming_pb2 as pb

COLLECT = pb.REQUEST_PHASE_COLLECT
COMMIT_PHASES = (pb.REQUEST_PHASE_UNSPECIFIED, pb.REQUEST_PHASE_COMMIT)

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


class RequestError(ValueError):
    """An invalid request; the message is safe to show the client."""


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


def check_hardware_id(hardware_id: str) -> str:
    value = hardware_id.strip()
    if not value or value.lower() == "unknown":
        raise RequestError("hardware_id is required (a non-empty device identifier)")
    if len(value) > 128:
        raise RequestError("hardware_id is too long (at most 128 characters)")
    return value


def check_session_id(session_id: str) -> str:
    try:
        uuid.UUID(session_id.strip())
    except ValueError:
        raise RequestError("session_id is required (a UUID)") from None
    return session_id.strip()


def parse_stream_request(request: pb.StreamRequest, limits: LimitsSettings) -> StreamCall:
    """Check a StreamRequest in SPEC order: hardware_id, session_id, phase, sizes."""
    hardware_id = check_hardware_id(request.hardware_id)
    session_id = check_session_id(request.session_id)
    if request.phase != COLLECT and request.phase not in COMMIT_PHASES:
        raise RequestError(f"unknown phase {request.phase} (expected COLLECT or COMMIT)")
    for name, text in (("prompt", request.prompt), ("chunk_text", request.chunk_text)):
        if len(text) > limits.max_prompt_chars:
            raise RequestError(f"{name} is too long (at most {limits.max_prompt_chars} characters)")
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
