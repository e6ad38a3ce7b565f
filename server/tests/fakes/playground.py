"""A client of the playground's WebSocket turn endpoint, as the page speaks to it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.fakes.client import HARDWARE_ID

TERMINAL = ("end_message", "error_message")


@dataclass
class SocketTurn:
    """Everything one socket carried: JSON messages in order (audio frames as "<audio>")."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    close_code: int | None = None

    @property
    def kinds(self) -> list[str]:
        return [m["type"] for m in self.messages]

    @property
    def text(self) -> str:
        return "".join(m["text"] for m in self.messages if m["type"] == "text_chunk")

    @property
    def terminal(self) -> dict[str, Any]:
        ends = [m for m in self.messages if m["type"] in TERMINAL]
        assert len(ends) == 1, f"expected exactly one terminal message, got {self.kinds}"
        assert self.messages[-1] is ends[0], "the terminal message must be the last one"
        return ends[0]


def request(prompt: str = "Hello there", **fields: Any) -> dict[str, Any]:
    return {"prompt": prompt, "hardware_id": HARDWARE_ID, **fields}


async def socket_turn(
    http: str,
    message: dict[str, Any] | str | bytes,
    *,
    headers: dict[str, str] | None = None,
    then: dict[str, Any] | None = None,
) -> SocketTurn:
    """Open /playground/ws, send ``message`` (and ``then`` after the first text), read to close."""
    turn = SocketTurn()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{http}/playground/ws", headers=headers or {}) as ws,
    ):
        if isinstance(message, bytes):
            await ws.send_bytes(message)
        else:
            await ws.send_str(message if isinstance(message, str) else json.dumps(message))
        async for frame in ws:
            if frame.type is aiohttp.WSMsgType.BINARY:
                turn.audio += frame.data
                turn.messages.append({"type": "<audio>"})
            elif frame.type is aiohttp.WSMsgType.TEXT:
                turn.messages.append(json.loads(frame.data))
                if then is not None and turn.messages[-1]["type"] == "text_chunk":
                    await ws.send_str(json.dumps(then))
                    then = None
        turn.close_code = ws.close_code
    return turn
