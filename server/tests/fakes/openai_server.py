"""A local stand-in for OpenAI's chat completions API, streaming only.

It answers ``POST /v1/chat/completions`` with ``stream: true`` the way OpenAI does: a role chunk,
content chunks, a chunk with the finish reason, the usage chunk when ``stream_options`` asks for
it, then ``data: [DONE]``. Bearer keys are checked unless ``valid_keys`` is None (Ollama needs
none), errors come as OpenAI's JSON error bodies, and every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.http_server import serve

GOOD_KEY = "sk-fake-good-0123456789abcdefghijklmnop"
BAD_KEY = "sk-fake-revoked-9876543210zyxwvutsrqpon"

_ERRORS = {
    401: ("Incorrect API key provided: {key}.", "invalid_request_error", "invalid_api_key"),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: ("Rate limit reached for requests. Key {key}.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


@dataclass
class SeenRequest:
    """One request as the fake received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    peer: Any  # the client's (host, port): the same port means a reused connection


@dataclass
class FakeOpenAI:
    """The fake's script (what to answer) and its record (what it was asked)."""

    chunks: list[str] = field(default_factory=lambda: ["Hi", " there,", " from", " OpenAI."])
    delay: float = 0.0  # seconds between chunks
    valid_keys: set[str] | None = field(default_factory=lambda: {GOOD_KEY})
    status: int | None = None  # answer every request with this error status
    usage: tuple[int, int] = (33, 9)  # prompt and completion tokens of the usage chunk
    raw_after: tuple[int, str] | None = None  # after N chunks, send these raw lines and stop
    requests: list[SeenRequest] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # chunks written so far, across requests
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""  # ends in /v1, as clients configure it

    def app(self) -> web.Application:
        """The aiohttp application serving this fake."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        return app

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(SeenRequest(request.path, dict(request.headers), body, peer))
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.valid_keys is not None and key not in self.valid_keys:
            return _error(401, key)
        if self.status is not None:
            return _error(self.status, key)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await self._write_reply(response, body)
        except ConnectionResetError:  # the client went away: nothing more to write
            self.disconnected.set()
            return response
        except asyncio.CancelledError:
            self.disconnected.set()
            raise
        await response.write_eof()
        return response

    async def _write_reply(self, response: web.StreamResponse, body: dict[str, Any]) -> None:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        usage: dict[str, Any] = {"usage": None} if include_usage else {}
        model = body.get("model", "")
        await _event(response, _chunk(model, {"role": "assistant", "content": ""}, **usage))
        for index, text in enumerate(self.chunks):
            if self.raw_after is not None and index == self.raw_after[0]:
                await response.write(f"{self.raw_after[1]}\n\n".encode())
                return
            await _event(response, _chunk(model, {"content": text}, **usage))
            self.sent.append(text)
            if index < len(self.chunks) - 1:
                await asyncio.sleep(self.delay)
        await _event(response, _chunk(model, {}, finish_reason="stop", **usage))
        if include_usage:
            prompt, completion = self.usage
            totals = {"prompt_tokens": prompt, "completion_tokens": completion}
            totals["total_tokens"] = prompt + completion
            await _event(response, {**_chunk(model, None), "choices": [], "usage": totals})
        await response.write(b"data: [DONE]\n\n")


def _chunk(
    model: str, delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    )
    chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000}
    return {**chunk, "model": model, "choices": choices, **extra}


async def _event(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(payload)}\n\n".encode())


def _error(status: int, key: str) -> web.Response:
    # Messages quote the key in full (OpenAI masks most of it, a proxy may not), so tests can
    # check that the provider never passes a body on.
    message, kind, code = _ERRORS.get(status, ("Error.", "server_error", None))
    error = {"message": message.format(key=key), "type": kind, "param": None, "code": code}
    return web.json_response({"error": error}, status=status)


@asynccontextmanager
async def running(fake: FakeOpenAI) -> AsyncIterator[FakeOpenAI]:
    """Serve ``fake`` for the duration of the block, with its ``base_url`` (…/v1) filled in."""
    async with serve(fake.app()) as base_url:
        fake.base_url = f"{base_url}/v1"
        yield fake
