"""Helpers that speak to the server the way the desktop client does (the toolkit's, with a
fixed test device)."""

from __future__ import annotations

from typing import Any

from nexy.toolkit import calls
from nexy.toolkit.calls import TurnResult
from nexy.transport.grpc import streaming_pb2 as pb

HARDWARE_ID = "6B1C2D3E-4F50-4A1B-9C2D-3E4F5A6B7C8D"

__all__ = ["HARDWARE_ID", "TurnResult", "commit", "run_turn"]


def commit(
    prompt: str,
    *,
    session_id: str | None = None,
    hardware_id: str = HARDWARE_ID,
    screenshot: str = "",
) -> pb.StreamRequest:
    """A COMMIT exactly as the real client builds it, from the tests' one device by default."""
    return calls.commit(
        prompt, session_id=session_id, hardware_id=hardware_id, screenshot=screenshot
    )


async def run_turn(stub: Any, request: pb.StreamRequest, timeout: float = 20.0) -> TurnResult:
    """Send one StreamAudio request and read it to its end or its error status."""
    return await calls.run_turn(stub, request, timeout)
